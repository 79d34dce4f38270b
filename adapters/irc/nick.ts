/**
 * Changing our own nick on an IrcConnection: `NICK <new>` resolves when the
 * server relays the change back (the `nick` event for ourselves) and
 * rejects with the refusal (433 in use, 432 erroneous…; numerics.ts).
 * One change at a time.
 */
import { fail, type EstuaryError } from "../../core/errors.ts";
import type { IrcConnection } from "./connection.ts";
import { ircLower } from "./ids.ts";

/** A NICK sent and not yet answered. */
export interface NickChange {
  resolve(nick: string): void;
  reject(e: EstuaryError): void;
  timer: NodeJS.Timeout;
}

/** Numerics that answer a NICK (RFC 2812 §3.1.2 and extensions). */
const NICK_ERRORS: Record<string, "conflict" | "not-acceptable"> = {
  "433": "conflict", // ERR_NICKNAMEINUSE
  "436": "conflict", // ERR_NICKCOLLISION
  "437": "conflict", // ERR_UNAVAILRESOURCE
  "432": "not-acceptable", // ERR_ERRONEUSNICKNAME
  "447": "not-acceptable", // ERR_NONICKCHANGE (InspIRCd +N)
  "438": "not-acceptable", // ERR_NICKTOOFAST
};

export async function changeNick(c: IrcConnection, nick: string): Promise<string> {
  if (ircLower(nick) === ircLower(c.nick)) return c.nick;
  await c.ensureOnline();
  const line = c.build("NICK", [nick]);
  if (c.nickChange) throw fail("conflict", "A nick change is already in progress");
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      c.nickChange = undefined;
      reject(fail("timeout", `${c.host} did not answer the nick change in time`));
    }, c.cfg.timeoutMs);
    c.nickChange = { resolve, reject, timer };
    c.enqueue([line]).catch((e: EstuaryError) => {
      clearTimeout(timer);
      c.nickChange = undefined;
      reject(e);
    });
  });
}

/** The server relayed our nick change: a pending changeNick() resolves. */
export function nickChanged(c: IrcConnection, nick: string): void {
  const p = c.nickChange;
  if (!p) return;
  c.nickChange = undefined;
  clearTimeout(p.timer);
  p.resolve(nick);
}

/** An error numeric that may refuse the pending nick change; true when it did. */
export function refuseNick(c: IrcConnection, code: string, text: string): boolean {
  const kind = NICK_ERRORS[code];
  const p = c.nickChange;
  if (!kind || !p || !c.online) return false;
  c.nickChange = undefined;
  clearTimeout(p.timer);
  p.reject(fail(kind, text));
  return true;
}

/** The session is closing: a pending change fails. */
export function dropNickChange(c: IrcConnection): void {
  const p = c.nickChange;
  if (!p) return;
  c.nickChange = undefined;
  clearTimeout(p.timer);
  p.reject(fail("unavailable", "Session closed"));
}
