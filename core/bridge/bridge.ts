/**
 * One bridge: its legs, the id map between them, and the per-leg delivery
 * queues. An inbound event is handled in order per origin leg (so a message
 * is in the id map before its edit is looked up), then handed to each other
 * leg's queue: one bounded serial queue per leg, so a leg that is down holds
 * up only its own deliveries. A delivery that fails (the adapter's retry
 * window passed, the queue is full, the timeout hit) is logged, counted and
 * reported to the origin leg as a notice (at most one per pair of legs per
 * NOTICE_WINDOW_MS; later failures in the window are summed into the next one).
 */
import type { Logger } from "pino";
import { asEstuaryError, fail } from "../errors.ts";
import type { Store } from "../store/index.ts";
import { KeyedSerial } from "../serial.ts";
import type { LegName } from "./config.ts";
import { undeliveredNotice } from "./format.ts";
import { newCanonical, scopeFor, senderOf } from "./ids.ts";
import { Recent } from "./loop.ts";
import { bridgeMetrics } from "./metrics.ts";
import type { Delivery, Inbound, Leg, LegIds, Person } from "./types.ts";

export const NOTICE_WINDOW_MS = 30_000;

export interface BridgeOptions {
  name: string;
  store: Store;
  log: Logger;
  maxQueuedPerLeg: number;
  deliveryTimeoutMs: number;
}

export class Bridge {
  readonly name: string;
  readonly legs = new Map<LegName, Leg>();
  readonly #opts: BridgeOptions;
  readonly #inboundOrder = new KeyedSerial(10_000);
  readonly #queues: KeyedSerial;
  readonly #recent = new Recent(5000);
  /**
   * Canonical ids already removed (retraction or moderation): a removal the
   * bridge carried to a leg comes back from it (the relay's own redaction
   * seen in the sync, the MUC announcing the relay's XEP-0425 request) and
   * must stop there, whatever the leg's own echo filters let through.
   */
  readonly #removed = new Recent(5000);
  readonly #notices = new Map<string, { count: number; reason: string; timer?: NodeJS.Timeout }>();
  #stopped = false;

  constructor(opts: BridgeOptions) {
    this.name = opts.name;
    this.#opts = opts;
    this.#queues = new KeyedSerial(opts.maxQueuedPerLeg);
  }

  /** The id map as `leg` sees it. */
  ids(leg: LegName): LegIds {
    const idmap = this.#opts.store.idmap;
    const scope = scopeFor(this.name, leg);
    const sidScope = scopeFor(this.name, `${leg}-sid`);
    return {
      idFor: (canon) => idmap.legacyFor(scope, canon),
      refFor: async (canon) => (await idmap.legacyFor(sidScope, canon)) ?? (await idmap.legacyFor(scope, canon)),
      link: (legId, canon, kind = "id") => idmap.link(kind === "sid" ? sidScope : scope, legId, [canon]),
      canonFor: async (legId) => (await idmap.xmppFor(scope, legId)) ?? (await idmap.xmppFor(sidScope, legId)),
    };
  }

  /**
   * Who wrote a bridged message: its origin leg and the person's network id
   * (or nick, for XMPP occupants), kept in the id map under the scope `author`.
   */
  #authorKey(leg: LegName, who: Person): string {
    return `${leg}\n${who.contact ?? `nick:${who.nick}`}`;
  }

  /**
   * Whether an edit or retraction from `origin` by `who` may apply to `canon`.
   * Edits only by the author (XEP-0308, Matrix m.replace "same sender",
   * Telegram's editMessageText); XMPP retractions only by the author too
   * (XEP-0424: any occupant can send one and the MUC does not check it, while
   * the relay account would delete anyone's message on the other networks).
   * A network's own deletions (a Matrix moderator's redaction) were already
   * allowed by that network. Messages from before this record: allowed.
   */
  async #mayChange(origin: LegName, who: Person, canon: string, kind: "edit" | "retract" | "reactions"): Promise<boolean> {
    if (kind === "reactions" || (kind === "retract" && origin !== "xmpp")) return true;
    const author = await this.#opts.store.idmap.xmppFor(scopeFor(this.name, "author"), canon);
    return author === undefined || author === this.#authorKey(origin, who);
  }

  /** Where `canon` was written and by whom (undefined: from before this record). */
  async #author(canon: string): Promise<{ leg: LegName; who: Person } | undefined> {
    const key = await this.#opts.store.idmap.xmppFor(scopeFor(this.name, "author"), canon);
    const nl = key?.indexOf("\n") ?? -1;
    if (key === undefined || nl < 0) return undefined;
    const id = key.slice(nl + 1);
    const nick = senderOf(canon) ?? id;
    const who: Person = id.startsWith("nick:") ? { nick: id.slice(5) } : { nick, contact: id };
    return { leg: key.slice(0, nl) as LegName, who };
  }

  add(leg: Leg): void {
    this.legs.set(leg.name, leg);
  }

  async start(): Promise<void> {
    await Promise.all([...this.legs.values()].map((l) => l.start()));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const n of this.#notices.values()) clearTimeout(n.timer);
    await Promise.all([...this.legs.values()].map((l) => l.stop().catch((err: unknown) => this.#opts.log.warn({ err, leg: l.name }, "leg stop failed"))));
  }

  /** Entry point of every leg's events. */
  inbound(origin: LegName, event: Inbound): void {
    if (this.#stopped) return;
    this.#inboundOrder.run(origin, () => this.#handle(origin, event)).catch((err: unknown) => {
      this.#opts.log.error({ err, leg: origin, event: event.type }, "bridge event handling failed");
    });
  }

  async #handle(origin: LegName, ev: Inbound): Promise<void> {
    const ids = this.ids(origin);
    switch (ev.type) {
      case "message": {
        const first = ev.ids[0];
        // Duplicates: replays after a reconnect, a restart, or a second copy of an event.
        if (first !== undefined && (this.#recent.seen(`${origin}\n${first}`) || (await ids.canonFor(first)) !== undefined)) {
          bridgeMetrics.suppressed.inc({ leg: origin, reason: "duplicate" });
          return;
        }
        const canon = newCanonical(ev.from.nick);
        await this.#opts.store.idmap.link(scopeFor(this.name, "author"), canon, [this.#authorKey(origin, ev.from)]);
        for (const id of ev.ids) await ids.link(id, canon);
        if (ev.sid) await ids.link(ev.sid, canon, "sid");
        let replyTo: { canon: string; nick: string } | undefined;
        if (ev.replyTo) {
          const target = await ids.canonFor(ev.replyTo);
          if (target) replyTo = { canon: target, nick: senderOf(target) ?? "" };
        }
        this.#fanOut(origin, {
          type: "message",
          canon,
          origin,
          from: ev.from,
          text: ev.text,
          ...(ev.action ? { action: true } : {}),
          ...(replyTo ? { replyTo } : {}),
          ...(ev.attachments?.length ? { attachments: ev.attachments } : {}),
        });
        return;
      }
      case "edit":
      case "retract":
      case "reactions": {
        const canon = await ids.canonFor(ev.id);
        if (!canon) {
          // A message from before the bridge (or the id map's TTL): nothing to apply it to.
          this.#opts.log.debug({ leg: origin, type: ev.type }, "bridge: target message unknown");
          return;
        }
        if (!(await this.#mayChange(origin, ev.from, canon, ev.type))) {
          bridgeMetrics.suppressed.inc({ leg: origin, reason: "not-author" });
          this.#opts.log.info({ bridge: this.name, leg: origin, type: ev.type, nick: ev.from.nick }, "bridge: an edit or retraction of someone else's message is not relayed");
          return;
        }
        if (ev.type === "edit") this.#fanOut(origin, { type: "edit", canon, origin, from: ev.from, text: ev.text });
        else if (ev.type === "retract") {
          if (this.#removed.seen(canon)) return this.#suppressRemoval(origin);
          this.#fanOut(origin, { type: "retract", canon, origin, from: ev.from });
        }
        else this.#fanOut(origin, { type: "reactions", canon, origin, from: ev.from, emojis: ev.emojis });
        return;
      }
      case "moderate": {
        // The leg only reports moderation its network allowed (the MUC's own announcement, a
        // redaction the homeserver accepted): no author check, but once per message.
        const canon = await ids.canonFor(ev.id);
        if (!canon) {
          this.#opts.log.debug({ leg: origin }, "bridge: moderated message unknown");
          return;
        }
        if (this.#removed.seen(canon)) return this.#suppressRemoval(origin);
        const author = await this.#author(canon);
        this.#opts.log.info({ bridge: this.name, leg: origin, by: ev.by.nick }, "bridge: a moderator removed a message; removing its copies");
        this.#fanOut(origin, {
          type: "moderate",
          canon,
          origin,
          by: ev.by,
          ...(ev.reason ? { reason: ev.reason } : {}),
          ...(author ? { author } : {}),
        });
        return;
      }
      case "join":
      case "part":
        this.#fanOut(origin, { type: ev.type, origin, who: ev.who });
        return;
      case "nick":
        this.#fanOut(origin, { type: "nick", origin, who: ev.who, old: ev.old });
        return;
    }
  }

  #suppressRemoval(origin: LegName): void {
    bridgeMetrics.suppressed.inc({ leg: origin, reason: "removed" });
    this.#opts.log.debug({ bridge: this.name, leg: origin }, "bridge: message already removed; not relayed again");
  }

  #fanOut(origin: LegName, d: Delivery): void {
    for (const leg of this.legs.values()) if (leg.name !== origin) this.#enqueue(origin, leg, d);
  }

  #enqueue(origin: LegName | undefined, leg: Leg, d: Delivery): void {
    const kind = d.type;
    this.#queues
      .run(leg.name, () => withTimeout(leg.deliver(d), this.#opts.deliveryTimeoutMs, `${leg.name} did not accept it within ${Math.round(this.#opts.deliveryTimeoutMs / 1000)} s`))
      .then(
        () => bridgeMetrics.relayed.inc({ from: origin ?? "bridge", to: leg.name, kind }),
        (err: unknown) => {
          const e = asEstuaryError(err);
          bridgeMetrics.undelivered.inc({ from: origin ?? "bridge", to: leg.name, kind });
          this.#opts.log.warn({ bridge: this.name, from: origin, to: leg.name, kind, err: e.message }, "bridge delivery failed");
          // Presence-like events are not worth a notice; notices about notices would loop.
          if (origin && (kind === "message" || kind === "edit")) this.#report(origin, leg.name, e.message);
        },
      );
  }

  /** Tells the origin leg that something could not reach `target` (rate-limited per pair). */
  #report(origin: LegName, target: LegName, reason: string): void {
    const leg = this.legs.get(origin);
    if (!leg || this.#stopped) return;
    const key = `${origin}\n${target}`;
    const pending = this.#notices.get(key);
    if (pending) {
      pending.count++;
      pending.reason = reason;
      return;
    }
    const entry: { count: number; reason: string; timer?: NodeJS.Timeout } = { count: 0, reason };
    this.#notices.set(key, entry);
    this.#enqueue(undefined, leg, { type: "notice", text: undeliveredNotice(target, 1, reason) });
    entry.timer = setTimeout(() => {
      this.#notices.delete(key);
      if (entry.count > 0 && !this.#stopped) this.#enqueue(undefined, leg, { type: "notice", text: undeliveredNotice(target, entry.count, entry.reason) });
    }, NOTICE_WINDOW_MS);
    entry.timer.unref();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, text: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(fail("timeout", text)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
