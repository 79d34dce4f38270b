/**
 * vcard-temp (XEP-0054) for contacts: the name the network knows (XEP-0172
 * nick is sent with presence; clients also ask the vCard for a display name).
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { fail } from "../errors.ts";
import type { Network } from "../network.ts";
import { NS } from "../stanzas/ns.ts";

/**
 * The contact behind an occupant JID (`room@gw/nick`) in the user's view of the room.
 * Gajim and Conversations ask an occupant's vCard for its avatar and name (XEP-0153 in
 * MUC; XEP-0045 §6.7 lets the room pass such an IQ to the occupant, whose client answers):
 * the gateway answers for the person as it does at their contact JID.
 */
function occupantContact(net: Network, user: string, room: string, nick: string): string {
  const state = net.rooms.get(user, room);
  const o = state?.occupants.get(nick);
  if (!state || (!o && nick !== state.nick)) throw fail("not-found", "No such occupant in this room");
  if (o?.contact === undefined) throw fail("service-unavailable", "No vCard for this occupant");
  return o.contact;
}

/** `resource`: the nick when the vCard is asked of a room occupant (`room@gw/nick`). */
export async function vcardGet(net: Network, user: string, local: string | undefined, resource?: string): Promise<Element> {
  const address = local === undefined ? undefined : net.addressOf(local);
  const contact =
    address?.kind === "contact" ? address.contact : address?.kind === "room" && resource !== undefined ? occupantContact(net, user, address.room, resource) : undefined;
  if (contact === undefined) throw fail("service-unavailable", "vCards are kept for contacts only");
  const session = net.sessions.peek(user);
  const info = session?.contactInfo ? await session.contactInfo(contact).catch(() => undefined) : undefined;
  const name = info?.name;
  const avatar = info?.avatar;
  return xml(
    "vCard",
    { xmlns: NS.vcard },
    name ? xml("FN", {}, name) : undefined,
    name ? xml("NICKNAME", {}, name) : undefined,
    // XEP-0054 §3: the photo inline, base64; clients show it as the contact's avatar.
    avatar ? xml("PHOTO", {}, xml("TYPE", {}, avatar.mediaType), xml("BINVAL", {}, Buffer.from(avatar.data).toString("base64"))) : undefined,
  );
}
