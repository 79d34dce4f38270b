/**
 * A Telegram session on its own for unit tests: real grammY against the fake
 * Bot API, a hand-made SessionContext (in-memory store, recorded events, a
 * stub media publisher).
 */
import { waitFor } from "../../../support/wait.ts";
import type { AdapterSession, MediaPublisher, ScopedStore, SessionContext } from "../../../../core/adapter.ts";
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
  events: LegacyEvent[];
  published: { data: Uint8Array; meta: { mediaType?: string; name?: string } }[];
  next<T extends LegacyEvent["type"]>(type: T, pred?: (e: Extract<LegacyEvent, { type: T }>) => boolean): Promise<Extract<LegacyEvent, { type: T }>>;
}

/** Opens a session of the bot `token` (id `botId`) against `fake`, polling fast and without pacing. */
export async function openSession(fake: FakeBotApi, token: string, botId: number, opts: { fetch?: SessionContext["fetch"] } = {}): Promise<Harness> {
  const events: LegacyEvent[] = [];
  const published: Harness["published"] = [];
  const media: MediaPublisher = {
    async publish(data, meta) {
      published.push({ data, meta });
      return `https://media.example/${published.length}/${meta.name ?? "file"}`;
    },
  };
  const ctx: SessionContext = {
    user: "romeo@localhost",
    registration: { token, botId: String(botId) },
    emit: (e) => events.push(e),
    log: silentLogger(),
    store: new MemoryStore(),
    signal: new AbortController().signal,
    fetch:
      opts.fetch ??
      (async () => {
        throw new EstuaryError("unsupported", "no fetch in this test");
      }),
    media,
  };
  const adapter = createTelegramAdapter(
    { apiRoot: fake.url, pollTimeoutSec: 1, rateLimits: { perChatPerSec: 100, perGroupPerMin: 6000, perBotPerSec: 100 }, reconnect: { initialMs: 50, maxMs: 200 } },
    { log: silentLogger() },
  );
  const session = await adapter.openSession(ctx);
  return {
    session,
    events,
    published,
    next: (type, pred) =>
      waitFor(() => events.find((e) => e.type === type && (pred === undefined || pred(e as never))) as never, { what: `a ${type} event`, timeout: 5000 }),
  };
}
