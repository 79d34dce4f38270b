/**
 * What each Matrix reaction annotated (spec: "Event annotations and
 * reactions"). Removing a reaction is a redaction naming only the reaction
 * event, whose relation the redaction erases; to send the sender's new
 * XEP-0444 set the adapter must remember, per reaction event, its target,
 * sender and key. Recent ones live in memory; all are kept in the user's
 * store too, so a reaction removed after a gateway restart is still known.
 *
 * Bounds, and why bucketed: every ScopedStore name is listed in the user's
 * store index until deleted (core/store/index.ts), TTL'd or not, so one key
 * per reaction would grow that index without end. Instead reactions go to a
 * fixed number of buckets (by a hash of the event id), each holding at most
 * BUCKET_CAP entries, oldest dropped first: at most BUCKETS keys and
 * BUCKETS × BUCKET_CAP reactions per user, and one small value rewritten per
 * reaction. Entries also age out after TTL_MS, the id map's default lifetime
 * (core/store/index.ts, 30 days): past it the core no longer knows the
 * reacted message's XMPP id and would drop the update anyway. Buckets carry
 * the same TTL, refreshed on each write, so an idle user's buckets expire.
 */
import { createHash } from "node:crypto";
import type { ScopedStore } from "../../core/adapter.ts";

export interface Reaction {
  target: string;
  sender: string;
  key: string;
}

/** [reaction event id, target, sender, key, when seen (ms)] */
type Entry = [string, string, string, string, number];

export const BUCKETS = 64;
export const BUCKET_CAP = 128;
export const TTL_MS = 30 * 24 * 60 * 60_000;
const MEMORY_CAP = 5000;

export class ReactionLog {
  private readonly store: ScopedStore;
  private readonly now: () => number;
  private readonly recent = new Map<string, Reaction>();
  /** Bucket writes run one after another: a read-modify-write must not lose a concurrent one. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(store: ScopedStore, now: () => number = Date.now) {
    this.store = store;
    this.now = now;
  }

  private static bucketOf(eventId: string): string {
    return `reactions.${createHash("sha256").update(eventId).digest().readUInt16BE(0) % BUCKETS}`;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  private async read(bucket: string): Promise<Entry[]> {
    const entries = (await this.store.get<Entry[]>(bucket)) ?? [];
    const cutoff = this.now() - TTL_MS;
    return entries.filter((e) => e[4] >= cutoff);
  }

  /** Remembers a reaction event (memory and store). */
  add(eventId: string, r: Reaction): Promise<void> {
    this.recent.set(eventId, r);
    if (this.recent.size > MEMORY_CAP) this.recent.delete(this.recent.keys().next().value!);
    const bucket = ReactionLog.bucketOf(eventId);
    return this.serial(async () => {
      const entries = (await this.read(bucket)).filter((e) => e[0] !== eventId);
      entries.push([eventId, r.target, r.sender, r.key, this.now()]);
      await this.store.set(bucket, entries.slice(-BUCKET_CAP), TTL_MS);
    });
  }

  /** What a redacted event annotated, if it was a reaction we know of; forgets it. */
  take(eventId: string): Promise<Reaction | undefined> {
    const cached = this.recent.get(eventId);
    this.recent.delete(eventId);
    const bucket = ReactionLog.bucketOf(eventId);
    return this.serial(async () => {
      const entries = await this.read(bucket);
      const found = entries.find((e) => e[0] === eventId);
      if (found) await this.store.set(bucket, entries.filter((e) => e !== found), TTL_MS);
      if (cached) return cached;
      return found ? { target: found[1], sender: found[2], key: found[3] } : undefined;
    });
  }
}
