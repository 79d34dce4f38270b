/**
 * vcard-temp (XEP-0054) for contacts: the name the network knows (XEP-0172
 * nick is sent with presence; clients also ask the vCard for a display name).
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { fail } from "../errors.ts";
import type { Network } from "../network.ts";
import { NS } from "../stanzas/ns.ts";

export async function vcardGet(net: Network, user: string, local: string | undefined): Promise<Element> {
  const address = local === undefined ? undefined : net.addressOf(local);
  if (address?.kind !== "contact") throw fail("service-unavailable", "vCards are kept for contacts only");
  const session = net.sessions.peek(user);
  const info = session?.contactInfo ? await session.contactInfo(address.contact).catch(() => undefined) : undefined;
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
