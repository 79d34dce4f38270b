/**
 * A network leg (IRC, Matrix, Telegram): the bridge's relay identity on that
 * network is an ordinary AdapterSession of the network's adapter, opened for
 * the synthetic user `bridge:<name>` with registration values from the
 * bridge's config and its own ScopedStore (so sync tokens and offsets
 * persist like a user's). The session's events for the bridged room become
 * the bridge's inbound events; deliveries go out through the same session,
 * with the sender's name as a prefix (format.ts), or under the sender's own
 * name where the adapter can (`sendAs`: IRC draft/relaymsg, `alice/xmpp`).
 * The adapters keep their own
 * queues, flood control and reconnects; this leg only waits until the room is
 * joined before sending.
 */
import type { Logger } from "pino";
import type { AdapterSession, SessionContext } from "../adapter.ts";
import { asEstuaryError } from "../errors.ts";
import { toPlain } from "../format/model.ts";
import type { ChatRef, LegacyEvent, OutgoingMessage, RichText, RoomId, SendResult } from "../model.ts";
import type { Network } from "../network.ts";
import type { LegName } from "./config.ts";
import { correctionFallback, joinPartLine, moderationReason, prefixInlines, reactionFallback, replyFallback, retractionFallback, withPrefix, type PrefixStyle } from "./format.ts";
import { senderOf } from "./ids.ts";
import { bridgeMetrics } from "./metrics.ts";
import type { Delivery, InboundSink, Leg, LegIds } from "./types.ts";

/** What each network can express natively; the rest gets format.ts fallbacks. */
const NATIVE: Record<string, { edits: boolean; replies: boolean; retract: boolean; reactions: boolean; files: boolean }> = {
  irc: { edits: false, replies: false, retract: false, reactions: false, files: false },
  matrix: { edits: true, replies: true, retract: true, reactions: true, files: true },
  telegram: { edits: true, replies: true, retract: true, reactions: true, files: true },
};
const NONE = { edits: false, replies: false, retract: false, reactions: false, files: false };

export interface AdapterLegOptions {
  name: LegName;
  bridge: string;
  net: Network;
  room: RoomId;
  nick: string;
  registration: Record<string, string>;
  style: PrefixStyle;
  joinPart: boolean;
  ids: LegIds;
  sink: InboundSink;
  log: Logger;
  /** Delay before retrying a failed join (doubles up to 60 s). */
  rejoinMs?: number;
}

export class AdapterLeg implements Leg {
  readonly name: LegName;
  readonly #o: AdapterLegOptions;
  readonly #abort = new AbortController();
  readonly #chat: ChatRef;
  readonly #native;
  #session: AdapterSession | undefined;
  #selfNick: string | undefined;
  #ready!: Promise<void>;
  #markReady!: () => void;
  #joined = false;

  constructor(o: AdapterLegOptions) {
    this.name = o.name;
    this.#o = o;
    this.#chat = { kind: "room", room: o.room };
    this.#native = NATIVE[o.net.adapter.network] ?? NONE;
    this.#resetReady();
  }

  #resetReady(): void {
    this.#joined = false;
    this.#ready = new Promise((resolve) => (this.#markReady = resolve));
  }

  async start(): Promise<void> {
    const { net, bridge } = this.#o;
    const user = `bridge:${bridge}`;
    const ctx: SessionContext = {
      user,
      registration: this.#o.registration,
      emit: (e) => this.#onEvent(e),
      log: this.#o.log,
      store: net.store.scoped(user, net.name),
      signal: this.#abort.signal,
      ...(net.media ? { media: net.media } : {}),
      fetch: net.fetch,
    };
    this.#session = await net.adapter.openSession(ctx);
    await this.#join(this.#o.rejoinMs ?? 1000, true);
  }

  /** Joins the room; on failure keeps retrying in the background (a leg that is down must not stop the others). */
  async #join(delay: number, first: boolean): Promise<void> {
    const session = this.#session;
    if (!session?.joinRoom || this.#abort.signal.aborted) return;
    try {
      const snap = await session.joinRoom(this.#o.room, this.#o.nick, {});
      this.#selfNick = snap.nick;
      this.#joined = true;
      this.#markReady();
      this.#o.log.info({ leg: this.name, room: this.#o.room, nick: snap.nick }, "bridge leg joined");
      for (const o of snap.occupants) this.#o.sink(this.name, { type: "join", who: { nick: o.nick, ...(o.contact ? { contact: o.contact } : {}) } });
    } catch (err) {
      this.#o.log.warn({ leg: this.name, room: this.#o.room, err: asEstuaryError(err).message }, "bridge leg could not join; retrying");
      const timer = setTimeout(() => void this.#join(Math.min(delay * 2, 60_000), false), delay);
      timer.unref();
      if (first) return;
    }
  }

  status(): string {
    if (this.#abort.signal.aborted) return "stopped";
    return this.#joined ? `joined ${this.#o.room} as ${this.#selfNick ?? this.#o.nick}` : `joining ${this.#o.room}`;
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#session?.close("Bridge stopped");
  }

  #onEvent(e: LegacyEvent): void {
    const sink = (ev: Parameters<InboundSink>[1]) => this.#o.sink(this.name, ev);
    const here = (chat: ChatRef) => chat.kind === "room" && chat.room === this.#o.room;
    switch (e.type) {
      case "message":
        if (!here(e.chat)) return;
        // The relay account's own messages (another client of it, or an echo an adapter let through).
        if (e.self || (this.#selfNick !== undefined && e.from.nick === this.#selfNick)) {
          bridgeMetrics.suppressed.inc({ leg: this.name, reason: "self" });
          return;
        }
        sink({
          type: "message",
          ids: e.id ? [e.id] : [],
          from: e.from,
          text: e.text,
          ...(e.action ? { action: true } : {}),
          ...(e.replyTo ? { replyTo: e.replyTo } : {}),
          ...(e.attachments ? { attachments: e.attachments } : {}),
        });
        return;
      case "edit":
        if (here(e.chat) && e.from.nick !== this.#selfNick) sink({ type: "edit", id: e.id, from: e.from, text: e.text });
        return;
      case "retract":
        if (!here(e.chat)) return;
        if (e.by) {
          // Someone else's removal (a Matrix moderator's redaction), of a person's message or of the
          // relay's copy of one from another leg; the relay's own removals are what it was asked to do.
          if (e.by.nick !== this.#selfNick) sink({ type: "moderate", id: e.id, by: e.by, ...(e.reason ? { reason: e.reason } : {}) });
          return;
        }
        if (e.from.nick !== this.#selfNick) sink({ type: "retract", id: e.id, from: e.from });
        return;
      case "reactions":
        if (here(e.chat) && e.from.nick !== this.#selfNick) sink({ type: "reactions", id: e.id, from: e.from, emojis: e.emojis });
        return;
      case "join":
        if (e.room === this.#o.room && e.occupant.nick !== this.#selfNick) {
          sink({ type: "join", who: { nick: e.occupant.nick, ...(e.occupant.contact ? { contact: e.occupant.contact } : {}) } });
        }
        return;
      case "part":
        if (e.room === this.#o.room && e.nick !== this.#selfNick) sink({ type: "part", who: { nick: e.nick } });
        return;
      case "nick":
        if (e.room !== this.#o.room) return;
        if (e.old === this.#selfNick) this.#selfNick = e.new;
        else sink({ type: "nick", who: { nick: e.new }, old: e.old });
        return;
      case "room-closed":
        if (e.room !== this.#o.room) return;
        this.#o.log.warn({ leg: this.name, reason: e.reason, how: e.how }, "bridge leg removed from its room; rejoining");
        this.#resetReady();
        void this.#join(this.#o.rejoinMs ?? 1000, false);
        return;
      case "status":
        this.#o.log.info({ leg: this.name, state: e.state, text: e.text }, "bridge leg status");
        return;
      default:
        return;
    }
  }

  async deliver(d: Delivery): Promise<void> {
    if (!this.#joined) await this.#ready;
    const session = this.#session!;
    const ids = this.#o.ids;
    const style = this.#o.style;
    const noPing = style.noPing ?? false;
    switch (d.type) {
      case "message": {
        let text = d.text;
        let replyTo: string | undefined;
        if (d.replyTo) {
          replyTo = this.#native.replies ? await ids.idFor(d.replyTo.canon) : undefined;
          if (replyTo === undefined && d.replyTo.nick) text = replyFallback(text, d.replyTo.nick, noPing);
        }
        let attachments = d.attachments;
        if (!this.#native.files && attachments?.length && toPlain(text).trim() === "") {
          // A file alone, on a leg without files (IRC): its URL on the sender's line, not a bare prefix line then the URL.
          text = { blocks: attachments.map((a) => ({ type: "line" as const, children: [{ type: "text" as const, text: a.url }] })) };
          attachments = undefined;
        }
        const extras = { ...(replyTo ? { replyTo } : {}), ...(attachments ? { attachments } : {}) };
        // Under the person's own name where the network lets the relay (IRC draft/relaymsg), `/me` kept as such.
        const as = await this.#sendAs(d, { text, ...(d.action ? { action: true } : {}), ...extras });
        if (as) {
          if (as.id) await ids.link(as.id, d.canon);
          return;
        }
        const prefix = d.action ? prefixInlines({ ...style, format: "* {nick} " }, d.from.nick, d.origin) : prefixInlines(style, d.from.nick, d.origin);
        const res = await session.sendMessage(this.#chat, { text: withPrefix(text, prefix), ...extras });
        if (res.id) await ids.link(res.id, d.canon);
        return;
      }
      case "edit": {
        const prefix = prefixInlines(style, d.from.nick, d.origin);
        const target = await ids.idFor(d.canon);
        if (this.#native.edits && session.correct) {
          if (target === undefined) return; // never relayed here: nothing to correct
          await session.correct(this.#chat, target, { text: withPrefix(d.text, prefix) });
          return;
        }
        if (await this.#sendAs(d, { text: correctionFallback([], d.text) })) return;
        await this.#say(correctionFallback(prefix, d.text));
        return;
      }
      case "retract": {
        const target = await ids.idFor(d.canon);
        if (this.#native.retract && session.retract) {
          if (target !== undefined) await session.retract(this.#chat, target);
          return;
        }
        await this.#say(retractionFallback(prefixInlines(style, d.from.nick, d.origin)));
        return;
      }
      case "moderate": {
        // IRC cannot delete a line: nothing is said there either (a "message removed" line would only
        // draw attention to what a moderator took down, and the room's IRC side cannot act on it).
        const target = await ids.idFor(d.canon);
        if (target === undefined || !this.#native.retract) return;
        const copy = d.author?.leg !== this.name; // posted by the relay: it may always remove it
        const reason = moderationReason(d.by.nick, d.origin, d.reason);
        if (session.moderate && this.#o.net.adapter.capabilities.moderation) {
          // Matrix: a redaction with the reason; Telegram: deleteMessage (as an admin for others' messages).
          await session.moderate(this.#o.room, target, reason);
        } else if (copy && session.retract) {
          await session.retract(this.#chat, target);
        }
        return;
      }
      case "reactions": {
        const target = await ids.idFor(d.canon);
        if (this.#native.reactions && session.react) {
          // The relay account has one reaction set per message: people of other legs share it.
          if (target !== undefined) await session.react(this.#chat, target, d.emojis);
          return;
        }
        const author = senderOf(d.canon);
        const text = reactionFallback(d.from.nick, d.emojis, author ? `${author}'s message` : undefined, noPing);
        if (text) await this.#say(text);
        return;
      }
      case "join":
      case "part":
        if (this.#o.joinPart) await this.#say(joinPartLine(d.who.nick, d.origin, d.type === "join" ? "joined" : "left", noPing));
        return;
      case "nick":
        return;
      case "notice":
        await this.#say(d.text);
        return;
    }
  }

  /** The message from the person's own name (AdapterSession.sendAs); undefined: not possible here, prefix it. */
  async #sendAs(d: { from: { nick: string }; origin: LegName }, message: OutgoingMessage): Promise<SendResult | undefined> {
    const session = this.#session!;
    if (!session.sendAs) return undefined;
    return session.sendAs(this.#chat, { nick: d.from.nick, network: d.origin }, message);
  }

  async #say(text: RichText): Promise<void> {
    await this.#session!.sendMessage(this.#chat, { text });
  }
}
