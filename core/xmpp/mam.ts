/**
 * XEP-0313 (MAM v2) on gateway room JIDs, and on contact JIDs when 1:1 chats
 * are archived (history.directMessages): each user queries their own view
 * (the archive is per user, as Biboumi keeps it, for privacy). Results go to
 * the asking resource, then the IQ result carries <fin/>.
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { fail } from "../errors.ts";
import { directWithFilter, mamFin, mamFormFields, mamMetadata, mamResultMessage, mamWithFilter, parseMamQuery } from "../history/mam.ts";
import { archivesDirect } from "../history/direct.ts";
import type { Network } from "../network.ts";

/**
 * The archive at this JID: a room's, or a contact's when 1:1 chats are
 * archived. Anything else has no archive: service-unavailable (RFC 6120
 * §8.3.3.19, XEP-0313 "Determining support": the entity does not offer MAM).
 */
function archiveAt(net: Network, local: string | undefined): { jid: string; direct: boolean } {
  if (!net.archive) throw fail("service-unavailable", "Message archiving is disabled on this gateway");
  const address = local === undefined ? undefined : net.addressOf(local);
  if (address?.kind === "room") return { jid: net.jidOf(address), direct: false };
  if (address?.kind === "contact" && archivesDirect(net)) return { jid: net.jidOf(address), direct: true };
  throw fail("service-unavailable", archivesDirect(net) ? "Archives are kept for rooms and contacts only" : "Archives are kept for rooms only");
}

export async function mamQuery(net: Network, stanza: Element, from: { bare: string; full: string }, local: string | undefined): Promise<void> {
  const at = archiveAt(net, local);
  const archive = net.archive!;
  const q = parseMamQuery(stanza);
  const filter = q.with === undefined ? {} : at.direct ? directWithFilter(q.with, at.jid) : mamWithFilter(q.with, at.jid);
  const page = await archive.query({
    user: from.bare,
    room: at.jid,
    ...(q.start ? { start: q.start } : {}),
    ...(q.end ? { end: q.end } : {}),
    ...filter,
    ...(q.afterId !== undefined ? { afterId: q.afterId } : {}),
    ...(q.beforeId !== undefined ? { beforeId: q.beforeId } : {}),
    ...(q.after !== undefined ? { after: q.after } : {}),
    ...(q.before !== undefined ? { before: q.before } : {}),
    ...(q.ids ? { ids: q.ids } : {}),
    max: q.max,
  });
  const messages = q.flipPage ? [...page.messages].reverse() : page.messages;
  for (const m of messages) {
    net.send(mamResultMessage(m, { to: from.full, roomJid: at.jid, direct: at.direct, ...(q.queryId !== undefined ? { queryId: q.queryId } : {}) }));
  }
  net.send(xml("iq", { type: "result", id: stanza.attrs.id, from: stanza.attrs.to, to: stanza.attrs.from }, mamFin(page)));
}

export function mamForm(net: Network, local: string | undefined): Element {
  archiveAt(net, local);
  // mamFormFields is the whole <query/> payload (XEP-0313 §4.1.5), not its content.
  return mamFormFields();
}

export async function mamMeta(net: Network, from: { bare: string }, local: string | undefined): Promise<Element> {
  const at = archiveAt(net, local);
  return mamMetadata(await net.archive!.metadata(from.bare, at.jid));
}
