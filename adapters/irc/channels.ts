/**
 * The channels of one IRC connection: joining (a JOIN waits for NAMES and
 * the MODE barrier before it completes), leaving, the occupant list each
 * channel keeps, and the RoomSnapshot / occupant events the core gets from
 * it. After a reconnect a rejoin emits only the difference with what the
 * channel had before (emitDiff), so XMPP users see who left meanwhile.
 *
 * Functions of the connection (not methods of a per-channel object): one
 * connection per user, so nothing here allocates per connection.
 */
import { fail, type EstuaryError } from "../../core/errors.ts";
import type { LegacyEvent, Occupant, RoomId, RoomSnapshot } from "../../core/model.ts";
import type { IrcConnection } from "./connection.ts";
import { contactId, ircLower } from "./ids.ts";
import { rolesFromModes } from "./roles.ts";

/** One person in a channel. `modes`: their prefix mode letters ("ov"), a string (cheaper than a Set per occupant). */
export interface OccState {
  nick: string;
  modes: string;
  away?: string | undefined;
}

export interface ChannelState {
  name: string;
  room: RoomId;
  key?: string | undefined;
  occupants: Map<string, OccState>;
  /** Our own prefix mode letters in the channel. */
  selfModes: string;
  subject?: { text: string; by?: string; at?: Date };
  synced: boolean;
  /** Occupants before a reconnect: the rejoin emits only the difference. */
  previous?: Map<string, OccState> | undefined;
  /** Waiting for the answer to MODE after NAMES (see the userlist handler in channel-events.ts). */
  barrier?: NodeJS.Timeout | undefined;
  /** Lines the server replayed before the join completed (InspIRCd +H, chathistory batches). */
  history?: Extract<LegacyEvent, { type: "message" }>[];
}

export interface PendingJoin {
  resolve(snapshot: RoomSnapshot): void;
  reject(error: EstuaryError): void;
  timer: NodeJS.Timeout;
  rejoin: boolean;
  /** The key the JOIN was sent with (kept for rejoins once the server confirms it). */
  key?: string | undefined;
}

/** `modes` with `letter` added or removed (each letter at most once). */
export function withMode(modes: string, letter: string, adding: boolean): string {
  if (adding) return modes.includes(letter) ? modes : modes + letter;
  return modes.replace(letter, "");
}

export async function join(c: IrcConnection, channel: string, key?: string): Promise<RoomSnapshot> {
  const lower = ircLower(channel);
  const existing = c.channels.get(lower);
  if (existing?.synced) return snapshot(c, existing);
  const line = c.build("JOIN", [channel, ...(key ? [key] : [])]);
  return new Promise<RoomSnapshot>((resolve, reject) => {
    const joins = c.pendingJoins();
    const previous = joins.get(lower);
    if (previous) clearTimeout(previous.timer);
    const timer = setTimeout(
      () => settleJoin(c, lower, fail("timeout", `${c.host} did not answer the join of ${channel} in time`)),
      c.cfg.timeoutMs,
    );
    joins.set(lower, {
      resolve: (s) => {
        previous?.resolve(s);
        resolve(s);
      },
      reject: (e) => {
        previous?.reject(e);
        reject(e);
      },
      timer,
      rejoin: false,
      key,
    });
    if (key) {
      const ch = c.channels.get(lower);
      if (ch) ch.key = key;
    }
    c.enqueue([line]).catch((e: EstuaryError) => settleJoin(c, lower, e));
  });
}

export function settleJoin(c: IrcConnection, lower: string, result: EstuaryError | ChannelState): void {
  const pending = c.joins?.get(lower);
  if (!pending) return;
  c.joins!.delete(lower);
  if (c.joins!.size === 0) c.joins = undefined; // usually the only join: no empty Map kept per connection
  clearTimeout(pending.timer);
  if (result instanceof Error) {
    const ch = c.channels.get(lower);
    if (pending.rejoin && ch) {
      c.channels.delete(lower);
      c.hooks.emit({ type: "room-closed", room: ch.room, how: "error", reason: result.message });
    } else if (ch && !ch.synced) c.channels.delete(lower);
    pending.reject(result);
    if (c.channelCount === 0) c.hooks.onIdle();
  } else pending.resolve(snapshot(c, result));
}

export function failJoins(c: IrcConnection, e: EstuaryError): void {
  if (!c.joins) return;
  for (const [lower, p] of [...c.joins]) {
    if (p.rejoin) {
      c.joins.delete(lower);
      clearTimeout(p.timer);
    } else settleJoin(c, lower, e);
  }
}

export async function leave(c: IrcConnection, channel: string, reason?: string): Promise<void> {
  const lower = ircLower(channel);
  const ch = c.channels.get(lower);
  c.channels.delete(lower);
  if (c.joins?.has(lower)) settleJoin(c, lower, fail("not-found", "Left before the join completed"));
  if (ch && c.online) await c.enqueue([c.build("PART", [ch.name], reason ?? undefined)]);
  if (c.channelCount === 0) c.hooks.onIdle();
}

/** The join is complete: from now on the channel's events are live. */
export function finishJoin(c: IrcConnection, lower: string): void {
  const ch = c.channels.get(lower);
  if (!ch || ch.synced) return;
  clearTimeout(ch.barrier);
  ch.barrier = undefined;
  const before = ch.previous;
  ch.previous = undefined;
  ch.synced = true;
  c.relayRefused?.delete(lower);
  if (before) {
    emitDiff(c, ch, before);
    // A rejoin after a reconnect: what the server replayed is history the core de-duplicates.
    for (const m of ch.history?.splice(0) ?? []) c.hooks.emit(m);
  }
  settleJoin(c, lower, ch);
}

export function snapshot(c: IrcConnection, ch: ChannelState): RoomSnapshot {
  const snap: RoomSnapshot = {
    nick: c.nick,
    self: rolesFromModes(ch.selfModes),
    occupants: [...ch.occupants.values()].map((o) => occupant(c, o)),
  };
  if (ch.subject) snap.subject = ch.subject;
  if (ch.history?.length) snap.history = ch.history.splice(0);
  return snap;
}

export function occupant(c: IrcConnection, o: OccState): Occupant {
  const occ: Occupant = { nick: o.nick, contact: contactId(c.host, o.nick), ...rolesFromModes(o.modes) };
  if (o.away !== undefined) {
    occ.show = "away";
    if (o.away) occ.status = o.away;
  }
  return occ;
}

/** A rejoin after a reconnect: parts, joins and role changes between `before` and the channel now. */
function emitDiff(c: IrcConnection, ch: ChannelState, before: Map<string, OccState>): void {
  for (const [lower, o] of before) {
    if (!ch.occupants.has(lower)) c.hooks.emit({ type: "part", room: ch.room, nick: o.nick, how: "quit", reason: "Left while the gateway was disconnected" });
  }
  for (const [lower, o] of ch.occupants) {
    const old = before.get(lower);
    if (!old) c.hooks.emit({ type: "join", room: ch.room, occupant: occupant(c, o) });
    else {
      const a = rolesFromModes(old.modes);
      const b = rolesFromModes(o.modes);
      if (a.role !== b.role || a.affiliation !== b.affiliation) c.hooks.emit({ type: "occupant", room: ch.room, occupant: occupant(c, o) });
    }
  }
}
