/**
 * Message moderation (XEP-0425 v0.3.0, `urn:xmpp:message-moderate:1`): a
 * room moderator removes someone else's message; the network's own
 * moderation reaches the room as a moderated retraction.
 *
 * The id a client names is the XEP-0359 stanza-id the room stamped (core/
 * events.ts uses one id as both the message id and the stanza-id of network
 * messages; the user's own messages are linked under their reflected
 * stanza-id first): the chat's id map turns it into the network's id.
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { fail } from "../errors.ts";
import { archiveCall } from "../events.ts";
import { randomId, scopeOf } from "../ids.ts";
import type { ChatRef } from "../model.ts";
import type { Network } from "../network.ts";
import type { RoomState } from "../rooms.ts";
import { NS } from "../stanzas/ns.ts";
import { archiveIdFor, archiveJidOf } from "../history/direct.ts";

/** XEP-0428 fallback for clients without XEP-0424/0425: a room notice saying what happened. */
function fallbackText(reason: string | undefined): string {
  return reason ? `A message was removed by a moderator: ${reason}` : "A message was removed by a moderator.";
}

/**
 * XEP-0425 §3.1: the room tells every joined resource that message `target`
 * (the room's stanza-id) was retracted by the moderator `byNick`. It comes
 * from the bare room JID: clients accept moderation only from the room itself
 * (§5, business rules). The fallback body and store hint follow XEP-0424 §4.
 */
export function announceModeration(net: Network, state: RoomState, target: string, byNick: string, reason?: string): void {
  for (const to of state.resources) {
    net.send(
      xml(
        "message",
        { type: "groupchat", from: state.jid, to, id: randomId() },
        xml(
          "retract",
          { xmlns: NS.retract, id: target },
          xml("moderated", { xmlns: NS.moderate, by: `${state.jid}/${byNick}` }),
          reason ? xml("reason", {}, reason) : undefined,
        ),
        xml("fallback", { xmlns: "urn:xmpp:fallback:0", for: NS.retract }),
        xml("body", {}, fallbackText(reason)),
        xml("store", { xmlns: NS.hints }),
      ),
    );
  }
}

/** XEP-0425 §5: the archive stops handing the message out (a XEP-0424 tombstone, as for the author's own retraction). */
export async function tombstone(net: Network, user: string, chat: ChatRef, legacyId: string): Promise<void> {
  const archiveJid = archiveJidOf(net, chat);
  const archived = archiveJid === undefined ? undefined : await archiveIdFor(net, user, chat, legacyId);
  if (archiveJid !== undefined && archived !== undefined) await archiveCall(net, () => net.archive?.retract(user, archiveJid, archived));
}

/**
 * `<iq type=set to=room><moderate id=… xmlns=urn:xmpp:message-moderate:1>
 * <retract xmlns=urn:xmpp:message-retract:1/><reason/></moderate>` (XEP-0425
 * §3). The network decides whether the user may (Matrix power levels, a
 * Telegram bot's admin rights): its refusal is the IQ's `forbidden` (§3.2).
 * Resolves once the network removed the message and the room announced it;
 * iq.ts then sends the result.
 */
export async function moderateIq(net: Network, stanza: Element, from: { bare: string; full: string }, to: { local?: string }): Promise<void> {
  const address = to.local === undefined ? undefined : net.addressOf(to.local);
  if (address?.kind !== "room") throw fail("service-unavailable", "Moderation requests go to a room");
  if (!net.adapter.capabilities.moderation) throw fail("unsupported", `${net.adapter.displayName} has no message moderation`);
  const request = stanza.getChild("moderate", NS.moderate)!;
  const id = request.attrs.id;
  if (!id) throw fail("bad-request", "The moderation request names no message (the id attribute)");
  // v0.3.0 defines retraction only; other moderator actions would come as other children (§1).
  if (!request.getChild("retract", NS.retract)) throw fail("unsupported", "Only retraction is supported as a moderation action");
  const reason = request.getChildText("reason")?.trim() || undefined;

  // As for XEP-0045 admin requests (muc-admin.ts): only a joined resource acts in the room.
  const state = net.rooms.get(from.bare, address.room);
  if (!state?.resources.has(from.full)) throw fail("not-acceptable", "You are not in this room");
  const chat: ChatRef = { kind: "room", room: address.room };
  const scope = scopeOf(from.bare, net.name, chat);
  const legacy = await net.store.idmap.legacyFor(scope, id);
  if (!legacy) throw fail("not-found", "That message is unknown to the gateway, so it cannot be moderated");
  const session = net.sessions.peek(from.bare);
  if (!session) throw fail("unavailable", "Your session is not connected");
  if (!session.moderate) throw fail("unsupported", `${net.adapter.displayName} has no message moderation`);
  await session.moderate(address.room, legacy, reason);

  await tombstone(net, from.bare, chat, legacy);
  // The room's own stanza-id, whatever id the client named (§3.1: clients check it is the room's).
  const target = (await net.store.idmap.xmppFor(scope, legacy)) ?? id;
  // The user may have left while the network worked: announce to whoever is still joined.
  const now = net.rooms.get(from.bare, address.room);
  if (now) announceModeration(net, now, target, now.nick, reason);
}
