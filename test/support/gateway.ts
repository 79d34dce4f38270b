/**
 * Starts Estuary in-process against a test XMPP server, with a validated
 * config (the same schema as production) and the given adapters.
 */
import { configSchema, type Config } from "../../config/schema.ts";
import { startGateway, type Gateway, type GatewayOptions } from "../../core/gateway.ts";
import { silentLogger, createLogger, type Logger } from "../../core/log.ts";

export interface TestGatewayOptions {
  xmppPort: number;
  networks: Record<string, { domain: string; secret: string; options?: Record<string, unknown> }>;
  adapters?: GatewayOptions["adapters"];
  storeUrl?: string;
  allow?: string[];
  admins?: string[];
  limits?: Partial<Config["limits"]>;
  outboundBuffer?: number;
  reconnect?: { initialDelayMs: number; maxDelayMs: number };
  logger?: Logger;
  /** Default true: resolve once every component stream is online. */
  waitOnline?: boolean;
  http?: Record<string, unknown>;
  history?: Record<string, unknown>;
  fetch?: Record<string, unknown>;
  /** The `media` section (XEP-0363 upload service). */
  media?: Record<string, unknown>;
}

/**
 * An `irc` network entry for tests: one allowed IRC server on loopback, flood
 * control lifted (the tests measure behaviour, not pacing), plus `options`.
 */
export function ircTestNetwork(domain: string, secret: string, server: string, port: number, options: Record<string, unknown> = {}): TestGatewayOptions["networks"][string] {
  return { domain, secret, options: { servers: { [server]: { port } }, allowedServers: [server], flood: { burst: 50, intervalMs: 0 }, ...options } };
}

/**
 * A `telegram` network entry for tests: the fake Bot API at `apiRoot`, rate
 * limits lifted and fast reconnects (the tests measure behaviour, not pacing).
 */
export function telegramTestNetwork(domain: string, secret: string, apiRoot: string): TestGatewayOptions["networks"][string] {
  return {
    domain,
    secret,
    options: {
      apiRoot,
      pollTimeoutSec: 1,
      rateLimits: { perChatPerSec: 50, perGroupPerMin: 3000, perBotPerSec: 100 },
      reconnect: { initialMs: 100, maxMs: 500 },
    },
  };
}

export async function startTestGateway(o: TestGatewayOptions): Promise<Gateway & { config: Config }> {
  const config = configSchema.parse({
    xmpp: { host: "127.0.0.1", port: o.xmppPort, reconnect: o.reconnect ?? { initialDelayMs: 100, maxDelayMs: 1000 }, outboundBuffer: o.outboundBuffer ?? 1000 },
    access: { allow: o.allow ?? ["localhost"], admins: o.admins ?? [] },
    networks: o.networks,
    store: { url: o.storeUrl ?? "memory:", encryptionKey: "test-key-0123456789abcdef" },
    limits: o.limits ?? {},
    log: { level: "silent" },
    ...(o.http ? { http: o.http } : {}),
    ...(o.history ? { history: o.history } : {}),
    ...(o.fetch ? { fetch: o.fetch } : {}),
    ...(o.media ? { media: o.media } : {}),
  });
  const logger = o.logger ?? (process.env.ESTUARY_TEST_LOG ? createLogger({ level: process.env.ESTUARY_TEST_LOG }) : silentLogger());
  const gw = await startGateway(config, { logger, adapters: o.adapters });
  if (o.waitOnline ?? true) await Promise.all([...gw.networks.values()].map((n) => n.link.online(20_000)));
  return Object.assign(gw, { config });
}
