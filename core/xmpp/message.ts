/**
 * Inbound messages: groupchat to rooms (with reflection, XEP-0045 §7.4),
 * chats to contacts and in-room private messages, corrections (XEP-0308),
 * retractions (XEP-0424), reactions (XEP-0444), replies (XEP-0461) and
 * chat states (XEP-0085). Any failure becomes an error to the sender
 * (dispatch.ts), never a silent drop.
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import type { AdapterSession } from "../adapter.ts";
import { fail } from "../errors.ts";
import { archiveCall, isOwn, markOwn } from "../events.ts";
import { scopeOf } from "../ids.ts";
import { parseStyling } from "../format/xep0393.ts";
import { metrics } from "../metrics.ts";
import type { ChatRef, ChatState, OutgoingMessage } from "../model.ts";
import type { Network } from "../network.ts";
import { randomId } from "../ids.ts";
import { NS } from "../stanzas/ns.ts";
import { cloneElement } from "../stanzas/clone.ts";
import { archiveIdFor, archiveJidOf, ownIdsScope } from "../history/direct.ts";
import { sendInvite } from "./invite.ts";
import { occupantId } from "../stanzas/muc.ts";

const CHAT_STATES: ChatState[] = ["active", "composing", "paused", "inactive", "gone"];

export async function handleMessage(
  net: Network,
  stanza: Element,
  from: { bare: string; full: string },
  to: { local?: string; resource?: string },
): Promise<void> {
  const type = stanza.attrs.type ?? "normal";
  if (type === "error") {
    if (to.local !== undefined) {
      const address = net.addressOf(to.local);
      // A bounce from a resource we send room traffic to: it is gone (XEP-0045 §7.14, no ghosts).
      if (address?.kind === "room") await net.rooms.leave(from.bare, from.full, address.room, undefined, false);
    }
    return;
  }
  if (to.local === undefined) {
    if (stanza.getChild("body")) {
      net.send(
        xml(
          "message",
          { type: "chat", from: net.domain, to: from.full, id: randomId() },
          xml("body", {}, `This is Estuary's ${net.adapter.displayName} gateway. Use your client's service discovery, registration and ad-hoc commands on ${net.domain}.`),
        ),
      );
    }
    return;
  }
  const address = net.addressOf(to.local);
  if (!address) throw fail("not-found", "No such room or contact on this gateway");

  let chat: ChatRef;
  if (address.kind === "room") {
    // A mediated invitation (XEP-0045 §7.8.2) is a message to the bare room of any type.
    if (!to.resource && stanza.getChild("x", NS.mucUser)?.getChild("invite")) return sendInvite(net, stanza, from, address.room);
    if (to.resource) {
      // In-room private message (XEP-0045 §7.5) to an occupant: reach the person behind the nick.
      const state = net.rooms.get(from.bare, address.room);
      if (!state?.resources.has(from.full)) throw fail("not-acceptable", "You are not in this room");
      const occupant = state.occupants.get(to.resource);
      if (!occupant?.contact) throw fail("not-found", `${to.resource} is not in this room`);
      chat = { kind: "direct", contact: occupant.contact, viaRoom: address.room };
    } else {
      if (type !== "groupchat") throw fail("bad-request", "Messages to a room must be of type groupchat");
      if (!net.rooms.isJoined(from.bare, address.room, from.full)) throw fail("not-acceptable", "You are not in this room; join it first");
      chat = { kind: "room", room: address.room };
    }
  } else if (address.kind === "contact") {
    chat = { kind: "direct", contact: address.contact };
  } else {
    throw fail("unsupported", "This address takes no messages");
  }

  const session = await net.sessions.get(from.bare);
  const scope = scopeOf(from.bare, net.name, chat);
  const body = stanza.getChildText("body");

  // Subject change (XEP-0045 §8.1): a groupchat message with <subject/> and no body.
  const subject = stanza.getChild("subject");
  if (chat.kind === "room" && subject && body === null) {
    if (!session.setSubject) throw fail("unsupported", "This network cannot change the subject");
    await session.setSubject(chat.room, subject.getText());
    return;
  }

  const retract = stanza.getChild("retract", NS.retract);
  if (retract) {
    const legacy = await net.store.idmap.legacyFor(scope, retract.attrs.id ?? "");
    if (!legacy) throw fail("not-found", "That message is unknown to the gateway, so it cannot be retracted");
    // XEP-0424 (business rules): only the sender of a message may retract it (moderation is XEP-0425, not this).
    if (!(await isOwn(net, from.bare, chat, legacy))) throw fail("forbidden", "You can only retract your own messages");
    if (!session.retract) throw fail("unsupported", `${net.adapter.displayName} cannot retract messages`);
    await session.retract(chat, legacy);
    reflect(net, from, chat, stanza);
    const archiveJid = archiveJidOf(net, chat);
    const target = archiveJid === undefined ? undefined : await archiveIdFor(net, from.bare, chat, legacy);
    if (archiveJid !== undefined && target !== undefined) await archiveCall(net, () => net.archive?.retract(from.bare, archiveJid, target));
    return;
  }

  const reactions = stanza.getChild("reactions", NS.reactions);
  if (reactions) {
    const legacy = await net.store.idmap.legacyFor(scope, reactions.attrs.id ?? "");
    if (!legacy) throw fail("not-found", "That message is unknown to the gateway");
    if (!session.react) throw fail("unsupported", `${net.adapter.displayName} has no reactions`);
    const emojis = reactions.getChildren("reaction").map((r) => r.getText());
    await session.react(chat, legacy, emojis);
    reflect(net, from, chat, stanza);
    return;
  }

  // XEP-0333: a displayed marker becomes a read receipt where the network has them.
  const displayed = stanza.getChild("displayed", NS.markers);
  if (displayed && body === null) {
    const legacy = await net.store.idmap.legacyFor(scope, displayed.attrs.id ?? "");
    if (legacy && session.markRead) await session.markRead(chat, legacy).catch(() => {}); // receipts are best effort
    return;
  }

  if (body === null) {
    const state = CHAT_STATES.find((s) => stanza.getChild(s, NS.chatStates));
    if (state && session.setTyping) await session.setTyping(chat, state).catch(() => {}); // typing is best effort
    return;
  }

  if (Buffer.byteLength(body, "utf8") > net.limits.maxBodyBytes) {
    throw fail("too-large", `Message too long: the gateway takes at most ${net.limits.maxBodyBytes} bytes`);
  }

  // The archive dates the user's message from when it reached the gateway, not from when the network took it.
  const at = new Date();
  const replace = stanza.getChild("replace", NS.replace)?.attrs.id;
  const replaced = replace === undefined ? undefined : await net.store.idmap.legacyFor(scope, replace);
  // XEP-0308 (business rules): a correction applies only to a message of the same sender.
  if (replaced !== undefined && !(await isOwn(net, from.bare, chat, replaced))) throw fail("forbidden", "You can only correct your own messages");
  const out = await outgoing(net, scope, stanza, body);
  const result = await send(session, chat, out, replaced);
  metrics.messages.inc({ network: net.name, direction: "out" });
  const ids = [stanza.attrs.id, stanza.getChild("origin-id", NS.sid)?.attrs.id].filter((x): x is string => !!x);
  const archiveJid = archiveJidOf(net, chat);
  // Rooms stamp every message (reflected with it); a 1:1 message gets an archive id only when archived.
  const stanzaId = chat.kind === "room" || archiveJid !== undefined ? randomId() : undefined;
  if (result.id) {
    // In a room the client learns the stanza-id from the reflection and may target it; in a 1:1 chat
    // it knows only its own id, which stays the first one linked (core/history/direct.ts).
    const linked = chat.kind === "room" && stanzaId ? [stanzaId, ...ids] : ids;
    // A correction keeps the network message's first XMPP id: the network's later edits, replies,
    // reactions and retractions must name the original (XEP-0308 §5), not this correction.
    const original = result.id === replaced ? await net.store.idmap.xmppFor(scope, result.id) : undefined;
    await net.store.idmap.link(scope, result.id, original === undefined ? linked : [original, ...linked]);
    await markOwn(net, from.bare, chat, result.id);
    if (chat.kind === "direct" && stanzaId) await net.store.idmap.link(ownIdsScope(from.bare, net.name, chat.contact), result.id, [stanzaId]);
  }
  reflect(net, from, chat, stanza, stanzaId);
  if (archiveJid !== undefined && stanzaId) await archiveOwn(net, from.bare, chat, archiveJid, stanza, { stanzaId, at, body, legacyId: result.id, replace, scope });
}

async function send(session: AdapterSession, chat: ChatRef, out: OutgoingMessage, replaced: string | undefined) {
  if (replaced !== undefined && session.correct) return session.correct(chat, replaced, out);
  // XEP-0308 §5 fallback: a network without edits (IRC), or an unknown original, gets the corrected text as a new message.
  return session.sendMessage(chat, out);
}

async function outgoing(net: Network, scope: string, stanza: Element, body: string): Promise<OutgoingMessage> {
  let text = body;
  let action = false;
  // XEP-0245: "/me " at the start of the body is an action.
  if (text.startsWith("/me ")) {
    action = true;
    text = text.slice(4);
  }
  const msg: OutgoingMessage = { text: parseStyling(text), action };
  const reply = stanza.getChild("reply", NS.reply)?.attrs.id;
  if (reply) {
    const legacy = await net.store.idmap.legacyFor(scope, reply);
    if (legacy) msg.replyTo = legacy;
  }
  const oob = stanza.getChildren("x", NS.oob).map((x) => x.getChildText("url")).filter((u): u is string => !!u);
  if (oob.length > 0) msg.attachments = oob.map((url) => ({ url }));
  return msg;
}

/**
 * XEP-0045 §7.4: the room reflects a message to every joined resource of its
 * sender, with the sender's id untouched (clients de-duplicate on it) and a
 * XEP-0359 stanza-id by the room. Only in rooms: 1:1 chats are not reflected.
 */
function reflect(net: Network, from: { bare: string; full: string }, chat: ChatRef, stanza: Element, stanzaId?: string): void {
  if (chat.kind !== "room") return;
  const state = net.rooms.get(from.bare, chat.room);
  if (!state) return;
  const copy = cloneElement(stanza);
  // Never pass on a stanza-id claiming to be from the room (XEP-0359 §5: the room must strip them).
  for (const sid of copy.getChildren("stanza-id", NS.sid)) if (sid.attrs.by === state.jid) copy.remove(sid);
  if (stanzaId) copy.append(xml("stanza-id", { xmlns: NS.sid, id: stanzaId, by: state.jid }));
  // XEP-0421 §4: the room strips any occupant-id the sender put in and adds the sender's own
  // (hashed from their bare JID, as in their presences and the archive).
  for (const oid of copy.getChildren("occupant-id", NS.occupantId)) copy.remove(oid);
  copy.append(xml("occupant-id", { xmlns: NS.occupantId, id: occupantId(state.jid, { jid: from.bare, nick: state.nick }) }));
  for (const full of state.resources) {
    const el = cloneElement(copy);
    el.attrs.from = `${state.jid}/${state.nick}`;
    el.attrs.to = full;
    el.attrs.type = "groupchat";
    net.send(el);
  }
}

/**
 * The user's own message goes into their archive like everyone else's (a
 * room's, or a 1:1 archive at the contact's JID, where the user's bare JID is
 * the sender); a correction of a message the network could edit updates the
 * original entry.
 */
async function archiveOwn(
  net: Network,
  user: string,
  chat: ChatRef,
  archiveJid: string,
  stanza: Element,
  sent: { stanzaId: string; at: Date; body: string; legacyId: string | undefined; replace: string | undefined; scope: string },
): Promise<void> {
  const { stanzaId, body, legacyId, replace, scope } = sent;
  if (!net.archive) return;
  if (replace !== undefined) {
    const legacy = await net.store.idmap.legacyFor(scope, replace);
    const target = legacy ? await archiveIdFor(net, user, chat, legacy) : undefined;
    if (target && target !== stanzaId) {
      await archiveCall(net, () => net.archive?.correct(user, archiveJid, target, body));
      return;
    }
  }
  const originId = stanza.attrs.id ?? stanza.getChild("origin-id", NS.sid)?.attrs.id;
  // Not awaited, as for network messages (core/events.ts): the archive batches a turn's appends
  // and writes them before any later read or update.
  void archiveCall(net, () =>
    net.archive?.append({
      archiveId: stanzaId,
      user,
      network: net.name,
      room: archiveJid,
      from: chat.kind === "room" ? (net.rooms.get(user, chat.room)?.nick ?? "") : user,
      fromJid: user,
      at: sent.at,
      body,
      ...(originId !== undefined ? { originId } : {}),
      ...(legacyId !== undefined ? { legacyId } : {}),
    }),
  );
}
