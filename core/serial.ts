/**
 * Runs tasks one after another per key, different keys in parallel, with a
 * bound on how many may wait per key. Keeps a user's messages to one chat in
 * the order they were sent while a slow join elsewhere does not hold them up.
 */
import { fail } from "./errors.ts";

export class KeyedSerial {
  private readonly tails = new Map<string, { promise: Promise<void>; waiting: number }>();
  private readonly maxWaiting: number;

  constructor(maxWaiting: number) {
    this.maxWaiting = maxWaiting;
  }

  /** Queues `task` behind the key's earlier tasks. Throws queue-full at once when too many wait. */
  run(key: string, task: () => Promise<void>): Promise<void> {
    const tail = this.tails.get(key);
    if (tail && tail.waiting >= this.maxWaiting) {
      return Promise.reject(fail("queue-full", "Too many requests in flight; slow down"));
    }
    const entry = tail ?? { promise: Promise.resolve(), waiting: 0 };
    entry.waiting++;
    const next = entry.promise.then(task).finally(() => {
      entry.waiting--;
      if (entry.waiting === 0 && this.tails.get(key) === entry) this.tails.delete(key);
    });
    entry.promise = next.catch(() => {});
    this.tails.set(key, entry);
    return next;
  }

  get size(): number {
    return this.tails.size;
  }

  /** Tasks queued or running, over all keys (a metric). */
  get waiting(): number {
    let n = 0;
    for (const t of this.tails.values()) n += t.waiting;
    return n;
  }
}
