/**
 * One XMPP user's Matrix session: its own /sync loop (spec: "Syncing") on
 * matrix-js-sdk's HTTP layer, so that the sync token is saved in the user's
 * store only after a response's events were emitted: a restart resumes from
 * it and replays nothing (exactly-once up to a crash between the two). The
 * first sync ever only learns state: no history flood at first login.
 */
import type { MatrixClient } from "matrix-js-sdk";
import { MatrixError } from "matrix-js-sdk";
import type { AdapterSession, SessionContext } from "../../core/adapter.ts";
import { fail, isEstuaryError } from "../../core/errors.ts";
import { plain, toPlain } from "../../core/format/model.ts";
import type { ChatRef, ChatState, LegacyEvent, MessageId, OutgoingMessage, RoomId, RoomInfo, RoomSnapshot, SendResult } from "../../core/model.ts";
import { api, enc, KeyedQueues, type ReqOpts, makeClient, Method, sleep, toEstuaryError, withRetry } from "./api.ts";
import { editContent, incoming, MEDIA_MSGTYPES, msgtypeFor, outgoingContent, relatesTo, type Content } from "./content.ts";
import type { MatrixOptions } from "./options.ts";
import type { MatrixCredentials } from "./registration.ts";
import { ReactionLog } from "./reactions.ts";
import { MatrixRoom, roleOf, type StateEvent } from "./rooms.ts";

interface RoomEventJson extends StateEvent {
  event_id: string;
  origin_server_ts?: number;
  redacts?: string;
  unsigned?: { transaction_id?: string; prev_content?: Record<string, unknown> };
}

interface SyncRoom {
  state?: { events?: RoomEventJson[] };
  timeline?: { events?: RoomEventJson[] };
  ephemeral?: { events?: { type: string; content: Record<string, unknown> }[] };
  /** Stripped state (spec "Stripped state"): no event_id, no timestamps. */
  invite_state?: { events?: StateEvent[] };
}

interface SyncResponse {
  next_batch: string;
  account_data?: { events?: { type: string; content: Record<string, unknown> }[] };
  rooms?: { join?: Record<string, SyncRoom>; invite?: Record<string, SyncRoom>; leave?: Record<string, SyncRoom> };
}

export const ENCRYPTED_NOTICE = "This room is end-to-end encrypted; Estuary cannot read it yet";
const SYNC_TOKEN = "syncToken";
const BOUND = 5000;

/** A Set that forgets its oldest entries beyond a bound (echo suppression needs only recent ids). */
class RecentSet {
  private readonly items = new Set<string>();
  add(v: string): void {
    this.items.add(v);
    if (this.items.size > BOUND) this.items.delete(this.items.values().next().value!);
  }
  has(v: string | undefined): boolean {
    return v !== undefined && this.items.has(v);
  }
}

export class MatrixSession implements AdapterSession {
  private readonly ctx: SessionContext;
  private readonly opts: MatrixOptions;
  private readonly me: string;
  private readonly client: MatrixClient;
  private readonly stop = new AbortController();
  private readonly signal: AbortSignal;
  private readonly queues: KeyedQueues;
  private readonly rooms = new Map<string, MatrixRoom>();
  /** Matrix room id → the RoomIds the core joined it as (an alias or the id itself). */
  private readonly joinedAs = new Map<string, Set<RoomId>>();
  /** m.direct, reversed: DM room id → the other person. */
  private direct = new Map<string, string>();
  private directRaw: Record<string, string[]> = {};
  private readonly typing = new Map<string, Set<string>>();
  /** Reaction event id → what it annotates (kept in the store too: removals after a restart), and per target per sender the key → reaction event id. */
  private readonly reactionLog: ReactionLog;
  private readonly reactionSets = new Map<string, Map<string, Map<string, string>>>();
  private readonly encryptedNoticed = new Set<string>();
  /** Event id → its sender, for recent messages: an edit is valid only from the original's sender. */
  private readonly authorOf = new Map<string, string>();
  private readonly ownTxns = new RecentSet();
  private readonly ownEvents = new RecentSet();
  /** Room invitations already told to the user in this session (onInvite). */
  private readonly invitesTold = new RecentSet();
  private readonly startedAt = Date.now();
  private txn = 0;
  private loop: Promise<void> | undefined;

  constructor(ctx: SessionContext, opts: MatrixOptions, creds: MatrixCredentials) {
    this.ctx = ctx;
    this.opts = opts;
    this.me = creds.userId;
    this.client = makeClient({ baseUrl: creds.homeserver, userId: creds.userId, deviceId: creds.deviceId, accessToken: creds.accessToken, log: ctx.log });
    this.signal = AbortSignal.any([ctx.signal, this.stop.signal]);
    this.queues = new KeyedQueues(opts.maxQueuePerRoom);
    this.reactionLog = new ReactionLog(ctx.store);
  }

  start(): void {
    this.loop = this.syncLoop().catch((err: unknown) => this.ctx.log.error({ err }, "matrix sync loop crashed"));
  }

  async close(reason?: string): Promise<void> {
    if (reason === "Unregistered") {
      // The user removed the gateway: end the Matrix device too (spec: POST /logout).
      await api(this.client, Method.Post, "/logout", { body: {}, timeoutMs: 5000 }).catch(() => {});
    }
    this.stop.abort();
    this.client.http.abort();
    await this.loop;
  }

  private emit(event: LegacyEvent): void {
    if (!this.signal.aborted) this.ctx.emit(event);
  }

  // ---- sync ----

  private async syncLoop(): Promise<void> {
    let since = await this.ctx.store.get<string>(SYNC_TOKEN);
    let delay = this.opts.reconnect.initialMs;
    let online = false;
    this.emit({ type: "status", state: "connecting" });
    while (!this.signal.aborted) {
      try {
        const filter = JSON.stringify({ room: { timeline: { limit: since === undefined ? 0 : this.opts.backfillLimit } } });
        const query: Record<string, string> = { filter, timeout: String(online ? this.opts.syncTimeoutMs : 0) };
        if (since !== undefined) query.since = since;
        const res = await api<SyncResponse>(this.client, Method.Get, "/sync", { query, signal: this.signal, timeoutMs: this.opts.syncTimeoutMs + 30_000 });
        await this.process(res, since === undefined);
        since = res.next_batch;
        await this.ctx.store.set(SYNC_TOKEN, since);
        if (!online) {
          online = true;
          this.emit({ type: "status", state: "online" });
        }
        delay = this.opts.reconnect.initialMs;
      } catch (err) {
        if (this.signal.aborted) return;
        if (err instanceof MatrixError && (err.errcode === "M_UNKNOWN_TOKEN" || err.errcode === "M_MISSING_TOKEN")) {
          this.emit({ type: "status", state: "error", text: "The Matrix login is no longer valid; register again" });
          return;
        }
        const e = toEstuaryError(err, "Matrix sync failed");
        this.ctx.log.warn({ err: e.message, retryInMs: delay }, "matrix sync failed");
        online = false;
        this.emit({ type: "status", state: "error", text: `${e.message}; retrying` });
        const wait = err instanceof MatrixError && err.httpStatus === 429 ? Math.max(delay, err.getRetryAfterMs() ?? 0) : delay;
        await sleep(wait, this.signal).catch(() => {});
        delay = Math.min(delay * 2, this.opts.reconnect.maxMs);
      }
    }
  }

  private async process(res: SyncResponse, initial: boolean): Promise<void> {
    for (const ev of res.account_data?.events ?? []) {
      if (ev.type === "m.direct") this.setDirect(ev.content);
    }
    for (const [roomId, r] of Object.entries(res.rooms?.join ?? {})) {
      const room = this.room(roomId);
      for (const ev of r.state?.events ?? []) room.apply(ev);
      if (initial) {
        for (const ev of r.timeline?.events ?? []) if (ev.state_key !== undefined) room.apply(ev);
        continue;
      }
      if (!room.loaded && (this.joinedAs.has(roomId) || this.direct.has(roomId))) await this.load(room).catch(() => {});
      for (const ev of r.timeline?.events ?? []) await this.onTimeline(room, ev);
      for (const ev of r.ephemeral?.events ?? []) if (ev.type === "m.typing") this.onTyping(room, ev.content);
    }
    for (const [roomId, r] of Object.entries(res.rooms?.invite ?? {})) await this.onInvite(roomId, r);
    if (!initial) {
      for (const [roomId, r] of Object.entries(res.rooms?.leave ?? {})) {
        const room = this.room(roomId);
        for (const ev of r.timeline?.events ?? []) await this.onTimeline(room, ev);
      }
    }
  }

  private room(roomId: string): MatrixRoom {
    let room = this.rooms.get(roomId);
    if (!room) this.rooms.set(roomId, (room = new MatrixRoom(roomId)));
    return room;
  }

  /** Full current state (GET /rooms/{id}/state) replaces what sync deltas built. */
  private async load(room: MatrixRoom): Promise<void> {
    const events = await withRetry(() => api<StateEvent[]>(this.client, Method.Get, `/rooms/${enc(room.id)}/state`, { signal: this.signal }), {
      windowMs: this.opts.retryWindowMs,
      signal: this.signal,
      what: "Reading the room failed",
    });
    room.clearMembers();
    room.encrypted = false;
    for (const ev of events) room.apply(ev);
    room.loaded = true;
  }

  private setDirect(content: Record<string, unknown>): void {
    const raw: Record<string, string[]> = {};
    const reversed = new Map<string, string>();
    for (const [user, ids] of Object.entries(content)) {
      if (!Array.isArray(ids)) continue;
      raw[user] = ids.filter((x): x is string => typeof x === "string");
      for (const id of raw[user]) reversed.set(id, user);
    }
    this.directRaw = raw;
    this.direct = reversed;
  }

  /** Where a Matrix room's events go: the MUC(s) it was joined as, else its DM contact, else its id. */
  private chatsOf(roomId: string): ChatRef[] {
    const as = this.joinedAs.get(roomId);
    if (as && as.size > 0) return [...as].map((room) => ({ kind: "room" as const, room }));
    const contact = this.direct.get(roomId);
    if (contact) return [{ kind: "direct", contact }];
    return [{ kind: "room", room: roomId }];
  }

  private mucsOf(roomId: string): RoomId[] {
    return [...(this.joinedAs.get(roomId) ?? [])];
  }

  private isOwnEcho(ev: RoomEventJson): boolean {
    return this.ownTxns.has(ev.unsigned?.transaction_id) || this.ownEvents.has(ev.event_id);
  }

  private async onTimeline(room: MatrixRoom, ev: RoomEventJson): Promise<void> {
    if (ev.state_key !== undefined) return this.onState(room, ev);
    if (this.isOwnEcho(ev)) return;
    const from = { nick: room.nickOf(ev.sender), contact: ev.sender };
    const content = (ev.content ?? {}) as Content;
    switch (ev.type) {
      case "m.room.encrypted":
        if (this.encryptedNoticed.has(room.id)) return;
        this.encryptedNoticed.add(room.id);
        for (const chat of this.chatsOf(room.id)) this.emit({ type: "message", chat, from, text: plain(ENCRYPTED_NOTICE), notice: true });
        return;
      case "m.room.message":
      case "m.sticker":
        return this.onMessage(room, ev, from, content);
      case "m.reaction": {
        const rel = relatesTo(content);
        if (rel?.rel_type !== "m.annotation" || typeof rel.event_id !== "string" || typeof rel.key !== "string") return;
        await this.reactionLog.add(ev.event_id, { target: rel.event_id, sender: ev.sender, key: rel.key }).catch((err: unknown) => {
          this.ctx.log.warn({ err }, "could not remember a reaction");
        });
        const set = await this.senderReactions(room.id, rel.event_id, ev.sender);
        set.set(rel.key, ev.event_id);
        for (const chat of this.chatsOf(room.id)) this.emit({ type: "reactions", chat, from, id: rel.event_id, emojis: [...set.keys()] });
        return;
      }
      case "m.room.redaction": {
        // Room v11 moved `redacts` into the content; older versions keep it at the top level.
        const redacts = ev.redacts ?? (typeof content.redacts === "string" ? content.redacts : undefined);
        if (!redacts) return;
        const reaction = await this.reactionLog.take(redacts).catch((err: unknown) => {
          this.ctx.log.warn({ err }, "could not look up a reaction");
          return undefined;
        });
        if (reaction) {
          const set = await this.senderReactions(room.id, reaction.target, reaction.sender, redacts);
          if (set.get(reaction.key) === redacts) set.delete(reaction.key);
          const who = { nick: room.nickOf(reaction.sender), contact: reaction.sender };
          for (const chat of this.chatsOf(room.id)) this.emit({ type: "reactions", chat, from: who, id: reaction.target, emojis: [...set.keys()] });
          return;
        }
        // Anyone with the power level may redact anyone's event (spec: "Redactions"): one by
        // someone other than the author is moderation (XEP-0425 on the XMPP side), with its reason.
        const author = await this.authorOfEvent(room.id, redacts);
        const reason = typeof content.reason === "string" && content.reason !== "" ? { reason: content.reason } : {};
        const moderated = author !== undefined && author !== ev.sender;
        for (const chat of this.chatsOf(room.id)) {
          if (moderated) this.emit({ type: "retract", chat, from: { nick: room.nickOf(author), contact: author }, id: redacts, by: from, ...reason });
          else this.emit({ type: "retract", chat, from, id: redacts });
        }
        return;
      }
    }
  }

  /** The sender of an event: remembered when seen, else asked of the server (GET /rooms/{id}/event/{id}); undefined if unknown. */
  private async authorOfEvent(roomId: string, eventId: string): Promise<string | undefined> {
    const known = this.authorOf.get(eventId);
    if (known !== undefined) return known;
    try {
      const ev = await this.client.fetchRoomEvent(roomId, eventId);
      return typeof ev.sender === "string" ? ev.sender : undefined;
    } catch (err) {
      this.ctx.log.debug({ err, room: roomId, event: eventId }, "original of a replacement not found");
      return undefined;
    }
  }

  /**
   * The sender's reactions on `target` (key → reaction event id). Complete in
   * memory for messages seen in this session; for an older message (from
   * before a restart) every sender's reactions are read once from the
   * server (GET /rooms/{roomId}/relations/{eventId}/m.annotation/m.reaction),
   * which lists no redacted reaction; `redacted` is left out in any case.
   */
  private async senderReactions(roomId: string, target: string, sender: string, redacted?: string): Promise<Map<string, string>> {
    const known = this.reactionSets.has(target) || this.authorOf.has(target) || this.ownEvents.has(target);
    if (!known) {
      const chunk = await this.retry(
        () =>
          api<{ chunk: RoomEventJson[] }>(this.client, Method.Get, `/rooms/${enc(roomId)}/relations/${enc(target)}/m.annotation/m.reaction`, {
            prefix: "/_matrix/client/v1",
            query: { limit: "100" },
            signal: this.signal,
          }),
        "Could not read reactions",
      ).then(
        (res) => res.chunk,
        (err: unknown) => {
          this.ctx.log.debug({ err, room: roomId, event: target }, "could not read a message's reactions");
          return [];
        },
      );
      for (const r of chunk) {
        const key = relatesTo((r.content ?? {}) as Content)?.key;
        if (typeof key === "string" && r.event_id !== redacted) this.reactionSet(target, r.sender).set(key, r.event_id);
      }
    }
    return this.reactionSet(target, sender);
  }

  private reactionSet(target: string, sender: string): Map<string, string> {
    let bySender = this.reactionSets.get(target);
    if (!bySender) {
      this.reactionSets.set(target, (bySender = new Map()));
      if (this.reactionSets.size > BOUND) this.reactionSets.delete(this.reactionSets.keys().next().value!);
    }
    let set = bySender.get(sender);
    if (!set) bySender.set(sender, (set = new Map()));
    return set;
  }

  private async onMessage(room: MatrixRoom, ev: RoomEventJson, from: { nick: string; contact: string }, content: Content): Promise<void> {
    const rel = relatesTo(content);
    const chats = this.chatsOf(room.id);
    const at = ev.origin_server_ts !== undefined && ev.origin_server_ts < this.startedAt ? { at: new Date(ev.origin_server_ts) } : {};
    if (rel?.rel_type === "m.replace" && typeof rel.event_id === "string") {
      // Client-Server API, "Validity of replacement events": a replacement from another sender
      // than the original's must be ignored (anyone can send one; it is not an edit).
      const author = await this.authorOfEvent(room.id, rel.event_id);
      if (author !== ev.sender) {
        this.ctx.log.debug({ room: room.id, event: ev.event_id, original: rel.event_id }, "ignored a replacement not from the original's sender");
        return;
      }
      const fresh = content["m.new_content"];
      const text = incoming(fresh && typeof fresh === "object" ? (fresh as Content) : content).text;
      for (const chat of chats) this.emit({ type: "edit", chat, from, id: rel.event_id, text, ...at });
      return;
    }
    if (ev.event_id) {
      this.authorOf.set(ev.event_id, ev.sender);
      if (this.authorOf.size > BOUND) this.authorOf.delete(this.authorOf.keys().next().value!);
    }
    const self = ev.sender === this.me ? { self: true } : {};
    const msgtype = ev.type === "m.sticker" ? "m.image" : String(content.msgtype ?? "");
    const kind = MEDIA_MSGTYPES[msgtype];
    if (kind) {
      const media = await this.incomingMedia(kind, content);
      for (const chat of chats) this.emit({ type: "message", chat, from, id: ev.event_id, ...media, ...at, ...self });
      return;
    }
    const conv = incoming(content);
    for (const chat of chats) {
      this.emit({
        type: "message",
        chat,
        from,
        id: ev.event_id,
        text: conv.text,
        ...(conv.action ? { action: true } : {}),
        ...(conv.notice ? { notice: true } : {}),
        ...(conv.replyTo ? { replyTo: conv.replyTo } : {}),
        ...at,
        ...self,
      });
    }
  }

  /** Media: fetched from the authenticated media API (spec v1.11 "Content repository") and republished by the gateway. */
  private async incomingMedia(kind: string, content: Content): Promise<Pick<Extract<LegacyEvent, { type: "message" }>, "text" | "attachments">> {
    const body = typeof content.body === "string" ? content.body : "";
    const name = typeof content.filename === "string" && content.filename !== "" ? content.filename : body || kind;
    // With a `filename`, a different `body` is a caption (spec v1.10 "Media captions").
    const caption = typeof content.filename === "string" && body !== "" && body !== content.filename ? incoming(content).text : undefined;
    const info = (content.info ?? {}) as { mimetype?: unknown; size?: unknown };
    const mediaType = typeof info.mimetype === "string" ? info.mimetype : undefined;
    const unavailable = (why: string) => ({ text: plain(`[${kind}: ${name} — ${why}]${caption ? `\n${toPlain(caption)}` : ""}`) });
    const url = typeof content.url === "string" ? content.url : undefined;
    const mxc = url ? /^mxc:\/\/([^/]+)\/([A-Za-z0-9_-]+)$/.exec(url) : null;
    if (!mxc) return unavailable(url ? "not a valid media link" : "encrypted media, not available");
    if (!this.ctx.media) return unavailable("not available, the gateway has no HTTP listener");
    try {
      const blob = await this.client.http.authedRequest<Blob>(Method.Get, `/download/${enc(mxc[1]!)}/${enc(mxc[2]!)}`, undefined, undefined, {
        prefix: "/_matrix/client/v1/media",
        rawResponseBody: true,
        abortSignal: this.signal,
      } as ReqOpts);
      const data = new Uint8Array(await blob.arrayBuffer());
      const type = mediaType ?? (blob.type || undefined);
      const published = await this.ctx.media.publish(data, { ...(type ? { mediaType: type } : {}), name });
      return {
        text: caption ?? { blocks: [] },
        attachments: [{ url: published, name, ...(type ? { mediaType: type } : {}), size: data.byteLength, ...(caption ? { caption } : {}) }],
      };
    } catch (err) {
      return unavailable(`could not be fetched: ${toEstuaryError(err, "download failed").message}`);
    }
  }

  private onState(room: MatrixRoom, ev: RoomEventJson): void {
    const mucs = this.mucsOf(room.id);
    if (ev.type === "m.room.member" && ev.state_key !== undefined) {
      const target = ev.state_key;
      const oldNick = room.nickOf(target);
      const prev = room.apply(ev);
      const was = prev?.membership ?? (ev.unsigned?.prev_content?.membership as string | undefined);
      const now = String(ev.content.membership ?? "leave");
      const reason = typeof ev.content.reason === "string" ? { reason: ev.content.reason } : {};
      if (target === this.me) {
        if ((now === "leave" || now === "ban") && ev.sender !== this.me) {
          for (const room_ of mucs) this.emit({ type: "room-closed", room: room_, how: now === "ban" ? "ban" : "kick", by: room.nickOf(ev.sender), ...reason });
        }
        if (now !== "join") this.joinedAs.delete(room.id);
        return;
      }
      for (const muc of mucs) {
        if (now === "join" && was !== "join") this.emit({ type: "join", room: muc, occupant: room.occupant(target) });
        else if (now === "join" && oldNick !== room.nickOf(target)) this.emit({ type: "nick", room: muc, old: oldNick, new: room.nickOf(target) });
        else if (was === "join" && now !== "join") {
          const how = now === "ban" ? "ban" : ev.sender === target ? "leave" : "kick";
          this.emit({ type: "part", room: muc, nick: oldNick, how, ...(how === "leave" ? {} : { by: room.nickOf(ev.sender) }), ...reason });
        }
      }
      return;
    }
    if (ev.type === "m.room.power_levels") {
      const before = new Map(room.joined().map((u) => [u, room.level(u)]));
      room.apply(ev);
      for (const [user, level] of before) {
        if (room.level(user) === level) continue;
        for (const muc of mucs) this.emit({ type: "occupant", room: muc, occupant: room.occupant(user) });
      }
      return;
    }
    room.apply(ev);
    if (ev.type === "m.room.topic") {
      for (const muc of mucs) this.emit({ type: "topic", room: muc, text: room.topic ?? "", by: room.nickOf(ev.sender) });
    }
  }

  private onTyping(room: MatrixRoom, content: Record<string, unknown>): void {
    const now = new Set(Array.isArray(content.user_ids) ? content.user_ids.filter((u): u is string => typeof u === "string" && u !== this.me) : []);
    const before = this.typing.get(room.id) ?? new Set<string>();
    this.typing.set(room.id, now);
    const tell = (user: string, state: ChatState) => {
      for (const chat of this.chatsOf(room.id)) this.emit({ type: "typing", chat, from: { nick: room.nickOf(user), contact: user }, state });
    };
    for (const u of now) if (!before.has(u)) tell(u, "composing");
    for (const u of before) if (!now.has(u)) tell(u, "paused");
  }

  /**
   * Invitations to direct chats are accepted (a Matrix user starting a DM).
   * An invitation to any other room reaches the user as a XEP-0045 §7.8.2
   * invitation from the room (core/xmpp/invite.ts): joining that MUC then
   * joins the Matrix room (POST /join works for an invited user, spec "Room
   * membership"). `invite_state` is the stripped state of the room (spec
   * "Stripped state"): the invitee's own m.room.member event names the
   * inviter (`sender`) and carries the optional `reason`. A sync repeats a
   * pending invitation only when it changed, but every session's first sync
   * lists all pending ones: each is told once per session.
   */
  private async onInvite(roomId: string, r: SyncRoom): Promise<void> {
    const stripped = r.invite_state?.events ?? [];
    const mine = stripped.find((e) => e.type === "m.room.member" && e.state_key === this.me);
    if (this.rooms.get(roomId)?.members.get(this.me)?.membership === "join") return;
    if (mine?.content.is_direct !== true) {
      if (!mine) return;
      // Stripped state events carry no event_id: one invitation per room and inviter.
      const key = `${roomId}\n${mine.sender}`;
      if (this.invitesTold.has(key)) return;
      this.invitesTold.add(key);
      const inviter = stripped.find((e) => e.type === "m.room.member" && e.state_key === mine.sender);
      const name = typeof inviter?.content.displayname === "string" && inviter.content.displayname !== "" ? inviter.content.displayname : mine.sender;
      const reason = typeof mine.content.reason === "string" && mine.content.reason !== "" ? { reason: mine.content.reason } : {};
      this.emit({ type: "invite", room: roomId, from: { nick: name, contact: mine.sender }, ...reason });
      return;
    }
    try {
      await api(this.client, Method.Post, `/join/${enc(roomId)}`, { body: {}, signal: this.signal });
      await this.addDirect(mine.sender, roomId);
      const room = this.room(roomId);
      await this.load(room);
    } catch (err) {
      this.ctx.log.warn({ err: toEstuaryError(err).message }, "could not accept a direct chat invitation");
    }
  }

  private async addDirect(contact: string, roomId: string): Promise<void> {
    const current = await api<Record<string, unknown>>(this.client, Method.Get, `/user/${enc(this.me)}/account_data/m.direct`, { signal: this.signal }).catch(
      () => this.directRaw,
    );
    const next: Record<string, unknown> = { ...current };
    const list = Array.isArray(next[contact]) ? (next[contact] as string[]) : [];
    if (!list.includes(roomId)) next[contact] = [...list, roomId];
    await api(this.client, Method.Put, `/user/${enc(this.me)}/account_data/m.direct`, { body: next, signal: this.signal });
    this.setDirect(next);
  }

  // ---- XMPP → Matrix ----

  private nextTxn(): string {
    return `estuary.${this.startedAt.toString(36)}.${(this.txn++).toString(36)}`;
  }

  private retry<T>(call: () => Promise<T>, what: string): Promise<T> {
    return withRetry(call, { windowMs: this.opts.retryWindowMs, signal: this.signal, what });
  }

  /** PUT /rooms/{id}/send/{type}/{txn}: one txn id across retries, so a resend is idempotent (spec: "Transaction identifiers"). */
  private async sendEvent(roomId: string, type: string, content: Content): Promise<string> {
    const txn = this.nextTxn();
    this.ownTxns.add(txn);
    const res = await this.retry(
      () => api<{ event_id: string }>(this.client, Method.Put, `/rooms/${enc(roomId)}/send/${enc(type)}/${enc(txn)}`, { body: content, signal: this.signal }),
      "The Matrix server refused the message",
    );
    this.ownEvents.add(res.event_id);
    return res.event_id;
  }

  /** PUT /rooms/{roomId}/redact/{eventId}/{txnId} (spec: "Redactions"), with the optional `reason`. */
  private async redact(roomId: string, eventId: string, reason?: string): Promise<void> {
    const txn = this.nextTxn();
    this.ownTxns.add(txn);
    const body = reason === undefined ? {} : { reason };
    const res = await this.retry(
      () => api<{ event_id: string }>(this.client, Method.Put, `/rooms/${enc(roomId)}/redact/${enc(eventId)}/${enc(txn)}`, { body, signal: this.signal }),
      "The Matrix server refused the redaction",
    );
    this.ownEvents.add(res.event_id);
  }

  private async resolveAlias(alias: string): Promise<string> {
    const res = await this.retry(() => api<{ room_id: string }>(this.client, Method.Get, `/directory/room/${enc(alias)}`, { signal: this.signal }), "No such room");
    return res.room_id;
  }

  /** The Matrix room a core RoomId names (the MUC it was joined as, an alias, or an id). */
  private async matrixRoomOf(room: RoomId): Promise<string> {
    for (const [id, as] of this.joinedAs) if (as.has(room)) return id;
    return room.startsWith("#") ? this.resolveAlias(room) : room;
  }

  private async dmRoomFor(contact: string, create: boolean): Promise<string | undefined> {
    for (const id of this.directRaw[contact] ?? []) {
      const room = this.rooms.get(id);
      if (room?.members.get(this.me)?.membership === "join") return id;
    }
    if (!create) return undefined;
    // Spec "Direct Messaging": a room created with is_direct and the invitee, then recorded in m.direct.
    const res = await this.retry(
      () =>
        api<{ room_id: string }>(this.client, Method.Post, "/createRoom", {
          body: { is_direct: true, invite: [contact], preset: "trusted_private_chat" },
          signal: this.signal,
        }),
      "Could not start a direct chat",
    );
    await this.addDirect(contact, res.room_id);
    await this.load(this.room(res.room_id));
    return res.room_id;
  }

  private async roomOf(chat: ChatRef, createDm = true): Promise<string | undefined> {
    if (chat.kind === "room") return this.matrixRoomOf(chat.room);
    if (!chat.contact.startsWith("@")) throw fail("not-found", "Not a Matrix user");
    return this.dmRoomFor(chat.contact, createDm);
  }

  /** Refuses to write into end-to-end encrypted rooms: the message would be sent in clear text. */
  private async writable(roomId: string): Promise<MatrixRoom> {
    const room = this.room(roomId);
    if (!room.loaded) await this.load(room);
    if (room.encrypted) {
      throw fail("not-allowed", "This is an end-to-end encrypted room; Estuary does not support encryption yet, so it will not send there in clear text");
    }
    return room;
  }

  async sendMessage(chat: ChatRef, message: OutgoingMessage): Promise<SendResult> {
    const roomId = (await this.roomOf(chat))!;
    await this.writable(roomId);
    return this.queues.run(roomId, async () => {
      const attachments = message.attachments ?? [];
      const text = toPlain(message.text).trim();
      // A body that only repeats the attachment URLs (XEP-0066 habit) is not sent as text.
      const onlyUrls = attachments.length > 0 && text.split(/\s+/).every((w) => attachments.some((a) => a.url === w));
      let first: string | undefined;
      if (!onlyUrls && text !== "") first = await this.sendEvent(roomId, "m.room.message", outgoingContent(message));
      for (const a of attachments) {
        const id = await this.sendAttachment(roomId, a.url, a.name, a.mediaType);
        first ??= id;
      }
      return first ? { id: first } : {};
    });
  }

  private async sendAttachment(roomId: string, url: string, name?: string, mediaType?: string): Promise<string> {
    const fetched = await this.ctx.fetch(url);
    const type = fetched.mediaType ?? mediaType ?? "application/octet-stream";
    const filename = fetched.name ?? name ?? (new URL(url).pathname.split("/").pop() || "file");
    // POST /_matrix/media/v3/upload through the SDK (its upload path neither queues nor retries).
    const uploaded = await this.retry(
      () => this.client.uploadContent(Buffer.from(fetched.data), { name: filename, type, includeFilename: true }),
      "The Matrix server refused the upload",
    );
    const contentUri = uploaded.content_uri;
    return this.sendEvent(roomId, "m.room.message", {
      msgtype: msgtypeFor(type),
      body: filename,
      filename,
      url: contentUri,
      info: { mimetype: type, size: fetched.data.byteLength },
    });
  }

  async correct(chat: ChatRef, id: MessageId, message: OutgoingMessage): Promise<SendResult> {
    const roomId = (await this.roomOf(chat))!;
    await this.writable(roomId);
    await this.queues.run(roomId, () => this.sendEvent(roomId, "m.room.message", editContent(id, message)));
    // Later corrections, reactions and retractions all address the original event.
    return { id };
  }

  async retract(chat: ChatRef, id: MessageId): Promise<void> {
    const roomId = (await this.roomOf(chat))!;
    await this.queues.run(roomId, () => this.redact(roomId, id));
  }

  /**
   * XEP-0045 §7.8 mediated invitation: POST /rooms/{roomId}/invite with
   * `user_id` and the optional `reason` (spec "Room membership", invite).
   * The server answers every refusal with 403 M_FORBIDDEN (power level,
   * invitee banned, inviter not in the room, invitee already a member): the
   * last is told apart from what this session knows of the room's members.
   */
  async invite(room: RoomId, contact: string, reason?: string): Promise<void> {
    if (!contact.startsWith("@")) throw fail("not-found", "Not a Matrix user");
    const roomId = await this.matrixRoomOf(room);
    if (this.rooms.get(roomId)?.members.get(contact)?.membership === "join") throw fail("conflict", `${contact} is already in the room`);
    const body = { user_id: contact, ...(reason !== undefined && reason !== "" ? { reason } : {}) };
    try {
      await this.retry(() => api(this.client, Method.Post, `/rooms/${enc(roomId)}/invite`, { body, signal: this.signal }), "The Matrix server refused the invitation");
    } catch (err) {
      if (isEstuaryError(err) && err.cause instanceof MatrixError && err.cause.errcode === "M_FORBIDDEN") {
        throw fail("forbidden", `Matrix refused the invitation: ${err.cause.data.error ?? "M_FORBIDDEN"}`, { cause: err.cause });
      }
      throw err;
    }
  }

  /**
   * XEP-0425 moderation: a redaction of someone else's event, which the
   * server allows from the room's `redact` power level (spec: "Redactions",
   * m.room.power_levels). Its 403 M_FORBIDDEN is the user's `forbidden`.
   */
  async moderate(room: RoomId, id: MessageId, reason?: string): Promise<void> {
    const roomId = await this.matrixRoomOf(room);
    try {
      await this.queues.run(roomId, () => this.redact(roomId, id, reason));
    } catch (err) {
      if (isEstuaryError(err) && err.cause instanceof MatrixError && err.cause.errcode === "M_FORBIDDEN") {
        throw fail("forbidden", `Matrix refused: you may not remove other people's messages in this room (${err.cause.data.error ?? "M_FORBIDDEN"})`, {
          cause: err.cause,
        });
      }
      throw err;
    }
  }

  async react(chat: ChatRef, id: MessageId, emojis: string[]): Promise<void> {
    const roomId = (await this.roomOf(chat))!;
    await this.writable(roomId);
    await this.queues.run(roomId, async () => {
      // XEP-0444 sends the whole set; Matrix has one event per reaction: diff against ours on the server.
      const res = await this.retry(
        () =>
          api<{ chunk: RoomEventJson[] }>(this.client, Method.Get, `/rooms/${enc(roomId)}/relations/${enc(id)}/m.annotation/m.reaction`, {
            prefix: "/_matrix/client/v1",
            query: { limit: "100" },
            signal: this.signal,
          }),
        "Could not read reactions",
      );
      const mine = new Map<string, string>();
      for (const ev of res.chunk) {
        const key = relatesTo(ev.content as Content)?.key;
        if (ev.sender === this.me && typeof key === "string") mine.set(key, ev.event_id);
      }
      const wanted = new Set(emojis);
      for (const key of wanted) {
        if (!mine.has(key)) await this.sendEvent(roomId, "m.reaction", { "m.relates_to": { rel_type: "m.annotation", event_id: id, key } });
      }
      for (const [key, eventId] of mine) if (!wanted.has(key)) await this.redact(roomId, eventId);
    });
  }

  async setTyping(chat: ChatRef, state: ChatState): Promise<void> {
    const roomId = await this.roomOf(chat, false);
    if (!roomId) return;
    const typing = state === "composing";
    await api(this.client, Method.Put, `/rooms/${enc(roomId)}/typing/${enc(this.me)}`, {
      body: typing ? { typing, timeout: 30_000 } : { typing },
      signal: this.signal,
    }).catch((err: unknown) => {
      throw toEstuaryError(err, "Typing notification refused");
    });
  }

  async markRead(chat: ChatRef, id: MessageId): Promise<void> {
    const roomId = await this.roomOf(chat, false);
    if (!roomId) return;
    await api(this.client, Method.Post, `/rooms/${enc(roomId)}/receipt/m.read/${enc(id)}`, { body: {}, signal: this.signal }).catch((err: unknown) => {
      throw toEstuaryError(err, "Read receipt refused");
    });
  }

  async setSubject(room: RoomId, subject: string): Promise<void> {
    const roomId = await this.matrixRoomOf(room);
    await this.queues.run(roomId, () =>
      this.retry(
        () => api(this.client, Method.Put, `/rooms/${enc(roomId)}/state/m.room.topic/`, { body: { topic: subject }, signal: this.signal }),
        "The topic could not be set",
      ),
    );
  }

  async joinRoom(room: RoomId, _nick: string): Promise<RoomSnapshot> {
    let roomId = room.startsWith("#") ? await this.resolveAlias(room).catch(() => undefined) : room;
    const joined = await this.retry(() => api<{ joined_rooms: string[] }>(this.client, Method.Get, "/joined_rooms", { signal: this.signal }), "Could not list rooms");
    if (roomId === undefined || !joined.joined_rooms.includes(roomId)) {
      // Join through the alias when given one: the server resolves it (and may federate).
      const res = await this.retry(
        () => api<{ room_id: string }>(this.client, Method.Post, `/join/${enc(room)}`, { body: {}, signal: this.signal }),
        "Could not join the room",
      );
      roomId = res.room_id;
    }
    const state = this.room(roomId);
    await this.load(state);
    let as = this.joinedAs.get(roomId);
    if (!as) this.joinedAs.set(roomId, (as = new Set()));
    as.add(room);
    const topic = state.topic ? { text: state.topic, ...(state.topicBy ? { by: state.nickOf(state.topicBy) } : {}) } : undefined;
    return {
      // Matrix has one display name per account: the nick asked for is not applied.
      nick: state.nickOf(this.me),
      self: roleOf(state.level(this.me)),
      occupants: state.joined().filter((u) => u !== this.me).map((u) => state.occupant(u)),
      ...(topic ? { subject: topic } : state.name ? { subject: { text: state.name } } : {}),
      ...(state.name ? { name: state.name } : {}),
    };
  }

  /** Backfill (spec "GET /rooms/{roomId}/messages", dir=b): the newest `limit` plain messages, oldest first. */
  async history(room: RoomId, options: { limit: number }): Promise<Extract<LegacyEvent, { type: "message" }>[]> {
    const limit = Math.min(options.limit, this.opts.backfillLimit);
    if (limit <= 0) return [];
    const roomId = await this.matrixRoomOf(room);
    const state = this.room(roomId);
    const res = await this.retry(
      () => api<{ chunk?: RoomEventJson[] }>(this.client, Method.Get, `/rooms/${enc(roomId)}/messages`, { query: { dir: "b", limit: String(limit) }, signal: this.signal }),
      "Could not read the room's history",
    );
    const out: Extract<LegacyEvent, { type: "message" }>[] = [];
    for (const ev of res.chunk ?? []) {
      if (ev.type !== "m.room.message" || ev.origin_server_ts === undefined) continue;
      const content = (ev.content ?? {}) as Content;
      if (relatesTo(content)?.rel_type === "m.replace") continue;
      const conv = incoming(content);
      out.push({
        type: "message",
        chat: { kind: "room", room },
        from: { nick: state.nickOf(ev.sender), contact: ev.sender },
        id: ev.event_id,
        text: conv.text,
        at: new Date(ev.origin_server_ts),
        ...(conv.action ? { action: true } : {}),
        ...(conv.notice ? { notice: true } : {}),
        ...(ev.sender === this.me ? { self: true } : {}),
      });
    }
    return out.reverse();
  }

  /**
   * The XMPP side left the MUC: stop relaying it. The Matrix membership is
   * kept (leaving an invite-only room could not be undone from XMPP).
   */
  async leaveRoom(room: RoomId): Promise<void> {
    for (const [id, as] of this.joinedAs) {
      as.delete(room);
      if (as.size === 0) this.joinedAs.delete(id);
    }
  }

  async listRooms(): Promise<RoomInfo[]> {
    const res = await this.retry(() => api<{ joined_rooms: string[] }>(this.client, Method.Get, "/joined_rooms", { signal: this.signal }), "Could not list rooms");
    return res.joined_rooms.map((id) => {
      const r = this.rooms.get(id);
      return { room: id, ...(r?.name ? { name: r.name } : {}), ...(r && r.members.size > 0 ? { members: r.joined().length } : {}) };
    });
  }

  async contactInfo(contact: string): Promise<{ name?: string; avatarUrl?: string } | undefined> {
    try {
      const p = await api<{ displayname?: string }>(this.client, Method.Get, `/profile/${enc(contact)}`, { signal: this.signal });
      return p.displayname ? { name: p.displayname } : {};
    } catch {
      return undefined;
    }
  }
}
