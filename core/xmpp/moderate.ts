/**
 * Message moderation (XEP-0425): a room moderator removes someone else's
 * message; the network's own moderation reaches the room as a moderated
 * retraction.
 */
import type { Element } from "@xmpp/xml";
import { fail } from "../errors.ts";
import type { Network } from "../network.ts";

/** `<iq type=set to=room><moderate id=… xmlns=urn:xmpp:message-moderate:1>` (XEP-0425 §4). */
export async function moderateIq(net: Network, stanza: Element, from: { bare: string; full: string }, to: { local?: string }): Promise<void> {
  void net;
  void stanza;
  void from;
  void to;
  throw fail("unsupported", "Moderation is not supported yet");
}
