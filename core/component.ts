/**
 * One XEP-0114 stream to the XMPP server for one component domain.
 *
 * xmpp.js's own reconnect module retries at a fixed delay; a gateway behind a
 * server that restarts (or a hot standby waiting for the primary to die)
 * wants exponential backoff with jitter, so we drive reconnection ourselves
 * and make a fresh xmpp.js entity per attempt. Stanzas sent while the stream
 * is down wait in a bounded buffer and are flushed in order once it is back.
 */
import { EventEmitter } from "node:events";
import componentCore, { type Component } from "@xmpp/component-core";
import type { Element } from "@xmpp/xml";
import type { Logger } from "pino";
import { fail } from "./errors.ts";
import { metrics } from "./metrics.ts";
import { makeXmlSafe } from "./stanzas/xml-safe.ts";

export type LinkState = "connecting" | "online" | "offline" | "stopped";

export interface LinkOptions {
  host: string;
  port: number;
  domain: string;
  secret: string;
  reconnect: { initialDelayMs: number; maxDelayMs: number };
  /** Stanzas kept while the stream is down; beyond it send() throws queue-full. */
  outboundBuffer: number;
  log: Logger;
  /**
   * Awaited between the server's stream header and our handshake, on every
   * attempt: a stream can be kept open and ready, and authenticated in one
   * write when needed (core/failover.ts: ejabberd assigns a balancing slot at
   * the handshake).
   */
  handshakeGate?: () => Promise<void>;
}

export interface ComponentLinkEvents {
  stanza: [Element];
  state: [LinkState];
}

export class ComponentLink extends EventEmitter<ComponentLinkEvents> {
  readonly domain: string;
  private readonly options: LinkOptions;
  private readonly log: Logger;
  private entity: Component | undefined;
  private buffer: Element[] = [];
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;
  private _state: LinkState = "offline";

  constructor(options: LinkOptions) {
    super();
    this.options = options;
    this.domain = options.domain;
    this.log = options.log.child({ component: options.domain });
  }

  get state(): LinkState {
    return this._state;
  }

  get buffered(): number {
    return this.buffer.length;
  }

  /** Starts connecting; resolves at once. Listen for `state` to know when it is online. */
  start(): void {
    if (this._state !== "offline") return;
    this.connect();
  }

  /** Resolves when the stream is online (or rejects after timeoutMs). */
  async online(timeoutMs = 30_000): Promise<void> {
    if (this._state === "online") return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.off("state", onState);
        reject(fail("timeout", `component ${this.domain} did not come online in ${timeoutMs} ms`));
      }, timeoutMs);
      const onState = (s: LinkState): void => {
        if (s === "online") {
          clearTimeout(t);
          this.off("state", onState);
          resolve();
        }
      };
      this.on("state", onState);
    });
  }

  /**
   * Sends a stanza now, or buffers it while the stream is down. Throws
   * queue-full when the buffer is full so the caller can tell the sender.
   */
  send(stanza: Element): void {
    if (this._state === "stopped") throw fail("unavailable", "gateway is shutting down");
    // One character XML cannot carry would make the server close this stream for every user.
    makeXmlSafe(stanza);
    if (this._state === "online" && !this.flushing && this.entity) {
      this.write(this.entity, stanza);
      return;
    }
    if (this.buffer.length >= this.options.outboundBuffer) {
      metrics.componentBufferDropped.inc({ domain: this.domain });
      throw fail("queue-full", "The gateway's link to the XMPP server is down and its buffer is full");
    }
    this.buffer.push(stanza);
    metrics.componentBuffered.set({ domain: this.domain }, this.buffer.length);
  }

  /** Closes the stream cleanly. Buffered stanzas are flushed first if the stream is up. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    const entity = this.entity;
    this.setState("stopped");
    this.entity = undefined;
    if (entity) {
      entity.removeAllListeners("disconnect");
      entity.removeAllListeners("offline");
      try {
        await entity.stop();
      } catch (e) {
        this.log.debug({ err: e }, "error while closing component stream");
      }
    }
  }

  private write(entity: Component, stanza: Element): void {
    entity.send(stanza).catch((err: unknown) => {
      // The socket died under us: keep the stanza for the next stream.
      this.log.warn({ err }, "send failed; buffering for the next stream");
      if (this.buffer.length < this.options.outboundBuffer) this.buffer.unshift(stanza);
    });
  }

  private setState(state: LinkState): void {
    if (this._state === state) return;
    this._state = state;
    metrics.componentOnline.set({ domain: this.domain }, state === "online" ? 1 : 0);
    metrics.componentStateChanges.inc({ domain: this.domain, state });
    const level = state === "online" || state === "connecting" ? "info" : "warn";
    this.log[level]({ state, buffered: this.buffer.length }, `component ${this.domain} ${state}`);
    this.emit("state", state);
  }

  private connect(): void {
    if (this._state === "stopped") return;
    this.setState("connecting");
    const { host, port, domain, secret } = this.options;
    // The bare xmpp.js Component, without @xmpp/component's middleware: its IQ callee would answer
    // every IQ with service-unavailable before we could, and its fixed-delay reconnect would race ours.
    const entity = new componentCore.Component({ service: `xmpp://${host}:${port}`, domain });
    entity.on("open", (el: Element) => {
      // XEP-0114 §3: the handshake is sha1(stream id + secret).
      const gate = this.options.handshakeGate?.() ?? Promise.resolve();
      gate
        .then(() => (this.entity === entity ? entity.authenticate(el.attrs.id ?? "", secret) : undefined))
        .catch((err: unknown) => entity.emit("error", err as Error));
    });
    this.entity = entity;

    entity.on("stanza", (el) => {
      if (this.entity === entity) this.emit("stanza", el);
    });
    entity.on("error", (err) => {
      this.log.warn({ err: err.message, condition: err.condition }, "component stream error");
    });
    const lost = (): void => {
      if (this.entity !== entity || this._state === "stopped") return;
      this.entity = undefined;
      entity.removeAllListeners();
      entity.on("error", () => {});
      entity.stop().catch(() => {});
      this.scheduleReconnect();
    };
    entity.on("disconnect", lost);
    entity.on("offline", lost);

    entity.start().then(
      () => {
        if (this.entity !== entity) return;
        this.attempt = 0;
        void this.flush(entity);
      },
      (err: Error & { condition?: string }) => {
        if (this.entity !== entity) return;
        this.log.warn({ err: err.message, condition: err.condition }, `component ${domain} could not connect`);
        lost();
      },
    );
  }

  private async flush(entity: Component): Promise<void> {
    this.flushing = true;
    try {
      while (this.buffer.length > 0 && this.entity === entity) {
        const stanza = this.buffer.shift()!;
        await entity.send(stanza);
      }
    } catch (err) {
      this.log.warn({ err }, "flush interrupted");
    } finally {
      this.flushing = false;
      metrics.componentBuffered.set({ domain: this.domain }, this.buffer.length);
    }
    if (this.entity === entity) this.setState("online");
  }

  private scheduleReconnect(): void {
    this.setState("offline");
    const { initialDelayMs, maxDelayMs } = this.options.reconnect;
    const base = Math.min(maxDelayMs, initialDelayMs * 2 ** this.attempt);
    // Full jitter between half and all of the backoff, so many gateways don't retry in lockstep.
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    this.attempt++;
    this.log.info({ delay, attempt: this.attempt }, `reconnecting component ${this.domain}`);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
