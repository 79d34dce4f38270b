/**
 * Connection registration: IRCv3 capability negotiation (CAP LS 302, REQ,
 * ACK/NAK, NEW/DEL; https://ircv3.net/specs/extensions/capability-negotiation),
 * SASL PLAIN (https://ircv3.net/specs/extensions/sasl-3.1, RFC 4616),
 * RPL_WELCOME and RPL_ISUPPORT. Same events and payloads as irc-framework
 * 4.14 (src/commands/handlers/registration.js) for what the IRC adapter uses.
 */
import type { IrcClient, WireMessage } from "./client.ts";
import { applyIsupport, ownString } from "./isupport.ts";
import { serverTime } from "./events.ts";

/** What irc-framework asks for by default (its `want` list); the adapter relies on several (multi-prefix, away-notify, batch, server-time…). */
const BASE_CAPS: readonly string[] = [
  "cap-notify",
  "batch",
  "multi-prefix",
  "message-tags",
  "draft/message-tags-0.2",
  "away-notify",
  "invite-notify",
  "account-notify",
  "account-tag",
  "server-time",
  "userhost-in-names",
  "extended-join",
  "znc.in/server-time-iso",
  "znc.in/server-time",
];

/** Negotiation state, alive from the socket's opening to RPL_WELCOME. */
export interface Registration {
  /** CAP REQ sent and not all answered: CAP END waits. */
  negotiating: boolean;
  /** Capabilities asked for and not yet ACKed or NAKed. */
  requested: string[];
  /** The LS lines so far (CAP LS 302 may take several, each but the last with `*`). */
  ls: string;
  /** SASL answered (logged in or failed): a missing answer at 001 means the server never offered it. */
  saslSettled: boolean;
}

export function newRegistration(): Registration {
  return { negotiating: false, requested: [], ls: "", saslSettled: false };
}

function wants(c: IrcClient, cap: string): string | undefined {
  const base = BASE_CAPS.find((x) => x === cap);
  if (base) return base;
  if (cap === "sasl" && c.saslAccount !== undefined) return "sasl";
  if (cap === "echo-message" && c.echoMessage) return "echo-message";
  return c.extraCaps.find((x) => x === cap);
}

/** Capability names of a CAP list, without values (`sasl=PLAIN,EXTERNAL` → `sasl`) and modifiers (`-` in ACK: disabled). */
function names(list: string): string[] {
  const out: string[] = [];
  for (const token of list.split(" ")) {
    if (token === "") continue;
    const eq = token.indexOf("=");
    out.push(eq === -1 ? token : token.slice(0, eq));
  }
  return out;
}

function capEnd(c: IrcClient, reg: Registration): void {
  if (!reg.negotiating) return;
  reg.negotiating = false;
  c.write("CAP END");
}

function saslFailed(c: IrcClient, reason: string, m?: WireMessage): void {
  const reg = c.registration;
  if (reg) reg.saslSettled = true;
  const ev: Record<string, unknown> = { reason };
  if (m) {
    ev.message = m.params[m.params.length - 1];
    ev.nick = m.params[0];
    ev.time = serverTime(m.tags);
    ev.tags = m.tags;
  }
  c.emit("sasl failed", ev);
}

function onCap(c: IrcClient, m: WireMessage): void {
  const sub = (m.params[1] ?? "").toUpperCase();
  const list = m.params[m.params.length - 1] ?? "";
  const cap = c.network.cap;
  const reg = c.registration;
  switch (sub) {
    case "LS": {
      if (!reg) return;
      reg.ls = reg.ls === "" ? list : `${reg.ls} ${list}`;
      if (m.params[2] === "*") return; // more LS lines follow
      cap.setAvailable(reg.ls);
      reg.ls = "";
      for (const name of names(cap.ls)) {
        const wanted = wants(c, name);
        if (wanted && !reg.requested.includes(wanted)) reg.requested.push(wanted);
      }
      if (c.saslAccount !== undefined && !cap.available.has("sasl")) saslFailed(c, "capability_missing");
      if (reg.requested.length > 0) {
        reg.negotiating = true;
        c.write(`CAP REQ :${reg.requested.join(" ")}`);
      } else c.write("CAP END");
      return;
    }
    case "ACK": {
      for (const token of list.split(" ")) {
        if (token === "") continue;
        if (token.startsWith("-")) {
          cap.disable(token.slice(1));
          continue;
        }
        cap.enable(wants(c, token) ?? ownString(token));
        if (reg) reg.requested = reg.requested.filter((x) => x !== token);
      }
      if (!reg?.negotiating) return;
      let authenticating = false;
      if (c.saslAccount !== undefined && !reg.saslSettled) {
        if (cap.isEnabled("sasl")) {
          // SASL 3.2: the value lists the mechanisms; 3.1 has none (PLAIN is then assumed).
          const mechanisms = cap.available.get("sasl");
          if (!mechanisms || mechanisms.toUpperCase().split(",").includes("PLAIN")) {
            c.write("AUTHENTICATE PLAIN");
            authenticating = true;
          } else saslFailed(c, "unsupported_mechanism");
        } else if (reg.requested.length === 0) saslFailed(c, "capability_missing");
      }
      if (!authenticating && reg.requested.length === 0) capEnd(c, reg);
      return;
    }
    case "NAK": {
      // REQ is all or nothing: nothing of it is enabled.
      if (!reg) return;
      const refused = names(list);
      reg.requested = reg.requested.filter((x) => !refused.includes(x));
      if (c.saslAccount !== undefined && refused.includes("sasl")) saslFailed(c, "capability_missing");
      if (reg.requested.length === 0) capEnd(c, reg);
      return;
    }
    case "NEW": {
      cap.addAvailable(list);
      const request = names(list).filter((n) => wants(c, n) !== undefined && !cap.isEnabled(n));
      if (request.length > 0) c.write(`CAP REQ :${request.join(" ")}`);
      return;
    }
    case "DEL":
      for (const name of names(list)) cap.disable(name);
      cap.removeAvailable(names(list));
      return;
  }
}

/** SASL PLAIN: `authzid NUL authcid NUL password`, base64, in 400-byte AUTHENTICATE lines; a last line of exactly 400 is followed by `+` (SASL 3.1 "AUTHENTICATE"). */
export function saslPlainLines(account: string, password: string): string[] {
  const b64 = Buffer.from(`${account}\0${account}\0${password}`, "utf8").toString("base64");
  const out: string[] = [];
  for (let i = 0; i < b64.length; i += 400) out.push(`AUTHENTICATE ${b64.slice(i, i + 400)}`);
  if (b64.length % 400 === 0) out.push("AUTHENTICATE +");
  return out;
}

function onAuthenticate(c: IrcClient, m: WireMessage): void {
  const reg = c.registration;
  if (m.params[0] !== "+" || c.saslAccount === undefined) {
    if (reg) capEnd(c, reg);
    return;
  }
  for (const line of saslPlainLines(c.saslAccount, c.saslPassword ?? "")) c.write(line);
}

/** 900 RPL_LOGGEDIN `<nick> <nick!user@host> <account> :You are now logged in`. */
function onLoggedIn(c: IrcClient, m: WireMessage): void {
  const reg = c.registration;
  if (reg) {
    reg.saslSettled = true;
    capEnd(c, reg);
  }
  const mask = m.params[1] ?? "";
  const bang = mask.indexOf("!");
  const at = mask.indexOf("@");
  c.emit("loggedin", {
    nick: m.params[0],
    ident: bang !== -1 && at > bang ? mask.slice(bang + 1, at) : "",
    hostname: at !== -1 ? mask.slice(at + 1) : "",
    account: m.params[2],
    time: serverTime(m.tags),
    tags: m.tags,
  });
}

/** 903 RPL_SASLSUCCESS. */
function onSaslSuccess(c: IrcClient): void {
  const reg = c.registration;
  if (!reg) return;
  reg.saslSettled = true;
  capEnd(c, reg);
}

/**
 * SASL failures end negotiation and are reported; the adapter then refuses to
 * register without the account. 906 ERR_SASLABORTED counts too (we never
 * abort: the server did). 907 (already authenticated) and 908 RPL_SASLMECHS
 * (followed by 904) are not failures of their own.
 */
function saslError(reason: string) {
  return (c: IrcClient, m: WireMessage): void => {
    const reg = c.registration;
    if (reg?.saslSettled) return;
    saslFailed(c, reason, m);
    if (reg) capEnd(c, reg);
  };
}

/** 001 RPL_WELCOME: registered, under the nick the server confirms. */
function onWelcome(c: IrcClient, m: WireMessage): void {
  const reg = c.registration;
  // A server without CAP (or that never answered SASL) registered us anonymously.
  if (reg && c.saslAccount !== undefined && !reg.saslSettled) saslFailed(c, "capability_missing");
  c.registered(m.params[0] ?? c.nick);
  c.emit("registered", { nick: c.nick, tags: m.tags });
}

/** 005 RPL_ISUPPORT. Without multi-prefix, NAMESX asks for every prefix in NAMES (as irc-framework does). */
function onIsupport(c: IrcClient, m: WireMessage): void {
  applyIsupport(c.network.options, m.params);
  if (m.params.some((p) => p.toUpperCase() === "NAMESX") && !c.network.cap.isEnabled("multi-prefix")) c.write("PROTOCTL NAMESX");
}

export const REGISTRATION_HANDLERS: Record<string, (c: IrcClient, m: WireMessage) => void> = {
  CAP: onCap,
  AUTHENTICATE: onAuthenticate,
  "001": onWelcome,
  "005": onIsupport,
  "900": onLoggedIn,
  "903": onSaslSuccess,
  "902": saslError("nick_locked"),
  "904": saslError("fail"),
  "905": saslError("too_long"),
  "906": saslError("aborted"),
};
