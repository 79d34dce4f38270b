/**
 * draft/relaymsg (ircv3-specifications PR #417) for an IrcConnection: a
 * bridge shows someone from another network under their own nick
 * (`RELAYMSG <channel> <nick> :<text>`). With echo-message each line is
 * confirmed by its echo or refused by `FAIL RELAYMSG`; a channel where the
 * server refuses it is remembered, and the session sends with a prefix there.
 */
import type { IrcConnection } from "./connection.ts";
import { ircLower } from "./ids.ts";
import { byteLength, maxBodyBytes, splitByBytes, stripUnsafe } from "./lines.ts";

/** draft/relaymsg: the tag naming the client that relayed a message (Ergo's name, then the spec text's). */
const RELAYMSG_TAGS = ["draft/relaymsg", "relaymsg"];

/** A RELAYMSG line written and not yet echoed or refused. */
export interface RelayWait {
  lower: string;
  nick: string;
  done(result: "ok" | "fail" | "timeout"): void;
}

/** The draft/relaymsg separators (the capability's value) when the server granted it, else undefined. */
export function relaySeparators(c: IrcConnection): string | undefined {
  const cap = c.client?.network.cap;
  if (!cap?.isEnabled("draft/relaymsg")) return undefined;
  return cap.available.get("draft/relaymsg") ?? "";
}

/** Who relayed a message, by its draft/relaymsg tag (undefined: not relayed). */
export function relayedBy(tags: Record<string, string> | undefined): string | undefined {
  if (!tags) return undefined;
  for (const t of RELAYMSG_TAGS) if (tags[t] !== undefined) return tags[t];
  return undefined;
}

/**
 * `RELAYMSG <channel> <nick> :<text>` for each line. Resolves false when it
 * cannot be used (no capability, refused in this channel): nothing was shown
 * and the caller sends otherwise.
 */
export async function relay(c: IrcConnection, channel: string, nick: string, lines: string[], action: boolean): Promise<boolean> {
  const lower = ircLower(channel);
  if (relaySeparators(c) === undefined || c.relayRefused?.has(lower)) return false;
  const lineLen = Number(c.client?.network.options.LINELEN) || 512;
  // Both what we send and the PRIVMSG the server makes of it (`:nick!user@host PRIVMSG …`) must fit.
  const relayed = maxBodyBytes({ lineLen, nick, command: "PRIVMSG", target: channel });
  const sent = lineLen - 2 - byteLength(`RELAYMSG ${channel} ${nick} :`);
  const limit = Math.min(relayed, sent) - (action ? 9 : 0);
  const out: string[] = [];
  for (const text of lines) {
    for (const piece of splitByBytes(stripUnsafe(text), limit)) {
      if (piece !== "") out.push(c.build("RELAYMSG", [channel, nick], action ? `\x01ACTION ${piece}\x01` : piece));
    }
  }
  if (out.length === 0) return true;
  const confirm = c.client?.network.cap.isEnabled("echo-message") === true && !c.relayUnechoed;
  const waits = confirm ? out.map(() => awaitRelay(c, lower, nick)) : [];
  try {
    await c.enqueue(out);
  } catch (e) {
    for (const w of waits) w.cancel();
    throw e;
  }
  const results = await Promise.all(waits.map((w) => w.result));
  // A refused line was not shown: the whole message goes again the other way (no loss).
  return !results.includes("fail");
}

function awaitRelay(c: IrcConnection, lower: string, nick: string): { result: Promise<"ok" | "fail" | "timeout">; cancel(): void } {
  let resolve!: (r: "ok" | "fail" | "timeout") => void;
  const result = new Promise<"ok" | "fail" | "timeout">((r) => (resolve = r));
  const settle = (r: "ok" | "fail" | "timeout") => {
    clearTimeout(timer);
    const i = c.relayWaits.indexOf(wait);
    if (i >= 0) c.relayWaits.splice(i, 1);
    resolve(r);
  };
  const wait: RelayWait = { lower, nick: ircLower(nick), done: settle };
  const timer = setTimeout(() => {
    if (!c.relayUnechoed) {
      c.relayUnechoed = true;
      c.log.info({ channel: lower }, "no echo of a RELAYMSG line in time; taken as sent, and no longer awaited");
    }
    settle("timeout");
  }, c.cfg.timeoutMs);
  c.relayWaits.push(wait);
  // Cancelled when the lines were never written: nothing to wait for, and no sign of a silent server.
  return { result, cancel: () => settle("timeout") };
}

/** A line this connection relayed came back (echo-message): its wait is done. */
export function relayEchoed(c: IrcConnection, lower: string, nick: string): void {
  const w = c.relayWaits.find((x) => x.lower === lower && x.nick === ircLower(nick));
  w?.done("ok");
}

/**
 * `FAIL RELAYMSG <code> … :<description>`: the oldest line waiting fails.
 * PRIVS_NEEDED and the like stop RELAYMSG in that channel until something
 * changes (op, rejoin); INVALID_NICK is about one nick: only that message
 * goes with a prefix.
 */
export function relayRefusedBy(c: IrcConnection, code: string | undefined, description: string): void {
  const w = c.relayWaits[0];
  if (!w) return;
  if (code !== "INVALID_NICK") {
    const refused = (c.relayRefused ??= new Map());
    if (!refused.has(w.lower)) c.log.warn({ channel: w.lower, code, description }, "the server refuses RELAYMSG here; relaying with a prefix");
    refused.set(w.lower, `${code ?? "FAIL"}: ${description}`);
  }
  w.done("fail");
}
