/**
 * Channel operations of an IrcConnection that the server confirms by
 * relaying them back (TOPIC, KICK, a ban's MODE +b and KICK): the XMPP
 * request succeeds when the server shows it done and fails with its refusal
 * (XEP-0045 §8.1: forbidden for a subject change; §8.2: a refused kick)
 * instead of succeeding beside a server notice.
 */
import { fail, type EstuaryError } from "../../core/errors.ts";
import type { IrcConnection } from "./connection.ts";
import { ircLower } from "./ids.ts";
import { oneLine, safeMiddle } from "./lines.ts";

/** Numerics refusing a channel operation, naming the channel. */
const CHANNEL_OP_ERRORS: Record<string, (text: string) => EstuaryError> = {
  "482": (t) => fail("forbidden", t), // ERR_CHANOPRIVSNEEDED
  "442": (t) => fail("not-acceptable", t), // ERR_NOTONCHANNEL
  "403": (t) => fail("not-found", t), // ERR_NOSUCHCHANNEL
};

/** A TOPIC or KICK sent and not yet seen done (the server relays it to the channel) or refused. */
export interface OpWait {
  lower: string;
  command: "TOPIC" | "KICK";
  /** KICK: the lowered nick kicked. */
  nick?: string;
  /** Error numerics the lines may still draw (a ban's MODE and KICK are refused once each). */
  errorsLeft: number;
  settled: boolean;
  done(error?: EstuaryError): void;
}

export async function topic(c: IrcConnection, channel: string, text: string): Promise<void> {
  await confirmed(c, [c.build("TOPIC", [channel], oneLine(text))], { lower: ircLower(channel), command: "TOPIC" });
}

export async function kick(c: IrcConnection, channel: string, nick: string, reason?: string): Promise<void> {
  await confirmed(c, [c.build("KICK", [channel, nick], reason ? oneLine(reason) : undefined)], {
    lower: ircLower(channel),
    command: "KICK",
    nick: ircLower(nick),
  });
}

export async function ban(c: IrcConnection, channel: string, nick: string, reason?: string): Promise<void> {
  const mask = `${safeMiddle(nick) ?? ""}!*@*`;
  await confirmed(c, [c.build("MODE", [channel, "+b", mask]), c.build("KICK", [channel, nick], reason ? oneLine(reason) : undefined)], {
    lower: ircLower(channel),
    command: "KICK",
    nick: ircLower(nick),
  });
}

/**
 * Sends a channel operation and resolves once the server relays it back
 * (TOPIC, KICK), rejects on its refusal (482…); after the timeout it is
 * taken as done (a server that answers nothing refused nothing we can tell).
 */
async function confirmed(c: IrcConnection, lines: string[], what: Pick<OpWait, "lower" | "command" | "nick">): Promise<void> {
  let settle!: (error?: EstuaryError) => void;
  const result = new Promise<void>((resolve, reject) => {
    settle = (error) => (error ? reject(error) : resolve());
  });
  const remove = () => {
    const i = c.opWaits.indexOf(wait);
    if (i >= 0) c.opWaits.splice(i, 1);
  };
  const wait: OpWait = {
    ...what,
    errorsLeft: lines.length,
    settled: false,
    done: (error) => {
      if (!wait.settled) {
        wait.settled = true;
        settle(error);
      }
      if (!error || wait.errorsLeft <= 0) {
        clearTimeout(timer);
        remove();
      }
    },
  };
  const timer = setTimeout(() => {
    remove();
    wait.done();
  }, c.cfg.timeoutMs);
  c.opWaits.push(wait);
  try {
    await c.enqueue(lines);
  } catch (e) {
    clearTimeout(timer);
    remove();
    throw e;
  }
  await result;
}

/** The server relayed a TOPIC or KICK of ours: the oldest matching request is done. */
export function opDone(c: IrcConnection, lower: string, command: OpWait["command"], nick?: string): void {
  c.opWaits.find((w) => !w.settled && w.lower === lower && w.command === command && (nick === undefined || w.nick === nick))?.done();
}

/** TOPIC/KICK requests in flight: the connection is gone, no answer will come; they count as done. */
export function settleOpWaits(c: IrcConnection): void {
  for (const w of [...c.opWaits]) {
    w.errorsLeft = 0;
    w.done();
  }
}

/**
 * An error numeric that may refuse an operation in flight: 482/442/403 name
 * the channel, 441 ERR_USERNOTINCHANNEL names the nick, then the channel.
 * True when it answered one.
 */
export function refuseOp(c: IrcConnection, code: string, params: string[], reason: string): boolean {
  const opError = CHANNEL_OP_ERRORS[code];
  if (!opError && code !== "441") return false;
  const subject = params[1] ?? "";
  const channel = code === "441" ? (params[2] ?? "") : subject;
  const op = c.opWaits.find((w) => w.lower === ircLower(channel) && w.errorsLeft > 0);
  if (!op) return false;
  op.errorsLeft--;
  op.done(opError ? opError(`${subject}: ${reason}`) : fail("not-found", `${subject}: ${reason}`));
  return true;
}
