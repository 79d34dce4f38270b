/**
 * A server's public channel list (`LIST`, RFC 2812 §3.2.6): the answer is
 * 321 RPL_LISTSTART (optional), one 322 RPL_LIST per channel, 323
 * RPL_LISTEND (RFC 2812 §5.1). One request at a time per connection, its
 * result kept for a short while so a client paging through it (XEP-0059 on
 * the server's JID) does not make the server list everything again per page.
 */
import type { ParsedMessage } from "irc-framework";
import { fail, type EstuaryError } from "../../core/errors.ts";
import { stripUnsafe } from "./lines.ts";

export interface ListedChannel {
  /** The channel's name as the server spells it. */
  name: string;
  users: number;
  /** The topic as sent (IRC formatting included), without InspIRCd's `[+modes]` prefix. */
  topic: string;
}

export interface ChannelListOptions {
  /** Writes `LIST` (through the connection's flood-controlled queue); rejects when it cannot. */
  send(): Promise<void>;
  /**
   * Most channels kept. A big network (Libera: some 50 000 channels) would
   * otherwise hold tens of megabytes per user for one listing; beyond the cap
   * the rest of the answer is read and dropped, and what was kept is the
   * result (a client pages through a few hundred at most).
   */
  maxEntries?: number;
  /** Longest wait for 323; past it what came is the result, or a timeout error when nothing did. */
  timeoutMs?: number;
  /** How long a result is reused. */
  cacheMs?: number;
  now?: () => number;
}

export const LIST_MAX_ENTRIES = 10_000;
export const LIST_TIMEOUT_MS = 30_000;
export const LIST_CACHE_MS = 60_000;

interface Pending {
  entries: ListedChannel[];
  /** Settled already (cap reached): later lines of this answer are only consumed. */
  settled: boolean;
  resolve(list: ListedChannel[]): void;
  reject(e: EstuaryError): void;
  timer: NodeJS.Timeout;
}

/** InspIRCd (and Solanum with some settings) put the channel modes before the topic: `[+nt] topic`. */
const MODES_PREFIX = /^\[\+[^\]\s]*(?: [^\]]*)?\] ?/;

export class ChannelList {
  private readonly opts: Required<Omit<ChannelListOptions, "send">> & Pick<ChannelListOptions, "send">;
  private pending: Pending | undefined;
  private inflight: Promise<ListedChannel[]> | undefined;
  private cached: { at: number; list: ListedChannel[] } | undefined;
  /** Drops the cached list once stale: up to maxEntries channels per user must not stay for the connection's life. */
  private expiry: NodeJS.Timeout | undefined;

  constructor(options: ChannelListOptions) {
    this.opts = {
      maxEntries: LIST_MAX_ENTRIES,
      timeoutMs: LIST_TIMEOUT_MS,
      cacheMs: LIST_CACHE_MS,
      now: Date.now,
      ...options,
    };
  }

  /** The server's channels: the cached result while fresh, else a new LIST (shared by concurrent callers). */
  list(): Promise<ListedChannel[]> {
    const c = this.cached;
    if (c && this.opts.now() - c.at < this.opts.cacheMs) return Promise.resolve(c.list);
    if (this.inflight) return this.inflight;
    const p = new Promise<ListedChannel[]>((resolve, reject) => {
      const pending: Pending = {
        entries: [],
        settled: false,
        resolve: (list) => {
          if (pending.settled) return;
          pending.settled = true;
          this.cached = { at: this.opts.now(), list };
          clearTimeout(this.expiry);
          this.expiry = setTimeout(() => (this.cached = undefined), this.opts.cacheMs);
          this.expiry.unref?.();
          this.inflight = undefined;
          resolve(list);
        },
        reject: (e) => {
          if (pending.settled) return;
          pending.settled = true;
          this.inflight = undefined;
          reject(e);
        },
        timer: setTimeout(() => this.finish(pending, true), this.opts.timeoutMs),
      };
      pending.timer.unref?.();
      // An earlier answer still draining (cap reached) is forgotten: its last lines would be mixed in.
      if (this.pending) clearTimeout(this.pending.timer);
      this.pending = pending;
      this.opts.send().catch((e: EstuaryError) => {
        if (this.pending === pending) this.pending = undefined;
        clearTimeout(pending.timer);
        pending.reject(e);
      });
    });
    this.inflight = p;
    return p;
  }

  /** The connection is closing: nothing kept, no timer left. */
  dispose(): void {
    clearTimeout(this.expiry);
    this.cached = undefined;
    if (this.pending) {
      clearTimeout(this.pending.timer);
      this.pending.reject(fail("unavailable", "The connection closed before the server listed its channels"));
      this.pending = undefined;
    }
  }

  /** Lines of a LIST answer (or its refusal): true when consumed here. */
  onMessage(msg: ParsedMessage): boolean {
    const p = this.pending;
    if (!p) return false;
    const reason = stripUnsafe(msg.params[msg.params.length - 1] ?? "");
    switch (msg.command) {
      case "321": // RPL_LISTSTART
        return true;
      case "322": {
        // RPL_LIST: <client> <channel> <# visible> :<topic>
        if (!p.settled && p.entries.length < this.opts.maxEntries) {
          const name = stripUnsafe(msg.params[1] ?? "");
          const users = Number(msg.params[2]);
          const topic = msg.params.length > 3 ? reason.replace(MODES_PREFIX, "") : "";
          if (name !== "") p.entries.push({ name, users: Number.isFinite(users) && users >= 0 ? users : 0, topic });
          if (p.entries.length >= this.opts.maxEntries) p.resolve(p.entries);
        }
        return true;
      }
      case "323": // RPL_LISTEND
        this.finish(p, false);
        return true;
      case "263": // RPL_TRYAGAIN <client> <command> :Please wait a while and try again.
        if ((msg.params[1] ?? "").toUpperCase() !== "LIST") return false;
        this.fail(p, fail("rate-limited", `The server refuses to list its channels right now: ${reason}`, { retryAfter: 60 }));
        return true;
      case "421": // ERR_UNKNOWNCOMMAND
        if ((msg.params[1] ?? "").toUpperCase() !== "LIST") return false;
        this.fail(p, fail("unsupported", "This server does not list its channels"));
        return true;
      case "416": // ERR_TOOMANYMATCHES: the output is too large; keep what came, if anything.
        if (p.entries.length > 0) this.finish(p, false);
        else this.fail(p, fail("not-allowed", `The server refuses to list its channels: ${reason}`));
        return true;
      case "481": // ERR_NOPRIVILEGES (LIST restricted to operators)
        this.fail(p, fail("forbidden", `The server refuses to list its channels: ${reason}`));
        return true;
      default:
        return false;
    }
  }

  private finish(p: Pending, timedOut: boolean): void {
    clearTimeout(p.timer);
    if (this.pending === p) this.pending = undefined;
    if (timedOut && p.entries.length === 0) p.reject(fail("timeout", "The server did not list its channels in time"));
    else p.resolve(p.entries);
  }

  private fail(p: Pending, e: EstuaryError): void {
    clearTimeout(p.timer);
    if (this.pending === p) this.pending = undefined;
    p.reject(e);
  }
}
