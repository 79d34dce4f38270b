/**
 * Invitations (XEP-0045 §7.8). Both directions: a mediated invitation the
 * user sends to a room becomes the network's invite; a network invite reaches
 * the user as an invitation from the room.
 */
import type { Element } from "@xmpp/xml";
import { fail } from "../errors.ts";
import type { LegacyEvent, RoomId } from "../model.ts";
import type { Network } from "../network.ts";

/** XMPP → network: `<message to=room><x muc#user><invite to=…/></x></message>` (§7.8.2). */
export async function sendInvite(net: Network, stanza: Element, from: { bare: string; full: string }, room: RoomId): Promise<void> {
  void net;
  void stanza;
  void from;
  void room;
  throw fail("unsupported", "Invitations are not supported yet");
}

/** Network → XMPP: someone invites the user into a room. */
export async function deliverInvite(net: Network, user: string, event: Extract<LegacyEvent, { type: "invite" }>): Promise<void> {
  void net;
  void user;
  void event;
}
