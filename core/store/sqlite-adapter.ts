/**
 * A keyv 5 storage adapter (`KeyvStoreAdapter`, keyv/dist/index.d.ts) on
 * Node's built-in `node:sqlite` (`DatabaseSync`), so the embedded store needs
 * no native build.
 *
 * One table `kv(key TEXT PRIMARY KEY, value TEXT, expires INTEGER)`:
 * - `value` is whatever keyv hands us (its serialized `{value, expires}` JSON);
 * - `expires` (ms since epoch, NULL = never) lets SQLite itself drop stale
 *   rows: they read as absent, are deleted when met on a read, and a periodic
 *   sweep (an `unref`'d timer, so it never keeps the process alive) deletes the
 *   rest through a partial index on `expires`.
 *
 * The file holds sealed credentials, so it and its `-wal`/`-shm` companions are
 * mode 0600. SQLite's unix VFS creates `-wal`/`-shm` with the permissions of
 * the main database file (os_unix.c, findCreateFileMode), so creating the main
 * file 0600 before SQLite opens it covers all three; we chmod them anyway in
 * case they predate us.
 *
 * WAL journal mode (https://sqlite.org/wal.html) lets reads proceed during a
 * write; `synchronous=NORMAL` is the documented safe pairing with WAL (a power
 * loss may lose the last transactions, never corrupt the file).
 */
import { EventEmitter } from "node:events";
import { chmodSync, closeSync, existsSync, openSync } from "node:fs";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { KeyvStoreAdapter, StoredData } from "keyv";

export interface SqliteAdapterOptions {
  /** A file path, or `:memory:` for a private in-memory database. */
  path: string;
  /** Clock in ms since the epoch; tests inject one. Keyv itself uses Date.now(). */
  now?: () => number;
  /** How often expired rows are swept; 0 disables the timer. Default 5 minutes. */
  sweepIntervalMs?: number;
}

/** Rows deleted per sweep statement, so one sweep never blocks the event loop for long. */
const SWEEP_BATCH = 2000;
/** Rows fetched per iterator page: the statement is not held open across `yield`s. */
const ITERATOR_PAGE = 256;

interface Row {
  key: string;
  value: string;
  expires: number | null;
}

/**
 * Smallest string greater than every string starting with `prefix`, in
 * SQLite's BINARY (memcmp of UTF-8) order, which matches code point order:
 * the prefix with its last code point incremented. `undefined` when there is
 * no such bound (empty prefix or ending in U+10FFFF): the range is open-ended.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = Array.from(prefix);
  while (points.length > 0) {
    const last = points.pop() as string;
    let cp = (last.codePointAt(0) as number) + 1;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xe000; // skip surrogates, which UTF-8 cannot hold
    if (cp <= 0x10ffff) return points.join("") + String.fromCodePoint(cp);
  }
  return undefined;
}

export class SqliteAdapter extends EventEmitter implements KeyvStoreAdapter {
  /** keyv reads `opts.dialect` to decide the adapter is iterable (keyv `_checkIterableAdapter`). */
  readonly opts: { dialect: "sqlite"; url: string; path: string };
  /** Set by keyv to its namespace; `clear()` and `iterator()` honour it. */
  namespace?: string | undefined;

  readonly #db: DatabaseSync;
  readonly #now: () => number;
  readonly #path: string;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  readonly #get: StatementSync;
  readonly #set: StatementSync;
  readonly #delete: StatementSync;
  readonly #deleteExpiredKey: StatementSync;
  readonly #sweep: StatementSync;
  readonly #clearAll: StatementSync;
  readonly #deleteRange: StatementSync;
  readonly #deleteFrom: StatementSync;
  /** Iterator pages: [first page, next pages] × [bounded by a prefix range, open-ended]. */
  readonly #pages: { bounded: [StatementSync, StatementSync]; open: [StatementSync, StatementSync] };
  readonly #begin: StatementSync;
  readonly #commit: StatementSync;
  readonly #rollback: StatementSync;

  constructor(options: SqliteAdapterOptions) {
    super();
    this.#path = options.path;
    // Looked up on each call, so fake clocks installed later (tests) are seen, as keyv sees them.
    this.#now = options.now ?? (() => Date.now());
    this.opts = { dialect: "sqlite", url: `sqlite://${options.path}`, path: options.path };

    const inMemory = options.path === ":memory:";
    if (!inMemory) {
      // Create the file owner-only before SQLite does (it would use 0644 & ~umask).
      closeSync(openSync(options.path, "a", 0o600));
      chmodSync(options.path, 0o600);
    }
    this.#db = new DatabaseSync(options.path);
    try {
      this.#db.exec("PRAGMA busy_timeout = 5000");
      if (!inMemory) {
        this.#db.exec("PRAGMA journal_mode = WAL");
        this.#db.exec("PRAGMA synchronous = NORMAL");
        // 16 MiB page cache (default 2 MiB): id map keys are random, so inserts land all over the B-tree.
        this.#db.exec("PRAGMA cache_size = -16384");
      }
      this.#db.exec(
        "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires INTEGER) WITHOUT ROWID",
      );
      this.#db.exec("CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires) WHERE expires IS NOT NULL");
    } catch (e) {
      this.#db.close();
      throw e;
    }
    this.#secureCompanions();

    // Prepared once: this adapter sits on the hot path of every message (id map).
    const db = this.#db;
    this.#get = db.prepare("SELECT value, expires FROM kv WHERE key = ?");
    this.#set = db.prepare(
      "INSERT INTO kv (key, value, expires) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
    );
    this.#delete = db.prepare("DELETE FROM kv WHERE key = ?");
    this.#deleteExpiredKey = db.prepare("DELETE FROM kv WHERE key = ? AND expires IS NOT NULL AND expires <= ?");
    this.#sweep = db.prepare(
      "DELETE FROM kv WHERE key IN (SELECT key FROM kv WHERE expires IS NOT NULL AND expires <= ? LIMIT ?)",
    );
    this.#clearAll = db.prepare("DELETE FROM kv");
    this.#deleteRange = db.prepare("DELETE FROM kv WHERE key >= ? AND key < ?");
    this.#deleteFrom = db.prepare("DELETE FROM kv WHERE key >= ?");
    const page = (where: string) =>
      db.prepare(`SELECT key, value FROM kv WHERE ${where} AND (expires IS NULL OR expires > ?) ORDER BY key LIMIT ?`);
    this.#pages = {
      bounded: [page("key >= ? AND key < ?"), page("key > ? AND key < ?")],
      open: [page("key >= ?"), page("key > ?")],
    };
    this.#begin = db.prepare("BEGIN");
    this.#commit = db.prepare("COMMIT");
    this.#rollback = db.prepare("ROLLBACK");

    const interval = options.sweepIntervalMs ?? 5 * 60_000;
    if (interval > 0) {
      this.#timer = setInterval(() => {
        try {
          this.sweep();
        } catch (e) {
          this.emit("error", e);
        }
      }, interval);
      this.#timer.unref();
    }
  }

  /** The raw row read; expired rows read as absent and are deleted on the way. */
  #read(key: string): string | undefined {
    const row = this.#get.get(key) as Pick<Row, "value" | "expires"> | undefined;
    if (row === undefined) return undefined;
    if (row.expires !== null) {
      const now = this.#now();
      if (row.expires <= now) {
        this.#deleteExpiredKey.run(key, now);
        return undefined;
      }
    }
    return row.value;
  }

  #write(key: string, value: unknown, ttl?: number): void {
    const expires = typeof ttl === "number" && ttl > 0 ? this.#now() + ttl : null;
    this.#set.run(key, typeof value === "string" ? value : JSON.stringify(value), expires);
  }

  #transaction(fn: () => void): void {
    this.#begin.run();
    try {
      fn();
      this.#commit.run();
    } catch (e) {
      this.#rollback.run();
      throw e;
    }
  }

  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    return this.#read(key) as StoredData<Value> | undefined;
  }

  async getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return keys.map((k) => this.#read(k) as StoredData<Value | undefined>);
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    this.#write(key, value, ttl);
    return true;
  }

  async setMany(values: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void> {
    this.#transaction(() => {
      for (const { key, value, ttl } of values) this.#write(key, value, ttl);
    });
  }

  async delete(key: string): Promise<boolean> {
    return Number(this.#delete.run(key).changes) > 0;
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    let deleted = 0;
    this.#transaction(() => {
      for (const key of keys) deleted += Number(this.#delete.run(key).changes);
    });
    return deleted > 0;
  }

  async has(key: string): Promise<boolean> {
    return this.#read(key) !== undefined;
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    return keys.map((k) => this.#read(k) !== undefined);
  }

  /** Clears keyv's namespace (`<namespace>:…`) when one is set, else the whole table. */
  async clear(): Promise<void> {
    if (this.namespace) this.deletePrefix(`${this.namespace}:`);
    else this.#clearAll.run();
  }

  /**
   * Deletes every key starting with `prefix` (not part of keyv's interface).
   * A range on the primary key, so it touches only the matching rows.
   */
  deletePrefix(prefix: string): number {
    const upper = prefixUpperBound(prefix);
    const result = upper === undefined ? this.#deleteFrom.run(prefix) : this.#deleteRange.run(prefix, upper);
    return Number(result.changes);
  }

  /**
   * Live `[key, value]` pairs whose key starts with `<namespace>:` (all pairs
   * without a namespace), in key order. Pages by key so writes made while the
   * caller iterates (keyv deletes expired entries it meets) are safe.
   */
  async *iterator<Value>(namespace?: string): AsyncGenerator<Array<string | Awaited<Value> | undefined>, void> {
    const prefix = namespace ? `${namespace}:` : "";
    const upper = prefixUpperBound(prefix);
    let cursor = prefix;
    for (let page = 0; ; page++) {
      const stmt = (upper === undefined ? this.#pages.open : this.#pages.bounded)[page === 0 ? 0 : 1];
      const params: (string | number)[] = upper === undefined ? [cursor] : [cursor, upper];
      const rows = stmt.all(...params, this.#now(), ITERATOR_PAGE) as unknown as Pick<Row, "key" | "value">[];
      for (const row of rows) yield [row.key, row.value as Awaited<Value>];
      const last = rows.at(-1);
      if (last === undefined || rows.length < ITERATOR_PAGE) return;
      cursor = last.key;
    }
  }

  /** Deletes expired rows in bounded batches; returns how many went. */
  sweep(): number {
    if (this.#closed) return 0;
    let total = 0;
    for (;;) {
      const n = Number(this.#sweep.run(this.#now(), SWEEP_BATCH).changes);
      total += n;
      if (n < SWEEP_BATCH) return total;
    }
  }

  async disconnect(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#db.close();
  }

  /** Owner-only mode on the WAL companions when they exist (SQLite normally already copied it). */
  #secureCompanions(): void {
    if (this.#path === ":memory:") return;
    for (const suffix of ["-wal", "-shm"]) {
      const file = this.#path + suffix;
      if (existsSync(file)) chmodSync(file, 0o600);
    }
  }
}
