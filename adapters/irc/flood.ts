/**
 * Flood control for one IRC connection: a token bucket of `burst` lines that
 * gains one line every `intervalMs` (the scheme IRC servers apply to clients,
 * RFC 1459 §8.10 "flood control of clients"; Libera-like defaults in
 * options.ts). Refilled from timestamps when asked, so an idle connection
 * holds no timer and no per-connection limiter machinery: this replaced one
 * bottleneck instance per connection, which cost ~4 KB of heap per user
 * (bench/irc heap snapshots: its datastore, a dozen linked lists and their
 * closures).
 */
export class TokenBucket {
  private readonly burst: number;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private tokens: number;
  private last: number;

  constructor(burst: number, intervalMs: number, now: () => number = Date.now) {
    this.burst = Math.max(1, Math.floor(burst));
    this.intervalMs = intervalMs;
    this.now = now;
    this.tokens = this.burst;
    this.last = now();
  }

  /** Takes one line's token: 0 when taken, else the milliseconds until one is available (nothing taken). */
  take(): number {
    if (this.intervalMs <= 0) return 0;
    const t = this.now();
    const gained = Math.floor((t - this.last) / this.intervalMs);
    if (gained > 0) {
      this.tokens = Math.min(this.burst, this.tokens + gained);
      // A full bucket gains nothing while full: the next token counts from now.
      this.last = this.tokens === this.burst ? t : this.last + gained * this.intervalMs;
    }
    if (this.tokens >= 1) {
      if (this.tokens === this.burst) this.last = t;
      this.tokens--;
      return 0;
    }
    return Math.max(1, this.last + this.intervalMs - t);
  }
}
