/**
 * The IRC client's events (wire/events.ts names and payloads) as channel
 * state changes and LegacyEvents for one IrcConnection: joins, NAMES,
 * parts, kicks, quits, nick and mode changes, topics, away, invitations.
 * One module-level table of handlers taking the connection, reached through
 * IrcConnection.ircEvent (the client's sink): no listener per connection.
 */
import type { ParsedMessage } from "irc-framework";
import type { Show } from "../../core/model.ts";
import { finishJoin, occupant, settleJoin, withMode, type OccState } from "./channels.ts";
import { opDone } from "./channel-ops.ts";
import { historyBatchEnd } from "./chathistory.ts";
import type { IrcConnection } from "./connection.ts";
import { contactId, ircLower, roomId } from "./ids.ts";
import { onMessage, type MsgEvent } from "./incoming.ts";
import { stripUnsafe } from "./lines.ts";
import { nickChanged } from "./nick.ts";
import { onFail, onNumeric } from "./numerics.ts";
import { lost } from "./reconnect.ts";
import { modeForSymbol, rolesFromModes } from "./roles.ts";

/** How long a join waits for the MODE answer that follows the server's join replay. */
const JOIN_BARRIER_MS = 3000;

/** Prefix mode letters when the server's PREFIX is unknown (RFC 2811 plus the common q, a, h). */
const DEFAULT_PREFIX_MODES = "qaohv";

/** Every event of the client: raw lines to onFail/onNumeric, the rest through the table below. */
export function dispatch(c: IrcConnection, event: string, ev: unknown): void {
  if (event === "message") {
    const msg = ev as ParsedMessage;
    if (msg.command === "FAIL") onFail(c, msg);
    else if (!c.channelList?.onMessage(msg) && !c.invites?.onMessage(msg)) onNumeric(c, msg);
    return;
  }
  const handler = HANDLERS[event];
  if (!handler) return;
  try {
    handler(c, ev as never);
  } catch (e) {
    c.log.error({ err: e, event }, "IRC event handler failed");
  }
}

function prefixModes(c: IrcConnection): string {
  const prefix = c.client?.network.options.PREFIX;
  return Array.isArray(prefix) ? prefix.map((p) => p.mode).join("") : DEFAULT_PREFIX_MODES;
}

function awayChange(c: IrcConnection, ev: { nick: string; message: string; self: boolean }, away: string | undefined): void {
  if (ev.self || c.isSelf(ev.nick)) return;
  let seen = false;
  for (const ch of c.channels.values()) {
    const o = ch.occupants.get(ircLower(ev.nick));
    if (!o) continue;
    seen = true;
    o.away = away;
    if (ch.synced) c.hooks.emit({ type: "occupant", room: ch.room, occupant: occupant(c, o) });
  }
  if (seen) {
    const show: Show = away === undefined ? "available" : "away";
    c.hooks.emit({ type: "presence", contact: contactId(c.host, ev.nick), show, ...(away ? { status: away } : {}) });
  }
}

/** The handlers of the client's events, by event name. */
const HANDLERS: Record<string, (c: IrcConnection, ev: never) => void> = {
  "socket close"(c, err: Error | undefined) {
    if (c.online) lost(c, err?.message ?? "connection closed");
  },

  join(c, ev: { nick: string; ident: string; hostname: string; channel: string }) {
    const lower = ircLower(ev.channel);
    if (c.isSelf(ev.nick)) {
      c.ident = ev.ident || c.ident;
      c.displayedHost = ev.hostname || c.displayedHost;
      const ch = c.channels.get(lower);
      if (ch) {
        ch.previous ??= ch.occupants;
        ch.occupants = new Map();
        ch.selfModes = "";
        ch.synced = false;
        ch.name = ev.channel;
      } else {
        const pending = c.joins?.get(lower);
        if (pending) {
          c.channels.set(lower, { name: ev.channel, room: roomId(c.host, ev.channel), key: pending.key, occupants: new Map(), selfModes: "", synced: false });
        }
      }
      return;
    }
    const ch = c.channels.get(lower);
    if (!ch) return;
    const o: OccState = { nick: ev.nick, modes: "" };
    ch.occupants.set(ircLower(ev.nick), o);
    if (ch.synced) c.hooks.emit({ type: "join", room: ch.room, occupant: occupant(c, o) });
  },

  userlist(c, ev: { channel: string; users: { nick: string; modes: string[] }[] }) {
    const lower = ircLower(ev.channel);
    const ch = c.channels.get(lower);
    if (!ch) return;
    const fresh = new Map<string, OccState>();
    for (const u of ev.users) {
      // The client strips known PREFIX symbols; keep any it did not know.
      let modes = u.modes.length === 0 ? "" : u.modes.join("");
      let nick = u.nick;
      while (nick && modeForSymbol(nick[0]!)) {
        modes = withMode(modes, modeForSymbol(nick[0]!)!, true);
        nick = nick.slice(1);
      }
      if (c.isSelf(nick)) ch.selfModes = modes;
      else fresh.set(ircLower(nick), { nick, modes, away: ch.occupants.get(ircLower(nick))?.away });
    }
    ch.occupants = fresh;
    if (ch.synced) {
      settleJoin(c, lower, ch);
      return;
    }
    // A server may replay the channel's history right after NAMES (InspIRCd +H, a chathistory
    // batch). Ask for the channel modes: the answer (324) comes after everything the join
    // produced, so the join completes with that history in hand instead of racing it.
    if (ch.barrier) return;
    ch.barrier = setTimeout(() => finishJoin(c, lower), JOIN_BARRIER_MS);
    c.enqueue([c.build("MODE", [ch.name])], true).catch(() => finishJoin(c, lower));
  },

  "batch end"(c, ev: { type?: string; params?: string[] }) {
    historyBatchEnd(c, ev);
  },

  "channel info"(c, ev: { channel: string; raw_modes?: string }) {
    if (ev.raw_modes === undefined) return;
    const lower = ircLower(ev.channel);
    if (c.channels.get(lower)?.barrier) finishJoin(c, lower);
  },

  topic(c, ev: { channel: string; topic: string; nick?: string }) {
    const ch = c.channels.get(ircLower(ev.channel));
    if (!ch) return;
    const text = stripUnsafe(ev.topic);
    if (ev.nick && c.isSelf(ev.nick)) opDone(c, ircLower(ev.channel), "TOPIC");
    const changed = ch.subject?.text !== text;
    ch.subject = ev.nick ? { text, by: ev.nick, at: new Date() } : { text };
    if (ev.nick) {
      if (ch.synced) c.hooks.emit({ type: "topic", room: ch.room, text, by: ev.nick });
    } else if (changed && (ch.synced || ch.previous !== undefined)) {
      // RPL_TOPIC outside a first join: a TOPIC query or a rejoin after the topic changed.
      c.hooks.emit({ type: "topic", room: ch.room, text });
    }
  },

  topicsetby(c, ev: { channel: string; nick: string; when: string }) {
    const ch = c.channels.get(ircLower(ev.channel));
    if (!ch?.subject) return;
    ch.subject.by = ev.nick;
    const when = Number(ev.when);
    if (Number.isFinite(when) && when > 0) ch.subject.at = new Date(when * 1000);
  },

  part(c, ev: { nick: string; channel: string; message: string }) {
    const lower = ircLower(ev.channel);
    const ch = c.channels.get(lower);
    if (!ch) return;
    if (c.isSelf(ev.nick)) {
      // We did not ask (leave() forgets the channel first): the server parted us (SAPART, channel closed).
      c.channels.delete(lower);
      c.hooks.emit({ type: "room-closed", room: ch.room, how: "error", reason: ev.message || "Removed from the channel" });
      if (c.channelCount === 0) c.hooks.onIdle();
      return;
    }
    if (ch.occupants.delete(ircLower(ev.nick)) && ch.synced) {
      c.hooks.emit({ type: "part", room: ch.room, nick: ev.nick, how: "leave", ...(ev.message ? { reason: ev.message } : {}) });
    }
  },

  kick(c, ev: { nick: string; channel: string; kicked: string; message: string }) {
    const lower = ircLower(ev.channel);
    const ch = c.channels.get(lower);
    if (!ch) return;
    const reason = ev.message && ev.message !== ev.kicked ? { reason: ev.message } : {};
    if (c.isSelf(ev.nick)) opDone(c, lower, "KICK", ircLower(ev.kicked));
    if (c.isSelf(ev.kicked)) {
      c.channels.delete(lower);
      c.hooks.emit({ type: "room-closed", room: ch.room, how: "kick", by: ev.nick, ...reason });
      if (c.channelCount === 0) c.hooks.onIdle();
      return;
    }
    if (ch.occupants.delete(ircLower(ev.kicked)) && ch.synced) {
      c.hooks.emit({ type: "part", room: ch.room, nick: ev.kicked, how: "kick", by: ev.nick, ...reason });
    }
  },

  quit(c, ev: { nick: string; message: string }) {
    if (c.isSelf(ev.nick)) return;
    for (const ch of c.channels.values()) {
      if (ch.occupants.delete(ircLower(ev.nick)) && ch.synced) {
        c.hooks.emit({ type: "part", room: ch.room, nick: ev.nick, how: "quit", ...(ev.message ? { reason: ev.message } : {}) });
      }
    }
  },

  nick(c, ev: { nick: string; new_nick: string }) {
    if (c.isSelf(ev.nick)) {
      const old = c.nick;
      c.nick = ev.new_nick;
      nickChanged(c, ev.new_nick);
      for (const ch of c.channels.values()) c.hooks.emit({ type: "nick", room: ch.room, old, new: ev.new_nick });
      return;
    }
    for (const ch of c.channels.values()) {
      const o = ch.occupants.get(ircLower(ev.nick));
      if (!o) continue;
      ch.occupants.delete(ircLower(ev.nick));
      o.nick = ev.new_nick;
      ch.occupants.set(ircLower(ev.new_nick), o);
      if (ch.synced) c.hooks.emit({ type: "nick", room: ch.room, old: ev.nick, new: ev.new_nick, contact: contactId(c.host, ev.new_nick) });
    }
  },

  mode(c, ev: { target: string; modes: { mode: string; param?: string }[] }) {
    const ch = c.channels.get(ircLower(ev.target));
    if (!ch) return;
    const prefix = prefixModes(c);
    for (const m of ev.modes) {
      const letter = m.mode.slice(1);
      if (letter.length !== 1 || !prefix.includes(letter) || !m.param) continue;
      const adding = m.mode.startsWith("+");
      if (c.isSelf(m.param)) {
        // Made an operator: RELAYMSG may be allowed now (servers let channel operators relay).
        if (adding) c.relayRefused?.delete(ircLower(ch.name));
        ch.selfModes = withMode(ch.selfModes, letter, adding);
        if (ch.synced) c.hooks.emit({ type: "occupant", room: ch.room, occupant: { nick: c.nick, ...rolesFromModes(ch.selfModes) } });
        continue;
      }
      const o = ch.occupants.get(ircLower(m.param));
      if (!o) continue;
      o.modes = withMode(o.modes, letter, adding);
      if (ch.synced) c.hooks.emit({ type: "occupant", room: ch.room, occupant: occupant(c, o) });
    }
  },

  away(c, ev: { nick: string; message: string; self: boolean }) {
    awayChange(c, ev, stripUnsafe(ev.message ?? ""));
  },
  back(c, ev: { nick: string; message: string; self: boolean }) {
    awayChange(c, ev, undefined);
  },

  // Someone invites us into a channel (RFC 2812 §3.2.7). With invite-notify (IRCv3) channel
  // members also see invitations of others: only ours becomes an invitation for the user.
  invite(c, ev: { nick: string; ident: string; hostname: string; invited: string; channel: string }) {
    if (!c.isSelf(ev.invited) || !c.isChannelName(ev.channel ?? "")) return;
    const channel = stripUnsafe(ev.channel);
    const fromServer = !ev.nick || (!ev.ident && !ev.hostname && ev.nick.includes("."));
    c.hooks.emit({
      type: "invite",
      room: roomId(c.host, channel),
      from: fromServer ? { nick: ev.nick || c.host } : { nick: ev.nick, contact: contactId(c.host, ev.nick) },
    });
  },

  "displayed host"(c, ev: { nick: string; hostname: string }) {
    if (c.isSelf(ev.nick)) c.displayedHost = ev.hostname;
  },

  privmsg(c, ev: MsgEvent) {
    onMessage(c, ev, "P");
  },
  action(c, ev: MsgEvent) {
    onMessage(c, ev, "A");
  },
  notice(c, ev: MsgEvent) {
    onMessage(c, ev, "N");
  },
};
