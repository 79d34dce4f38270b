/**
 * `INVITE <nick> <channel>` (RFC 2812 §3.2.7) sent and waiting for the
 * server's answer: 341 RPL_INVITING confirms it, an error numeric refuses it
 * and becomes the XMPP error of the invitation (XEP-0045 §7.8.2). IRC's
 * INVITE has no reason parameter, so nothing user-written goes on the line
 * besides the nick and the channel (both middle parameters, sanitised by the
 * connection's build()).
 */
import type { ParsedMessage } from "irc-framework";
import { fail, type EstuaryError } from "../../core/errors.ts";
import { ircLower } from "./ids.ts";
import { stripUnsafe } from "./lines.ts";

interface Wait {
  channel: string;
  nick: string;
  done(error?: EstuaryError): void;
}

/**
 * Refusals of an INVITE, by numeric (RFC 2812 §3.2.7 and common
 * extensions), and whether the parameter after ours names the nick or the
 * channel. The same numerics answer other commands too: they count for an
 * invitation only when they name an invitation's nick or channel.
 */
const INVITE_ERRORS: Record<string, { names: "nick" | "channel"; error(text: string): EstuaryError }> = {
  "401": { names: "nick", error: (t) => fail("not-found", t) }, // ERR_NOSUCHNICK
  "403": { names: "channel", error: (t) => fail("not-found", t) }, // ERR_NOSUCHCHANNEL
  "442": { names: "channel", error: (t) => fail("not-acceptable", t) }, // ERR_NOTONCHANNEL
  "443": { names: "nick", error: (t) => fail("conflict", t) }, // ERR_USERONCHANNEL (already there)
  "482": { names: "channel", error: (t) => fail("forbidden", t) }, // ERR_CHANOPRIVSNEEDED (+i, only ops invite)
  "477": { names: "channel", error: (t) => fail("forbidden", t) }, // ERR_NEEDREGGEDNICK
  "492": { names: "channel", error: (t) => fail("forbidden", t) }, // ERR_NOINVITE (hybrid family), channel +V
  "518": { names: "channel", error: (t) => fail("forbidden", t) }, // ERR_NOINVITE (InspIRCd noinvite, +V)
};

export class InviteWaits {
  private readonly waits: Wait[] = [];
  private readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /**
   * Waits for the answer to an INVITE about to be sent. Past the timeout it
   * counts as done (a server that answers nothing refused nothing we can tell).
   */
  wait(channel: string, nick: string): { result: Promise<void>; cancel(): void } {
    let settle!: (error?: EstuaryError) => void;
    const result = new Promise<void>((resolve, reject) => {
      settle = (error) => (error ? reject(error) : resolve());
    });
    const wait: Wait = {
      channel: ircLower(channel),
      nick: ircLower(nick),
      done: (error) => {
        clearTimeout(timer);
        const i = this.waits.indexOf(wait);
        if (i >= 0) this.waits.splice(i, 1);
        settle(error);
      },
    };
    const timer = setTimeout(() => wait.done(), this.timeoutMs);
    this.waits.push(wait);
    return { result, cancel: () => wait.done() };
  }

  /** The server's answer to an INVITE of ours: true when consumed here. */
  onMessage(msg: ParsedMessage): boolean {
    if (this.waits.length === 0) return false;
    const params = msg.params.slice(1).map((p) => ircLower(p));
    if (msg.command === "341") {
      // RPL_INVITING: "<client> <nick> <channel>" (modern servers), "<client> <channel> <nick>" (RFC 2812 §5.1).
      const w = this.waits.find((x) => params.includes(x.channel) && params.includes(x.nick));
      w?.done();
      return w !== undefined;
    }
    const refusal = INVITE_ERRORS[msg.command];
    if (!refusal) return false;
    const named = params[0] ?? "";
    // Servers answer in order: the oldest invitation the numeric names is the one refused.
    const w = this.waits.find((x) => (refusal.names === "nick" ? x.nick === named : x.channel === named));
    if (!w) return false;
    const reason = stripUnsafe(msg.params[msg.params.length - 1] ?? "");
    w.done(refusal.error(`${stripUnsafe(msg.params[1] ?? "")}: ${reason}`));
    return true;
  }

  /** The connection closed: no answer will come. */
  settleAll(): void {
    for (const w of [...this.waits]) w.done();
  }
}
