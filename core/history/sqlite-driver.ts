/**
 * The archive's SQL on Node's built-in `node:sqlite` (archive.ts explains why
 * the archive has its own file). Like the store (core/store/sqlite-adapter.ts):
 * the file is created 0600 before SQLite opens it (it holds private
 * conversations; SQLite gives `-wal`/`-shm` the main file's mode), WAL so
 * queries run during appends, `synchronous=NORMAL` as the documented WAL
 * pairing (https://sqlite.org/wal.html).
 *
 * node:sqlite is synchronous: each call runs to completion on the event loop.
 * Archive statements are index range scans of a page (bounded by `max`) or
 * bounded delete batches, so none holds the loop for long. Statements are
 * prepared once per SQL text and cached.
 */
import { chmodSync, closeSync, existsSync, openSync } from "node:fs";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { SqlDriver, SqlValue } from "./archive.ts";

/** Distinct SQL texts kept prepared; archive.ts builds a few dozen shapes at most (ids lists vary). */
const STATEMENT_CACHE = 256;

export function openSqliteDriver(path: string): SqlDriver {
  const inMemory = path === ":memory:";
  if (!inMemory) {
    closeSync(openSync(path, "a", 0o600));
    chmodSync(path, 0o600);
  }
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    if (!inMemory) {
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      // The page cache, stated rather than inherited: SQLite's default, 2 MiB
      // (https://sqlite.org/pragma.html#pragma_cache_size), a fixed share of
      // RSS however large the archive grows. Appends and page reads touch the
      // newest leaves of the (user_jid, room, ts, seq) index; the 1000-user
      // soak (bench/soak/run.ts, 3.6 M rows in 30 min) showed no need for more.
      db.exec("PRAGMA cache_size = -2000");
      for (const suffix of ["-wal", "-shm"]) if (existsSync(path + suffix)) chmodSync(path + suffix, 0o600);
    }
  } catch (e) {
    db.close();
    throw e;
  }
  const cache = new Map<string, StatementSync>();
  const prepare = (sql: string): StatementSync => {
    let stmt = cache.get(sql);
    if (stmt === undefined) {
      stmt = db.prepare(sql);
      if (cache.size >= STATEMENT_CACHE) {
        const oldest = cache.keys().next().value;
        if (oldest !== undefined) cache.delete(oldest);
      }
      cache.set(sql, stmt);
    }
    return stmt;
  };
  let closed = false;
  return {
    dialect: "sqlite",
    async all<T>(sql: string, params: SqlValue[]): Promise<T[]> {
      return prepare(sql).all(...params) as T[];
    },
    async run(sql: string, params: SqlValue[]): Promise<number> {
      return Number(prepare(sql).run(...params).changes);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      cache.clear();
      db.close();
    },
  };
}
