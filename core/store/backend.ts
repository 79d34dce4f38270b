/**
 * Store URL → a keyv instance over the right storage adapter, plus the few
 * backend-specific extras keyv has no method for (prefix deletion, sweeping).
 *
 * - `sqlite:<path>` (also `sqlite://<path>`): our node:sqlite adapter, file 0600.
 * - `memory:`: the same adapter on a private in-memory database, so tests and
 *   throwaway runs exercise the same code (expiry, sweeping, prefix deletion).
 * - `redis://…` / `rediss://…`: @keyv/redis; TTLs are Redis' own (PX).
 * - `postgres://…` / `postgresql://…`: @keyv/postgres. It keeps no expiry
 *   column (keyv checks `expires` inside the value on read), so an hourly
 *   sweep deletes rows whose serialized `expires` passed; otherwise entries
 *   nobody reads again (old id map links) would stay forever. Each store owns
 *   its pg.Pool, with an "error" listener (see OwnPoolPostgres).
 *
 * Keyv runs without a namespace and without key prefixing: index.ts builds
 * complete, escaped key names itself (keys.ts), identical on every backend.
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type KeyvPostgresType from "@keyv/postgres";
import type KeyvRedisType from "@keyv/redis";
import { Keyv, type KeyvStoreAdapter } from "keyv";
import { EstuaryError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { SqliteAdapter } from "./sqlite-adapter.ts";

export type StoreKind = "sqlite" | "memory" | "redis" | "postgres";

export type StoreLocation =
  | { kind: "sqlite"; path: string }
  | { kind: "memory" }
  | { kind: "redis"; url: string }
  | { kind: "postgres"; url: string };

export interface Backend {
  readonly kind: StoreKind;
  readonly keyv: Keyv;
  /** Deletes every key starting with `prefix` where the backend can do it in one cheap statement. */
  deletePrefix?(prefix: string): Promise<void>;
  close(): Promise<void>;
}

export interface BackendOptions {
  log?: Logger;
  /** SQLite sweep period (ms); 0 disables. */
  sweepIntervalMs?: number;
  /** Clock for the SQLite adapter (tests). */
  now?: () => number;
}

/** Postgres table and key width: keys carry JIDs and network ids, wider than @keyv/postgres' default 255. */
export const POSTGRES_TABLE = "estuary_state";
export const POSTGRES_KEY_SIZE = 1024;
const POSTGRES_SWEEP_MS = 60 * 60_000;

/** The slice of node-postgres (`pg`, @keyv/postgres' driver; it ships no type declarations) used here. */
interface PgPool {
  query(sql: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  on(event: "error", listener: (err: Error) => void): unknown;
  end(): Promise<void>;
}

/**
 * The Redis and Postgres modules are loaded only when a store URL asks for
 * them: @keyv/redis alone (with the redis client) adds ~15 MiB of RSS to a
 * process that uses SQLite (bench/irc, RSS at rest). createBackend is
 * synchronous, so they come through require() of their ESM entry points
 * (Node ≥ 22.12 loads ES modules synchronously in require, into the same
 * module map as import): the very classes a static import would give, not
 * the CommonJS builds their "exports" offer to require (two copies of keyv).
 */
const requireLazy = createRequire(import.meta.url);
function requireEsm<T>(specifier: string): T {
  return (requireLazy(fileURLToPath(import.meta.resolve(specifier))) as { default: T }).default;
}
const loadRedis = (): typeof KeyvRedisType => requireEsm<typeof KeyvRedisType>("@keyv/redis");
const loadPostgres = (): typeof KeyvPostgresType => requireEsm<typeof KeyvPostgresType>("@keyv/postgres");
const loadPg = (): { Pool: new (options: { connectionString: string }) => PgPool } =>
  requireLazy("pg") as { Pool: new (options: { connectionString: string }) => PgPool };

/**
 * @keyv/postgres with a pool of its own. The stock adapter keeps one
 * module-wide pg.Pool (its src/pool.ts) with no "error" listener. An idle
 * pooled client whose connection the server drops (restart, failover,
 * idle_session_timeout, pg_terminate_backend) makes the pool emit "error"
 * (https://node-postgres.com/apis/pool#error), which is an uncaught exception
 * without a listener: the gateway would crash. That pool is also shared by
 * every adapter on the same URI, so closing one store ended the others' pool.
 * Overriding connect() (the constructor's only way to the pool) fixes both.
 */
function ownPoolPostgres(url: string, log: Logger | undefined): KeyvPostgresType {
  const KeyvPostgres = loadPostgres();
  const pg = loadPg();
  let pool: PgPool | undefined;
  class OwnPoolPostgres extends KeyvPostgres {
    override async connect(): Promise<(sql: string, values?: unknown[]) => Promise<unknown[]>> {
      const own = new pg.Pool({ connectionString: url });
      // The pool has already discarded the broken client; the next query opens a new connection.
      own.on("error", (err) => log?.warn({ err }, "state store connection lost"));
      pool = own;
      return async (sql, values) => (await own.query(sql, values)).rows;
    }

    override async disconnect(): Promise<void> {
      const own = pool;
      pool = undefined;
      await own?.end();
    }
  }
  return new OwnPoolPostgres({ uri: url, table: POSTGRES_TABLE, keySize: POSTGRES_KEY_SIZE });
}

export function parseStoreUrl(url: string): StoreLocation {
  if (url === "memory:" || url === "memory://") return { kind: "memory" };
  if (url.startsWith("sqlite:")) {
    let path = url.slice("sqlite:".length);
    if (path.startsWith("//")) path = path.slice(2);
    if (path === "") throw new EstuaryError("not-acceptable", "The sqlite: store URL needs a file path");
    return { kind: "sqlite", path };
  }
  if (/^rediss?:\/\//.test(url)) return { kind: "redis", url };
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: "postgres", url };
  throw new EstuaryError(
    "not-acceptable",
    "Unknown store URL: use sqlite:<path>, memory:, redis://… or postgres://…",
  );
}

function newKeyv(store: KeyvStoreAdapter, log: Logger | undefined): Keyv {
  // No namespace and no prefixing: keys are complete names (keys.ts). Errors
  // must reach the caller, not turn into silent misses (keyv's default).
  const keyv = new Keyv({ store, namespace: undefined, useKeyPrefix: false, throwOnErrors: true });
  keyv.on("error", (err: unknown) => log?.warn({ err }, "state store error"));
  return keyv;
}

export function createBackend(url: string, options: BackendOptions = {}): Backend {
  const location = parseStoreUrl(url);
  switch (location.kind) {
    case "sqlite":
    case "memory": {
      let adapter: SqliteAdapter;
      const path = location.kind === "memory" ? ":memory:" : location.path;
      try {
        adapter = new SqliteAdapter({ path, sweepIntervalMs: options.sweepIntervalMs, now: options.now });
      } catch (cause) {
        throw new EstuaryError("unavailable", `Cannot open the SQLite store at ${path}`, { cause });
      }
      return {
        kind: location.kind,
        keyv: newKeyv(adapter, options.log),
        async deletePrefix(prefix) {
          adapter.deletePrefix(prefix);
        },
        close: () => adapter.disconnect(),
      };
    }
    case "redis": {
      const KeyvRedis = loadRedis();
      const adapter = new KeyvRedis<string>(location.url, { throwOnErrors: true, connectionTimeout: 10_000 });
      // Id map entries and TTL'd scoped keys expire by Redis' own TTL; no prefix deletion,
      // which on Redis would mean a SCAN over the whole keyspace.
      return { kind: "redis", keyv: newKeyv(adapter, options.log), close: () => adapter.disconnect() };
    }
    case "postgres": {
      const adapter = ownPoolPostgres(location.url, options.log);
      const keyv = newKeyv(adapter, options.log);
      const table = `${adapter.opts.schema ?? "public"}.${POSTGRES_TABLE}`;
      const sweep = setInterval(() => {
        adapter
          .query(
            `DELETE FROM ${table} WHERE value LIKE '%"expires":%' AND (value::json->>'expires')::bigint <= $1`,
            [Date.now()],
          )
          .catch((err: unknown) => options.log?.warn({ err }, "state store sweep failed"));
      }, POSTGRES_SWEEP_MS);
      sweep.unref();
      return {
        kind: "postgres",
        keyv,
        async deletePrefix(prefix) {
          await adapter.query(`DELETE FROM ${table} WHERE key LIKE $1`, [`${prefix.replace(/[\\%_]/g, "\\$&")}%`]);
        },
        async close() {
          clearInterval(sweep);
          await adapter.disconnect(); // idempotent: the pool is ended once
        },
      };
    }
  }
}
