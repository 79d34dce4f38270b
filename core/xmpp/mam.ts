/**
 * XEP-0313 (MAM v2) on gateway room JIDs: each user queries their own view
 * of the room (the archive is per user, as Biboumi keeps it, for privacy).
 * Results go to the asking resource, then the IQ result carries <fin/>.
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { fail } from "../errors.ts";
import { MAM_NS, mamFin, mamFormFields, mamMetadata, mamResultMessage, mamWithFilter, parseMamQuery } from "../history/mam.ts";
import type { Network } from "../network.ts";

function roomJidOf(net: Network, local: string | undefined): string {
  const address = local === undefined ? undefined : net.addressOf(local);
  if (address?.kind !== "room") throw fail("service-unavailable", "Archives are kept for rooms only");
  return net.jidOf(address);
}

export async function mamQuery(net: Network, stanza: Element, from: { bare: string; full: string }, local: string | undefined): Promise<void> {
  if (!net.archive) throw fail("service-unavailable", "Message archiving is disabled on this gateway");
  const roomJid = roomJidOf(net, local);
  const q = parseMamQuery(stanza);
  const filter = q.with !== undefined ? mamWithFilter(q.with, roomJid) : {};
  const page = await net.archive.query({
    user: from.bare,
    room: roomJid,
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
  for (const m of messages) net.send(mamResultMessage(m, { to: from.full, roomJid, ...(q.queryId !== undefined ? { queryId: q.queryId } : {}) }));
  net.send(xml("iq", { type: "result", id: stanza.attrs.id, from: stanza.attrs.to, to: stanza.attrs.from }, mamFin(page)));
}

export function mamForm(net: Network, local: string | undefined): Element {
  if (!net.archive) throw fail("service-unavailable", "Message archiving is disabled on this gateway");
  roomJidOf(net, local);
  return xml("query", { xmlns: MAM_NS }, mamFormFields());
}

export async function mamMeta(net: Network, from: { bare: string }, local: string | undefined): Promise<Element> {
  if (!net.archive) throw fail("service-unavailable", "Message archiving is disabled on this gateway");
  const roomJid = roomJidOf(net, local);
  return mamMetadata(await net.archive.metadata(from.bare, roomJid));
}
