/**
 * The XMPP leg: a MUC on any XMPP server, where every remote person is a real
 * occupant (a "puppet") joined from a JID under the gateway's domain for
 * their network — `network.jidOf({ kind: "contact", contact })`, resource
 * `bridge` — so XMPP users see `room@conference…/bob` speak, not a relay bot.
 *
 * The MUC sends its traffic to every occupant; the bridge reads it through ONE
 * relay occupant (`bridge@<domain>/<bridge name>`, nick `relay` by default)
 * and ignores the puppets' copies. Interceptors (core/network.ts) on every
 * involved network take every stanza coming from the room to one of these
 * JIDs, so the core never answers them (it would answer with errors, and the
 * room would kick the puppets: XEP-0045 §7.14).
 *
 * XEP-0045 facts relied on: a join is a presence to room/nick, answered by
 * the occupant list then self-presence with status 110 (§7.2), or a presence
 * error, `conflict` when the nick is taken (§7.2.9); a nick change is a new
 * presence to room/newnick, answered by unavailable+303 then 110 (§7.6);
 * leaving is presence unavailable (§7.14). Messages are reflected to the
 * sender (§7.4) — recognised here by the puppet's nick and our origin-id.
 */
import { createHash } from "node:crypto";
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import type { Logger } from "pino";
import { asEstuaryError, fail } from "../errors.ts";
import { IqCaller } from "../iq-caller.ts";
import { parseStyling, serializeStyling } from "../format/xep0393.ts";
import type { LinkState } from "../component.ts";
import type { Network } from "../network.ts";
import { NS } from "../stanzas/ns.ts";
import type { LegName } from "./config.ts";
import { joinPartLine, moderationReason } from "./format.ts";
import { ownStanzaId } from "./ids.ts";
import { isOwnXmpp, nickCandidates } from "./loop.ts";
import { bridgeMetrics } from "./metrics.ts";
import type { Delivery, Inbound, InboundSink, Leg, LegIds, Person } from "./types.ts";

export const PUPPET_RESOURCE = "bridge";
const JOIN_TIMEOUT_MS = 10_000;
const FALLBACK_NS = "urn:xmpp:fallback:0";
/** XEP-0425 v0.2 (what Prosody 0.12's mod_muc_moderation speaks): moderation as a XEP-0422 fastening. */
const FASTEN_NS = "urn:xmpp:fasten:0";
const MODERATE_V0 = "urn:xmpp:message-moderate:0";
const RETRACT_V0 = "urn:xmpp:message-retract:0";
const MODERATION_TIMEOUT_MS = 10_000;

interface Occ {
  /** Full JID, lower-cased. */
  full: string;
  net: Network;
  /** Current nick in the room, when joined. */
  nick?: string;
  /** Nick being tried (a join or nick change in flight): its presences are ours too. */
  trying?: string;
  joined: boolean;
  /** The person's own name (nick candidates derive from it). */
  base: string;
  /** Origin leg, for puppets. */
  leg?: LegName;
  /** Serialises joins / nick changes of this occupant. */
  busy?: Promise<void>;
}

type JoinResult = { nick: string } | { error: string };

export interface XmppLegOptions {
  bridge: string;
  /** Bare room JID, lower-cased. */
  room: string;
  relayNet: Network;
  networks: Map<string, Network>;
  relayNick: string;
  puppets: "speakers" | "present";
  password?: string;
  joinPart: boolean;
  ids: LegIds;
  sink: InboundSink;
  log: Logger;
}

export class XmppLeg implements Leg {
  readonly name = "xmpp" as const;
  readonly #o: XmppLegOptions;
  readonly #relay: Occ;
  readonly #puppets = new Map<string, Occ>();
  /** `${leg}\n${nick}` → puppet key (parts and nick changes only carry the nick). */
  readonly #byNick = new Map<string, string>();
  readonly #byFull = new Map<string, Occ>();
  readonly #waiters = new Map<string, (r: JoinResult) => void>();
  /** Nicks of real XMPP occupants, as the relay sees them. */
  readonly #others = new Set<string>();
  readonly #cleanup: (() => void)[] = [];
  /** The relay's own IQs to the room (disco, XEP-0425 requests) and their answers. */
  readonly #iq: IqCaller;
  /** Which XEP-0425 the room speaks (disco#info, asked once); undefined: not asked yet. */
  #moderation: Promise<"v0.3" | "v0.2" | "none"> | undefined;
  #stopped = false;

  constructor(o: XmppLegOptions) {
    this.#o = o;
    const full = `bridge@${o.relayNet.domain}/${o.bridge}`.toLowerCase();
    this.#relay = { full, net: o.relayNet, joined: false, base: o.relayNick };
    this.#byFull.set(full, this.#relay);
    this.#iq = new IqCaller((el) => this.#relay.net.send(el));
  }

  /** Nicks the bridge plays in the room (for echo recognition). */
  ourNicks(): Set<string> {
    const s = new Set<string>();
    for (const p of this.#byFull.values()) {
      if (p.nick) s.add(p.nick);
      if (p.trying) s.add(p.trying);
    }
    return s;
  }

  async start(): Promise<void> {
    const nets = new Set<Network>([this.#o.relayNet, ...this.#o.networks.values()]);
    for (const net of nets) {
      const intercept = (stanza: Element): boolean => this.#intercept(stanza);
      net.interceptors.push(intercept);
      const onState = (state: LinkState): void => this.#onLinkState(net, state);
      net.link.on("state", onState);
      this.#cleanup.push(() => {
        const i = net.interceptors.indexOf(intercept);
        if (i >= 0) net.interceptors.splice(i, 1);
        net.link.off("state", onState);
      });
    }
    await this.#o.relayNet.link.online(20_000).catch(() => undefined);
    await this.#joinRelay(1000, true);
  }

  async #joinRelay(delay: number, first: boolean): Promise<void> {
    if (this.#stopped || this.#relay.joined) return;
    try {
      await this.#joinAs(this.#relay, nickCandidates(this.#o.relayNick, "bridge"));
      this.#o.log.info({ room: this.#o.room, nick: this.#relay.nick }, "bridge relay joined the MUC");
    } catch (err) {
      this.#o.log.warn({ room: this.#o.room, err: (err as Error).message }, "bridge relay could not join the MUC; retrying");
      const t = setTimeout(() => void this.#joinRelay(Math.min(delay * 2, 60_000), false), delay);
      t.unref();
      if (first) return;
    }
  }

  #onLinkState(net: Network, state: LinkState): void {
    if (this.#stopped) return;
    if (state !== "online") {
      // The stream is gone: the room dropped (or will drop) our occupants; they rejoin when needed.
      for (const occ of this.#byFull.values()) if (occ.net === net) occ.joined = false;
      return;
    }
    if (this.#relay.net === net) void this.#joinRelay(1000, false);
  }

  status(): string {
    if (this.#stopped) return "stopped";
    const puppets = [...this.#puppets.values()].filter((p) => p.joined).length;
    const relay = this.#relay.joined ? `relay in ${this.#o.room} as ${this.#relay.nick}` : `relay joining ${this.#o.room}`;
    return `${relay}, ${puppets} puppet${puppets === 1 ? "" : "s"} present`;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const occ of this.#byFull.values()) {
      if (occ.joined && occ.nick) occ.net.send(xml("presence", { from: occ.full, to: `${this.#o.room}/${occ.nick}`, type: "unavailable" }));
      occ.joined = false;
    }
    for (const c of this.#cleanup.splice(0)) c();
    for (const w of this.#waiters.values()) w({ error: "shutdown" });
    this.#iq.cancelAll();
  }

  // ------------------------------------------------------------ joins

  /** Joins (or renames) `occ`, trying nick candidates on conflict. */
  async #joinAs(occ: Occ, candidates: Iterable<string>): Promise<void> {
    const previous = occ.busy ?? Promise.resolve();
    let release!: () => void;
    occ.busy = new Promise((r) => (release = r));
    await previous;
    try {
      const taken = this.ourNicks();
      for (const nick of candidates) {
        if (occ.joined && occ.nick === nick) return;
        if (this.#others.has(nick) || (taken.has(nick) && occ.nick !== nick)) continue;
        const r = await this.#tryNick(occ, nick);
        if ("nick" in r) return;
        if (r.error !== "conflict") throw fail("unavailable", `the room refused ${nick}: ${r.error}`);
      }
      throw fail("conflict", "no free nick");
    } finally {
      release();
    }
  }

  #tryNick(occ: Occ, nick: string): Promise<JoinResult> {
    occ.trying = nick;
    return new Promise<JoinResult>((resolve) => {
      const timer = setTimeout(() => done({ error: "timeout" }), JOIN_TIMEOUT_MS);
      const done = (r: JoinResult): void => {
        clearTimeout(timer);
        this.#waiters.delete(occ.full);
        occ.trying = undefined;
        resolve(r);
      };
      this.#waiters.set(occ.full, done);
      const muc = occ.joined
        ? undefined // XEP-0045 §7.6: a nick change is a plain presence
        : xml("x", { xmlns: NS.muc }, xml("history", { maxstanzas: "0" }), this.#o.password ? xml("password", {}, this.#o.password) : undefined);
      occ.net.send(xml("presence", { from: occ.full, to: `${this.#o.room}/${nick}` }, muc));
    });
  }

  #puppetKey(leg: LegName, who: Person): string {
    return `${leg}\n${who.contact ?? `nick:${who.nick}`}`;
  }

  /** The puppet of a remote person, joined to the room (created and joined on first use). */
  async #puppet(leg: LegName, who: Person): Promise<Occ> {
    const key = this.#puppetKey(leg, who);
    let p = this.#puppets.get(key);
    if (!p) {
      const net = this.#o.networks.get(leg) ?? this.#o.relayNet;
      const bare = who.contact
        ? net.jidOf({ kind: "contact", contact: who.contact })
        : `bridge-${createHash("sha256").update(`${leg}\n${who.nick}`).digest("hex").slice(0, 16)}@${net.domain}`;
      p = { full: `${bare}/${PUPPET_RESOURCE}`.toLowerCase(), net, joined: false, base: who.nick, leg };
      this.#puppets.set(key, p);
      this.#byFull.set(p.full, p);
    }
    this.#byNick.set(`${leg}\n${who.nick}`, key);
    if (!p.joined) await this.#joinAs(p, nickCandidates(p.base, leg));
    return p;
  }

  #leave(p: Occ): void {
    if (p.joined && p.nick) p.net.send(xml("presence", { from: p.full, to: `${this.#o.room}/${p.nick}`, type: "unavailable" }));
    p.joined = false;
    p.nick = undefined;
  }

  // ------------------------------------------------------------ inbound

  #intercept(stanza: Element): boolean {
    const from = stanza.attrs.from ?? "";
    const slash = from.indexOf("/");
    const bare = (slash < 0 ? from : from.slice(0, slash)).toLowerCase();
    if (bare !== this.#o.room) return false;
    const to = (stanza.attrs.to ?? "").toLowerCase();
    const occ = this.#byFull.get(to);
    if (!occ && !to.endsWith(`/${PUPPET_RESOURCE}`)) return false;
    const nick = slash < 0 ? "" : from.slice(slash + 1);
    try {
      if (stanza.name === "iq" && occ === this.#relay && this.#iq.take(stanza)) return true;
      if (stanza.name === "iq") this.#answerIq(stanza, to);
      else if (occ && stanza.name === "presence") this.#onPresence(occ, nick, stanza);
      else if (occ && stanza.name === "message") this.#onMessage(occ, nick, stanza);
    } catch (err) {
      this.#o.log.error({ err }, "bridge: MUC stanza handling failed");
    }
    return true;
  }

  #answerIq(stanza: Element, to: string): void {
    const type = stanza.attrs.type;
    if (type !== "get" && type !== "set") return;
    const net = this.#byFull.get(to)?.net ?? this.#o.relayNet;
    const ping = stanza.getChild("ping", NS.ping);
    // XEP-0410 self-ping / XEP-0199: answer so the room keeps us; anything else is not served here.
    net.send(
      ping
        ? xml("iq", { type: "result", id: stanza.attrs.id, from: stanza.attrs.to, to: stanza.attrs.from })
        : xml(
            "iq",
            { type: "error", id: stanza.attrs.id, from: stanza.attrs.to, to: stanza.attrs.from },
            xml("error", { type: "cancel" }, xml("service-unavailable", { xmlns: NS.stanzas })),
          ),
    );
  }

  #onPresence(occ: Occ, nick: string, stanza: Element): void {
    const type = stanza.attrs.type;
    const x = stanza.getChild("x", NS.mucUser);
    const codes = new Set((x?.getChildren("status") ?? []).map((s) => s.attrs.code));
    const waiter = this.#waiters.get(occ.full);
    if (type === "error") {
      const condition = stanza.getChild("error")?.children.find((c): c is Element => typeof c !== "string" && c.attrs.xmlns === NS.stanzas)?.name ?? "error";
      waiter?.({ error: condition });
      return;
    }
    if (codes.has("110")) {
      if (type === "unavailable") {
        if (codes.has("303")) return; // our nick change: the new presence follows
        occ.joined = false;
        occ.nick = undefined;
        // Kicked or the room went away: the relay comes back by itself, puppets on next use.
        if (occ === this.#relay && !this.#stopped) setTimeout(() => void this.#joinRelay(1000, false), 1000).unref();
        return;
      }
      occ.joined = true;
      occ.nick = nick;
      waiter?.({ nick });
      return;
    }
    // Everyone else's presences: only the relay's copy counts.
    if (occ !== this.#relay) return;
    const itemJid = x?.getChild("item")?.attrs.jid?.toLowerCase();
    const ours = (itemJid !== undefined && this.#byFull.has(itemJid)) || this.ourNicks().has(nick);
    if (type === "unavailable") {
      if (ours) return;
      const renamed = codes.has("303") ? x?.getChild("item")?.attrs.nick : undefined;
      this.#others.delete(nick);
      if (renamed) {
        this.#others.add(renamed);
        if (this.#relay.joined) this.#o.sink(this.name, { type: "nick", who: { nick: renamed }, old: nick });
      } else if (this.#relay.joined) this.#o.sink(this.name, { type: "part", who: { nick } });
      return;
    }
    if (ours || this.#others.has(nick)) return;
    this.#others.add(nick);
    // Occupants listed before our own join are the room as it was, not news.
    if (this.#relay.joined) this.#o.sink(this.name, { type: "join", who: { nick } });
  }

  #onMessage(occ: Occ, nick: string, stanza: Element): void {
    const type = stanza.attrs.type;
    if (type === "error") {
      // Not in the room any more (restart, kick): rejoin on the next delivery.
      this.#o.log.warn({ to: occ.full, error: stanza.getChild("error")?.toString() }, "bridge: the MUC refused a message");
      occ.joined = false;
      return;
    }
    if (occ !== this.#relay || type !== "groupchat") return;
    if (stanza.getChild("delay", NS.delay)) return; // history, not live
    if (nick === "") {
      // XEP-0425 §5: moderation is announced by the room itself, from its bare JID; the same
      // elements from an occupant are a forgery (an occupant's <retract/> is its own retraction).
      const m = parseModeration(stanza);
      if (!m) return;
      if (m.by !== undefined && m.by === this.#relay.nick) {
        bridgeMetrics.suppressed.inc({ leg: this.name, reason: "echo" }); // what the relay asked for (deliver "moderate")
        return;
      }
      this.#o.sink(this.name, { type: "moderate", id: m.id, by: { nick: m.by ?? "a moderator" }, ...(m.reason ? { reason: m.reason } : {}) });
      return;
    }
    const body = stanza.getChildText("body");
    const originId = stanza.getChild("origin-id", NS.sid)?.attrs.id;
    const ids = [stanza.attrs.id, originId].filter((i): i is string => !!i);
    const sid = stanza.getChildren("stanza-id", NS.sid).find((s) => s.attrs.by?.toLowerCase() === this.#o.room)?.attrs.id;
    if (isOwnXmpp({ nick, ids, relayNick: this.#relay.nick ?? this.#o.relayNick, puppetNicks: this.ourNicks() })) {
      bridgeMetrics.suppressed.inc({ leg: this.name, reason: "echo" });
      // The room's stanza-id for what a puppet said: replies and retractions name it.
      const own = ids[0];
      if (sid && own) {
        void this.#o.ids
          .canonFor(own)
          .then((canon) => (canon ? this.#o.ids.link(sid, canon, "sid") : undefined))
          .catch((err: unknown) => this.#o.log.warn({ err }, "bridge: could not record a stanza-id"));
      }
      return;
    }
    const from: Person = { nick };
    const event = parseInbound(stanza, body, from, ids, sid);
    if (event) this.#o.sink(this.name, event);
  }

  // ------------------------------------------------------------ deliveries

  async deliver(d: Delivery): Promise<void> {
    const room = this.#o.room;
    const ids = this.#o.ids;
    switch (d.type) {
      case "message": {
        const p = await this.#puppet(d.origin, d.from);
        const id = ownStanzaId();
        let body = serializeStyling(d.text);
        if (d.action) body = `/me ${body}`;
        const attachments = d.attachments ?? [];
        if (body === "" && attachments.length > 0) body = attachments.map((a) => a.url).join("\n");
        const reply = d.replyTo ? await ids.refFor(d.replyTo.canon) : undefined;
        // Linked before sending: the room's reflection looks it up to record the stanza-id.
        await ids.link(id, d.canon);
        p.net.send(
          xml(
            "message",
            { from: p.full, to: room, type: "groupchat", id },
            xml("body", {}, body),
            xml("origin-id", { xmlns: NS.sid, id }),
            reply ? xml("reply", { xmlns: NS.reply, id: reply }) : undefined,
            ...attachments.map((a) => xml("x", { xmlns: NS.oob }, xml("url", {}, a.url), a.name ? xml("desc", {}, a.name) : undefined)),
          ),
        );
        return;
      }
      case "edit": {
        const target = await ids.idFor(d.canon);
        if (!target) return;
        const p = await this.#puppet(d.origin, d.from);
        const id = ownStanzaId();
        p.net.send(
          xml(
            "message",
            { from: p.full, to: room, type: "groupchat", id },
            xml("body", {}, serializeStyling(d.text)),
            xml("replace", { xmlns: NS.replace, id: target }),
            xml("origin-id", { xmlns: NS.sid, id }),
          ),
        );
        return;
      }
      case "retract": {
        const target = await ids.refFor(d.canon);
        if (!target) return;
        const p = await this.#puppet(d.origin, d.from);
        const id = ownStanzaId();
        p.net.send(
          xml(
            "message",
            { from: p.full, to: room, type: "groupchat", id },
            xml("retract", { xmlns: NS.retract, id: target }),
            xml("fallback", { xmlns: FALLBACK_NS, for: NS.retract }),
            xml("body", {}, "This person attempted to retract a previous message, but it's unsupported by your client."),
            xml("origin-id", { xmlns: NS.sid, id }),
            xml("store", { xmlns: NS.hints }),
          ),
        );
        return;
      }
      case "moderate": {
        const target = await ids.refFor(d.canon);
        if (!target) return;
        if (d.author && d.author.leg !== this.name) {
          // The MUC's copy is a puppet's message: the puppet retracts it (XEP-0424), no room privilege needed.
          await this.deliver({ type: "retract", canon: d.canon, origin: d.author.leg, from: d.author.who });
          return;
        }
        await this.#moderate(target, moderationReason(d.by.nick, d.origin, d.reason));
        return;
      }
      case "reactions": {
        const target = await ids.refFor(d.canon);
        if (!target) return;
        const p = await this.#puppet(d.origin, d.from);
        const id = ownStanzaId();
        p.net.send(
          xml(
            "message",
            { from: p.full, to: room, type: "groupchat", id },
            xml("reactions", { xmlns: NS.reactions, id: target }, ...d.emojis.map((e) => xml("reaction", {}, e))),
            xml("origin-id", { xmlns: NS.sid, id }),
            xml("store", { xmlns: NS.hints }),
          ),
        );
        return;
      }
      case "join":
        if (this.#o.puppets === "present") await this.#puppet(d.origin, d.who);
        else if (this.#o.joinPart) this.#relaySay(serializeStyling(joinPartLine(d.who.nick, d.origin, "joined")));
        return;
      case "part": {
        const key = this.#byNick.get(`${d.origin}\n${d.who.nick}`);
        const p = key === undefined ? undefined : this.#puppets.get(key);
        if (p) {
          this.#leave(p);
          this.#byNick.delete(`${d.origin}\n${d.who.nick}`);
        }
        if (this.#o.joinPart) this.#relaySay(serializeStyling(joinPartLine(d.who.nick, d.origin, "left")));
        return;
      }
      case "nick": {
        const key = this.#byNick.get(`${d.origin}\n${d.old}`);
        const p = key === undefined ? undefined : this.#puppets.get(key);
        if (!p || key === undefined) return;
        this.#byNick.delete(`${d.origin}\n${d.old}`);
        this.#byNick.set(`${d.origin}\n${d.who.nick}`, key);
        p.base = d.who.nick;
        if (p.joined) await this.#joinAs(p, nickCandidates(p.base, p.leg ?? d.origin));
        return;
      }
      case "notice":
        this.#relaySay(serializeStyling(d.text));
        return;
    }
  }

  /**
   * Asks the room to remove an XMPP occupant's message (XEP-0425 §3 as the
   * relay). The room decides: it succeeds only where the relay is a
   * moderator. A refusal is logged and reported as the delivery's failure
   * (the bridge logs it, sends no notice), and nothing is retried or relayed
   * back. The room's announcement of it names the relay and is dropped.
   */
  async #moderate(stanzaId: string, reason: string): Promise<void> {
    if (!this.#relay.joined) throw fail("unavailable", "the bridge's relay is not in the room");
    this.#moderation ??= this.#moderationVersion();
    const version = await this.#moderation;
    if (version === "none") {
      this.#o.log.info({ room: this.#o.room }, "bridge: the MUC has no XEP-0425 moderation; the XMPP copy stays");
      return;
    }
    const request =
      version === "v0.3"
        ? xml("moderate", { xmlns: NS.moderate, id: stanzaId }, xml("retract", { xmlns: NS.retract }), xml("reason", {}, reason))
        : xml("apply-to", { xmlns: FASTEN_NS, id: stanzaId }, xml("moderate", { xmlns: MODERATE_V0 }, xml("retract", { xmlns: RETRACT_V0 }), xml("reason", {}, reason)));
    try {
      await this.#iq.request(xml("iq", { type: "set", id: ownStanzaId(), from: this.#relay.full, to: this.#o.room }, request), MODERATION_TIMEOUT_MS);
    } catch (err) {
      const el = (err as { element?: Element }).element;
      const condition = el ? errorCondition(el) : asEstuaryError(err).message;
      this.#o.log.warn({ room: this.#o.room, condition }, "bridge: the MUC refused to remove the message (is the relay a moderator there?)");
      throw fail(condition === "forbidden" ? "forbidden" : "unavailable", `the MUC refused the moderation: ${condition}`);
    }
  }

  /** disco#info on the room (XEP-0425 §2): v0.3's namespace, else v0.2's, else none. */
  async #moderationVersion(): Promise<"v0.3" | "v0.2" | "none"> {
    try {
      const res = await this.#iq.request(
        xml("iq", { type: "get", id: ownStanzaId(), from: this.#relay.full, to: this.#o.room }, xml("query", { xmlns: NS.discoInfo })),
        MODERATION_TIMEOUT_MS,
      );
      const features = new Set((res.getChild("query", NS.discoInfo)?.getChildren("feature") ?? []).map((f) => f.attrs.var));
      return features.has(NS.moderate) ? "v0.3" : features.has(MODERATE_V0) ? "v0.2" : "none";
    } catch (err) {
      this.#moderation = undefined; // ask again next time
      throw fail("unavailable", `the MUC did not answer disco#info: ${asEstuaryError(err).message}`);
    }
  }

  #relaySay(body: string): void {
    if (!this.#relay.joined) throw fail("unavailable", "the bridge's relay is not in the room");
    const id = ownStanzaId();
    this.#relay.net.send(xml("message", { from: this.#relay.full, to: this.#o.room, type: "groupchat", id }, xml("body", {}, body), xml("origin-id", { xmlns: NS.sid, id })));
  }
}

function errorCondition(stanza: Element): string {
  return stanza.getChild("error")?.children.find((c): c is Element => typeof c !== "string" && c.attrs.xmlns === NS.stanzas)?.name ?? "error";
}

/**
 * A moderation announcement of the room (a message from its bare JID):
 * XEP-0425 v0.3 `<retract id xmlns=…retract:1><moderated by xmlns=…moderate:1/>
 * <reason/></retract>`, or v0.2 (Prosody 0.12's mod_muc_moderation)
 * `<apply-to id xmlns=…fasten:0><moderated by xmlns=…moderate:0><retract
 * xmlns=…retract:0/><reason/></moderated></apply-to>`. `id` is the room's
 * stanza-id of the message; `by` the moderator's nick (from `room/nick`).
 */
export function parseModeration(stanza: Element): { id: string; by?: string; reason?: string } | undefined {
  const nickOf = (by: string | undefined): string | undefined => {
    const slash = by?.indexOf("/") ?? -1;
    return by !== undefined && slash >= 0 ? by.slice(slash + 1) : undefined;
  };
  const build = (id: string, by: string | undefined, reason: string | null | undefined) => {
    const nick = nickOf(by);
    const r = reason?.trim();
    return { id, ...(nick ? { by: nick } : {}), ...(r ? { reason: r } : {}) };
  };
  const retract = stanza.getChild("retract", NS.retract);
  const moderated = retract?.getChild("moderated", NS.moderate);
  if (retract?.attrs.id && moderated) return build(retract.attrs.id, moderated.attrs.by, retract.getChildText("reason") ?? moderated.getChildText("reason"));
  const applyTo = stanza.getChild("apply-to", FASTEN_NS);
  const old = applyTo?.getChild("moderated", MODERATE_V0);
  if (applyTo?.attrs.id && old?.getChild("retract", RETRACT_V0)) return build(applyTo.attrs.id, old.attrs.by, old.getChildText("reason"));
  return undefined;
}

/** A MUC message from a real occupant as a bridge event (undefined: nothing to relay, e.g. a chat state). */
export function parseInbound(stanza: Element, body: string | null, from: Person, ids: string[], sid: string | undefined): Inbound | undefined {
  const retract = stanza.getChild("retract", NS.retract)?.attrs.id;
  if (retract) return { type: "retract", id: retract, from };
  const reactions = stanza.getChild("reactions", NS.reactions);
  if (reactions?.attrs.id) return { type: "reactions", id: reactions.attrs.id, from, emojis: reactions.getChildren("reaction").map((r) => r.getText()) };
  if (body === null) return undefined;
  const replace = stanza.getChild("replace", NS.replace)?.attrs.id;
  if (replace) return { type: "edit", id: replace, from, text: parseStyling(stripAction(body).text) };
  const reply = stanza.getChild("reply", NS.reply)?.attrs.id;
  const text = reply ? stripFallback(stanza, body, NS.reply) : body;
  const { text: rest, action } = stripAction(text);
  const urls = stanza.getChildren("x", NS.oob).map((x) => x.getChildText("url")).filter((u): u is string => !!u);
  return {
    type: "message",
    ids,
    ...(sid ? { sid } : {}),
    from,
    text: parseStyling(rest),
    ...(action ? { action: true } : {}),
    ...(reply ? { replyTo: reply } : {}),
    ...(urls.length > 0 ? { attachments: urls.map((url) => ({ url })) } : {}),
  };
}

function stripAction(body: string): { text: string; action: boolean } {
  // XEP-0245: "/me " at the start is an action.
  return body.startsWith("/me ") ? { text: body.slice(4), action: true } : { text: body, action: false };
}

/** XEP-0428: removes the fallback ranges (code points) marked `for` the given namespace. */
export function stripFallback(stanza: Element, body: string, forNs: string): string {
  const chars = Array.from(body);
  const ranges: [number, number][] = [];
  for (const f of stanza.getChildren("fallback", FALLBACK_NS)) {
    if (f.attrs.for !== forNs) continue;
    for (const b of f.getChildren("body")) {
      const start = Number(b.attrs.start ?? 0);
      const end = Number(b.attrs.end ?? chars.length);
      if (Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end <= chars.length && start < end) ranges.push([start, end]);
    }
  }
  if (ranges.length === 0) return body;
  return chars.filter((_, i) => !ranges.some(([s, e]) => i >= s && i < e)).join("");
}
