/**
 * What the fake IRC server keeps for IRCv3 chathistory
 * (https://ircv3.net/specs/extensions/chathistory): every PRIVMSG and NOTICE
 * to a channel or between two people, in one order per target. Timestamps are
 * made strictly increasing (a message in the same millisecond as the previous
 * one is stamped 1 ms later), so `timestamp=` references order messages as
 * unambiguously as `msgid=` ones ("Servers SHOULD provide clients with a
 * consistent message order … which determinately orders any two messages").
 */

export interface StoredMessage {
  msgid: string;
  time: Date;
  /** `nick!user@host` of the sender (the spoofed nick for RELAYMSG). */
  prefix: string;
  command: "PRIVMSG" | "NOTICE";
  target: string;
  text: string;
  /** draft/relaymsg: the nick of the client that relayed it. */
  relayedBy?: string;
}

/** A message reference (spec "msgref"): `*`, `msgid=…` or `timestamp=YYYY-MM-DDThh:mm:ss.sssZ`. */
export type MsgRef = { kind: "*" } | { kind: "msgid"; msgid: string } | { kind: "timestamp"; at: Date };

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z$/;

/** undefined: not a valid reference (the server answers FAIL CHATHISTORY INVALID_PARAMS). */
export function parseMsgRef(raw: string): MsgRef | undefined {
  if (raw === "*") return { kind: "*" };
  const eq = raw.indexOf("=");
  if (eq < 0) return undefined;
  const type = raw.slice(0, eq);
  const value = raw.slice(eq + 1);
  if (type === "msgid" && value !== "") return { kind: "msgid", msgid: value };
  if (type === "timestamp" && TIMESTAMP.test(value)) {
    const at = new Date(value);
    if (!Number.isNaN(at.getTime())) return { kind: "timestamp", at };
  }
  return undefined;
}

export type Subcommand = "LATEST" | "BEFORE" | "AFTER" | "AROUND" | "BETWEEN";

export class TargetHistory {
  readonly messages: StoredMessage[] = [];
  private lastMs = 0;

  /** The time to stamp the next message with (strictly after the previous one). */
  nextTime(now = Date.now()): Date {
    this.lastMs = Math.max(now, this.lastMs + 1);
    return new Date(this.lastMs);
  }

  add(m: StoredMessage): void {
    this.messages.push(m);
  }

  /**
   * Where a reference falls: `lo` messages lie strictly before it and the
   * messages from index `hi` on lie strictly after it (a msgid is one message:
   * hi = lo + 1). undefined: an unknown msgid (nothing is before or after it).
   */
  private bounds(ref: Exclude<MsgRef, { kind: "*" }>): { lo: number; hi: number } | undefined {
    const ms = this.messages;
    if (ref.kind === "msgid") {
      const i = ms.findIndex((m) => m.msgid === ref.msgid);
      return i < 0 ? undefined : { lo: i, hi: i + 1 };
    }
    const t = ref.at.getTime();
    const lo = ms.filter((m) => m.time.getTime() < t).length;
    const hi = ms.filter((m) => m.time.getTime() <= t).length;
    return { lo, hi };
  }

  /** The spec's subcommands; results are in ascending order, at most `limit`. */
  select(sub: Subcommand, refs: MsgRef[], limit: number): StoredMessage[] {
    const ms = this.messages;
    const [a, b] = refs;
    if (!a) return [];
    if (sub === "LATEST") {
      // "If a timestamp or msgid is given, the returned messages are restricted to those sent after
      // and excluding that timestamp or msgid; if a * is given, no such restriction applies."
      if (a.kind === "*") return ms.slice(-limit);
      const r = this.bounds(a);
      return r ? ms.slice(r.hi).slice(-limit) : [];
    }
    if (a.kind === "*") return [];
    const r = this.bounds(a);
    if (!r) return [];
    switch (sub) {
      case "BEFORE":
        return ms.slice(0, r.lo).slice(-limit);
      case "AFTER":
        return ms.slice(r.hi, r.hi + limit);
      case "AROUND": {
        // Implementation-defined split: half before, the rest from the reference on (it included).
        const before = ms.slice(0, r.lo).slice(-Math.floor(limit / 2));
        return [...before, ...ms.slice(r.lo, r.lo + (limit - before.length))];
      }
      case "BETWEEN": {
        if (!b || b.kind === "*") return [];
        const s = this.bounds(b);
        if (!s) return [];
        // "start from and exclude the first message selector, while finishing on and excluding the
        // second - this may be forwards or backwards in time": backwards keeps those nearest the first.
        if (r.hi <= s.lo) return ms.slice(r.hi, s.lo).slice(0, limit);
        if (s.hi <= r.lo) return ms.slice(s.hi, r.lo).slice(-limit);
        return [];
      }
    }
  }
}
