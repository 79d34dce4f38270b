/**
 * Builds GET /sync responses (spec: Client-Server API "Syncing", GET /_matrix/client/v3/sync).
 * `since` is the stream position of an earlier next_batch; everything with a
 * higher position is new. A null `since` is an initial sync.
 */
import { obj, type Json } from "./http.ts";
import { clientEvent, matchesFilter, roomAllowed, stateKeyOf, type StoredEvent, type Viewer } from "./events.ts";
import type { Room, Rooms } from "./rooms.ts";
import type { Accounts } from "./store.ts";

export interface SyncParams {
  since: number | null;
  filter: Json;
  fullState: boolean;
  /** Stream position the response is consistent with; becomes next_batch. */
  upTo: number;
}

/** Default timeline limit when the filter sets none (Synapse uses 10 too). */
const DEFAULT_TIMELINE_LIMIT = 10;

export const syncToken = (pos: number) => `s${pos}`;

export function parseSyncToken(token: string): number | undefined {
  const m = /^s(\d+)$/.exec(token);
  return m ? Number(m[1]) : undefined;
}

const NOTIFYING_TYPES = new Set(["m.room.message", "m.room.encrypted", "m.sticker"]);

export function buildSync(rooms: Rooms, accounts: Accounts, viewer: Viewer, p: SyncParams): { response: Json; hasNews: boolean } {
  const roomFilter = obj(p.filter.room);
  const since = p.since;
  const after = since ?? -1;
  const join: Json = {};
  const invite: Json = {};
  const leave: Json = {};
  let hasNews = false;

  for (const room of rooms.rooms.values()) {
    if (!roomAllowed(roomFilter, room.id)) continue;
    const memberEv = room.getState("m.room.member", viewer.userId);
    if (!memberEv || memberEv.pos > p.upTo) continue;
    const membership = memberEv.content.membership;
    const before = since === null ? undefined : room.membershipAt(viewer.userId, since);
    if (membership === "join") {
      // A room joined since `since` is sent whole, as in an initial sync.
      const whole = since === null || before !== "join" || p.fullState;
      const section = joinedRoom(room, accounts, viewer, p, roomFilter, whole ? null : since);
      if (since === null || section.news) {
        join[room.id] = section.json;
        hasNews ||= section.news || since !== null;
      }
    } else if (membership === "invite") {
      if (memberEv.pos > after) {
        invite[room.id] = { invite_state: { events: strippedState(room, memberEv) } };
        hasNews = true;
      }
    } else if (since === null ? roomFilter?.include_leave === true : memberEv.pos > since && before !== undefined && before !== membership) {
      const timeline = before === "join" ? roomTimeline(room, viewer, p, roomFilter, since, memberEv.pos) : { events: [clientEvent(memberEv, viewer, false)], limited: false, prev_batch: syncToken(memberEv.pos - 1), state: [] };
      leave[room.id] = { timeline: { events: timeline.events, limited: timeline.limited, prev_batch: timeline.prev_batch }, state: { events: timeline.state }, account_data: { events: [] } };
      hasNews = true;
    }
  }

  const account = accounts.get(viewer.userId);
  const accountData = [...account.accountData.entries()]
    .filter(([type, e]) => e.pos > after && e.pos <= p.upTo && matchesFilter(obj(p.filter.account_data), { type, sender: viewer.userId }))
    .map(([type, e]) => ({ type, content: e.value }));
  const presence = presenceEvents(rooms, accounts, viewer.userId, after, p.upTo).filter((ev) => matchesFilter(obj(p.filter.presence), ev));
  const device = account.devices.get(viewer.deviceId);
  // Sending a `since` acknowledges the to-device messages delivered before it (spec: "Send-to-Device messaging").
  if (device && since !== null) device.toDevice = device.toDevice.filter((m) => m.pos > since);
  const toDevice = (device?.toDevice ?? []).filter((m) => m.pos <= p.upTo).map(({ sender, type, content }) => ({ sender, type, content }));
  hasNews ||= accountData.length > 0 || presence.length > 0 || toDevice.length > 0;

  const response: Json = {
    next_batch: syncToken(p.upTo),
    rooms: { join, invite, leave, knock: {} },
    account_data: { events: accountData },
    presence: { events: presence },
    to_device: { events: toDevice },
    device_lists: { changed: [], left: [] },
    device_one_time_keys_count: device?.oneTimeKeyCounts ?? {},
    device_unused_fallback_key_types: device?.fallbackKeyTypes ?? [],
  };
  return { response, hasNews };
}

interface TimelineSection {
  events: Json[];
  limited: boolean;
  prev_batch: string;
  state: Json[];
}

/**
 * The timeline of events after `since` up to `upTo` (at most `limit`), and the
 * state to go with it: the full state at the timeline's start when `since` is
 * null, otherwise only state events that fell in a gap left by `limited`.
 */
function roomTimeline(room: Room, viewer: Viewer, p: SyncParams, roomFilter: Json | undefined, since: number | null, upTo: number): TimelineSection {
  const timelineFilter = obj(roomFilter?.timeline);
  const stateFilter = obj(roomFilter?.state);
  const limit = typeof timelineFilter?.limit === "number" ? Math.max(0, timelineFilter.limit) : DEFAULT_TIMELINE_LIMIT;
  const window = room.events.filter((e) => e.pos > (since ?? -1) && e.pos <= upTo);
  const eligible = window.filter((e) => matchesFilter(timelineFilter, e));
  const timeline = limit === 0 ? [] : eligible.slice(-limit);
  const first = timeline[0];
  const startIndex = first ? room.events.indexOf(first) : room.events.findIndex((e) => e.pos > upTo) === -1 ? room.events.length : room.events.findIndex((e) => e.pos > upTo);
  const limited = since === null ? startIndex > 0 && room.events.slice(0, startIndex).some((e) => matchesFilter(timelineFilter, e)) : eligible.length > timeline.length;
  let state: StoredEvent[];
  if (since === null) {
    state = [...room.stateBefore(startIndex).values()];
  } else {
    const gap = new Map<string, StoredEvent>();
    for (const e of room.events.slice(0, startIndex)) if (e.pos > since && e.state_key !== undefined) gap.set(stateKeyOf(e.type, e.state_key), e);
    state = [...gap.values()];
  }
  return {
    events: timeline.map((e) => clientEvent(e, viewer, false)),
    limited,
    prev_batch: syncToken(first ? first.pos - 1 : (since ?? upTo)),
    state: state.filter((e) => matchesFilter(stateFilter, e)).map((e) => clientEvent(e, viewer, false)),
  };
}

function joinedRoom(room: Room, accounts: Accounts, viewer: Viewer, p: SyncParams, roomFilter: Json | undefined, since: number | null): { json: Json; news: boolean } {
  const t = roomTimeline(room, viewer, p, roomFilter, since, p.upTo);
  const after = since ?? -1;
  const ephemeralFilter = obj(roomFilter?.ephemeral);
  const ephemeral: Json[] = [];
  if (room.typingPos > after && room.typingPos <= p.upTo && (since !== null || room.typing.size > 0)) {
    ephemeral.push({ type: "m.typing", content: { user_ids: [...room.typing.keys()] } });
  }
  const receipts = receiptContent(room, viewer.userId, after, p.upTo);
  if (receipts) ephemeral.push({ type: "m.receipt", content: receipts });
  const visibleEphemeral = ephemeral.filter((ev) => matchesFilter(ephemeralFilter, { type: ev.type as string, sender: "" }));
  const roomData = [...(accounts.users.get(viewer.userId)?.roomAccountData.get(room.id)?.entries() ?? [])]
    .filter(([, e]) => e.pos > after && e.pos <= p.upTo)
    .map(([type, e]) => ({ type, content: e.value }));

  const others = (m: string) => room.members(m).filter((u) => u !== viewer.userId);
  const json: Json = {
    timeline: { events: t.events, limited: t.limited, prev_batch: t.prev_batch },
    state: { events: t.state },
    ephemeral: { events: visibleEphemeral },
    account_data: { events: roomData },
    summary: {
      "m.heroes": [...others("join"), ...others("invite")].sort().slice(0, 5),
      "m.joined_member_count": room.members("join").length,
      "m.invited_member_count": room.members("invite").length,
    },
    unread_notifications: { notification_count: unreadCount(room, viewer.userId), highlight_count: 0 },
  };
  if (obj(roomFilter?.timeline)?.unread_thread_notifications === true) json.unread_thread_notifications = {};
  const news = t.events.length > 0 || t.state.length > 0 || visibleEphemeral.length > 0 || roomData.length > 0;
  return { json, news };
}

/** m.receipt content for receipts after `after`; private receipts only to their owner. */
function receiptContent(room: Room, viewerId: string, after: number, upTo: number): Json | undefined {
  const content: Record<string, Record<string, Record<string, Json>>> = {};
  let any = false;
  for (const r of room.receipts) {
    if (r.pos <= after || r.pos > upTo) continue;
    if (r.type === "m.read.private" && r.userId !== viewerId) continue;
    // A later receipt of the same user and type (and thread) replaces the earlier one.
    if (after < 0 && room.receipts.some((o) => o.pos > r.pos && o.pos <= upTo && o.userId === r.userId && o.type === r.type && o.threadId === r.threadId)) continue;
    const byType = (content[r.eventId] ??= {});
    const byUser = (byType[r.type] ??= {});
    byUser[r.userId] = r.threadId === undefined ? { ts: r.ts } : { ts: r.ts, thread_id: r.threadId };
    any = true;
  }
  return any ? content : undefined;
}

/** Messages from others after the user's latest read receipt (or join). */
function unreadCount(room: Room, userId: string): number {
  let fromIndex = 0;
  room.events.forEach((e, i) => {
    if (e.type === "m.room.member" && e.state_key === userId && e.content.membership === "join") fromIndex = Math.max(fromIndex, i + 1);
  });
  for (const r of room.receipts) {
    if (r.userId !== userId || (r.type !== "m.read" && r.type !== "m.read.private")) continue;
    const i = room.events.findIndex((e) => e.event_id === r.eventId);
    if (i >= 0) fromIndex = Math.max(fromIndex, i + 1);
  }
  return room.events.slice(fromIndex).filter((e) => e.sender !== userId && NOTIFYING_TYPES.has(e.type) && !e.redactedBecause).length;
}

/** Stripped state for an invite (spec: "Stripped state"): enough to show the room. */
function strippedState(room: Room, memberEv: StoredEvent): Json[] {
  const types = ["m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.canonical_alias", "m.room.encryption", "m.room.topic"];
  const stripped = types.flatMap((type) => {
    const ev = room.getState(type);
    return ev ? [{ type, state_key: "", sender: ev.sender, content: ev.content }] : [];
  });
  const inviter = room.getState("m.room.member", memberEv.sender);
  if (inviter) stripped.push({ type: "m.room.member", state_key: memberEv.sender, sender: inviter.sender, content: inviter.content });
  stripped.push({ type: "m.room.member", state_key: memberEv.state_key!, sender: memberEv.sender, content: memberEv.content });
  return stripped;
}

/** Presence of users who share a joined room with the viewer (and the viewer's own). */
function presenceEvents(rooms: Rooms, accounts: Accounts, viewerId: string, after: number, upTo: number): { type: string; sender: string; content: Json }[] {
  const visible = new Set([viewerId]);
  for (const room of rooms.rooms.values()) {
    if (room.membership(viewerId) !== "join") continue;
    for (const u of room.members("join")) visible.add(u);
  }
  const out: { type: string; sender: string; content: Json }[] = [];
  for (const userId of visible) {
    const account = accounts.users.get(userId);
    if (!account || account.presence.pos <= after || account.presence.pos > upTo || account.presence.pos === 0) continue;
    const { presence, statusMsg, lastActive } = account.presence.value;
    const content: Json = { presence, last_active_ago: Date.now() - lastActive, currently_active: presence === "online" };
    if (statusMsg !== undefined) content.status_msg = statusMsg;
    if (account.displayname !== undefined) content.displayname = account.displayname;
    if (account.avatarUrl !== undefined) content.avatar_url = account.avatarUrl;
    out.push({ type: "m.presence", sender: userId, content });
  }
  return out;
}
