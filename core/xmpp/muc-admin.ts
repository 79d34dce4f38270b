/**
 * XEP-0045 §8.2 / §9.1: a moderator kicks (role none) or bans (affiliation
 * outcast) an occupant with a muc#admin IQ on the room. The network decides
 * whether the user may (IRC: only as an op); its refusal comes back as the
 * IQ's error, never silence.
 */
import type { Element } from "@xmpp/xml";
import { fail } from "../errors.ts";
import type { Network } from "../network.ts";
import { NS } from "../stanzas/ns.ts";

export async function mucAdminSet(net: Network, stanza: Element, from: { bare: string; full: string }, local: string | undefined): Promise<void> {
  const address = local === undefined ? undefined : net.addressOf(local);
  if (address?.kind !== "room") throw fail("service-unavailable", "muc#admin requests go to a room");
  const state = net.rooms.get(from.bare, address.room);
  if (!state?.resources.has(from.full)) throw fail("not-acceptable", "You are not in this room");
  const items = stanza.getChild("query", NS.mucAdmin)?.getChildren("item") ?? [];
  if (items.length === 0) throw fail("bad-request", "No item in the request");
  const session = net.sessions.peek(from.bare);
  if (!session) throw fail("unavailable", "Your session is not connected");
  for (const item of items) {
    const reason = item.getChildText("reason") ?? undefined;
    if (item.attrs.role === "none") {
      const nick = item.attrs.nick;
      if (!nick || !state.occupants.has(nick)) throw fail("not-found", `No occupant ${nick ?? ""} here`);
      if (!session.kick) throw fail("unsupported", `${net.adapter.displayName} cannot kick`);
      await session.kick(address.room, nick, reason);
    } else if (item.attrs.affiliation === "outcast") {
      // Bans name a JID (§9.1); find the occupant behind it, or take a nick if the client gave one.
      const jid = item.attrs.jid;
      const occupant = [...state.occupants.values()].find(
        (o) => o.nick === item.attrs.nick || (jid !== undefined && o.contact !== undefined && net.jidOf({ kind: "contact", contact: o.contact }) === jid.split("/")[0]),
      );
      if (!occupant) throw fail("not-found", "Nobody with that address is in this room");
      if (!session.ban) throw fail("unsupported", `${net.adapter.displayName} cannot ban`);
      await session.ban(address.room, occupant.nick, reason);
    } else {
      throw fail("unsupported", "Only kicks and bans are supported here");
    }
  }
}
