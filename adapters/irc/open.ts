/**
 * One connection attempt of an IrcConnection: connect, register (PASS,
 * WEBIRC, CAP LS 302 with SASL, NICK/USER — wire/registration.ts does the
 * lines) and wait for RPL_WELCOME (001), trying `nick_`, `nick__`… when the
 * nick is taken. Failures that retrying cannot fix (refused password, failed
 * SASL, untrusted certificate) are marked permanent so reconnect.ts stops.
 *
 * The listeners below are per attempt and removed when it settles: nothing
 * stays per connection once it is online.
 */
import type { ParsedMessage } from "irc-framework";
import { fail, type EstuaryError } from "../../core/errors.ts";
import type { IrcConnection } from "./connection.ts";
import { safeMiddle, stripUnsafe } from "./lines.ts";
import { IrcClient } from "./wire/client.ts";
import { isCertificateError } from "./wire/socket.ts";

/**
 * IRCv3 capabilities the client does not ask for by itself (wire/registration.ts):
 * draft/relaymsg (ircv3-specifications PR #417) for bridges, and
 * chathistory (https://ircv3.net/specs/extensions/chathistory, prefixed
 * `draft/` while it was a draft) for the network's own history of a channel.
 */
const EXTRA_CAPS = ["draft/relaymsg", "draft/chathistory", "chathistory"];

/**
 * Errors a new attempt with the same settings cannot fix (refused password,
 * failed SASL login, untrusted TLS certificate): reconnection stops on them
 * instead of retrying every few minutes forever.
 */
const permanent = new WeakSet<EstuaryError>();

function permanentFail(kind: "not-allowed" | "unavailable", text: string): EstuaryError {
  const e = fail(kind, text);
  permanent.add(e);
  return e;
}

export function isPermanent(e: EstuaryError): boolean {
  return permanent.has(e);
}

/** One connection attempt: resolves on RPL_WELCOME (001), with the account if SASL logged in. */
export function openConnection(c: IrcConnection): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const client = new IrcClient();
    client.requestCap(EXTRA_CAPS);
    c.client = client;
    // One handler object for all of the client's events (IrcConnection.ircEvent): no listener closure per connection.
    client.sink = c;
    const base = c.nick;
    let tries = 0;
    let serverError = "";
    let account: string | undefined;
    let settled = false;
    const finish = (error?: EstuaryError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.off("registered", onRegistered);
      client.off("socket close", onClose);
      client.off("loggedin", onLoggedIn);
      client.off("sasl failed", onSaslFailed);
      client.connection.off("message", onMessage);
      if (error) {
        c.client = undefined;
        client.removeAllListeners();
        client.connection.end();
        reject(error);
      } else resolve(account);
    };
    const timer = setTimeout(() => finish(fail("timeout", `${c.host} did not complete registration in time`)), c.cfg.timeoutMs);
    const onRegistered = (ev: { nick: string }) => {
      c.nick = ev.nick;
      finish();
    };
    const onClose = (err?: Error) => {
      if (!serverError && c.cfg.tls && isCertificateError(err)) {
        finish(
          permanentFail(
            "unavailable",
            `Could not connect to ${c.host}: its TLS certificate is not trusted (${err?.message}); the gateway administrator can trust the server's CA (servers.${c.host}.ca)`,
          ),
        );
        return;
      }
      const why = serverError || err?.message || "connection closed";
      finish(fail("unavailable", `Could not connect to ${c.host}: ${why}`));
    };
    // RPL_LOGGEDIN (900, IRCv3 SASL 3.1).
    const onLoggedIn = (ev: { account?: string }) => {
      account = ev.account || undefined;
    };
    // The client reports SASL failures (904 ERR_SASLFAIL, 902 ERR_NICKLOCKED, 905, 906, no `sasl`
    // capability, no PLAIN) and then goes on registering without an account. The user asked to
    // log in (cloak, +R channels, nick protection), so registering anonymously is refused here.
    const onSaslFailed = (ev: { reason?: string; message?: string }) => {
      const why = ev.message ? stripUnsafe(ev.message) : ev.reason === "capability_missing" ? "the server does not offer SASL" : (ev.reason ?? "failed");
      finish(permanentFail("not-allowed", `SASL login as ${c.cfg.sasl?.account ?? "?"} on ${c.host} failed: ${why}`));
    };
    const onMessage = (msg: ParsedMessage) => {
      const reason = msg.params[msg.params.length - 1] ?? "";
      if (msg.command === "ERROR") serverError = reason;
      else if (msg.command === "433" || msg.command === "436" || msg.command === "437") {
        // Nick in use at registration: try nick_, nick__, nick___ (Biboumi does the same).
        tries++;
        if (tries > 3) finish(fail("conflict", `The nickname ${base} is already in use on ${c.host}`));
        else {
          c.nick = `${safeMiddle(base) ?? "estuary"}${"_".repeat(tries)}`;
          client.connection.write(`NICK ${c.nick}`);
        }
      } else if (msg.command === "432") {
        finish(fail("not-acceptable", `${c.host} refuses the nickname ${base}: ${reason}`));
      } else if (msg.command === "464" || msg.command === "465") {
        // ERR_PASSWDMISMATCH, ERR_YOUREBANNEDCREEP
        finish(permanentFail("not-allowed", `${c.host}: ${reason}`));
      }
    };
    client.on("registered", onRegistered);
    client.on("socket close", onClose);
    client.on("loggedin", onLoggedIn);
    client.on("sasl failed", onSaslFailed);
    client.connection.on("message", onMessage);
    const cfg = c.cfg;
    client.connect({
      host: cfg.host.replace(/^\[(.*)\]$/, "$1"),
      port: cfg.port,
      tls: cfg.tls,
      rejectUnauthorized: cfg.rejectUnauthorized,
      ...(cfg.ca ? { ca: cfg.ca } : {}),
      nick: safeMiddle(c.nick) ?? "estuary",
      username: safeMiddle(cfg.username) ?? "estuary",
      gecos: stripUnsafe(cfg.realname) || "Estuary",
      ...(cfg.password ? { password: stripUnsafe(cfg.password) } : {}),
      ...(cfg.sasl ? { account: { account: stripUnsafe(cfg.sasl.account), password: stripUnsafe(cfg.sasl.password) } } : {}),
      ...(cfg.webirc
        ? {
            webirc: {
              password: stripUnsafe(cfg.webirc.password),
              username: stripUnsafe(cfg.webirc.gateway),
              hostname: stripUnsafe(cfg.webirc.hostname),
              address: stripUnsafe(cfg.webirc.ip),
            },
          }
        : {}),
      // Reconnection is ours (reconnect.ts: backoff with jitter, staggered, with rejoin and diff): the client never reconnects.
      enable_echomessage: true,
    });
  });
}
