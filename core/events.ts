/**
 * Network → XMPP: turns an adapter's events into stanzas for one user.
 * Room membership events go through the room registry (it owns MUC state);
 * messages, edits, retractions, reactions, typing, presence and status are
 * built here.
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { serializeStyling } from "./format/xep0393.ts";
import { metrics } from "./metrics.ts";
import type { ChatRef, LegacyEvent, Sender, Show } from "./model.ts";
import type { Network } from "./network.ts";
import { randomId, scopeOf } from "./ids.ts";

export { scopeOf } from "./ids.ts";

/**
 * The id map scope recording which network messages of a conversation are
 * the user's own (sent through the gateway, or from another client of theirs):
 * XEP-0308 and XEP-0424 (business rules) let a sender correct or retract only their own
 * messages, and a bot (Telegram) or a moderator account (Matrix) could
 * otherwise edit or delete other people's messages on the user's behalf.
 */
export function ownScopeOf(user: string, network: string, chat: ChatRef): string {
  return `${user}\n${network}\no:${chat.kind === "room" ? `r:${chat.room}` : `c:${chat.contact}`}`;
}

/** Records `legacyId` as one of the user's own messages in `chat`. */
export function markOwn(net: Network, user: string, chat: ChatRef, legacyId: string): Promise<void> {
  return net.store.idmap.link(ownScopeOf(user, net.name, chat), legacyId, [legacyId]);
}

/** Whether `legacyId` is known to be one of the user's own messages in `chat`. */
export async function isOwn(net: Network, user: string, chat: ChatRef, legacyId: string): Promise<boolean> {
  return (await net.store.idmap.xmppFor(ownScopeOf(user, net.name, chat), legacyId)) !== undefined;
}
import { NS } from "./stanzas/ns.ts";
import { resourceSafe } from "./stanzas/xml-safe.ts";
import { occupantId } from "./stanzas/muc.ts";
import { gatewayPresence } from "./xmpp/presence.ts";
import { ensureContact, notePresence } from "./contacts.ts";
import { archiveIdFor, archiveJidOf } from "./history/direct.ts";
import { deliverInvite } from "./xmpp/invite.ts";
import { announceModeration, tombstone } from "./xmpp/moderate.ts";

/** Last session state per network and user, to announce an outage once and its end once (one entry per user ever connected: bounded by limits.maxUsers). */
const lastState = new Map<string, string>();


interface Route {
  from: string;
  to: string;
  type: "groupchat" | "chat";
  /**
   * XEP-0421 §4: in a room that advertises occupant ids every message carries
   * the sender's; the same id as in their presences, history and MAM results
   * (hashed from the contact's JID, or the user's own bare JID for themselves).
   */
  occupantId?: () => Element;
}

/** Where a chat event goes, and from which JID: each joined resource for rooms, the bare JID for 1:1. */
function routes(net: Network, user: string, chat: ChatRef, from: Sender): Route[] {
  if (chat.kind === "room") {
    const state = net.rooms.get(user, chat.room);
    if (!state) return [];
    const jid = from.nick === state.nick ? user : from.contact !== undefined ? net.jidOf({ kind: "contact", contact: from.contact }) : undefined;
    const id = occupantId(state.jid, { nick: from.nick, ...(jid !== undefined ? { jid } : {}) });
    const element = (): Element => xml("occupant-id", { xmlns: NS.occupantId, id });
    return [...state.resources].map((to) => ({ from: `${state.jid}/${from.nick}`, to, type: "groupchat" as const, occupantId: element }));
  }
  if (chat.viaRoom) {
    const state = net.rooms.get(user, chat.viaRoom);
    if (state) return [...state.resources].map((to) => ({ from: `${state.jid}/${from.nick}`, to, type: "chat" as const }));
  }
  return [{ from: net.jidOf({ kind: "contact", contact: chat.contact }), to: user, type: "chat" }];
}

/** Nicks become JID resourceparts: a network's odd nick must not make the server bounce our stanzas. */
function cleanNicks(event: LegacyEvent): LegacyEvent {
  switch (event.type) {
    case "retract":
      return { ...event, from: { ...event.from, nick: resourceSafe(event.from.nick) }, ...(event.by ? { by: { ...event.by, nick: resourceSafe(event.by.nick) } } : {}) };
    case "message":
    case "edit":
    case "reactions":
    case "typing":
    case "invite":
      return { ...event, from: { ...event.from, nick: resourceSafe(event.from.nick) } };
    case "join":
    case "occupant":
      return { ...event, occupant: { ...event.occupant, nick: resourceSafe(event.occupant.nick) } };
    case "part":
      return { ...event, nick: resourceSafe(event.nick), ...(event.by !== undefined ? { by: resourceSafe(event.by) } : {}) };
    case "nick":
      return { ...event, old: resourceSafe(event.old), new: resourceSafe(event.new) };
    case "topic":
      return event.by !== undefined ? { ...event, by: resourceSafe(event.by) } : event;
    default:
      return event;
  }
}

export async function handleEvent(net: Network, user: string, raw: LegacyEvent): Promise<void> {
  const event = cleanNicks(raw);
  // An event for a room the user is joining right now is applied once the join completed
  // (the network may speak before it answered the join).
  const room = "room" in event ? event.room : "chat" in event && event.chat.kind === "room" ? event.chat.room : undefined;
  const joining = room === undefined ? undefined : net.rooms.joining(user, room);
  if (joining) await joining.catch(() => {});
  switch (event.type) {
    case "join":
    case "part":
    case "nick":
    case "occupant":
    case "topic":
    case "room-closed":
      net.rooms.apply(user, event);
      return;
    case "message":
      // A person writing to the user 1:1 becomes a roster contact (core/contacts.ts).
      if (event.chat.kind === "direct" && !event.chat.viaRoom && !event.self) await ensureContact(net, user, event.chat.contact, event.from.nick);
      return onMessage(net, user, event);
    case "edit": {
      const scope = scopeOf(user, net.name, event.chat);
      const target = await net.store.idmap.xmppFor(scope, event.id);
      const id = randomId();
      if (event.newId) await net.store.idmap.link(scope, event.newId, [id]);
      const body = serializeStyling(event.text);
      // XEP-0308 §5: the archive keeps the corrected text in place of the original (rooms, and 1:1 chats when archived).
      const archiveJid = archiveJidOf(net, event.chat);
      const archived = archiveJid === undefined ? undefined : await archiveIdFor(net, user, event.chat, event.id);
      if (archiveJid !== undefined && archived !== undefined) await archiveCall(net, () => net.archive?.correct(user, archiveJid, archived, body));
      for (const r of routes(net, user, event.chat, event.from)) {
        net.send(
          xml(
            "message",
            { type: r.type, from: r.from, to: r.to, id },
            xml("body", {}, body),
            // XEP-0308: without a known original, the edit is shown as a new message.
            target ? xml("replace", { xmlns: NS.replace, id: target }) : undefined,
            r.type === "groupchat" ? xml("stanza-id", { xmlns: NS.sid, id, by: r.from.split("/")[0] }) : undefined,
            r.occupantId?.(),
          ),
        );
      }
      return;
    }
    case "retract": {
      const scope = scopeOf(user, net.name, event.chat);
      const target = await net.store.idmap.xmppFor(scope, event.id);
      if (!target) return; // nothing the user's client could have shown
      await tombstone(net, user, event.chat, event.id);
      // Removed by someone else (a moderator on the network): in a room that is XEP-0425
      // moderation, announced by the room itself, not a retraction from the author.
      const room = event.by && event.chat.kind === "room" ? net.rooms.get(user, event.chat.room) : undefined;
      if (event.by && room) return announceModeration(net, room, target, event.by.nick, event.reason);
      for (const r of routes(net, user, event.chat, event.from)) {
        net.send(
          xml(
            "message",
            { type: r.type, from: r.from, to: r.to, id: randomId() },
            xml("retract", { xmlns: NS.retract, id: target }),
            xml("fallback", { xmlns: "urn:xmpp:fallback:0", for: NS.retract }),
            xml("body", {}, "This person attempted to retract a previous message, but it's unsupported by your client."),
            xml("store", { xmlns: NS.hints }),
            r.occupantId?.(),
          ),
        );
      }
      return;
    }
    case "reactions": {
      const scope = scopeOf(user, net.name, event.chat);
      const target = await net.store.idmap.xmppFor(scope, event.id);
      if (!target) return;
      for (const r of routes(net, user, event.chat, event.from)) {
        net.send(
          xml(
            "message",
            { type: r.type, from: r.from, to: r.to, id: randomId() },
            xml("reactions", { xmlns: NS.reactions, id: target }, ...event.emojis.map((e) => xml("reaction", {}, e))),
            xml("store", { xmlns: NS.hints }),
            r.occupantId?.(),
          ),
        );
      }
      return;
    }
    case "typing":
      for (const r of routes(net, user, event.chat, event.from)) {
        net.send(
          xml("message", { type: r.type, from: r.from, to: r.to }, xml(event.state, { xmlns: NS.chatStates }), xml("no-store", { xmlns: NS.hints }), r.occupantId?.()),
        );
      }
      return;
    case "invite":
      return deliverInvite(net, user, event);
    case "presence":
      notePresence(net, user, event.contact, { show: event.show, status: event.status, name: event.name });
      // A named contact is a person the user deals with (IRC's away-notify for channel members carries no name).
      if (event.name) await ensureContact(net, user, event.contact, event.name);
      net.send(contactPresence(net, user, event.contact, event.show, event.status, event.name));
      return;
    case "service-message":
      net.send(
        xml(
          "message",
          { type: "chat", from: net.jidOf({ kind: "service", service: event.service }), to: user, id: randomId() },
          xml("body", {}, serializeStyling(event.text)),
        ),
      );
      return;
    case "status": {
      const key = `${net.name}\n${user}`;
      const previous = lastState.get(key);
      lastState.set(key, event.state);
      net.send(gatewayPresence(net, user));
      if (event.state === "offline") {
        lastState.delete(key);
        net.rooms.closeAll(user, event.text ?? "Disconnected from the network");
        return;
      }
      // Tell every room the user is in, as Biboumi does: the outage is visible where the conversation is.
      const note =
        event.state === "degraded" && previous !== "degraded"
          ? `Connection to ${net.adapter.displayName} lost; reconnecting… Messages you send meanwhile are delivered after the reconnect or bounced.`
          : event.state === "online" && previous === "degraded"
            ? `Reconnected to ${net.adapter.displayName}.`
            : undefined;
      if (note) {
        for (const state of net.rooms.list(user)) {
          for (const to of state.resources) {
            net.send(xml("message", { type: "groupchat", from: state.jid, to, id: randomId() }, xml("body", {}, note)));
          }
        }
      }
      return;
    }
  }
}

async function onMessage(net: Network, user: string, event: Extract<LegacyEvent, { type: "message" }>): Promise<void> {
  const routesOut = routes(net, user, event.chat, event.from);
  if (routesOut.length === 0) return;
  // A replay of what the user already got (a server's join history, a backfill) is not shown twice.
  if (event.history && event.id && (await net.store.idmap.xmppFor(scopeOf(user, net.name, event.chat), event.id))) return;
  const id = randomId();
  if (event.id) await net.store.idmap.link(scopeOf(user, net.name, event.chat), event.id, [id]);
  // The user's own message from another client of theirs: they may correct or retract it from XMPP too.
  if (event.id && event.self) await markOwn(net, user, event.chat, event.id);
  let body = serializeStyling(event.text);
  if (event.action) body = `/me ${body}`;
  // Notices (IRC NOTICE, Matrix m.notice) are marked in the text: no XEP carries the distinction.
  else if (event.notice) body = `[notice] ${body}`;
  const replyTo = event.replyTo ? await net.store.idmap.xmppFor(scopeOf(user, net.name, event.chat), event.replyTo) : undefined;
  const attachments = event.attachments ?? [];
  if (attachments.length > 0 && body === "") body = attachments.map((a) => a.url).join("\n");
  metrics.messages.inc({ network: net.name, direction: "in" });
  // XEP-0203 only for messages that are really late (backlog, replays): IRCv3 stamps every live
  // line, and a delay on each would make clients mark live chat as old.
  const delayed = event.at !== undefined && (event.history === true || Date.now() - event.at.getTime() > 10_000);
  // Rooms, and 1:1 chats when history.directMessages is on (core/history/direct.ts): a 1:1
  // archive lives at the contact's JID, and the user's own messages from another client of
  // theirs (`self`) are theirs there, as the ones they send through the gateway.
  const archiveJid = archiveJidOf(net, event.chat);
  if (archiveJid !== undefined) {
    const sender =
      event.chat.kind === "room"
        ? { from: event.from.nick, ...(event.from.contact !== undefined ? { fromJid: net.jidOf({ kind: "contact", contact: event.from.contact }) } : {}) }
        : event.self === true
          ? { from: user, fromJid: user }
          : { from: event.from.nick, fromJid: archiveJid };
    // Not awaited: the archive writes a turn's appends in one batch (core/history/archive.ts) and
    // answers any later read only after writing them; waiting here would hold the user's next
    // event behind each commit, so batches would never form.
    void archiveCall(net, () =>
      net.archive?.append({
        archiveId: id,
        user,
        network: net.name,
        room: archiveJid,
        ...sender,
        at: event.at ?? new Date(),
        body,
        ...(event.id !== undefined ? { legacyId: event.id } : {}),
      }),
    );
  }
  for (const r of routesOut) {
    const children: (Element | undefined)[] = [
      xml("body", {}, body),
      replyTo ? xml("reply", { xmlns: NS.reply, id: replyTo }) : undefined,
      ...attachments.map((a) => xml("x", { xmlns: NS.oob }, xml("url", {}, a.url), a.name ? xml("desc", {}, a.name) : undefined)),
      // XEP-0203: network-stamped times (IRCv3 server-time, backlog) keep their original moment.
      delayed ? xml("delay", { xmlns: NS.delay, stamp: event.at!.toISOString(), from: r.from.split("/")[0] }) : undefined,
      // XEP-0359 §4: the archiving entity's id (the room's, or the contact JID's 1:1 archive).
      r.type === "groupchat" || archiveJid !== undefined ? xml("stanza-id", { xmlns: NS.sid, id, by: archiveJid ?? r.from.split("/")[0] }) : undefined,
      xml("markable", { xmlns: NS.markers }),
      r.occupantId?.(),
    ];
    net.send(xml("message", { type: r.type, from: r.from, to: r.to, id }, ...children));
  }
}

export function contactPresence(net: Network, user: string, contact: string, show: Show, status?: string, name?: string): Element {
  const from = net.jidOf({ kind: "contact", contact });
  if (show === "offline") return xml("presence", { from, to: user, type: "unavailable" }, status ? xml("status", {}, status) : undefined);
  return xml(
    "presence",
    { from, to: user },
    show !== "available" ? xml("show", {}, show) : undefined,
    status ? xml("status", {}, status) : undefined,
    name ? xml("nick", { xmlns: NS.nick }, name) : undefined,
  );
}

/** The archive must never cost a live message: a failed write is logged and the message still goes out. */
export async function archiveCall(net: Network, call: () => Promise<void> | undefined): Promise<void> {
  try {
    await call();
  } catch (err) {
    net.log.warn({ err }, "archive write failed");
  }
}
