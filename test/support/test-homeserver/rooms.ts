/**
 * Rooms: the event graph (a single linear timeline per room is enough for one
 * server), current state, the minimal authorisation rules (membership, power
 * levels, join rules) and ephemeral data (typing, receipts).
 * Spec: Client-Server API "Rooms", "Room membership", "m.room.power_levels",
 * "Redactions", "Typing Notifications", "Receipts".
 */
import { forbidden, MatrixHttpError, notFound, type Json } from "./http.ts";
import { pruneContent, stateKeyOf, type StoredEvent } from "./events.ts";
import { randomId, type Accounts, type Stream } from "./store.ts";

export interface Receipt {
  pos: number;
  eventId: string;
  type: string;
  userId: string;
  ts: number;
  threadId?: string;
}

export class Room {
  readonly id: string;
  readonly events: StoredEvent[] = [];
  readonly state = new Map<string, StoredEvent>();
  readonly typing = new Map<string, NodeJS.Timeout>();
  typingPos = 0;
  readonly receipts: Receipt[] = [];

  constructor(id: string) {
    this.id = id;
  }

  getState(type: string, stateKey = ""): StoredEvent | undefined {
    return this.state.get(stateKeyOf(type, stateKey));
  }

  membership(userId: string): string | undefined {
    return this.getState("m.room.member", userId)?.content.membership as string | undefined;
  }

  /** Membership of `userId` as of stream position `pos` (inclusive). */
  membershipAt(userId: string, pos: number): string | undefined {
    let m: string | undefined;
    for (const ev of this.events) {
      if (ev.pos > pos) break;
      if (ev.type === "m.room.member" && ev.state_key === userId) m = ev.content.membership as string;
    }
    return m;
  }

  /** State before `events[index]` (the state a timeline starting there is based on). */
  stateBefore(index: number): Map<string, StoredEvent> {
    const state = new Map<string, StoredEvent>();
    for (const ev of this.events.slice(0, index)) {
      if (ev.state_key !== undefined) state.set(stateKeyOf(ev.type, ev.state_key), ev);
    }
    return state;
  }

  members(membership: string): string[] {
    return [...this.state.values()]
      .filter((ev) => ev.type === "m.room.member" && ev.content.membership === membership)
      .map((ev) => ev.state_key!);
  }

  powerLevel(userId: string): number {
    const pl = this.getState("m.room.power_levels")?.content;
    if (!pl) return 0;
    const users = (pl.users ?? {}) as Record<string, number>;
    return users[userId] ?? (pl.users_default as number | undefined) ?? 0;
  }

  /** Level needed for an action (defaults from the spec's m.room.power_levels). */
  requiredLevel(action: "ban" | "kick" | "redact" | "invite" | { event: string; state: boolean }): number {
    const pl = this.getState("m.room.power_levels")?.content ?? {};
    if (typeof action === "string") return (pl[action] as number | undefined) ?? (action === "invite" ? 0 : 50);
    const events = (pl.events ?? {}) as Record<string, number>;
    return events[action.event] ?? ((action.state ? pl.state_default : pl.events_default) as number | undefined) ?? (action.state ? 50 : 0);
  }
}

export interface CreateRoomOptions {
  name?: string;
  topic?: string;
  preset?: "private_chat" | "public_chat" | "trusted_private_chat";
  visibility?: "public" | "private";
  invite?: string[];
  is_direct?: boolean;
  room_alias_name?: string;
  room_version?: string;
  initial_state?: { type: string; state_key?: string; content: Json }[];
  power_level_content_override?: Json;
  creation_content?: Json;
}

type Listener = (ev: StoredEvent) => void;

export class Rooms {
  readonly rooms = new Map<string, Room>();
  readonly aliases = new Map<string, string>();
  private readonly txns = new Map<string, string>();
  private readonly listeners = new Set<Listener>();
  private readonly serverName: string;
  private readonly stream: Stream;
  private readonly accounts: Accounts;

  constructor(serverName: string, stream: Stream, accounts: Accounts) {
    this.serverName = serverName;
    this.stream = stream;
    this.accounts = accounts;
  }

  get(roomId: string): Room {
    const room = this.rooms.get(roomId);
    if (!room) throw notFound(`unknown room ${roomId}`);
    return room;
  }

  /** Called for every event appended to any room (waitForEvent). */
  onEvent(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  resolveRoom(roomIdOrAlias: string): Room {
    if (roomIdOrAlias.startsWith("#")) {
      const roomId = this.aliases.get(roomIdOrAlias);
      if (!roomId) throw notFound(`room alias ${roomIdOrAlias} not found`);
      return this.get(roomId);
    }
    return this.get(roomIdOrAlias);
  }

  /** Appends without any authorisation check: callers check first. */
  private append(room: Room, ev: Omit<StoredEvent, "event_id" | "room_id" | "pos" | "origin_server_ts">): StoredEvent {
    const stored: StoredEvent = { ...ev, event_id: `$${randomId(18)}`, room_id: room.id, origin_server_ts: Date.now(), pos: this.stream.advance() };
    if (stored.state_key !== undefined) {
      const key = stateKeyOf(stored.type, stored.state_key);
      const prev = room.state.get(key);
      if (prev) stored.prevContent = prev.content;
      room.state.set(key, stored);
    }
    room.events.push(stored);
    for (const listener of this.listeners) listener(stored);
    return stored;
  }

  private memberContent(userId: string, membership: string, extra: Json = {}): Json {
    const account = this.accounts.users.get(userId);
    const content: Json = { membership, ...extra };
    if (membership === "join" || membership === "invite") {
      if (account?.displayname !== undefined) content.displayname = account.displayname;
      if (account?.avatarUrl !== undefined) content.avatar_url = account.avatarUrl;
    }
    return content;
  }

  /** POST /createRoom, following the spec's order of initial events. */
  createRoom(creator: string, opts: CreateRoomOptions = {}): string {
    this.accounts.get(creator);
    let alias: string | undefined;
    if (opts.room_alias_name !== undefined) {
      alias = `#${opts.room_alias_name}:${this.serverName}`;
      if (this.aliases.has(alias)) throw new MatrixHttpError(400, "M_ROOM_IN_USE", `${alias} is taken`);
    }
    const room = new Room(`!${randomId(12)}:${this.serverName}`);
    this.rooms.set(room.id, room);
    const version = opts.room_version ?? "10";
    const state = (type: string, content: Json, stateKey = "") => this.append(room, { type, sender: creator, state_key: stateKey, content });

    // Room v11 dropped `creator` from m.room.create (the sender is the creator).
    state("m.room.create", { ...(version === "11" ? {} : { creator }), room_version: version, ...opts.creation_content });
    state("m.room.member", this.memberContent(creator, "join"), creator);

    const preset = opts.preset ?? (opts.visibility === "public" ? "public_chat" : "private_chat");
    const users: Record<string, number> = { [creator]: 100 };
    if (preset === "trusted_private_chat") for (const u of opts.invite ?? []) users[u] = 100;
    state("m.room.power_levels", {
      users,
      users_default: 0,
      events: {
        "m.room.name": 50,
        "m.room.power_levels": 100,
        "m.room.history_visibility": 100,
        "m.room.canonical_alias": 50,
        "m.room.avatar": 50,
        "m.room.tombstone": 100,
        "m.room.server_acl": 100,
        "m.room.encryption": 100,
      },
      events_default: 0,
      state_default: 50,
      ban: 50,
      kick: 50,
      redact: 50,
      invite: 0,
      ...opts.power_level_content_override,
    });
    if (alias) {
      this.aliases.set(alias, room.id);
      state("m.room.canonical_alias", { alias });
    }
    state("m.room.join_rules", { join_rule: preset === "public_chat" ? "public" : "invite" });
    state("m.room.history_visibility", { history_visibility: "shared" });
    state("m.room.guest_access", { guest_access: preset === "public_chat" ? "forbidden" : "can_join" });
    for (const ev of opts.initial_state ?? []) state(ev.type, ev.content, ev.state_key ?? "");
    if (opts.name !== undefined) state("m.room.name", { name: opts.name });
    if (opts.topic !== undefined) state("m.room.topic", { topic: opts.topic });
    for (const invitee of opts.invite ?? []) {
      this.setMembership(creator, room.id, invitee, "invite", opts.is_direct ? { is_direct: true } : {});
    }
    return room.id;
  }

  private requireJoined(room: Room, userId: string): void {
    if (room.membership(userId) !== "join") throw forbidden(`${userId} is not in room ${room.id}`);
  }

  /**
   * PUT /rooms/{roomId}/send/{eventType}/{txnId}. The transaction is keyed by
   * user, device and request path, so a retried request returns the first
   * event instead of sending a second one (spec: "Transaction identifiers").
   */
  sendEvent(sender: string, roomId: string, type: string, content: Json, txn?: { deviceId: string; txnId: string; key: string }): StoredEvent {
    const room = this.get(roomId);
    if (txn) {
      const existing = this.txns.get(`${sender}|${txn.deviceId}|${txn.key}`);
      if (existing) return room.events.find((e) => e.event_id === existing)!;
    }
    this.requireJoined(room, sender);
    if (room.powerLevel(sender) < room.requiredLevel({ event: type, state: false })) throw forbidden(`insufficient power level to send ${type}`);
    const ev = this.append(room, { type, sender, content, txn: txn && { userId: sender, deviceId: txn.deviceId, txnId: txn.txnId } });
    if (txn) this.txns.set(`${sender}|${txn.deviceId}|${txn.key}`, ev.event_id);
    return ev;
  }

  /** PUT /rooms/{roomId}/state/{eventType}/{stateKey}. */
  sendState(sender: string, roomId: string, type: string, stateKey: string, content: Json): StoredEvent {
    if (type === "m.room.member") return this.setMembership(sender, roomId, stateKey, String(content.membership ?? ""), content);
    const room = this.get(roomId);
    this.requireJoined(room, sender);
    if (room.powerLevel(sender) < room.requiredLevel({ event: type, state: true })) throw forbidden(`insufficient power level to set ${type}`);
    // A state key that is a user ID may only be set by that user (spec: "State keys").
    if (stateKey.startsWith("@") && stateKey !== sender) throw forbidden("state key belongs to another user");
    if (type === "m.room.canonical_alias" && typeof content.alias === "string" && this.aliases.get(content.alias) !== roomId) {
      throw new MatrixHttpError(400, "M_BAD_ALIAS", `${content.alias} does not point to this room`);
    }
    return this.append(room, { type, sender, state_key: stateKey, content });
  }

  /**
   * Every membership change (join, leave, invite, kick, ban, unban) with the
   * authorisation rules for it (spec: "Room membership", auth rules).
   */
  setMembership(actor: string, roomId: string, target: string, membership: string, extra: Json = {}): StoredEvent {
    const room = this.get(roomId);
    const current = room.membership(target);
    const { membership: _ignored, displayname: dn, avatar_url: av, ...rest } = extra;
    const content = this.memberContent(target, membership, rest);
    if (typeof dn === "string") content.displayname = dn;
    if (typeof av === "string") content.avatar_url = av;
    const self = actor === target;
    switch (membership) {
      case "join": {
        if (!self) throw forbidden("cannot join on behalf of another user");
        if (current === "ban") throw forbidden(`${target} is banned from ${roomId}`);
        const rule = room.getState("m.room.join_rules")?.content.join_rule;
        if (current !== "join" && current !== "invite" && rule !== "public") throw forbidden("you are not invited to this room");
        break;
      }
      case "invite":
        this.requireJoined(room, actor);
        this.accounts.get(target);
        if (current === "join" || current === "ban") throw forbidden(`${target} is ${current === "join" ? "already in the room" : "banned"}`);
        if (room.powerLevel(actor) < room.requiredLevel("invite")) throw forbidden("insufficient power level to invite");
        break;
      case "leave":
        if (self) {
          if (current !== "join" && current !== "invite") throw forbidden(`${target} is not in the room`);
        } else if (current === "ban") {
          // Unban.
          this.requireJoined(room, actor);
          if (room.powerLevel(actor) < room.requiredLevel("ban")) throw forbidden("insufficient power level to unban");
        } else {
          // Kick.
          this.requireJoined(room, actor);
          if (current !== "join" && current !== "invite") throw forbidden(`${target} is not in the room`);
          if (room.powerLevel(actor) < room.requiredLevel("kick") || room.powerLevel(actor) <= room.powerLevel(target)) {
            throw forbidden("insufficient power level to kick");
          }
        }
        break;
      case "ban":
        this.requireJoined(room, actor);
        if (room.powerLevel(actor) < room.requiredLevel("ban") || room.powerLevel(actor) <= room.powerLevel(target)) {
          throw forbidden("insufficient power level to ban");
        }
        break;
      default:
        throw new MatrixHttpError(400, "M_BAD_JSON", `unknown membership ${membership}`);
    }
    const ev = this.append(room, { type: "m.room.member", sender: actor, state_key: target, content });
    if (membership !== "join") this.stopTyping(room, target);
    return ev;
  }

  /** PUT /rooms/{roomId}/redact/{eventId}/{txnId}: own events, or with the redact power level. */
  redact(sender: string, roomId: string, eventId: string, reason?: string, txn?: { deviceId: string; txnId: string; key: string }): StoredEvent {
    const room = this.get(roomId);
    if (txn) {
      const existing = this.txns.get(`${sender}|${txn.deviceId}|${txn.key}`);
      if (existing) return room.events.find((e) => e.event_id === existing)!;
    }
    this.requireJoined(room, sender);
    const target = room.events.find((e) => e.event_id === eventId);
    if (!target) throw notFound(`event ${eventId} not found`);
    if (target.sender !== sender && room.powerLevel(sender) < room.requiredLevel("redact")) throw forbidden("insufficient power level to redact");
    const content: Json = { redacts: eventId };
    if (reason !== undefined) content.reason = reason;
    const ev = this.append(room, { type: "m.room.redaction", sender, redacts: eventId, content, txn: txn && { userId: sender, deviceId: txn.deviceId, txnId: txn.txnId } });
    if (txn) this.txns.set(`${sender}|${txn.deviceId}|${txn.key}`, ev.event_id);
    target.content = pruneContent(target.type, target.content);
    target.redactedBecause = ev;
    return ev;
  }

  /** PUT /rooms/{roomId}/typing/{userId}: typing expires after `timeoutMs`. */
  setTyping(userId: string, roomId: string, typing: boolean, timeoutMs = 30_000): void {
    const room = this.get(roomId);
    this.requireJoined(room, userId);
    clearTimeout(room.typing.get(userId));
    if (typing) {
      const timer = setTimeout(() => this.stopTyping(room, userId), timeoutMs);
      timer.unref();
      room.typing.set(userId, timer);
      room.typingPos = this.stream.advance();
    } else {
      this.stopTyping(room, userId);
    }
  }

  private stopTyping(room: Room, userId: string): void {
    const timer = room.typing.get(userId);
    if (timer === undefined) return;
    clearTimeout(timer);
    room.typing.delete(userId);
    room.typingPos = this.stream.advance();
  }

  /** POST /rooms/{roomId}/receipt/{receiptType}/{eventId}. */
  addReceipt(userId: string, roomId: string, type: string, eventId: string, threadId?: string): void {
    const room = this.get(roomId);
    this.requireJoined(room, userId);
    if (!room.events.some((e) => e.event_id === eventId)) throw notFound(`event ${eventId} not found`);
    room.receipts.push({ pos: this.stream.advance(), eventId, type, userId, ts: Date.now(), threadId });
  }

  /** PUT /profile/{userId}/displayname: also updates the member event in every joined room, as Synapse does. */
  setProfile(userId: string, field: "displayname" | "avatar_url", value: string | undefined): void {
    const account = this.accounts.get(userId);
    if (field === "displayname") account.displayname = value;
    else account.avatarUrl = value;
    for (const room of this.rooms.values()) {
      if (room.membership(userId) === "join") this.append(room, { type: "m.room.member", sender: userId, state_key: userId, content: this.memberContent(userId, "join") });
    }
  }

  stopTimers(): void {
    for (const room of this.rooms.values()) for (const timer of room.typing.values()) clearTimeout(timer);
  }
}
