/**
 * Typed errors, neutral to XMPP. Adapters and the core throw these; exactly
 * one place (core/stanzas/error.ts) turns them into stanza errors. The
 * message is the user-facing text and must never carry a secret.
 */

export type ErrorKind =
  | "bad-request" // malformed input from the XMPP side
  | "not-acceptable" // input understood but refused (wrong form value, too long)
  | "forbidden" // the requester may not do this
  | "registration-required" // the requester must register first
  | "not-found" // no such room, contact or message
  | "conflict" // nick in use, id already taken
  | "unsupported" // the network cannot do this (optional capability absent)
  | "service-unavailable" // nothing here answers this request (unknown IQ namespace, RFC 6120 §8.4)
  | "not-allowed" // the network refuses (no op rights, banned)
  | "unavailable" // the network or session is down and the retry window passed
  | "queue-full" // a bounded queue is full: the sender must hear about it
  | "rate-limited" // the network asked us to slow down and the wait is too long
  | "too-large" // body or file over a limit
  | "timeout" // the network did not answer in time
  | "internal"; // a bug: logged with its stack, reported vaguely

export class EstuaryError extends Error {
  readonly kind: ErrorKind;
  /** Seconds after which retrying may succeed (rate limits). */
  readonly retryAfter: number | undefined;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown; retryAfter?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "EstuaryError";
    this.kind = kind;
    this.retryAfter = options?.retryAfter;
  }
}

/** Shorthands so call sites read as sentences: `throw fail("not-found", "No such channel")`. */
export function fail(kind: ErrorKind, message: string, options?: { cause?: unknown; retryAfter?: number }): EstuaryError {
  return new EstuaryError(kind, message, options);
}

export function isEstuaryError(e: unknown): e is EstuaryError {
  return e instanceof EstuaryError;
}

/** Any thrown value as an EstuaryError; unknown errors become `internal`. */
export function asEstuaryError(e: unknown): EstuaryError {
  if (e instanceof EstuaryError) return e;
  return new EstuaryError("internal", "Internal gateway error", { cause: e });
}
