/**
 * Shard failover on ejabberd's `domain_balancing`: when a peer process dies,
 * the survivors take over its connection slots at once, so its users are
 * served again within milliseconds instead of after a restart.
 *
 * Why this is needed (ejabberd 23.01, ejabberd_router.erl and
 * ejabberd_router_mnesia.erl): with `component_number: N` the route table of
 * the domain holds exactly N slots (local_hint 1..N), each with the pid of the
 * connection that holds it or `undefined`. A stanza goes to slot
 * `phash2(bare sender, N) + 1` of all N slots, held or not, and a stanza for a
 * free slot is dropped without an error (`do_route(_Pkt, _Route) -> ok`). When
 * a connection closes its slot is freed, not removed, so nothing is rehashed to
 * the others. A new connection takes the first free slot when its XEP-0114
 * handshake succeeds, and only then: one that finds no free slot is accepted
 * but holds nothing, and never gets a slot later. ejabberd tells a component
 * neither which slot it got nor whether it got one.
 *
 * So each process keeps a plain TCP connection to every peer (`peers`), and
 * accepts theirs (`listen`). A process's death closes its sockets at once
 * (the kernel does it even on SIGKILL), so its peers learn of it immediately;
 * each then opens new component streams for every network (a "claim"), which
 * ejabberd gives the freed slots. Whether a new stream got a slot is checked
 * by sending messages from a few `~slot-probe-…@domain` JIDs to the domain:
 * they are balanced by their sender like any stanza, so the stream receives
 * those that hash to its slot, and receives nothing at all if it holds none.
 * Every process may serve every user (sessions reopen from the shared store on
 * the user's next stanza), so which slot is whose does not matter.
 *
 * The claim must be quick: until the new stream's handshake, ejabberd drops
 * what users send to the free slot. So each process keeps one stream per
 * network connected and opened but not authenticated ("warm"); a claim is then
 * one write, the handshake, instead of a TCP connect, a stream opening and the
 * handshake (measured on a loaded 2-core machine: ~80 ms → a few ms). ejabberd
 * closes an unauthenticated stream after its `negotiation_timeout`; the warm
 * stream then reconnects and waits again.
 *
 * A restarted process whose stream finds every slot taken is a hot spare: it
 * takes over when a peer dies. Slots are never handed back on their own:
 * moving a slot frees it for the moment between the close and the next
 * handshake, which would drop stanzas again.
 */
import { randomBytes } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import type { Logger } from "pino";
import type { ComponentLink } from "./component.ts";

/** Localparts of probe senders; only our own streams can send from our domain (ejabberd's check_from). */
export const PROBE_PREFIX = "~slot-probe-";

export interface HostPort {
  host: string;
  port: number;
}

/** A slot probe from one of our processes: never dispatched, never answered. */
export function isSlotProbe(stanza: Element, domain: string): boolean {
  const from = stanza.attrs.from ?? "";
  const at = from.indexOf("@");
  if (at <= 0 || !from.startsWith(PROBE_PREFIX)) return false;
  return from.slice(at + 1).split("/")[0]!.toLowerCase() === domain.toLowerCase();
}

/**
 * Whether `link` (online) holds a balancing slot: it sends `probes` messages
 * from distinct probe JIDs to the domain and resolves true as soon as anything
 * at all arrives on this stream (a probe or a user's stanza: ejabberd routes
 * nothing to a stream without a slot), false after `timeoutMs`. With 32 probes
 * a stream holding one of N slots misses all of them with probability
 * (1 − 1/N)^32 (2e-10 for N = 2, 1e-2 for N = 8).
 */
export function holdsSlot(link: ComponentLink, domain: string, opts: { probes?: number; timeoutMs?: number } = {}): Promise<boolean> {
  const probes = opts.probes ?? 32;
  const nonce = randomBytes(6).toString("hex");
  return new Promise((resolve) => {
    const done = (held: boolean): void => {
      clearTimeout(timer);
      link.off("stanza", onStanza);
      resolve(held);
    };
    const onStanza = (): void => done(true);
    link.on("stanza", onStanza);
    const timer = setTimeout(() => done(false), opts.timeoutMs ?? 2000);
    try {
      for (let i = 0; i < probes; i++) {
        link.send(xml("message", { from: `${PROBE_PREFIX}${nonce}-${i}@${domain}`, to: domain, type: "headline" }));
      }
    } catch {
      done(false);
    }
  });
}

export interface FailoverNetwork {
  domain: string;
  /** The network's own stream: stanzas received on claimed streams are emitted on it. */
  link: ComponentLink;
  /**
   * A new, not yet started stream with the same server, domain and secret,
   * whose handshake waits for `handshakeGate` (ComponentLink's option).
   */
  spawn(handshakeGate?: () => Promise<void>): ComponentLink;
}

export interface FailoverOptions {
  /** Where peers connect to watch this process. */
  listen: HostPort;
  /** The other processes' `listen` addresses. */
  peers: HostPort[];
  networks: FailoverNetwork[];
  log: Logger;
  /** How long a claimed stream may stay silent before it is taken to hold no slot. */
  probeTimeoutMs?: number;
  /** Delay between connection attempts to a peer that is not up. */
  peerRetryMs?: number;
}

export interface Failover {
  /** The bound listen port (useful with port 0). */
  readonly port: number;
  /** Streams this process claimed for `domain` and still holds. */
  claimed(domain: string): number;
  /** Resolves when no claim is running (tests). */
  idle(): Promise<void>;
  /** Closes claimed streams first (so peers find their slots free), then the peer sockets. */
  stop(): Promise<void>;
}

export async function startFailover(o: FailoverOptions): Promise<Failover> {
  const log = o.log.child({ part: "failover" });
  const retryMs = o.peerRetryMs ?? 500;
  let stopped = false;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  // A stream holding a slot gets a probe back within one routing round trip (milliseconds): the
  // timeout only bounds how long a stream without one is kept. Short, because the first claim often
  // lands before ejabberd has freed the dead peer's slot, and the next try must come before the
  // dead shard's supervisor restarts it (which would take the slot back, after a gap).
  const claimers = o.networks.map((n) => new Claimer(n, log, o.probeTimeoutMs ?? 400, () => stopped));
  for (const c of claimers) c.warmUp();
  // Claims follow a peer's death, but a restarted server hands the slots out again to whoever
  // connects first: with a peer still dead, its slot would stay free and nobody would claim it.
  // So every reconnection of our own stream is followed by a claim, which takes a slot left
  // free or finds none and closes.
  o.networks.forEach((n, i) => {
    let connectedBefore = false;
    n.link.on("state", (state) => {
      if (state !== "online") return;
      if (connectedBefore && !stopped) claimers[i]!.request();
      connectedBefore = true;
    });
  });

  const server: Server = createServer((socket) => {
    // Peers only watch for this socket to close; nothing is ever read or written.
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    socket.resume();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: o.listen.host, port: o.listen.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : o.listen.port;

  const watch = (peer: HostPort): void => {
    if (stopped) return;
    const socket = connect({ host: peer.host, port: peer.port });
    sockets.add(socket);
    let established = false;
    socket.setNoDelay(true);
    socket.on("connect", () => {
      established = true;
      // A peer whose host vanishes sends no FIN: keep-alive probes end the socket eventually.
      socket.setKeepAlive(true, 1000);
      log.debug({ peer }, "watching peer");
    });
    socket.on("error", () => {});
    socket.resume();
    socket.on("close", () => {
      sockets.delete(socket);
      if (stopped) return;
      if (established) {
        log.warn({ peer }, "peer process gone: claiming its slots");
        for (const c of claimers) c.request();
      }
      const t = setTimeout(() => {
        timers.delete(t);
        watch(peer);
      }, retryMs);
      timers.add(t);
    });
  };
  for (const peer of o.peers) watch(peer);
  log.info({ listen: `${o.listen.host}:${port}`, peers: o.peers.length }, "failover watching peers");

  return {
    port,
    claimed: (domain) => claimers.find((c) => c.domain === domain)?.held.size ?? 0,
    idle: async () => {
      await Promise.all(claimers.map((c) => c.running));
    },
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all(claimers.map((c) => c.stop()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Claims free slots of one network's domain, one claim at a time. */
class Claimer {
  readonly domain: string;
  readonly held = new Set<ComponentLink>();
  running: Promise<void> | undefined;
  private again = false;
  private readonly net: FailoverNetwork;
  private readonly log: Logger;
  private readonly probeTimeoutMs: number;
  private readonly stopped: () => boolean;
  /** The stream kept ready for the next claim, and what lets its handshake go. */
  private warm: { link: ComponentLink; go: () => void } | undefined;

  constructor(net: FailoverNetwork, log: Logger, probeTimeoutMs: number, stopped: () => boolean) {
    this.net = net;
    this.domain = net.domain;
    this.log = log.child({ component: net.domain });
    this.probeTimeoutMs = probeTimeoutMs;
    this.stopped = stopped;
  }

  /** A peer died: claim (again, once the running claim ends, if one is running). */
  request(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.claim()
      .catch((err: unknown) => this.log.warn({ err }, "claim failed"))
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.stopped()) {
          this.again = false;
          this.request();
        }
      });
  }

  async stop(): Promise<void> {
    const warm = this.warm;
    this.warm = undefined;
    await Promise.all([...this.held, ...(warm ? [warm.link] : [])].map((l) => l.stop()));
    this.held.clear();
  }

  /** Opens the next claim's stream, up to the handshake. */
  warmUp(): void {
    if (this.warm || this.stopped()) return;
    let go!: () => void;
    const gate = new Promise<void>((r) => (go = r));
    const link = this.net.spawn(() => gate);
    // Users' stanzas may arrive before the probe answers: they are handled at once.
    link.on("stanza", (el) => this.net.link.emit("stanza", el));
    link.start();
    this.warm = { link, go };
  }

  /** The warm stream, authenticating now, or a new stream when there is none. */
  private take(): ComponentLink {
    this.warmUp();
    const warm = this.warm!;
    this.warm = undefined;
    warm.go();
    return warm.link;
  }

  /**
   * New streams until one finds no free slot. Before any success five tries,
   * quickly after one another: ejabberd may not have freed the dead peer's
   * slot yet when our handshake arrives (seen under load), and the next try
   * must come before the dead shard is restarted and takes the slot back. After a success, one more try (the peer may have held
   * several slots).
   */
  private async claim(): Promise<void> {
    let won = 0;
    for (let failures = 0; !this.stopped() && failures < (won > 0 ? 1 : 5); ) {
      const link = this.take();
      let held = false;
      try {
        await link.online(10_000);
        held = await holdsSlot(link, this.domain, { timeoutMs: this.probeTimeoutMs });
      } catch {
        held = false;
      }
      if (!held || this.stopped()) {
        await link.stop();
        failures++;
        this.log.info({ failures }, "claimed stream got no slot");
        await new Promise((r) => setTimeout(r, 25 * 2 ** failures));
        continue;
      }
      won++;
      this.held.add(link);
      this.log.warn({ held: this.held.size }, "took over a free slot");
      // A claimed stream is not reconnected: a new stream would have to be claimed (and checked) again.
      link.on("state", (state) => {
        if (state !== "offline") return;
        this.held.delete(link);
        void link.stop();
      });
    }
    this.warmUp();
  }
}
