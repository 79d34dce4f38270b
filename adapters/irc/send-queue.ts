/**
 * The lines one IRC connection is to write, in order, under flood control.
 *
 * Lines stay here until written: the head is taken only when it can go out
 * (urgent lines, i.e. rejoins after a reconnect, first), so a line never
 * waits anywhere else across a disconnection. The queue is bounded (a message
 * is queued whole or refused with queue-full), and a line that waits longer
 * than the retry window while the connection is down is refused with
 * `unavailable`: never a silent drop.
 */
import { fail, type EstuaryError } from "../../core/errors.ts";
import { TokenBucket } from "./flood.ts";
import { stripUnsafe } from "./lines.ts";

interface QueuedLine {
  line: string;
  urgent: boolean;
  resolve(): void;
  reject(error: EstuaryError): void;
  timer?: NodeJS.Timeout | undefined;
}

export interface SendQueueOptions {
  host: string;
  maxQueue: number;
  retryWindowMs: number;
  flood: { burst: number; intervalMs: number };
}

/** Where lines go: the connection's socket, when it is registered and connected. */
export interface LineSink {
  writable(): boolean;
  write(line: string, written: () => void): void;
}

export class SendQueue {
  private readonly options: SendQueueOptions;
  private readonly sink: LineSink;
  private readonly queue: QueuedLine[] = [];
  /** Flood control; undefined when lifted (intervalMs 0). */
  private readonly bucket: TokenBucket | undefined;
  /** Set while the queue waits for the bucket's next token. */
  private floodTimer: NodeJS.Timeout | undefined;
  private draining = false;
  private online = false;

  constructor(options: SendQueueOptions, sink: LineSink) {
    this.options = options;
    this.sink = sink;
    // Token bucket: `burst` lines at once, then one more every intervalMs (Libera-like defaults).
    this.bucket = options.flood.intervalMs > 0 ? new TokenBucket(options.flood.burst, options.flood.intervalMs) : undefined;
  }

  get length(): number {
    return this.queue.length;
  }

  /** Queues lines, all or none; resolves once every line is written to the socket. */
  enqueue(lines: string[], urgent = false): Promise<void> {
    if (this.queue.length + lines.length > this.options.maxQueue) {
      return Promise.reject(fail("queue-full", `Not sent: too many messages are waiting to be sent to ${this.options.host}; try again later`));
    }
    const all = lines.map(
      (line) =>
        new Promise<void>((resolve, reject) => {
          const q: QueuedLine = { line: stripUnsafe(line), urgent, resolve, reject };
          if (!this.online) this.armRetryTimer(q);
          this.queue.push(q);
        }),
    );
    this.pump();
    return Promise.all(all).then(() => {});
  }

  /**
   * Puts lines back at the head of the queue (behind urgent ones, i.e. the
   * rejoins): lines written to a connection that then died without the
   * server echoing them (echo-message), so they go out again, in their
   * original order, after the reconnect. Not bounded by maxQueue: they were
   * already counted once.
   */
  requeue(lines: string[]): Promise<void> {
    const items: QueuedLine[] = [];
    const all = lines.map(
      (line) =>
        new Promise<void>((resolve, reject) => {
          const q: QueuedLine = { line: stripUnsafe(line), urgent: false, resolve, reject };
          if (!this.online) this.armRetryTimer(q);
          items.push(q);
        }),
    );
    this.queue.unshift(...items);
    this.pump();
    return Promise.all(all).then(() => {});
  }

  /** The connection is registered: waiting lines stop counting against the retry window and go out. */
  setOnline(online: boolean): void {
    this.online = online;
    for (const q of this.queue) {
      if (online) {
        clearTimeout(q.timer);
        q.timer = undefined;
      } else this.armRetryTimer(q);
    }
    if (online) this.pump();
  }

  /** Refuses everything waiting (the session closed, or the server refused us for good). */
  rejectAll(e: EstuaryError): void {
    for (const q of this.queue.splice(0)) {
      clearTimeout(q.timer);
      q.reject(e);
    }
  }

  stop(): void {
    clearTimeout(this.floodTimer);
    this.floodTimer = undefined;
  }

  /**
   * Writes on the next microtask, so lines queued in the same turn (rejoins
   * after a reconnect, which are urgent) are ordered before what waited.
   * With flood control lifted (a private server) everything queued goes at
   * once (bench/irc: one limiter job per line capped the rate).
   */
  pump(): void {
    if (!this.online || this.draining || this.floodTimer) return;
    this.draining = true;
    queueMicrotask(() => {
      this.draining = false;
      this.drain();
    });
  }

  private drain(): void {
    if (!this.online || !this.sink.writable()) return;
    while (this.queue.length > 0) {
      const wait = this.bucket?.take() ?? 0;
      if (wait > 0) {
        this.floodTimer = setTimeout(() => {
          this.floodTimer = undefined;
          this.drain();
        }, wait);
        return;
      }
      const urgent = this.queue.findIndex((q) => q.urgent);
      const [q] = this.queue.splice(urgent >= 0 ? urgent : 0, 1);
      if (!q) return;
      clearTimeout(q.timer);
      this.sink.write(q.line, () => q.resolve());
    }
  }

  private armRetryTimer(q: QueuedLine): void {
    if (q.timer) return;
    q.timer = setTimeout(() => {
      const i = this.queue.indexOf(q);
      if (i < 0) return;
      this.queue.splice(i, 1);
      q.reject(fail("unavailable", `Not sent: ${this.options.host} could not be reached within ${Math.round(this.options.retryWindowMs / 1000)} s`));
    }, this.options.retryWindowMs);
  }
}
