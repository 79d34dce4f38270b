/**
 * The Client-Server API calls the adapter makes, on matrix-js-sdk's HTTP
 * layer (`client.http.authedRequest`, which neither queues nor retries).
 * The SDK's own send path (MatrixScheduler) silently retries and never fails
 * a promise on rate limits, so sends go through here: M_LIMIT_EXCEEDED is
 * waited out while the retry window allows (spec: "Rate limiting",
 * `Retry-After` preferred over the deprecated `retry_after_ms`), then the
 * caller gets `rate-limited`; writes to one room run in order through a
 * bounded queue whose overflow is refused with `queue-full`.
 */
import { rateLimitWaits } from "../../core/metrics.ts";
import { ConnectionError, createClient, MatrixError, Method, type MatrixClient } from "matrix-js-sdk";
import type { Logger as SdkLogger } from "matrix-js-sdk/lib/logger.js";
import type { Logger } from "../../core/log.ts";
import { EstuaryError, fail } from "../../core/errors.ts";

/** The SDK's logger interface on top of ours (debug noise goes to trace). */
export function sdkLogger(log: Logger): SdkLogger {
  const wrap =
    (level: "trace" | "info" | "warn" | "error") =>
    (...args: unknown[]) =>
      log[level]({ sdk: true }, args.map((a) => (a instanceof Error ? a.message : String(a))).join(" "));
  const l: SdkLogger = { trace: wrap("trace"), debug: wrap("trace"), info: wrap("trace"), warn: wrap("info"), error: wrap("warn"), getChild: () => l };
  return l;
}

export function makeClient(opts: { baseUrl: string; userId?: string; deviceId?: string; accessToken?: string; log: Logger }): MatrixClient {
  return createClient({
    baseUrl: opts.baseUrl,
    ...(opts.userId ? { userId: opts.userId } : {}),
    ...(opts.deviceId ? { deviceId: opts.deviceId } : {}),
    ...(opts.accessToken ? { accessToken: opts.accessToken } : {}),
    logger: sdkLogger(opts.log),
  });
}

export function retryAfterMs(err: MatrixError): number {
  try {
    const ms = err.getRetryAfterMs();
    if (ms !== null && ms >= 0) return ms;
  } catch {
    // A malformed Retry-After: fall back to a second.
  }
  return 1000;
}

/** An SDK error as the user should hear it. */
export function toEstuaryError(err: unknown, what = "The Matrix server refused"): EstuaryError {
  if (err instanceof EstuaryError) return err;
  if (err instanceof MatrixError) {
    const text = `${what}: ${err.data.error ?? err.errcode ?? `HTTP ${err.httpStatus}`}`;
    switch (err.errcode) {
      case "M_FORBIDDEN":
        return fail("not-allowed", text, { cause: err });
      case "M_NOT_FOUND":
        return fail("not-found", text, { cause: err });
      case "M_TOO_LARGE":
        return fail("too-large", text, { cause: err });
      case "M_LIMIT_EXCEEDED":
        return fail("rate-limited", text, { cause: err, retryAfter: Math.ceil(retryAfterMs(err) / 1000) });
      case "M_UNKNOWN_TOKEN":
      case "M_MISSING_TOKEN":
        return fail("not-allowed", "The Matrix login is no longer valid; register again", { cause: err });
      case "M_BAD_JSON":
      case "M_NOT_JSON":
      case "M_INVALID_PARAM":
        return fail("bad-request", text, { cause: err });
    }
    if (err.httpStatus !== undefined && err.httpStatus >= 500) return fail("unavailable", text, { cause: err });
    return fail("not-acceptable", text, { cause: err });
  }
  if (err instanceof ConnectionError) return fail("unavailable", "The Matrix server cannot be reached", { cause: err });
  if (err instanceof Error && err.name === "AbortError") return fail("unavailable", "The Matrix session closed", { cause: err });
  return fail("internal", "Matrix request failed", { cause: err });
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(fail("unavailable", "The Matrix session closed"));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(fail("unavailable", "The Matrix session closed"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs `call` until it succeeds, waiting out rate limits and connection
 * errors while `windowMs` (from the first attempt) allows; then rejects with
 * `rate-limited` / `unavailable`. Other errors reject at once.
 */
export async function withRetry<T>(call: () => Promise<T>, opts: { windowMs: number; signal: AbortSignal; what?: string }): Promise<T> {
  const started = Date.now();
  let backoff = 250;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (opts.signal.aborted) throw fail("unavailable", "The Matrix session closed", { cause: err });
      let wait: number;
      if (err instanceof MatrixError && (err.errcode === "M_LIMIT_EXCEEDED" || err.httpStatus === 429)) {
        wait = retryAfterMs(err);
        rateLimitWaits.inc({ network: "matrix" });
        if (Date.now() - started + wait > opts.windowMs) {
          throw fail("rate-limited", `The Matrix server is rate-limiting; retry in ${Math.ceil(wait / 1000)} s`, {
            cause: err,
            retryAfter: Math.ceil(wait / 1000),
          });
        }
      } else if (err instanceof ConnectionError) {
        wait = backoff;
        backoff = Math.min(backoff * 2, 10_000);
        if (Date.now() - started + wait > opts.windowMs) throw fail("unavailable", "The Matrix server cannot be reached", { cause: err });
      } else {
        throw toEstuaryError(err, opts.what);
      }
      await sleep(wait, opts.signal);
    }
  }
}

/** Bounded in-order queues, one per key (a room): overflow is refused, never dropped. */
export class KeyedQueues {
  private readonly tails = new Map<string, { tail: Promise<unknown>; size: number }>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  size(key: string): number {
    return this.tails.get(key)?.size ?? 0;
  }

  run<T>(key: string, job: () => Promise<T>): Promise<T> {
    let entry = this.tails.get(key);
    if (!entry) this.tails.set(key, (entry = { tail: Promise.resolve(), size: 0 }));
    if (entry.size >= this.max) {
      return Promise.reject(fail("queue-full", `Too many messages are waiting for this Matrix room (${this.max}); try again shortly`));
    }
    entry.size++;
    const e = entry;
    const result = e.tail.then(job);
    e.tail = result.then(
      () => undefined,
      () => undefined,
    ).finally(() => {
      e.size--;
      if (e.size === 0 && this.tails.get(key) === e) this.tails.delete(key);
    });
    return result;
  }
}

export { Method };

/** The SDK's request options (its typing wants RequestInit's `priority`, which it treats as optional). */
export type ReqOpts = NonNullable<Parameters<MatrixClient["http"]["authedRequest"]>[4]>;

/** `authedRequest` with the v3 client prefix (the SDK's default). */
export function api<T>(
  client: MatrixClient,
  method: Method,
  path: string,
  opts: { query?: Record<string, string>; body?: unknown; signal?: AbortSignal; timeoutMs?: number; prefix?: string } = {},
): Promise<T> {
  return client.http.authedRequest<T>(method, path, opts.query, opts.body as never, {
    ...(opts.signal ? { abortSignal: opts.signal } : {}),
    ...(opts.timeoutMs ? { localTimeoutMs: opts.timeoutMs } : {}),
    ...(opts.prefix ? { prefix: opts.prefix } : {}),
  } as ReqOpts);
}

export const enc = encodeURIComponent;
