/**
 * MUC state of gateway rooms (XEP-0045), per user: which of the user's
 * resources joined, the occupant list, the subject. The network has one
 * membership per user (one IRC JOIN, whatever the number of XMPP clients);
 * each joined resource gets the room's traffic and its own join replay.
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { asEstuaryError, fail, type EstuaryError } from "./errors.ts";
import type { Affiliation, LegacyEvent, Occupant, Role, RoomId, RoomSnapshot, Show } from "./model.ts";
import type { Network } from "./network.ts";
import { errorElement } from "./stanzas/error.ts";
import { mucJoinError, occupantId, occupantPresence, type RoomInfoFields } from "./stanzas/muc.ts";
import { resourceSafe } from "./stanzas/xml-safe.ts";
import { historyMessage, type MucHistoryRequest } from "./history/mam.ts";
import { serializeStyling } from "./format/xep0393.ts";
import { randomId, scopeOf } from "./ids.ts";

export interface RoomState {
  room: RoomId;
  /** Bare room JID. */
  jid: string;
  nick: string;
  self: { role: Role; affiliation: Affiliation };
  /** The user's availability in the room, as their last presence to it said (XEP-0045 §7.7). */
  selfShow?: { show: Show; status?: string };
  resources: Set<string>;
  occupants: Map<string, Occupant>;
  subject?: { text: string; by?: string };
}

type RoomEvent = Extract<LegacyEvent, { room: RoomId }>;

/**
 * The error kinds have no "wrong or missing password" (RFC 6120 `not-authorized`),
 * which XEP-0045 §7.2.6 needs: an adapter's joinRoom throws this `forbidden`
 * error, marked by its cause, so the join is answered with `<not-authorized/>`.
 */
const ROOM_PASSWORD = "room-password-required";

export function roomPasswordRequired(text: string): EstuaryError {
  return fail("forbidden", text, { cause: ROOM_PASSWORD });
}

function isRoomPasswordError(e: EstuaryError): boolean {
  return e.kind === "forbidden" && e.cause === ROOM_PASSWORD;
}

export class RoomRegistry {
  private readonly byUser = new Map<string, Map<RoomId, RoomState>>();
  private readonly pending = new Map<string, { resources: Map<string, string>; history: Map<string, MucHistoryRequest>; promise: Promise<void> }>();
  private readonly net: () => Network;

  constructor(net: () => Network) {
    this.net = net;
  }

  get(user: string, room: RoomId): RoomState | undefined {
    return this.byUser.get(user)?.get(room);
  }

  list(user: string): RoomState[] {
    return [...(this.byUser.get(user)?.values() ?? [])];
  }

  /**
   * The muc#roominfo fields of the user's view of a room (XEP-0045 §6.4), for
   * its disco#info (roomInfoForm): the occupants counting the user, the
   * subject. Nothing when the user is not in the room (the network tells a
   * room's state to its members only).
   */
  roomInfo(user: string, room: RoomId): RoomInfoFields {
    const state = this.get(user, room);
    if (!state) return {};
    const occupants = state.occupants.size + (state.occupants.has(state.nick) ? 0 : 1);
    return { occupants, ...(state.subject?.text ? { subject: state.subject.text } : {}) };
  }

  /** The join of this room in progress, if any: events for the room wait for it rather than be lost. */
  joining(user: string, room: RoomId): Promise<void> | undefined {
    return this.pending.get(`${user}\n${room}`)?.promise;
  }

  /** True when this resource is joined to the room. */
  isJoined(user: string, room: RoomId, full: string): boolean {
    return this.get(user, room)?.resources.has(full) ?? false;
  }

  /** A resource asks to join `room` as `nick` (XEP-0045 §7.2). Errors are sent as presence errors. */
  /** `presence`: the show/status the resource sent (a presence update when already joined: IRC AWAY). */
  /**
   * `rejoin`: the presence carried `<x xmlns='http://jabber.org/protocol/muc'/>`.
   * From a resource already joined it is a client that lost track of the room
   * (e.g. after a reconnect the server did not see): it gets the room's whole
   * state again, as a fresh join would (occupants, self-presence, history,
   * subject), without a second network join. Without it, it is a presence update.
   */
  async join(
    user: string,
    full: string,
    room: RoomId,
    nick: string,
    password?: string,
    presence?: { show: Show; status?: string },
    history: MucHistoryRequest = {},
    rejoin = false,
  ): Promise<void> {
    const net = this.net();
    const existing = this.get(user, room);
    if (existing) {
      if (existing.resources.has(full)) {
        if (nick !== existing.nick) await this.changeNick(user, full, existing, nick);
        else if (rejoin) {
          // A rejoin carries the client's current availability too (XEP-0045 §7.2.3).
          if (presence) existing.selfShow = presence;
          await this.replay(user, existing, full, [], history);
        }
        else if (presence) {
          await net.sessions.peek(user)?.setPresence?.(presence.show, presence.status).catch(() => {});
          // XEP-0045 §7.7: the changed availability goes to every occupant, the sender included
          // (clients show their own status in the room from this reflection).
          existing.selfShow = presence;
          for (const to of existing.resources) net.send(this.selfPresence(existing, to, [110]));
        }
        return;
      }
      existing.resources.add(full);
      // The occupant's availability is the latest presence any of its resources sent (XEP-0045 §7.7).
      const changed = presence !== undefined && (presence.show !== (existing.selfShow?.show ?? "available") || presence.status !== existing.selfShow?.status);
      if (presence) existing.selfShow = presence;
      await this.replay(user, existing, full, nick !== existing.nick ? [210] : [], history);
      if (changed) for (const to of existing.resources) if (to !== full) net.send(this.selfPresence(existing, to, [110]));
      return;
    }
    const key = `${user}\n${room}`;
    const inflight = this.pending.get(key);
    if (inflight) {
      inflight.resources.set(full, nick);
      inflight.history.set(full, history);
      return inflight.promise;
    }
    const resources = new Map([[full, nick]]);
    const histories = new Map([[full, history]]);
    const promise = this.doJoin(user, room, nick, password, resources, histories, presence).finally(() => this.pending.delete(key));
    this.pending.set(key, { resources, history: histories, promise });
    return promise;
  }

  private async doJoin(
    user: string,
    room: RoomId,
    nick: string,
    password: string | undefined,
    resources: Map<string, string>,
    histories: Map<string, MucHistoryRequest>,
    presence?: { show: Show; status?: string },
  ): Promise<void> {
    const net = this.net();
    const roomJid = net.jidOf({ kind: "room", room });
    let snapshot: RoomSnapshot;
    try {
      if (this.list(user).length >= net.limits.maxRoomsPerUser) {
        throw fail("not-allowed", `You are in ${net.limits.maxRoomsPerUser} rooms already, the most this gateway allows`);
      }
      const session = await net.sessions.get(user);
      if (!session.joinRoom) throw fail("unsupported", `${net.adapter.displayName} has no rooms`);
      snapshot = await session.joinRoom(room, nick, password === undefined ? {} : { password });
    } catch (err) {
      const e = asEstuaryError(err);
      if (e.kind === "internal") net.log.error({ err }, "join failed");
      for (const [full, n] of resources) {
        // XEP-0045 §7.2.7ff: the error comes from the room/nick the user tried.
        net.send(
          xml(
            "presence",
            { from: `${roomJid}/${n}`, to: full, type: "error" },
            xml("x", { xmlns: "http://jabber.org/protocol/muc" }),
            mucJoinError(e, isRoomPasswordError(e), roomJid),
          ),
        );
      }
      return;
    }
    let rooms = this.byUser.get(user);
    if (!rooms) this.byUser.set(user, (rooms = new Map()));
    const state: RoomState = {
      room,
      jid: roomJid,
      nick: resourceSafe(snapshot.nick),
      self: snapshot.self,
      resources: new Set(resources.keys()),
      occupants: new Map(snapshot.occupants.map((o) => [resourceSafe(o.nick), { ...o, nick: resourceSafe(o.nick) }])),
      subject: snapshot.subject ? { text: snapshot.subject.text, ...(snapshot.subject.by !== undefined ? { by: resourceSafe(snapshot.subject.by) } : {}) } : undefined,
      // XEP-0045 §7.2.3: the room reflects the occupant's presence as sent, so a join with
      // <show>away</show> and a status gets its self-presence with them (clients show it).
      ...(presence ? { selfShow: presence } : {}),
    };
    rooms.set(room, state);
    await net.store.rooms.add(user, net.name, room, state.nick).catch((err: unknown) => net.log.warn({ err }, "could not persist room"));
    // What the network replayed on join, then what it keeps (Matrix): into the archive, so the
    // join history below shows it once, stamped, before the subject.
    if (snapshot.history?.length) await archiveFromNetwork(net, user, state, snapshot.history);
    await backfill(net, user, state);
    const unarchived = net.archive ? [] : (snapshot.history ?? []);
    for (const [full, n] of resources) await this.replay(user, state, full, n !== state.nick ? [210] : [], histories.get(full) ?? {}, unarchived);
  }

  /** Occupants first, then self-presence (110), then the subject: the order clients rely on (XEP-0045 §7.2.3–7.2.15). */
  private async replay(
    user: string,
    state: RoomState,
    full: string,
    extraStatuses: number[],
    history: MucHistoryRequest,
    replayed: Extract<LegacyEvent, { type: "message" }>[] = [],
  ): Promise<void> {
    const net = this.net();
    for (const o of state.occupants.values()) {
      if (o.nick === state.nick) continue;
      net.send(this.presenceOf(state, o, full));
    }
    net.send(this.selfPresence(state, full, [100, 110, ...extraStatuses]));
    // XEP-0045 §7.2.14: the history the client asked for, after the presences and before the subject.
    if (net.archive) {
      try {
        const past = await net.archive.history({ user, room: state.jid, ...history });
        for (const m of past) net.send(historyMessage(m, { to: full, roomJid: state.jid }));
      } catch (err) {
        net.log.warn({ err }, "join history unavailable");
      }
    }
    // Without an archive, the network's own replay is passed on as it came, stamped as history.
    for (const m of replayed) {
      net.send(
        xml(
          "message",
          { type: "groupchat", from: `${state.jid}/${m.from.nick}`, to: full, id: randomId() },
          xml("body", {}, (m.action ? "/me " : "") + serializeStyling(m.text)),
          m.at ? xml("delay", { xmlns: "urn:xmpp:delay", stamp: m.at.toISOString(), from: state.jid }) : undefined,
        ),
      );
    }
    const subject = state.subject;
    net.send(
      xml(
        "message",
        { type: "groupchat", from: subject?.by ? `${state.jid}/${subject.by}` : state.jid, to: full, id: randomId() },
        xml("subject", {}, subject?.text ?? ""),
      ),
    );
  }

  /** A resource leaves (unavailable presence, or a delivery error: no ghosts, XEP-0045 §7.14). */
  async leave(user: string, full: string, room: RoomId, status?: string, echo = true): Promise<void> {
    const net = this.net();
    const state = this.get(user, room);
    if (!state || !state.resources.delete(full)) return;
    if (echo) {
      net.send(
        occupantPresence({
          from: `${state.jid}/${state.nick}`,
          to: full,
          ...state.self,
          unavailable: true,
          statuses: [110],
          status,
          occupantId: selfOccupantId(state, full),
        }),
      );
    }
    if (state.resources.size > 0) return;
    this.byUser.get(user)?.delete(room);
    await net.store.rooms.remove(user, net.name, room).catch(() => {});
    const session = net.sessions.peek(user);
    try {
      await session?.leaveRoom?.(room, status);
    } catch (err) {
      net.log.warn({ err }, "leave failed");
    }
  }

  /**
   * Pings every joined resource from its room (XEP-0199, as XEP-0410 does the
   * other way); a resource that answers with an error or not at all has left.
   * Run after the component stream came back: the XMPP server may have restarted.
   */
  async verifyResources(timeoutMs = 15_000): Promise<void> {
    const net = this.net();
    const checks: Promise<void>[] = [];
    for (const [user, rooms] of this.byUser) {
      for (const state of rooms.values()) {
        for (const full of state.resources) {
          const ping = xml("iq", { type: "get", id: randomId(), from: `${state.jid}/${state.nick}`, to: full }, xml("ping", { xmlns: "urn:xmpp:ping" }));
          checks.push(
            net.iq.request(ping, timeoutMs).then(
              () => undefined,
              () => this.leave(user, full, state.room, undefined, false),
            ),
          );
        }
      }
    }
    await Promise.all(checks);
  }

  /** Drops every room of a user without telling the network (its session is closing). */
  forgetUser(user: string): void {
    this.byUser.delete(user);
  }

  /** The network removed the user from every room at once (session ended): tell each resource (status 333). */
  closeAll(user: string, reason: string): void {
    for (const state of this.list(user)) {
      this.apply(user, { type: "room-closed", room: state.room, how: "error", reason });
    }
  }

  private async changeNick(user: string, full: string, state: RoomState, nick: string): Promise<void> {
    const net = this.net();
    const session = net.sessions.peek(user);
    try {
      if (!session?.changeNick) throw fail("unsupported", "This network cannot change nicks in a room");
      const given = await session.changeNick(state.room, nick);
      this.apply(user, { type: "nick", room: state.room, old: state.nick, new: given });
    } catch (err) {
      const e = asEstuaryError(err);
      net.send(xml("presence", { from: `${state.jid}/${nick}`, to: full, type: "error" }, errorElement(e.kind, e.message)));
    }
  }

  /** Applies a network event to the room state and tells every joined resource. */
  apply(user: string, event: RoomEvent): void {
    const state = this.get(user, event.room);
    if (!state) return;
    const net = this.net();
    const each = (build: (full: string) => Element): void => {
      for (const full of state.resources) net.send(build(full));
    };
    switch (event.type) {
      case "join":
      case "occupant": {
        if (event.occupant.nick === state.nick) {
          state.self = { role: event.occupant.role, affiliation: event.occupant.affiliation };
          each((full) => this.selfPresence(state, full, [110]));
          return;
        }
        state.occupants.set(event.occupant.nick, event.occupant);
        each((full) => this.presenceOf(state, event.occupant, full));
        return;
      }
      case "part": {
        const o = state.occupants.get(event.nick);
        if (!o) return;
        state.occupants.delete(event.nick);
        const statuses = event.how === "kick" ? [307] : event.how === "ban" ? [301] : [];
        each((full) =>
          occupantPresence({
            from: `${state.jid}/${o.nick}`,
            to: full,
            role: "none",
            affiliation: event.how === "ban" ? "outcast" : o.affiliation,
            jid: o.contact ? net.jidOf({ kind: "contact", contact: o.contact }) : undefined,
            unavailable: true,
            statuses,
            reason: event.how === "kick" || event.how === "ban" ? event.reason : undefined,
            status: event.how === "kick" || event.how === "ban" ? undefined : event.reason,
            actor: event.by,
            occupantId: occupantIdOf(net, state, o),
          }),
        );
        return;
      }
      case "nick": {
        const isSelf = event.old === state.nick;
        const o: Occupant | undefined = isSelf ? { nick: state.nick, ...state.self } : state.occupants.get(event.old);
        if (!o) return;
        const renamed = { ...o, nick: event.new, ...(event.contact !== undefined ? { contact: event.contact } : {}) };
        const self = isSelf ? [110] : [];
        // XEP-0045 §7.6: unavailable with 303 and the new nick, then available under the new nick.
        each((full) =>
          occupantPresence({
            from: `${state.jid}/${event.old}`,
            to: full,
            role: o.role,
            affiliation: o.affiliation,
            unavailable: true,
            newNick: event.new,
            statuses: [303, ...self],
            // XEP-0421: the id stays across the change, which is how clients follow the person.
            occupantId: isSelf ? selfOccupantId(state, full) : occupantIdOf(net, state, o),
          }),
        );
        if (isSelf) {
          state.nick = event.new;
          each((full) => this.selfPresence(state, full, [110]));
        } else {
          state.occupants.delete(event.old);
          state.occupants.set(event.new, renamed);
          each((full) => this.presenceOf(state, renamed, full));
        }
        return;
      }
      case "topic": {
        state.subject = { text: event.text, by: event.by };
        each((full) =>
          xml(
            "message",
            { type: "groupchat", from: event.by ? `${state.jid}/${event.by}` : state.jid, to: full, id: randomId() },
            xml("subject", {}, event.text),
          ),
        );
        return;
      }
      case "room-closed": {
        const statuses = event.how === "kick" ? [307] : event.how === "ban" ? [301] : [333];
        each((full) =>
          occupantPresence({
            from: `${state.jid}/${state.nick}`,
            to: full,
            role: "none",
            affiliation: event.how === "ban" ? "outcast" : state.self.affiliation,
            unavailable: true,
            statuses: [110, ...statuses],
            reason: event.reason,
            actor: event.by,
            occupantId: selfOccupantId(state, full),
          }),
        );
        this.byUser.get(user)?.delete(event.room);
        void net.store.rooms.remove(user, net.name, event.room).catch(() => {});
        return;
      }
    }
  }

  presenceOf(state: RoomState, o: Occupant, to: string): Element {
    const net = this.net();
    return occupantPresence({
      from: `${state.jid}/${o.nick}`,
      to,
      role: o.role,
      affiliation: o.affiliation,
      show: o.show,
      status: o.status,
      jid: o.contact ? net.jidOf({ kind: "contact", contact: o.contact }) : undefined,
      occupantId: occupantIdOf(net, state, o),
    });
  }

  private selfPresence(state: RoomState, to: string, statuses: number[]): Element {
    return occupantPresence({
      from: `${state.jid}/${state.nick}`,
      to,
      role: state.self.role,
      affiliation: state.self.affiliation,
      show: state.selfShow?.show,
      status: state.selfShow?.status,
      jid: to,
      statuses,
      occupantId: selfOccupantId(state, to),
    });
  }
}

/** XEP-0421 id of an occupant the network knows (its contact JID when it has one). */
function occupantIdOf(net: Network, state: RoomState, o: Occupant): string {
  return occupantId(state.jid, { nick: o.nick, ...(o.contact !== undefined ? { jid: net.jidOf({ kind: "contact", contact: o.contact }) } : {}) });
}

/** XEP-0421 id of the user themselves, as their own messages are archived (from their bare JID). */
function selfOccupantId(state: RoomState, to: string): string {
  return occupantId(state.jid, { jid: to.split("/")[0] ?? to, nick: state.nick });
}


/** Most network messages archived per join from the network's own history (Matrix /messages). */
const BACKFILL_LIMIT = 50;

/**
 * Fills the user's archive from the network's history (if it has one), so
 * join history and MAM cover what was said while the gateway was away.
 * Messages already seen (their network id is in the id map) are skipped.
 */
async function backfill(net: Network, user: string, state: RoomState): Promise<void> {
  const session = net.sessions.peek(user);
  if (!net.archive || !session?.history) return;
  try {
    await archiveFromNetwork(net, user, state, await session.history(state.room, { limit: BACKFILL_LIMIT }));
  } catch (err) {
    net.log.warn({ err }, "backfill from the network failed");
  }
}

/** Archives network history the user has not seen yet (its network id is not in the id map). */
async function archiveFromNetwork(net: Network, user: string, state: RoomState, messages: Extract<LegacyEvent, { type: "message" }>[]): Promise<void> {
  if (!net.archive) return;
  try {
    const scope = scopeOf(user, net.name, { kind: "room", room: state.room });
    for (const m of messages) {
      if (!m.id || !m.at || (await net.store.idmap.xmppFor(scope, m.id))) continue;
      const id = randomId();
      await net.store.idmap.link(scope, m.id, [id]);
      let body = serializeStyling(m.text);
      if (m.action) body = `/me ${body}`;
      await net.archive.append({
        archiveId: id,
        user,
        network: net.name,
        room: state.jid,
        from: m.from.nick,
        ...(m.from.contact !== undefined ? { fromJid: net.jidOf({ kind: "contact", contact: m.from.contact }) } : {}),
        at: m.at,
        body,
        legacyId: m.id,
      });
    }
  } catch (err) {
    net.log.warn({ err }, "backfill from the network failed");
  }
}