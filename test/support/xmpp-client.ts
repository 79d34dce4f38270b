/**
 * A real XMPP client (xmpp.js @xmpp/client 0.14) logged in over c2s, for
 * integration tests. Every incoming stanza lands in an inbox; waitFor()
 * consumes the first match, whether it arrived before or after the call, so
 * tests never race a stanza that came "too early".
 */
import { randomUUID } from "node:crypto";
import { client, xml, type Client } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import type { Connection } from "@xmpp/connection";
import type { ProsodyHandle } from "./prosody.ts";

export interface ConnectOptions {
  /** Send initial presence after login (RFC 6121 §4.2). Default true. */
  presence?: boolean;
  /** Login deadline in ms (default 10000). */
  timeout?: number;
}

export interface TestClient {
  /** Full JID after resource binding. */
  jid: string;
  bare: string;
  /** The underlying xmpp.js client, for what this wrapper does not cover. */
  xmpp: Client;
  send(el: Element): Promise<void>;
  /**
   * Sends an iq get/set (an id is generated when absent) and resolves with
   * the result iq; on type=error rejects with xmpp.js's StanzaError, whose
   * `element` is the `<error/>` and `condition` its condition name.
   */
  iq(el: Element, timeoutMs?: number): Promise<Element>;
  /** First inbox stanza matching `predicate`, removed from the inbox. */
  waitFor(predicate: (stanza: Element) => boolean, timeoutMs?: number): Promise<Element>;
  /** Stanzas received and not yet consumed, oldest first (live array). */
  inbox: Element[];
  /** Errors the connection emitted (kept so they do not crash the test). */
  errors: Error[];
  stop(): Promise<void>;
}

type Target = ProsodyHandle | { service: string; domain: string };

function serviceOf(p: Target): { service: string; domain: string } {
  if ("service" in p) return p;
  return { service: `xmpp://127.0.0.1:${p.c2sPort}`, domain: p.domain };
}

/** A predicate that throws (e.g. reads a missing child) does not match. */
function matches(predicate: (stanza: Element) => boolean, stanza: Element): boolean {
  try {
    return predicate(stanza);
  } catch {
    return false;
  }
}

/**
 * Stanzas an xmpp.js entity (client or component) received and nobody
 * consumed yet. `waitFor` takes the first match, already there or to come.
 */
export class StanzaInbox {
  readonly items: Element[] = [];
  readonly #waiters: { predicate: (s: Element) => boolean; resolve: (s: Element) => void }[] = [];
  readonly #name: string;
  /** Return true to keep a stanza out of the inbox (e.g. replies to our own iqs). */
  ignore: (stanza: Element) => boolean = () => false;

  constructor(entity: Connection, name: string) {
    this.#name = name;
    // Replies that xmpp.js's iqCaller is waiting for (resource binding, our
    // iq() calls) belong to their caller. The caller's middleware sees the
    // element first and forgets the id, so look before it does.
    const pending = (entity as { iqCaller?: { handlers?: Map<string, unknown> } }).iqCaller?.handlers;
    const claimed = new WeakSet<Element>();
    entity.prependListener("element", (el: Element) => {
      const { id, type } = el.attrs;
      if (el.name === "iq" && (type === "result" || type === "error") && id !== undefined && pending?.has(id)) {
        claimed.add(el);
      }
    });
    entity.on("stanza", (stanza) => {
      if (!claimed.has(stanza)) this.#push(stanza);
    });
  }

  #push(stanza: Element): void {
    if (this.ignore(stanza)) return;
    const i = this.#waiters.findIndex((w) => matches(w.predicate, stanza));
    const waiter = i >= 0 ? this.#waiters.splice(i, 1)[0] : undefined;
    if (waiter) waiter.resolve(stanza);
    else this.items.push(stanza);
  }

  waitFor(predicate: (stanza: Element) => boolean, timeoutMs = 5000): Promise<Element> {
    const i = this.items.findIndex((s) => matches(predicate, s));
    const found = i >= 0 ? this.items.splice(i, 1)[0] : undefined;
    if (found) return Promise.resolve(found);
    return new Promise<Element>((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (stanza: Element) => {
          clearTimeout(timer);
          resolve(stanza);
        },
      };
      const timer = setTimeout(() => {
        const j = this.#waiters.indexOf(waiter);
        if (j >= 0) this.#waiters.splice(j, 1);
        const seen = this.items.map((s) => s.toString()).join("\n  ");
        reject(new Error(`${this.#name}: no matching stanza within ${timeoutMs} ms; inbox:\n  ${seen || "(empty)"}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }
}

export async function connectClient(
  p: Target,
  username: string,
  password: string,
  resource?: string,
  options: ConnectOptions = {},
): Promise<TestClient> {
  const { service, domain } = serviceOf(p);
  const xmpp = client({
    service,
    domain,
    ...(resource === undefined ? {} : { resource }),
    // PLAIN on loopback: xmpp.js refuses PLAIN on unencrypted streams by
    // default and its SCRAM-SHA-1 costs ~2 s of CPU per login.
    credentials: (auth, mechanisms) =>
      auth({ username, password }, mechanisms.includes("PLAIN") ? "PLAIN" : (mechanisms[0] ?? "PLAIN")),
    timeout: options.timeout ?? 10_000,
  });
  // Tests decide when to reconnect; a silent automatic one would hide bugs.
  xmpp.reconnect.stop();

  const errors: Error[] = [];
  xmpp.on("error", (err) => {
    errors.push(err);
  });
  const inbox = new StanzaInbox(xmpp, `${username}@${domain}`);

  const deadline = options.timeout ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      xmpp.start(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`login of ${username}@${domain} timed out after ${deadline} ms`)), deadline);
      }),
    ]);
  } catch (err) {
    await xmpp.stop().catch(() => {});
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`could not log in as ${username}@${domain} via ${service}: ${reason}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  const full = xmpp.jid?.toString();
  if (full === undefined) throw new Error(`no JID bound for ${username}@${domain}`);

  if (options.presence ?? true) await xmpp.send(xml("presence"));

  const tc: TestClient = {
    jid: full,
    bare: full.split("/")[0] ?? full,
    xmpp,
    inbox: inbox.items,
    errors,
    send: (el) => xmpp.send(el),
    async iq(el, timeoutMs = 10_000) {
      if (!el.attrs.id) el.attrs.id = `iq-${randomUUID()}`;
      return xmpp.iqCaller.request(el, timeoutMs);
    },
    waitFor: (predicate, timeoutMs) => inbox.waitFor(predicate, timeoutMs),
    async stop() {
      if (xmpp.status === "offline") return;
      // A dead server never answers </stream:stream>; xmpp.js then times out
      // on its own `timeout`, which we keep short here.
      xmpp.timeout = 2000;
      await xmpp.stop().catch(() => {});
    },
  };
  return tc;
}
