/**
 * Drives an adapter directly, without XMPP: a session context that records
 * what the adapter emits, an in-memory ScopedStore, and a wait on events.
 */
import type { Adapter, AdapterSession, ScopedStore, SessionContext } from "../../core/adapter.ts";
import { silentLogger } from "../../core/log.ts";
import type { LegacyEvent } from "../../core/model.ts";
import { waitFor } from "./wait.ts";

export function memoryStore(initial: Record<string, unknown> = {}): ScopedStore {
  const m = new Map(Object.entries(initial));
  return {
    async get<T>(k: string) {
      return m.get(k) as T | undefined;
    },
    async set(k, v) {
      m.set(k, v);
    },
    async delete(k) {
      m.delete(k);
    },
  };
}

export interface Harness {
  session: AdapterSession;
  events: LegacyEvent[];
  abort: AbortController;
  waitEvent<E extends LegacyEvent>(what: string, pred: (e: LegacyEvent) => e is E, ms?: number): Promise<E>;
  waitEvent(what: string, pred: (e: LegacyEvent) => boolean, ms?: number): Promise<LegacyEvent>;
}

export async function openSession(adapter: Adapter, user: string, store: ScopedStore = memoryStore()): Promise<Harness> {
  const events: LegacyEvent[] = [];
  const abort = new AbortController();
  const ctx: SessionContext = {
    user,
    registration: {},
    emit: (e) => events.push(e),
    log: silentLogger(),
    store,
    signal: abort.signal,
    fetch: async () => {
      throw new Error("no fetch in these tests");
    },
  };
  const session = await adapter.openSession(ctx);
  return {
    session,
    events,
    abort,
    waitEvent: (what: string, pred: (e: LegacyEvent) => boolean, ms = 10_000) => waitFor(() => events.find(pred), { timeout: ms, interval: 15, what }),
  } as Harness;
}
