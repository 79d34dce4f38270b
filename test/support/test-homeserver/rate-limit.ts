/**
 * Injected rate limiting: the next matching request(s) get
 * 429 M_LIMIT_EXCEEDED with `retry_after_ms` and a `Retry-After` header
 * (spec: "Rate limiting"; the header is in whole seconds since v1.10).
 */
import { MatrixHttpError, type Reply, errorReply } from "./http.ts";

export interface LimitOptions {
  /** Delay the server asks for; default 100 ms (header rounds up to 1 s). */
  retryAfterMs?: number;
  /** How many matching requests are refused; default 1. */
  count?: number;
}

interface Rule {
  method?: string;
  test: (path: string) => boolean;
  retryAfterMs: number;
  remaining: number;
}

const METHODS = new Set(["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"]);

export class RateLimiter {
  private rules: Rule[] = [];

  /**
   * `matcher`: a RegExp tested against the request path, or a string that
   * must occur in the path, optionally prefixed by a method ("PUT /send/").
   */
  add(matcher: string | RegExp, opts: LimitOptions = {}): void {
    let method: string | undefined;
    let test: (path: string) => boolean;
    if (typeof matcher === "string") {
      const [first, ...rest] = matcher.split(" ");
      let needle = matcher;
      if (first && METHODS.has(first) && rest.length > 0) {
        method = first;
        needle = rest.join(" ");
      }
      test = (path) => path.includes(needle);
    } else {
      test = (path) => matcher.test(path);
    }
    this.rules.push({ method, test, retryAfterMs: opts.retryAfterMs ?? 100, remaining: opts.count ?? 1 });
  }

  /** A 429 reply if a rule claims this request, consuming one of its uses. */
  check(method: string, path: string): Reply | undefined {
    const rule = this.rules.find((r) => r.remaining > 0 && (!r.method || r.method === method) && r.test(path));
    if (!rule) return undefined;
    rule.remaining -= 1;
    this.rules = this.rules.filter((r) => r.remaining > 0);
    const err = new MatrixHttpError(429, "M_LIMIT_EXCEEDED", "Too many requests", { retry_after_ms: rule.retryAfterMs });
    return errorReply(err, { "Retry-After": String(Math.ceil(rule.retryAfterMs / 1000)) });
  }
}
