/**
 * What an IrcConnection does with the server's error numerics (4xx, 5xx)
 * and IRCv3 standard replies (`FAIL`): each answers the request waiting for
 * it — a CHATHISTORY, a channel operation, a PRIVMSG, a JOIN, a NICK — and
 * whatever answers nothing is shown as a message from the server, so nothing
 * fails silently. Registration errors are handled by open.ts instead.
 */
import type { ParsedMessage } from "irc-framework";
import { fail, type EstuaryError } from "../../core/errors.ts";
import { roomPasswordRequired } from "../../core/rooms.ts";
import { settleJoin } from "./channels.ts";
import { refuseOp } from "./channel-ops.ts";
import { historyRefused } from "./chathistory.ts";
import type { IrcConnection } from "./connection.ts";
import { ircToRich } from "./format.ts";
import { ircLower } from "./ids.ts";
import { stripUnsafe } from "./lines.ts";
import { refuseNick } from "./nick.ts";
import { relayRefusedBy } from "./relay.ts";
import { refuseSay, SEND_ERRORS } from "./say.ts";

/**
 * Numerics that answer a JOIN (RFC 2812 §5.2, plus common extensions), as the
 * error kinds XEP-0045 §7.2 distinguishes (see core/stanzas/muc.ts):
 * a key is a room password (§7.2.6), invite-only is members-only (§7.2.7),
 * a ban is a ban (§7.2.8), a full channel is "max users" (§7.2.10).
 */
const JOIN_ERRORS: Record<string, (text: string) => EstuaryError> = {
  "403": (t) => fail("not-found", t), // ERR_NOSUCHCHANNEL
  "476": (t) => fail("not-found", t), // ERR_BADCHANMASK
  "479": (t) => fail("not-found", t), // ERR_BADCHANNAME (InspIRCd, Solanum)
  "405": (t) => fail("not-allowed", t), // ERR_TOOMANYCHANNELS
  "471": (t) => fail("service-unavailable", t), // ERR_CHANNELISFULL (+l)
  "473": (t) => fail("registration-required", t), // ERR_INVITEONLYCHAN (+i)
  "474": (t) => fail("forbidden", t), // ERR_BANNEDFROMCHAN (+b)
  "475": (t) => roomPasswordRequired(t), // ERR_BADCHANNELKEY (+k)
  "477": (t) => fail("registration-required", t), // ERR_NEEDREGGEDNICK (+R: identify with services)
  "489": (t) => fail("not-allowed", t), // ERR_SECUREONLYCHAN
  "520": (t) => fail("forbidden", t), // ERR_CANTJOINOPERSONLY (InspIRCd)
};

/** An error numeric: the request it answers fails with it, else it is shown. */
export function onNumeric(c: IrcConnection, msg: ParsedMessage): void {
  const code = msg.command;
  if (!/^[45]\d\d$/.test(code)) return;
  const reason = stripUnsafe(msg.params[msg.params.length - 1] ?? "");
  const subject = msg.params[1] ?? "";
  if (code === "421" && subject.toUpperCase() === "CHATHISTORY") {
    // ERR_UNKNOWNCOMMAND: the server does not know it after all.
    historyRefused(c, undefined);
    return;
  }
  if (refuseOp(c, code, msg.params, reason)) return;
  // The message it refuses fails with this reason (no server notice besides: one report, where the message was).
  const sendError = SEND_ERRORS[code];
  if (sendError && refuseSay(c, ircLower(subject), sendError(`${subject}: ${reason}`))) return;
  const joinError = JOIN_ERRORS[code];
  if (joinError && c.joins?.has(ircLower(subject))) {
    settleJoin(c, ircLower(subject), joinError(`${subject}: ${reason}`));
    return;
  }
  if (refuseNick(c, code, `${subject}: ${reason}`)) return;
  if (!c.online) return; // registration errors are handled by open.ts
  // Anything else the server refuses (cannot send to channel, no such nick, not an operator…)
  // is shown from the server's address so nothing fails silently.
  const text = msg.params.slice(1).map(stripUnsafe).join(" ");
  c.hooks.emit({ type: "service-message", service: c.host, text: ircToRich(text) });
}

/** IRCv3 standard replies: `FAIL <command> <code> [<context>…] :<description>`. */
export function onFail(c: IrcConnection, msg: ParsedMessage): void {
  const [command, code] = msg.params;
  const description = stripUnsafe(msg.params[msg.params.length - 1] ?? "");
  if (command === "RELAYMSG") {
    relayRefusedBy(c, code, description);
    return;
  }
  if (command === "CHATHISTORY") {
    // FAIL CHATHISTORY <code> <subcommand> [<target>] :… (chathistory "Errors and Warnings").
    const target = msg.params.length > 4 ? ircLower(msg.params[3] ?? "") : undefined;
    c.log.info({ code, target, description }, "CHATHISTORY refused");
    historyRefused(c, target);
    return;
  }
  if (c.online) {
    c.hooks.emit({ type: "service-message", service: c.host, text: ircToRich(msg.params.map(stripUnsafe).join(" ")) });
  }
}
