/**
 * Per-bot update queue with real long polling, following
 * https://core.telegram.org/bots/api#getupdates:
 * - `offset` confirms (forgets) every update with a smaller update_id; a
 *   negative offset keeps only the last |offset| updates;
 * - `limit` (1–100, default 100) caps the batch;
 * - `timeout` (seconds) holds the request open until an update arrives;
 * - a second concurrent getUpdates terminates the first with 409 Conflict;
 * - `allowed_updates` is applied when an update is created, so it "doesn't
 *   affect updates created before the call".
 */
import type { Update } from "grammy/types";
import { ApiError } from "./protocol.ts";

export type UpdateType = Exclude<keyof Update, "update_id">;

/** Update types delivered when allowed_updates is [] or was never set. */
const OPT_IN: ReadonlySet<string> = new Set(["chat_member", "message_reaction", "message_reaction_count"]);

interface Waiter {
  wake: () => void;
  fail: (error: ApiError) => void;
}

export class UpdateQueue {
  private nextId: number;
  private pending: Update[] = [];
  private waiter: Waiter | undefined;
  /** undefined = default set (everything except the opt-in types). */
  private allowed: ReadonlySet<string> | undefined;

  constructor(firstId: number) {
    this.nextId = firstId;
  }

  setAllowed(types: readonly string[] | undefined): void {
    if (types === undefined) return; // "If not specified, the previous setting will be used."
    this.allowed = types.length === 0 ? undefined : new Set(types);
  }

  accepts(type: UpdateType): boolean {
    return this.allowed === undefined ? !OPT_IN.has(type) : this.allowed.has(type);
  }

  /** Queues an update if its type is allowed; returns it with its update_id, or undefined if dropped. */
  push(type: UpdateType, payload: unknown): Update | undefined {
    if (!this.accepts(type)) return undefined;
    const update = { update_id: this.nextId++, [type]: structuredClone(payload) } as Update;
    this.pending.push(update);
    this.waiter?.wake();
    return update;
  }

  get size(): number {
    return this.pending.length;
  }

  dropAll(): void {
    this.pending = [];
  }

  private confirm(offset: number | undefined): void {
    if (offset === undefined || offset === 0) return;
    if (offset > 0) this.pending = this.pending.filter((u) => u.update_id >= offset);
    else this.pending = this.pending.slice(offset);
  }

  /**
   * Answers one getUpdates call. `onClose` registers a callback for the client
   * going away, so an aborted long poll does not keep a waiter alive.
   */
  poll(
    opts: { offset?: number; limit?: number; timeout?: number },
    onClose: (cb: () => void) => void,
  ): Promise<Update[]> {
    const limit = Math.min(Math.max(opts.limit ?? 100, 1), 100);
    this.confirm(opts.offset);
    // Whoever was polling before loses, as with two bot instances on one token.
    this.waiter?.fail(
      new ApiError(409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"),
    );
    const timeout = Math.max(opts.timeout ?? 0, 0);
    if (this.pending.length > 0 || timeout === 0) return Promise.resolve(this.pending.slice(0, limit));
    return new Promise<Update[]>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        if (this.waiter === waiter) this.waiter = undefined;
      };
      const waiter: Waiter = {
        wake: () => {
          finish();
          resolve(this.pending.slice(0, limit));
        },
        fail: (error) => {
          finish();
          reject(error);
        },
      };
      const timer = setTimeout(() => waiter.wake(), timeout * 1000);
      this.waiter = waiter;
      onClose(() => {
        if (this.waiter === waiter) finish();
      });
    });
  }

  /** Ends a pending long poll (server shutdown). */
  release(): void {
    this.waiter?.wake();
  }
}
