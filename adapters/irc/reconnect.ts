/**
 * Losing and regaining an IrcConnection: on a dropped socket the channels
 * are kept (their occupants become `previous`), written-but-unechoed lines
 * are kept for resending, and a new connection is tried with exponential
 * backoff and jitter, staggered across the whole process; once registered,
 * every channel is joined again (channels.ts emits the difference). An
 * error no retry can fix (open.ts isPermanent) closes the rooms instead.
 */
import Bottleneck from "bottleneck";
import { fail, type EstuaryError } from "../../core/errors.ts";
import { failJoins, settleJoin } from "./channels.ts";
import { settleOpWaits } from "./channel-ops.ts";
import type { IrcConnection } from "./connection.ts";
import { ircLower } from "./ids.ts";
import { isPermanent, openConnection } from "./open.ts";
import { resendUnechoed } from "./say.ts";

/**
 * Staggers reconnects of every session of the process so a netsplit or a
 * server restart does not make hundreds of connections at once
 * (matrix-appservice-irc #1601).
 */
const reconnectLimiter = new Bottleneck({ maxConcurrent: 4, minTime: 100 });

/** The socket closed while online: keep the channels and start reconnecting. */
export function lost(c: IrcConnection, why: string): void {
  if (!c.online) return;
  c.client = undefined;
  resendUnechoed(c);
  settleOpWaits(c);
  for (const ch of c.channels.values()) {
    ch.previous ??= ch.occupants;
    ch.synced = false;
  }
  failJoins(c, fail("unavailable", `Lost the connection to ${c.host}`));
  c.setState("reconnecting");
  c.emitStatus("degraded", `Lost the connection to ${c.host} (${why}); reconnecting`);
  scheduleReconnect(c);
}

function scheduleReconnect(c: IrcConnection): void {
  // Exponential backoff with "equal jitter", capped (5 minutes by default).
  const base = Math.min(c.cfg.reconnect.maxMs, c.cfg.reconnect.initialMs * 2 ** c.reconnectAttempt);
  const delay = base / 2 + Math.random() * (base / 2);
  c.reconnectAttempt++;
  c.reconnectTimer = setTimeout(() => {
    c.reconnectTimer = undefined;
    if (c.state !== "reconnecting") return;
    if (c.channels.size === 0 && c.queued === 0) {
      // Nothing to restore: open lazily next time.
      c.setState("idle");
      c.hooks.onIdle();
      return;
    }
    reconnectLimiter
      .schedule(() => openConnection(c))
      .then(
        () => {
          if (c.state !== "reconnecting") return;
          c.reconnectAttempt = 0;
          c.setState("online");
          c.emitStatus("online", `Reconnected to ${c.host}`);
          rejoin(c);
          c.afterRegistration();
        },
        (e: EstuaryError) => {
          if (c.state !== "reconnecting") return;
          c.log.info({ err: e }, "reconnect failed");
          if (isPermanent(e)) giveUp(c, e);
          else scheduleReconnect(c);
        },
      );
  }, delay);
}

/** Reconnection failed for good: the rooms close with the reason; the next join or message starts afresh. */
function giveUp(c: IrcConnection, e: EstuaryError): void {
  c.lastError = e;
  c.reconnectAttempt = 0;
  for (const ch of c.channels.values()) c.hooks.emit({ type: "room-closed", room: ch.room, how: "error", reason: e.message });
  c.channels.clear();
  failJoins(c, e);
  c.setState("idle");
  c.lines.rejectAll(fail("unavailable", `Not sent: ${e.message}`));
  c.emitStatus("error", e.message);
  c.hooks.onIdle();
}

function rejoin(c: IrcConnection): void {
  for (const ch of c.channels.values()) {
    const lower = ircLower(ch.name);
    const timer = setTimeout(() => settleJoin(c, lower, fail("timeout", `${ch.name}: no answer to JOIN`)), c.cfg.timeoutMs);
    c.pendingJoins().set(lower, { resolve: () => {}, reject: () => {}, timer, rejoin: true });
    c.enqueue([c.build("JOIN", [ch.name, ...(ch.key ? [ch.key] : [])])], true).catch(() => {});
  }
}
