/**
 * Waiting helpers for tests: poll a condition with a deadline, or await one
 * event. Both fail with an error that says what was awaited, so a timeout in
 * CI reads as "timed out after 5000 ms waiting for B to receive the message"
 * rather than a bare vitest timeout.
 */
import type { EventEmitter } from "node:events";

export interface WaitOptions {
  /** Deadline in ms (default 5000). */
  timeout?: number;
  /** Poll interval in ms (default 20). */
  interval?: number;
  /** What we wait for, for the error message. */
  what?: string;
}

/**
 * Calls `fn` until it returns something other than `undefined` (sync or async)
 * and resolves with it. An exception from `fn` is kept and reported if the
 * deadline passes, so assertions can be polled too.
 */
export async function waitFor<T>(
  fn: () => T | undefined | Promise<T | undefined>,
  opts: WaitOptions = {},
): Promise<T> {
  const timeout = opts.timeout ?? 5000;
  const interval = opts.interval ?? 20;
  const what = opts.what ?? "condition";
  const deadline = Date.now() + timeout;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : "";
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${detail}`, {
        cause: lastError,
      });
    }
    await new Promise((r) => setTimeout(r, Math.min(interval, Math.max(1, deadline - Date.now()))));
  }
}

export interface OnceEventOptions<A extends unknown[]> {
  /** Deadline in ms (default 5000). */
  timeout?: number;
  /** Only resolve for emissions whose arguments pass this test. */
  filter?: (...args: A) => boolean;
  /** What we wait for, for the error message (defaults to the event name). */
  what?: string;
  /** Also reject when the emitter emits "error" meanwhile (default false:
   * xmpp.js emits a stream error just before the "disconnect" one may await). */
  rejectOnError?: boolean;
}

/**
 * Resolves with the arguments of the next `event` emission that passes
 * `filter`. Rejects on timeout, and on an `error` emission if `rejectOnError`.
 */
export function onceEvent<A extends unknown[] = unknown[]>(
  emitter: EventEmitter,
  event: string,
  opts: OnceEventOptions<A> = {},
): Promise<A> {
  const timeout = opts.timeout ?? 5000;
  const what = opts.what ?? `event "${event}"`;
  const watchErrors = opts.rejectOnError === true && event !== "error";
  return new Promise<A>((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
      if (watchErrors) emitter.off("error", onError);
    };
    const onEvent = (...args: unknown[]): void => {
      const typed = args as A;
      if (opts.filter) {
        let pass: boolean;
        try {
          pass = opts.filter(...typed);
        } catch (err) {
          cleanup();
          reject(err);
          return;
        }
        if (!pass) return;
      }
      cleanup();
      resolve(typed);
    };
    const onError = (err: unknown): void => {
      cleanup();
      reject(new Error(`error while waiting for ${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeout} ms waiting for ${what}`));
    }, timeout);
    emitter.on(event, onEvent);
    if (watchErrors) emitter.on("error", onError);
  });
}
