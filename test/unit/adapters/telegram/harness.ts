/**
 * A Telegram session on its own for unit tests: real grammY against the fake
 * Bot API, a hand-made SessionContext (in-memory store, recorded events, a
 * stub media publisher).
 */
import { waitFor } from "../../../support/wait.ts";
import type { Adapter, AdapterSession, MediaPublisher, SafeFetch, ScopedStore, SessionContext } from "../../../../core/adapter.ts";
import { EstuaryError } from "../../../../core/errors.ts";
import { silentLogger } from "../../../../core/log.ts";
import type { LegacyEvent } from "../../../../core/model.ts";
import { createTelegramAdapter } from "../../../../adapters/telegram/index.ts";
import type { FakeBotApi } from "../../../support/fake-bot-api.ts";

export class MemoryStore implements ScopedStore {
  readonly data = new Map<string, unknown>();
  async get<T>(key: string): Promise<T | undefined> {
    return this.data.get(key) as T | undefined;
  }
  async set<T>(key: string, value: T): Promise<void> {
    this.data.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.data.delete(key);
  }
}

export interface Harness {
  session: AdapterSession;
  ctx: SessionContext;
  /** The context's signal: abort it to stop the session as the gateway would. */
  abort: AbortController;
  events: LegacyEvent[];
  published: { data: Uint8Array; meta: { mediaType?: string; name?: string } }[];
  next<T extends LegacyEvent["type"]>(type: T, pred?: (e: Extract<LegacyEvent, { type: T }>) => boolean): Promise<Extract<LegacyEvent, { type: T }>>;
}

export interface SessionOptions {
  /** Shared between sessions to test what survives a restart (a new MemoryStore otherwise). */
  store?: ScopedStore;
  /** false: the gateway has no HTTP listener, so ctx.media is absent. */
  media?: boolean;
  /** ctx.fetch (by default it refuses every URL). */
  fetch?: SafeFetch;
  /** Stored in the registration as validateRegistration would. */
  botUsername?: string;
  /** Adapter options merged over the fast test defaults. */
  adapter?: Record<string, unknown>;
}

/** The adapter against `fake`, polling fast and without pacing; `extra` overrides these options. */
export function telegramAdapter(fake: FakeBotApi, extra: Record<string, unknown> = {}): Adapter {
  return createTelegramAdapter(
    { apiRoot: fake.url, pollTimeoutSec: 1, rateLimits: { perChatPerSec: 100, perGroupPerMin: 6000, perBotPerSec: 100 }, reconnect: { initialMs: 50, maxMs: 200 }, ...extra },
    { log: silentLogger() },
  );
}

/** Opens a session of the bot `token` (id `botId`) against `fake`. */
export async function openSession(fake: FakeBotApi, token: string, botId: number, opts: SessionOptions = {}): Promise<Harness> {
  const events: LegacyEvent[] = [];
  const abort = new AbortController();
  const published: Harness["published"] = [];
  const media: MediaPublisher = {
    async publish(data, meta) {
      published.push({ data, meta });
      return `https://media.example/${published.length}/${meta.name ?? "file"}`;
    },
  };
  const ctx: SessionContext = {
    user: "romeo@localhost",
    registration: { token, botId: String(botId), ...(opts.botUsername === undefined ? {} : { botUsername: opts.botUsername }) },
    emit: (e) => events.push(e),
    log: silentLogger(),
    store: opts.store ?? new MemoryStore(),
    signal: abort.signal,
    fetch:
      opts.fetch ??
      (async () => {
        throw new EstuaryError("unsupported", "no fetch in this test");
      }),
    ...(opts.media === false ? {} : { media }),
  };
  const session = await telegramAdapter(fake, opts.adapter).openSession(ctx);
  return {
    session,
    ctx,
    abort,
    events,
    published,
    next: (type, pred) =>
      waitFor(() => events.find((e) => e.type === type && (pred === undefined || pred(e as never))) as never, { what: `a ${type} event`, timeout: 5000 }),
  };
}
