/**
 * Starts Estuary: the store, then for each enabled network its adapter and
 * its XEP-0114 stream, wiring inbound stanzas to core/xmpp/dispatch.ts and
 * adapter events to core/events.ts. `stop()` is the graceful shutdown:
 * unavailable presences to every user, sessions closed, streams closed.
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import type { Logger } from "pino";
import type { Config, NetworkConfig, NetworkKey } from "../config/schema.ts";
import { enabledNetworks } from "../config/schema.ts";
import { createAccess, type Access } from "./access.ts";
import type { Adapter, MediaPublisher, SafeFetch } from "./adapter.ts";
import { createMediaStore, type MediaStore } from "./http/media.ts";
import { createUploadPublisher } from "./http/upload.ts";
import { createSafeFetch } from "./http/safe-fetch.ts";
import { startHttpServer } from "./http/server.ts";
import { queueDepthSources, registry } from "./metrics.ts";
import { defaultArchiveUrl, openArchive, type Archive } from "./history/archive.ts";
import { ComponentLink, type LinkOptions } from "./component.ts";
import { isSlotProbe, startFailover, type Failover } from "./failover.ts";
import { fail, asEstuaryError } from "./errors.ts";
import { handleEvent } from "./events.ts";
import { createLogger } from "./log.ts";
import type { LegacyEvent } from "./model.ts";
import { addressHelpers, type Network } from "./network.ts";
import { RoomRegistry } from "./rooms.ts";
import { KeyedSerial } from "./serial.ts";
import { IqCaller } from "./iq-caller.ts";
import { SessionManager } from "./sessions.ts";
import { openStore, type Store } from "./store/index.ts";
import { dispatch, replyWithError } from "./xmpp/dispatch.ts";
import { Privileges } from "./xmpp/privilege.ts";
import { takeSubscribed } from "./contacts.ts";

/** A session of a network without registration closes after this long unused (no room, not online). */
const SESSION_IDLE_MS = 15 * 60_000;

export type AdapterFactory = (options: Record<string, unknown>, deps: { log: Logger }) => Adapter | Promise<Adapter>;

export interface GatewayOptions {
  logger?: Logger;
  /** Adapter factories by network key; the built-in ones are loaded on demand. */
  adapters?: Partial<Record<NetworkKey, AdapterFactory>>;
}

export interface Gateway {
  networks: Map<string, Network>;
  store: Store;
  /** The HTTP listener's URL, when configured. */
  httpUrl?: string;
  /** Slot takeover between shards, when `xmpp.failover` is configured. */
  failover?: Failover;
  /**
   * Applies what can change without a restart (SIGHUP): the allow and admin
   * lists and the log level. Other changes are logged as needing a restart.
   */
  reload(config: Config): void;
  stop(): Promise<void>;
}

async function builtinAdapter(key: NetworkKey): Promise<AdapterFactory> {
  switch (key) {
    case "irc": {
      const { createIrcAdapter } = await import("../adapters/irc/index.ts");
      return createIrcAdapter;
    }
    case "telegram": {
      const { createTelegramAdapter } = await import("../adapters/telegram/index.ts");
      return createTelegramAdapter;
    }
    case "matrix": {
      const { createMatrixAdapter } = await import("../adapters/matrix/index.ts");
      return createMatrixAdapter;
    }
    default:
      throw fail("unsupported", `The ${key} adapter is not available in this build`);
  }
}

export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const log = options.logger ?? createLogger({ level: config.log.level, pretty: config.log.pretty });
  if (!config.store.url.startsWith("memory:") && config.store.encryptionKey === undefined) {
    // Users' passwords and tokens are stored sealed: without a key they could not be kept,
    // so refuse to start rather than fail at the first registration.
    throw fail("not-acceptable", "store.encryptionKey or store.keyFile is required for a persistent store (credentials are stored encrypted)");
  }
  const store = await openStore({ url: config.store.url, encryptionKey: config.store.encryptionKey, log: log.child({ part: "store" }) });
  const banned = (await store.scoped("~gateway", "core").get<string[]>("banned")) ?? [];
  const history = await openHistory(config, log);
  const archive = history?.archive;
  const access = createAccess(config.access.allow, config.access.admins, banned);
  const maxMediaBytes = config.http?.maxMediaBytes ?? 50 * 1024 * 1024;
  // Attachments are fetched on users' behalf with SSRF protection (core/http/safe-fetch.ts).
  const fetch = createSafeFetch({ maxBytes: maxMediaBytes, allowHosts: config.fetch.allowHosts, timeoutMs: config.fetch.timeoutSeconds * 1000 });
  const networks = new Map<string, Network>();
  const listener = config.http ? await startListener(config.http, networks, maxMediaBytes, log) : undefined;
  const media = listener?.media;
  const http = listener?.http;
  // XEP-0363: with an upload service configured, each network asks for slots from its own
  // component domain (the service's access list names those domains); the listener's store,
  // when there is one, takes the file if the service refuses or is silent.
  const uploadService = config.media;
  const mediaFor = (net: () => Network): MediaPublisher | undefined =>
    uploadService
      ? createUploadPublisher(net, uploadService.uploadService, {
          maxBytes: maxMediaBytes,
          timeoutMs: uploadService.timeoutSeconds * 1000,
          ...(media ? { fallback: media } : {}),
          log: log.child({ part: "upload" }),
        })
      : media;
  const secrets = new Map<string, string>();
  for (const [key, netConfig] of enabledNetworks(config)) {
    secrets.set(key, netConfig.secret);
    const factory = options.adapters?.[key] ?? (await builtinAdapter(key));
    const adapter = await factory(netConfig.options, { log: log.child({ network: key }) });
    networks.set(key, createNetwork(key, netConfig, adapter, { config, store, access, log, fetch, media: mediaFor, archive, peers: () => [...networks.values()] }));
  }
  for (const net of networks.values()) net.link.start();
  // Shards on ejabberd's domain_balancing: take over a dead peer's slots at once (core/failover.ts).
  const failoverConfig = config.xmpp.failover;
  const failover: Failover | undefined = failoverConfig
    ? await startFailover({
        listen: failoverConfig.listen,
        peers: failoverConfig.peers,
        networks: [...networks.values()].map((net) => ({
          domain: net.domain,
          link: net.link,
          spawn: (handshakeGate) => new ComponentLink({ ...linkOptions(config, net.domain, secrets.get(net.name)!, net.log), ...(handshakeGate ? { handshakeGate } : {}) }),
        })),
        log,
      })
    : undefined;
  // Sessions of networks without registration (IRC) end when unused: no room, not online, idle.
  const idleTimer = setInterval(() => {
    for (const net of networks.values()) {
      net.sessions.closeIdle(SESSION_IDLE_MS).then(
        (n) => n > 0 && net.log.info({ closed: n }, "idle sessions closed"),
        (err: unknown) => net.log.warn({ err }, "closing idle sessions failed"),
      );
    }
  }, 60_000);
  idleTimer.unref();
  log.info({ networks: [...networks.keys()] }, "Estuary started");

  let stopping: Promise<void> | undefined;
  let bridges: { stop(): Promise<void> } | undefined;
  const gateway: Gateway = {
    networks,
    store,
    ...(failover ? { failover } : {}),
    ...(http ? { httpUrl: http.url } : {}),
    reload(next) {
      access.update(next.access.allow, next.access.admins);
      log.level = next.log.level;
      const restartNeeded = JSON.stringify({ ...config, access: undefined, log: undefined }) !== JSON.stringify({ ...next, access: undefined, log: undefined });
      if (restartNeeded) log.warn("configuration reloaded; changes outside access and log need a restart");
      else log.info("configuration reloaded");
    },
    stop() {
      stopping ??= (async () => {
        clearInterval(idleTimer);
        await bridges?.stop();
        await Promise.all([...networks.values()].map((net) => stopNetwork(net)));
        // After our own streams closed, so that peers find the slots free when they claim them.
        await failover?.stop();
        await http?.close();
        media?.close();
        await history?.close();
        await store.close();
        log.info("Estuary stopped");
      })();
      return stopping;
    },
  };
  {
    // Bridges: the config file's and those admins create at run time (core/bridge). The admin
    // commands exist at once; bridges join rooms through the component streams, so they start
    // once every stream is up.
    const { openBridges } = await import("./bridge/index.ts");
    const service = openBridges(gateway, config, { log: log.child({ part: "bridges" }) });
    bridges = service;
    void (async () => {
      for (const net of networks.values()) {
        while (net.link.state !== "online" && !stopping) await net.link.online(60_000).catch(() => undefined);
      }
      if (stopping) return;
      await service.start();
    })().catch((err: unknown) => log.error({ err }, "bridges failed to start"));
  }
  return gateway;
}

function createNetwork(
  key: string,
  netConfig: NetworkConfig,
  adapter: Adapter,
  deps: {
    config: Config;
    store: Store;
    access: Access;
    log: Logger;
    fetch: SafeFetch;
    /** The publisher for this network (its domain asks for upload slots). */
    media: (net: () => Network) => MediaPublisher | undefined;
    archive: Archive | undefined;
    peers: () => Network[];
  },
): Network {
  const log = deps.log.child({ network: key });
  const link = new ComponentLink(linkOptions(deps.config, netConfig.domain, netConfig.secret, log));
  // Events of one user are applied in order (each may await the id map).
  const eventOrder = new KeyedSerial(10_000);
  // Stanzas of one user to one chat are handled in order; other chats run in parallel.
  const stanzaOrder = new KeyedSerial(deps.config.limits.maxQueuedPerChat);
  let net!: Network;
  const media = deps.media(() => net);
  const onEvent = (user: string, event: LegacyEvent): void => {
    eventOrder.run(user, () => handleEvent(net, user, event)).catch((err: unknown) => {
      log.error({ err, event: event.type }, "event handling failed");
    });
  };
  net = {
    name: key,
    domain: netConfig.domain,
    adapter,
    link,
    store: deps.store,
    access: deps.access,
    limits: deps.config.limits,
    log,
    sessions: new SessionManager(() => net, onEvent),
    rooms: new RoomRegistry(() => net),
    startedAt: new Date(),
    peers: deps.peers,
    // Contacts answer the user's approval of their subscription requests (core/contacts.ts).
    interceptors: [(stanza) => takeSubscribed(net, stanza)],
    iq: new IqCaller((el) => net.send(el)),
    privileges: new Privileges(link),
    fetch: deps.fetch,
    ...(media ? { media } : {}),
    ...(deps.archive ? { archive: deps.archive, archiveDirect: deps.config.history.directMessages } : {}),
    send(stanza: Element) {
      try {
        link.send(stanza);
      } catch (err) {
        log.warn({ err: asEstuaryError(err).message, to: stanza.attrs.to }, "stanza not sent");
      }
    },
    ...addressHelpers(adapter, netConfig.domain),
  };
  link.on("stanza", (stanza) => {
    // Answers to the gateway's own IQs are taken at once, never queued behind the handler
    // that is waiting for them (unregistering waits for roster removals).
    if (net.iq.take(stanza)) return;
    // Another shard checking whether its new stream holds a slot (core/failover.ts).
    if (isSlotProbe(stanza, net.domain)) return;
    const from = (stanza.attrs.from ?? "").split("/")[0]!.toLowerCase();
    const to = (stanza.attrs.to ?? "").split("/")[0]!.toLowerCase();
    stanzaOrder.run(`${from}\n${to}`, () => dispatch(net, stanza)).catch((err: unknown) => replyWithError(net, stanza, err));
  });
  queueDepthSources.set(`${key}:stanzas`, { network: key, queue: "stanzas", depth: () => stanzaOrder.waiting });
  queueDepthSources.set(`${key}:events`, { network: key, queue: "events", depth: () => eventOrder.waiting });
  queueDepthSources.set(`${key}:component`, { network: key, queue: "component-buffer", depth: () => link.buffered });
  let wasOffline = false;
  link.on("state", (state) => {
    if (state === "offline") wasOffline = true;
    if (state === "online" && wasOffline) {
      wasOffline = false;
      // The stream was down: the XMPP server may have restarted, and users' resources with it.
      // Ping each joined resource; those gone are dropped so no ghost keeps a network membership.
      void net.rooms.verifyResources();
    }
  });
  return net;
}

function linkOptions(config: Config, domain: string, secret: string, log: Logger): LinkOptions {
  return {
    host: config.xmpp.host,
    port: config.xmpp.port,
    domain,
    secret,
    reconnect: config.xmpp.reconnect,
    outboundBuffer: config.xmpp.outboundBuffer,
    log,
  };
}

async function stopNetwork(net: Network): Promise<void> {
  for (const user of net.sessions.users()) {
    for (const room of net.rooms.list(user)) {
      for (const full of room.resources) {
        net.send(
          xml(
            "presence",
            { from: `${room.jid}/${room.nick}`, to: full, type: "unavailable" },
            xml(
              "x",
              { xmlns: "http://jabber.org/protocol/muc#user" },
              xml("item", { affiliation: room.self.affiliation, role: "none" }),
              xml("status", { code: "110" }),
              // XEP-0045 §10.9 status 332: removed because of a system shutdown.
              xml("status", { code: "332" }),
            ),
          ),
        );
      }
    }
    net.send(xml("presence", { from: net.domain, to: user, type: "unavailable" }, xml("status", {}, "Gateway shutting down")));
  }
  await net.sessions.closeAll("Gateway shutting down");
  net.iq.cancelAll();
  await net.adapter.shutdown?.();
  await net.link.stop();
}

/**
 * The room archive, with retention applied in the background (hourly, and
 * once just after start: a slow sweep never delays start-up).
 */
async function openHistory(config: Config, log: Logger): Promise<{ archive: Archive; close(): Promise<void> } | undefined> {
  if (!config.history.enabled) return undefined;
  const archive = await openArchive({ url: defaultArchiveUrl(config.store.url) });
  const retention = { maxAgeMs: config.history.maxAgeDays > 0 ? config.history.maxAgeDays * 86_400_000 : undefined, maxPerRoom: config.history.maxPerRoom };
  const sweep = (): void => {
    archive.enforceRetention(retention).then(
      (n) => n > 0 && log.info({ deleted: n }, "archive retention applied"),
      (err: unknown) => log.warn({ err }, "archive retention failed"),
    );
  };
  const timer = setInterval(sweep, 3_600_000);
  timer.unref();
  setImmediate(sweep);
  return {
    archive,
    async close() {
      clearInterval(timer);
      await archive.close();
    },
  };
}

/**
 * The HTTP listener (metrics, health, media). It starts before the media
 * store so that, on port 0, media URLs name the port actually bound.
 */
async function startListener(
  h: NonNullable<Config["http"]>,
  networks: Map<string, Network>,
  maxMediaBytes: number,
  log: Logger,
): Promise<{ http: { url: string; close(): Promise<void> }; media: MediaStore }> {
  let store: MediaStore | undefined;
  const http = await startHttpServer({
    host: h.host,
    port: h.port,
    media: { get: (id) => store!.get(id), publish: (d, m) => store!.publish(d, m), sweep: () => store!.sweep(), close: () => store!.close() },
    registry,
    // Unhealthy while any component stream is down: the XMPP side cannot reach us then.
    health: () => {
      const components = Object.fromEntries([...networks.values()].map((n) => [n.domain, n.link.state]));
      return { ok: Object.values(components).every((s) => s === "online"), components };
    },
    log: log.child({ part: "http" }),
  });
  store = createMediaStore({ dir: h.mediaDir, publicUrl: h.publicUrl ?? http.url, maxBytes: maxMediaBytes, ttlMs: h.mediaTtlDays * 86_400_000 });
  log.info({ url: http.url }, "HTTP listener started");
  return { http, media: store };
}
