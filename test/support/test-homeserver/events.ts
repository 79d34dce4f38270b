/**
 * Room events as stored, and their client format.
 * Spec: Client-Server API "Room Events" / "ClientEvent" and room version 10's
 * redaction algorithm.
 */
import type { Json } from "./http.ts";

export interface StoredEvent {
  event_id: string;
  room_id: string;
  type: string;
  sender: string;
  content: Json;
  state_key?: string;
  origin_server_ts: number;
  /** m.room.redaction: the event it redacts (top level in room v10, also copied into content as v11 has it). */
  redacts?: string;
  /** Server-internal stream position; never serialised. */
  pos: number;
  /** Who sent it under which transaction: unsigned.transaction_id goes only to that device. */
  txn?: { userId: string; deviceId: string; txnId: string };
  /** Content of the state entry this event replaced (unsigned.prev_content). */
  prevContent?: Json;
  redactedBecause?: StoredEvent;
}

export interface Viewer {
  userId: string;
  deviceId: string;
}

/** Serialises a stored event as a ClientEvent (with room_id) or ClientEventWithoutRoomID (sync). */
export function clientEvent(ev: StoredEvent, viewer?: Viewer, withRoomId = true): Json {
  const unsigned: Json = { age: Math.max(0, Date.now() - ev.origin_server_ts) };
  if (ev.txn && viewer && ev.txn.userId === viewer.userId && ev.txn.deviceId === viewer.deviceId) {
    unsigned.transaction_id = ev.txn.txnId;
  }
  if (ev.prevContent !== undefined) unsigned.prev_content = ev.prevContent;
  if (ev.redactedBecause) unsigned.redacted_because = clientEvent(ev.redactedBecause, undefined, withRoomId);
  const out: Json = {
    type: ev.type,
    content: ev.content,
    sender: ev.sender,
    event_id: ev.event_id,
    origin_server_ts: ev.origin_server_ts,
    unsigned,
  };
  if (withRoomId) out.room_id = ev.room_id;
  if (ev.state_key !== undefined) out.state_key = ev.state_key;
  if (ev.redacts !== undefined) out.redacts = ev.redacts;
  return out;
}

/** Content keys that survive redaction, per event type (room version 10 rules). */
const KEPT_CONTENT: Record<string, string[]> = {
  "m.room.member": ["membership", "join_authorised_via_users_server"],
  "m.room.create": ["creator"],
  "m.room.join_rules": ["join_rule", "allow"],
  "m.room.power_levels": ["ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"],
  "m.room.history_visibility": ["history_visibility"],
};

export function pruneContent(type: string, content: Json): Json {
  const kept: Json = {};
  for (const key of KEPT_CONTENT[type] ?? []) if (key in content) kept[key] = content[key];
  return kept;
}

export function stateKeyOf(type: string, stateKey: string): string {
  return `${type}\u0000${stateKey}`;
}

/** Event filter glob: `*` matches any run of characters (spec: Filtering). */
function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  return re.test(value);
}

function listed(list: unknown, value: string): boolean | undefined {
  if (!Array.isArray(list)) return undefined;
  return list.some((p) => typeof p === "string" && globMatch(p, value));
}

/** EventFilter / RoomEventFilter matching on types and senders (spec: POST /user/{userId}/filter). */
export function matchesFilter(filter: Json | undefined, ev: { type: string; sender: string }): boolean {
  if (!filter) return true;
  if (listed(filter.not_types, ev.type)) return false;
  if (listed(filter.types, ev.type) === false) return false;
  if (listed(filter.not_senders, ev.sender)) return false;
  if (listed(filter.senders, ev.sender) === false) return false;
  return true;
}

export function roomAllowed(roomFilter: Json | undefined, roomId: string): boolean {
  if (!roomFilter) return true;
  if (Array.isArray(roomFilter.not_rooms) && roomFilter.not_rooms.includes(roomId)) return false;
  if (Array.isArray(roomFilter.rooms) && !roomFilter.rooms.includes(roomId)) return false;
  return true;
}
