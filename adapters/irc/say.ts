/**
 * Sending PRIVMSGs for an IrcConnection and knowing they arrived. A message
 * is split to fit the server's LINELEN; with IRCv3 echo-message each line is
 * confirmed by its echo or refused by an error numeric (SEND_ERRORS, matched
 * in numerics.ts), so the XMPP sender gets an error (RFC 6120 §8.3) instead
 * of a server notice. Lines written to a connection that then dropped are
 * sent again after the reconnect (reconnect.ts calls resendUnechoed).
 */
import { fail, type EstuaryError } from "../../core/errors.ts";
import type { IrcConnection } from "./connection.ts";
import { ircLower } from "./ids.ts";
import { maxBodyBytes, splitByBytes, stripUnsafe } from "./lines.ts";

/** Echo keys remembered per target, so our echoed lines are not shown again as new messages. */
const ECHO_MEMORY = 64;

/** Longest a sent line waits for its echo; a server that does not echo is then no longer waited for. */
const ECHO_TIMEOUT_MS = 5000;

/**
 * Numerics refusing a PRIVMSG, by its target (RFC 2812 §3.3.1 and common
 * extensions): the message waiting for its echo fails with them.
 */
export const SEND_ERRORS: Record<string, (text: string) => EstuaryError> = {
  "401": (t) => fail("not-found", t), // ERR_NOSUCHNICK
  "403": (t) => fail("not-found", t), // ERR_NOSUCHCHANNEL
  "404": (t) => fail("forbidden", t), // ERR_CANNOTSENDTOCHAN (+m, +n, banned)
  "477": (t) => fail("forbidden", t), // ERR_NEEDREGGEDNICK (+R/+M: identify with services to speak)
  "486": (t) => fail("forbidden", t), // ERR_NONONREG (the person accepts messages only from identified users)
  "531": (t) => fail("forbidden", t), // ERR_CANTSENDTOUSER (InspIRCd)
  "716": (t) => fail("forbidden", t), // ERR_TARGUMODEG (caller-id: the person must accept you first)
};

/** A PRIVMSG sent and not yet echoed (echo-message) or refused, oldest first per target. */
export interface SayWait {
  lower: string;
  /** Echo keys (`P\ntext`) still expected. */
  keys: string[];
  /** The wire line of each key still expected (same index): sent again if the connection dies first. */
  lines: string[];
  done(error?: EstuaryError): void;
  /** Stops the echo timeout (the connection is down: no echo can come yet). */
  pause(): void;
  /** Starts the echo timeout again (the lines were written again). */
  resume(): void;
  /** Every line is written (lines still in the send queue need no resending: they go after the reconnect). */
  written: boolean;
}

/** The echo key of a line: its kind (P privmsg, A action, N notice) and text. */
export function echoKey(kind: "P" | "A" | "N", text: string): string {
  return `${kind}\n${text}`;
}

export async function say(c: IrcConnection, target: string, lines: string[], action: boolean, direct: boolean): Promise<void> {
  const lineLen = Number(c.client?.network.options.LINELEN) || 512;
  const out: string[] = [];
  const echoKeys: string[] = [];
  for (const text of lines) {
    // CTCP ACTION adds "\x01ACTION " and "\x01" (9 bytes) around the text.
    const limit =
      maxBodyBytes({ lineLen, nick: c.nick, user: c.ident, host: c.displayedHost, command: "PRIVMSG", target }) - (action ? 9 : 0);
    for (const piece of splitByBytes(stripUnsafe(text), limit)) {
      if (piece === "") continue;
      out.push(c.build("PRIVMSG", [target], action ? `\x01ACTION ${piece}\x01` : piece));
      echoKeys.push(echoKey(action ? "A" : "P", piece));
    }
  }
  if (out.length === 0) throw fail("not-acceptable", "Empty message: IRC cannot send it");
  const done = c.enqueue(out);
  // Remember what we sent so echo-message copies are not emitted (the core reflects them itself),
  // and wait for them: an echo confirms a line, an error numeric (401, 404…) refuses it.
  const echoing = c.client?.network.cap.isEnabled("echo-message") === true;
  const key = ircLower(target);
  if (echoing) {
    const echoes = (c.echoes ??= new Map());
    const list = echoes.get(key) ?? [];
    list.push(...echoKeys);
    echoes.set(key, list.slice(-ECHO_MEMORY));
  }
  const confirmed = echoing && !c.sayUnechoed ? awaitEchoes(c, key, echoKeys, out) : undefined;
  if (direct) c.hooks.onDirectActivity();
  try {
    await done;
  } catch (e) {
    confirmed?.cancel();
    throw e;
  }
  if (confirmed) {
    confirmed.wait.written = true;
    // Written to a connection that died meanwhile: sent again after the reconnect.
    if (c.online) confirmed.wait.resume();
    else resend(c, confirmed.wait);
    await confirmed.result;
  }
}

function awaitEchoes(c: IrcConnection, lower: string, keys: string[], lines: string[]): { result: Promise<void>; cancel(): void; wait: SayWait } {
  let settle!: (error?: EstuaryError) => void;
  let timer: NodeJS.Timeout | undefined;
  const result = new Promise<void>((resolve, reject) => {
    settle = (error) => {
      clearTimeout(timer);
      const i = c.sayWaits.indexOf(wait);
      if (i >= 0) c.sayWaits.splice(i, 1);
      if (error) reject(error);
      else resolve();
    };
  });
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!c.sayUnechoed) {
        c.sayUnechoed = true;
        c.log.info({ target: lower }, "no echo of a sent line in time; lines are taken as sent from now on");
      }
      settle();
    }, Math.min(c.cfg.timeoutMs, ECHO_TIMEOUT_MS));
  };
  // The echo timeout starts when the lines are written (say()), not while flood control holds them.
  const wait: SayWait = { lower, keys: [...keys], lines: [...lines], done: (e) => settle(e), pause: () => clearTimeout(timer), resume: arm, written: false };
  c.sayWaits.push(wait);
  return { result, cancel: () => settle(), wait };
}

/**
 * The connection died with messages written but not echoed: the server may
 * have closed before reading them (an IRC server restart), so their lines
 * go out again after the reconnect, ahead of what was typed meanwhile, and
 * their messages still wait for the echo. Refused past the retry window,
 * like any line.
 */
export function resendUnechoed(c: IrcConnection): void {
  for (const w of c.sayWaits) {
    w.pause();
    // Lines still queued go out after the reconnect anyway; a message cut by the drop halfway
    // through its lines is not resent (its written part may be lost: one long message, rarely).
    if (w.written) resend(c, w);
  }
}

function resend(c: IrcConnection, w: SayWait): void {
  if (w.lines.length === 0) return;
  c.lines.requeue(w.lines).then(
    () => w.resume(),
    (e: EstuaryError) => w.done(e),
  );
}

/** The session is closing: no echo will come; what was written counts as sent. */
export function settleSayWaits(c: IrcConnection): void {
  for (const w of [...c.sayWaits]) w.done();
}

/**
 * Our own line came back (echo-message): true when this session sent it (it
 * is then not shown again), and it counts for the oldest message waiting for it.
 */
export function takeEcho(c: IrcConnection, lower: string, key: string): boolean {
  const list = c.echoes?.get(lower);
  const i = list?.indexOf(key) ?? -1;
  if (!list || i < 0) return false;
  list.splice(i, 1);
  if (list.length === 0) {
    c.echoes!.delete(lower);
    if (c.echoes!.size === 0) c.echoes = undefined;
  }
  const wait = c.sayWaits.find((w) => w.lower === lower && w.keys.includes(key));
  if (wait) {
    const j = wait.keys.indexOf(key);
    wait.keys.splice(j, 1);
    wait.lines.splice(j, 1);
    if (wait.keys.length === 0) wait.done();
  }
  return true;
}

/** An error numeric naming `lower`: the oldest message sent there and not yet echoed fails with it. */
export function refuseSay(c: IrcConnection, lower: string, error: EstuaryError): boolean {
  const refused = c.sayWaits.find((w) => w.lower === lower);
  refused?.done(error);
  return refused !== undefined;
}
