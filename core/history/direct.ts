/**
 * Which chats the archive keeps, and how a network message id leads to its
 * archive id. Rooms are always archived (when history is on); 1:1 chats with
 * a network contact only when the admin enables `history.directMessages`:
 * they pass through the user's own server, whose archive usually has them.
 *
 * A 1:1 archive lives at the contact's bare JID (`room` = that JID), like
 * Biboumi's per-user room archives: MAM queries go to the contact's JID.
 * In-room private messages (XEP-0045 §7.5, `room/nick`) are not archived.
 *
 * Archive ids: a network message's archive id is the id the user's client saw
 * (core/events.ts sends it as both the message id and the stanza-id). The
 * user's own 1:1 messages are not reflected (a 1:1 chat has no room to echo
 * them), so their archive id is one the client never saw; it is linked to the
 * network id in a scope of its own (ownIdsScope) rather than in the chat's,
 * whose first xmpp id must stay the client's own id (XEP-0308/0424 targets).
 */
import type { ChatRef } from "../model.ts";
import type { Network } from "../network.ts";
import { scopeOf } from "../ids.ts";

/** Whether 1:1 chats with the network's contacts are archived (history.directMessages). */
export function archivesDirect(net: Network): boolean {
  return net.archive !== undefined && net.archiveDirect === true;
}

/** The archive JID of a chat the archive keeps (a room's, or a contact's with archivesDirect); undefined when it keeps none. */
export function archiveJidOf(net: Network, chat: ChatRef): string | undefined {
  if (!net.archive) return undefined;
  if (chat.kind === "room") return net.jidOf({ kind: "room", room: chat.room });
  if (chat.viaRoom !== undefined || !archivesDirect(net)) return undefined;
  return net.jidOf({ kind: "contact", contact: chat.contact });
}

/** The id map scope linking the network ids of the user's own 1:1 messages to their archive ids. */
export function ownIdsScope(user: string, network: string, contact: string): string {
  return `${user}\n${network}\na:${contact}`;
}

/** The archive id of the network message `legacyId` in this chat, if the gateway knows it. */
export async function archiveIdFor(net: Network, user: string, chat: ChatRef, legacyId: string): Promise<string | undefined> {
  if (chat.kind === "direct") {
    const own = await net.store.idmap.xmppFor(ownIdsScope(user, net.name, chat.contact), legacyId);
    if (own !== undefined) return own;
  }
  return net.store.idmap.xmppFor(scopeOf(user, net.name, chat), legacyId);
}
