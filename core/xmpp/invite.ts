/**
 * Invitations (XEP-0045 §7.8). Both directions: a mediated invitation the
 * user sends to a room becomes the network's invite; a network invite reaches
 * the user as an invitation from the room.
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { fail } from "../errors.ts";
import { randomId } from "../ids.ts";
import { splitJid } from "../jid.ts";
import type { LegacyEvent, RoomId } from "../model.ts";
import type { Network } from "../network.ts";
import { NS } from "../stanzas/ns.ts";

/** One `<invite to=…>` of a mediated invitation, checked. */
interface Invitation {
  /** The invitee: a person on the network (through the adapter) or anyone else on XMPP (forwarded by the room). */
  to: { contact: string } | { jid: string };
  reason?: string;
}

function invitationOf(net: Network, invite: Element): Invitation {
  const raw = invite.attrs.to;
  if (typeof raw !== "string" || raw === "") throw fail("bad-request", "An invitation needs a 'to' address");
  const jid = splitJid(raw);
  if (!jid) throw fail("bad-request", `Not a valid JID: ${raw}`);
  const reasonText = invite.getChildText("reason");
  const reason = reasonText !== null && reasonText !== "" ? { reason: reasonText } : {};
  if (jid.domain.toLowerCase() !== net.domain.toLowerCase()) {
    // A fellow XMPP user: the room forwards the invitation (§7.8.2), to the address as given.
    const bare = jid.local === undefined ? jid.domain : `${jid.local}@${jid.domain}`;
    return { to: { jid: jid.resource === undefined ? bare : `${bare}/${jid.resource}` }, ...reason };
  }
  const address = jid.local === undefined ? undefined : net.addressOf(jid.local);
  if (address?.kind !== "contact") throw fail("bad-request", `${raw} is not a person on ${net.adapter.displayName}`);
  return { to: { contact: address.contact }, ...reason };
}

/**
 * XMPP → network: `<message to=room><x muc#user><invite to=…/></x></message>`
 * (§7.8.2), from someone in the room. A network contact's JID becomes the
 * network's invite (IRC INVITE); any other JID gets the invitation from the
 * room, as a MUC service would send it. Each `<invite/>` in turn; the first
 * that fails is the error of the whole message.
 */
export async function sendInvite(net: Network, stanza: Element, from: { bare: string; full: string }, room: RoomId): Promise<void> {
  const invites = stanza.getChild("x", NS.mucUser)?.getChildren("invite") ?? [];
  if (invites.length === 0) throw fail("bad-request", "No invitation in this message");
  // §7.8.2 lets a room refuse invitations from non-occupants; a gateway room always does, so
  // nobody uses it to send invitations in the name of a room they are not in.
  if (!net.rooms.isJoined(from.bare, room, from.full)) throw fail("not-acceptable", "You are not in this room; join it first");
  const parsed = invites.map((i) => invitationOf(net, i));
  const roomJid = net.jidOf({ kind: "room", room });
  for (const inv of parsed) {
    if ("contact" in inv.to) {
      const session = await net.sessions.get(from.bare);
      if (!session.invite) throw fail("unsupported", `${net.adapter.displayName} has no invitations`);
      await session.invite(room, inv.to.contact, inv.reason);
      continue;
    }
    net.send(invitationStanza(roomJid, inv.to.jid, from.bare, from.bare, inv.reason, stanza.attrs.id));
  }
}

/**
 * An invitation from the room (§7.8.2): `<invite from=inviter>` with the
 * reason, and a body for clients without MUC invitations (Prosody's MUC adds
 * the same; no jabber:x:conference beside it, which made clients take a
 * mediated invitation for a direct one and handle it twice).
 */
function invitationStanza(roomJid: string, to: string, inviter: string, inviterName: string, reason: string | undefined, id: string | undefined): Element {
  return xml(
    "message",
    { from: roomJid, to, id: id ?? randomId() },
    xml("x", { xmlns: NS.mucUser }, xml("invite", { from: inviter }, reason !== undefined ? xml("reason", {}, reason) : undefined)),
    xml("body", {}, `${inviterName} invited you to the room ${roomJid}${reason !== undefined ? ` (${reason})` : ""}`),
  );
}

/**
 * Network → XMPP: someone invites the user into a room. The invitation
 * comes from the room's JID to the user's bare JID (every client of theirs
 * may act on it), naming the person by their contact JID, or by their
 * occupant JID when the network gave no contact (a server or a service).
 */
export async function deliverInvite(net: Network, user: string, event: Extract<LegacyEvent, { type: "invite" }>): Promise<void> {
  const roomJid = net.jidOf({ kind: "room", room: event.room });
  const inviter = event.from.contact !== undefined ? net.jidOf({ kind: "contact", contact: event.from.contact }) : `${roomJid}/${event.from.nick}`;
  net.send(invitationStanza(roomJid, user, inviter, event.from.nick, event.reason, undefined));
}
