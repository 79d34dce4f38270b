/**
 * The message archive of gateway rooms: what XEP-0313 (MAM) queries and
 * XEP-0045 §7.2.14 join history read.
 *
 * Design
 * ------
 * keyv (core/store) is a key-value store: it can get a key, not walk a range
 * of keys in order. An archive is mostly range queries ("the 50 messages of
 * this room after X, oldest first", "everything since T"), so it lives in ONE
 * SQL table beside keyv instead of inside it:
 *
 * - `sqlite:<path>` / `memory:` — Node's built-in `node:sqlite` (no native
 *   build), in its own file rather than a table inside the store's file. The
 *   archive is large, append-heavy and disposable (retention deletes from it
 *   all the time; an operator may delete it whole without losing registrations),
 *   while the store is small and precious (sealed credentials). Separate files
 *   mean separate WAL write locks (an archive append never waits behind a store
 *   write, and vice versa), separate backup and vacuum schedules, and the
 *   store's key layout stays keyv's alone. `defaultArchiveUrl()` puts it next
 *   to the store's file (`estuary.db` → `estuary.archive.db`), mode 0600 like
 *   the store: it holds private conversations.
 * - `postgres://…` — the same SQL through the `pg` module (the driver
 *   @keyv/postgres already depends on) in a table `estuary_archive` of the
 *   store's database: a Postgres deployment keeps one database to back up.
 * - Redis cannot do ordered range queries cheaply; a Redis store gets a SQLite
 *   archive (defaultArchiveUrl).
 *
 * Table (portable SQL: the same statements run on both engines; only the
 * sequence column's type differs):
 *
 *   seq            monotonically increasing (SQLite rowid / Postgres BIGSERIAL):
 *                  the tie-breaker, so messages in the same millisecond keep
 *                  their arrival order
 *   user_jid, network, room, archive_id, ts (ms since epoch), nick, from_jid,
 *   body, origin_id, legacy_id, corrected_body, retracted_at (ms, NULL = not)
 *
 * Archives are per user (Biboumi-style): the gateway joins the legacy room as
 * each user, so each user's view of a room is archived separately and a user
 * only ever reads what they themselves received. `archive_id` (the XEP-0359
 * stanza-id the room stamped) is unique per (user, room).
 *
 * Order is (ts, seq). Every position is a row value `(ts, seq)`, and cursors
 * (RSM after/before, MAM after-id/before-id) are archive ids resolved to their
 * position through the unique index, then compared as `(ts, seq) > (?, ?)`,
 * which both engines answer from the index (user_jid, room, ts, seq): a page
 * anywhere in a 100 000-message room is one index range scan of max+1 rows
 * (bench/history.ts). `with` (a nick) has its own index (user_jid, room, nick,
 * ts, seq); retention by age uses (ts).
 *
 * `count` (RSM <count/>) is a COUNT(*) over the index range of the result set,
 * `index` (RSM <first index>) one more when the page starts mid-set. Counting
 * walks the range, so it is bounded: past COUNT_LIMITS matching messages both
 * are left out (XEP-0313 "Requesting pages": optional, clients MUST NOT depend on them),
 * which keeps every page of a 100 000-message room at index-range cost
 * instead of a full walk per page. `count: false` skips them entirely.
 *
 * `complete` follows XEP-0313 §4.3.2 (and RSM): true exactly when the page was
 * not cut short by `max`, i.e. it reaches the end of the result set in the
 * paging direction (forwards: the newest matching message; backwards with
 * RSM <before>: the oldest). We fetch max+1 rows to know without counting.
 */
import { fail } from "../errors.ts";
import { parseStoreUrl } from "../store/backend.ts";
import { openPostgresDriver } from "./postgres-driver.ts";
import { openSqliteDriver } from "./sqlite-driver.ts";

export interface ArchivedMessage {
  /** The XEP-0359 stanza-id the room assigned (unique per user+room). */
  archiveId: string;
  /** Bare JID of the user whose view this is (per-user archive, for privacy). */
  user: string;
  network: string;
  /** The room JID (bare). */
  room: string;
  /** Occupant nick. */
  from: string;
  /** Real JID shown, if any. */
  fromJid?: string;
  at: Date;
  /** XEP-0393 text as delivered. */
  body: string;
  /** The sender's id (for the user's own messages). */
  originId?: string;
  legacyId?: string;
  /** Latest XEP-0308 correction applied. */
  correctedBody?: string;
  /** XEP-0424 tombstone: body removed. */
  retracted?: boolean;
  /** When it was retracted (the tombstone's `stamp`). */
  retractedAt?: Date;
}

export interface ArchiveQuery {
  user: string;
  room: string;
  /** Inclusive bounds (XEP-0313 §4.1.2). */
  start?: Date;
  end?: Date;
  /** Occupant nick the messages are from. */
  with?: string;
  /** Real JID the messages are from: a bare JID also matches its full JIDs (XEP-0313 §4.1.1). */
  withJid?: string;
  /** XEP-0313 extended `after-id`/`before-id`: exclusive bounds of the result set itself (not paging). */
  afterId?: string;
  beforeId?: string;
  /** RSM <after>: page forwards from this archive id. */
  after?: string;
  /** RSM <before>: page backwards before this archive id; `true` (empty <before/>) = the last page. */
  before?: string | true;
  /** Page size; 0 returns only the count (XEP-0059 §2.6). */
  max: number;
  /** XEP-0313 extended `ids`: only these messages. */
  ids?: string[];
  /** Compute RSM count and first index (default true). */
  count?: boolean;
}

export interface ArchivePage {
  /** Oldest first, whatever the paging direction. */
  messages: ArchivedMessage[];
  complete: boolean;
  /** Archive ids of the first and last message of the page. */
  first?: string;
  last?: string;
  /** Size of the whole result set (without paging); absent past the count limit. */
  count?: number;
  /** Position of `first` in the whole result set (RSM <first index>); absent when count is. */
  index?: number;
}

export interface HistoryQuery {
  user: string;
  room: string;
  maxStanzas?: number;
  maxChars?: number;
  since?: Date;
  seconds?: number;
  /**
   * Characters a message counts for `maxChars`. XEP-0045 §7.2.14 counts whole
   * stanzas; pass `(m) => historyMessage(m, …).toString().length` for that.
   * Default: the length of the body shown.
   */
  measure?: (m: ArchivedMessage) => number;
}

export interface RetentionPolicy {
  maxAgeMs?: number;
  maxPerRoom?: number;
}

export interface ArchiveMetadata {
  start?: { id: string; at: Date };
  end?: { id: string; at: Date };
}

export interface Archive {
  /** Stores a message; a second append with the same (user, room, archiveId) is ignored. */
  append(m: ArchivedMessage): Promise<void>;
  /** Records the latest XEP-0308 correction; unknown or retracted messages are left alone. */
  correct(user: string, room: string, archiveId: string, newBody: string): Promise<void>;
  /** Turns the message into a XEP-0424 tombstone: body and correction erased, retraction time kept. */
  retract(user: string, room: string, archiveId: string): Promise<void>;
  /** A XEP-0313 page. Unknown ids in after/before/afterId/beforeId/ids: EstuaryError("not-found"). */
  query(q: ArchiveQuery): Promise<ArchivePage>;
  /** XEP-0045 §7.2.14 join history, oldest first; retracted messages are left out. */
  history(q: HistoryQuery): Promise<ArchivedMessage[]>;
  /** First and last message of a user's room archive (XEP-0313 "Archive metadata"). */
  metadata(user: string, room: string): Promise<ArchiveMetadata>;
  /** Deletes messages older than maxAgeMs and beyond the newest maxPerRoom of each (user, room); returns how many went. */
  enforceRetention(policy: RetentionPolicy): Promise<number>;
  /** Deletes a user's archive, on one network or all. */
  purgeUser(user: string, network?: string): Promise<void>;
  close(): Promise<void>;
}

export interface ArchiveOptions {
  /** `sqlite:<path>` | `memory:` | `postgres://…` */
  url: string;
  /** Clock in ms (tests); used for `seconds`, retention and retraction stamps. */
  now?: () => number;
  /** Result sets larger than this get no RSM count/index; default COUNT_LIMITS[engine]. */
  countLimit?: number;
}

/** Default join history when the client asks for none in particular (XEP-0045 §7.2.14 leaves it to the room). */
export const HISTORY_DEFAULT_STANZAS = 20;
/** Upper bound on join history, whatever the client asks. */
export const HISTORY_MAX_STANZAS = 100;
/**
 * Result sets larger than this get no RSM count/index (counting walks the
 * index range). Measured with bench/history.ts: walking 10 000 index entries
 * costs SQLite under a millisecond, Postgres several (heap visibility checks
 * until VACUUM has set the visibility map), hence a lower bound there.
 */
export const COUNT_LIMITS = { sqlite: 10_000, postgres: 2_000 } as const;
/** Upper bound on `ids` in one query. */
export const MAX_IDS = 250;

export type SqlValue = string | number | null;

/**
 * What archive.ts needs from an engine. SQL uses `?` placeholders (the
 * Postgres driver numbers them); integer columns may come back as strings
 * (pg returns BIGINT as text), so rows are converted with Number().
 */
export interface SqlDriver {
  readonly dialect: "sqlite" | "postgres";
  all<T>(sql: string, params: SqlValue[]): Promise<T[]>;
  /** Returns the number of rows changed. */
  run(sql: string, params: SqlValue[]): Promise<number>;
  close(): Promise<void>;
}

export const ARCHIVE_TABLE = "estuary_archive";

/** Schema statements for a dialect: identical but for the sequence column. */
export function schema(dialect: SqlDriver["dialect"]): string[] {
  const seq = dialect === "sqlite" ? "seq INTEGER PRIMARY KEY" : "seq BIGSERIAL PRIMARY KEY";
  const t = ARCHIVE_TABLE;
  return [
    `CREATE TABLE IF NOT EXISTS ${t} (
      ${seq},
      user_jid TEXT NOT NULL,
      network TEXT NOT NULL,
      room TEXT NOT NULL,
      archive_id TEXT NOT NULL,
      ts BIGINT NOT NULL,
      nick TEXT NOT NULL,
      from_jid TEXT,
      body TEXT NOT NULL,
      origin_id TEXT,
      legacy_id TEXT,
      corrected_body TEXT,
      retracted_at BIGINT,
      UNIQUE (user_jid, room, archive_id)
    )`,
    `CREATE INDEX IF NOT EXISTS ${t}_time ON ${t} (user_jid, room, ts, seq)`,
    `CREATE INDEX IF NOT EXISTS ${t}_nick ON ${t} (user_jid, room, nick, ts, seq)`,
    `CREATE INDEX IF NOT EXISTS ${t}_age ON ${t} (ts)`,
  ];
}

interface Row {
  seq: number | string;
  user_jid: string;
  network: string;
  room: string;
  archive_id: string;
  ts: number | string;
  nick: string;
  from_jid: string | null;
  body: string;
  origin_id: string | null;
  legacy_id: string | null;
  corrected_body: string | null;
  retracted_at: number | string | null;
}

interface Position {
  ts: number;
  seq: number;
}

interface PendingAppend {
  row: SqlValue[];
  resolve(): void;
  reject(e: unknown): void;
}

/** Rows per INSERT statement: 12 parameters each, well under SQLite's and Postgres' parameter limits. */
const APPEND_BATCH = 64;
const APPEND_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

const COLUMNS = "seq, user_jid, network, room, archive_id, ts, nick, from_jid, body, origin_id, legacy_id, corrected_body, retracted_at";
/** Rows deleted per retention statement, so one sweep never holds the database for long. */
const DELETE_BATCH = 5000;

function toMessage(r: Row): ArchivedMessage {
  const m: ArchivedMessage = {
    archiveId: r.archive_id,
    user: r.user_jid,
    network: r.network,
    room: r.room,
    from: r.nick,
    at: new Date(Number(r.ts)),
    body: r.body,
  };
  if (r.from_jid !== null) m.fromJid = r.from_jid;
  if (r.origin_id !== null) m.originId = r.origin_id;
  if (r.legacy_id !== null) m.legacyId = r.legacy_id;
  if (r.corrected_body !== null) m.correctedBody = r.corrected_body;
  if (r.retracted_at !== null) {
    m.retracted = true;
    m.retractedAt = new Date(Number(r.retracted_at));
  }
  return m;
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, "\\$&");
}

function checkDate(d: Date | undefined, what: string): void {
  if (d !== undefined && !Number.isFinite(d.getTime())) throw fail("bad-request", `Invalid ${what} date`);
}

export class SqlArchive implements Archive {
  readonly #db: SqlDriver;
  readonly #now: () => number;
  readonly #countLimit: number;
  readonly #t = ARCHIVE_TABLE;
  #pending: PendingAppend[] = [];
  #flushSoon: NodeJS.Immediate | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(db: SqlDriver, options: { now?: () => number; countLimit?: number } = {}) {
    this.#db = db;
    this.#now = options.now ?? (() => Date.now());
    this.#countLimit = options.countLimit ?? COUNT_LIMITS[db.dialect];
  }

  async init(): Promise<void> {
    for (const statement of schema(this.#db.dialect)) await this.#db.run(statement, []);
  }

  /**
   * Appends are written in batches: every append of one event-loop turn goes
   * into one multi-row INSERT (one transaction, one WAL commit) on the next
   * turn (setImmediate, after the I/O callbacks that produced them), instead
   * of a commit per message (bench/irc: IRC → XMPP spent about half of its
   * CPU in SQLite). Every read and every update first writes what is pending,
   * so a query right after a message sees it (XEP-0313 clients fetch the
   * archive right after they received a live message). The returned promise
   * settles when the batch is written.
   */
  append(m: ArchivedMessage): Promise<void> {
    if (m.archiveId === "") return Promise.reject(fail("bad-request", "An archived message needs an id"));
    const at = m.at.getTime();
    if (!Number.isFinite(at)) return Promise.reject(fail("bad-request", "An archived message needs a valid time"));
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({
        row: [
          m.user,
          m.network,
          m.room,
          m.archiveId,
          at,
          m.from,
          m.fromJid ?? null,
          m.retracted ? "" : m.body,
          m.originId ?? null,
          m.legacyId ?? null,
          m.retracted ? null : (m.correctedBody ?? null),
          m.retracted ? (m.retractedAt?.getTime() ?? this.#now()) : null,
        ],
        resolve,
        reject,
      });
      this.#flushSoon ??= setImmediate(() => {
        this.#flushSoon = undefined;
        void this.#flush();
      });
    });
  }

  /** Writes the pending appends (in order, APPEND_BATCH rows per statement); resolves once they are in. */
  #flush(): Promise<void> {
    if (this.#flushSoon !== undefined) {
      clearImmediate(this.#flushSoon);
      this.#flushSoon = undefined;
    }
    if (this.#pending.length === 0) return this.#writing;
    const batch = this.#pending;
    this.#pending = [];
    // Batches are chained: a later flush never overtakes an earlier one still being written (Postgres).
    this.#writing = this.#writing.then(async () => {
      for (let i = 0; i < batch.length; i += APPEND_BATCH) {
        const slice = batch.slice(i, i + APPEND_BATCH);
        try {
          await this.#insert(slice);
          for (const p of slice) p.resolve();
        } catch (e) {
          if (slice.length === 1) {
            slice[0]?.reject(e);
            continue;
          }
          // One bad row must not cost the others their place in the archive: row by row.
          for (const p of slice) await this.#insert([p]).then(p.resolve, p.reject);
        }
      }
    });
    return this.#writing;
  }

  #insert(rows: PendingAppend[]): Promise<number> {
    return this.#db.run(
      `INSERT INTO ${this.#t} (user_jid, network, room, archive_id, ts, nick, from_jid, body, origin_id, legacy_id, corrected_body, retracted_at)
       VALUES ${rows.map(() => APPEND_VALUES).join(", ")}
       ON CONFLICT (user_jid, room, archive_id) DO NOTHING`,
      rows.flatMap((p) => p.row),
    );
  }

  async correct(user: string, room: string, archiveId: string, newBody: string): Promise<void> {
    await this.#flush();
    await this.#db.run(
      `UPDATE ${this.#t} SET corrected_body = ? WHERE user_jid = ? AND room = ? AND archive_id = ? AND retracted_at IS NULL`,
      [newBody, user, room, archiveId],
    );
  }

  async retract(user: string, room: string, archiveId: string): Promise<void> {
    await this.#flush();
    // XEP-0424 §5.1: the tombstone keeps that the message existed, not what it said.
    await this.#db.run(
      `UPDATE ${this.#t} SET body = '', corrected_body = NULL, retracted_at = ? WHERE user_jid = ? AND room = ? AND archive_id = ? AND retracted_at IS NULL`,
      [this.#now(), user, room, archiveId],
    );
  }

  async #position(user: string, room: string, archiveId: string): Promise<Position> {
    const rows = await this.#db.all<{ ts: number | string; seq: number | string }>(
      `SELECT ts, seq FROM ${this.#t} WHERE user_jid = ? AND room = ? AND archive_id = ?`,
      [user, room, archiveId],
    );
    const row = rows[0];
    // XEP-0313 "Limiting results by id" and "Requesting pages": an id not in the archive is item-not-found.
    if (row === undefined) throw fail("not-found", `No message ${archiveId} in this archive`);
    return { ts: Number(row.ts), seq: Number(row.seq) };
  }

  async query(q: ArchiveQuery): Promise<ArchivePage> {
    await this.#flush();
    checkDate(q.start, "start");
    checkDate(q.end, "end");
    if (!Number.isInteger(q.max) || q.max < 0) throw fail("bad-request", "max must be a non-negative integer");
    // The result set: filters and the extended-form bounds.
    const where = ["user_jid = ?", "room = ?"];
    const params: SqlValue[] = [q.user, q.room];
    if (q.start) {
      where.push("ts >= ?");
      params.push(q.start.getTime());
    }
    if (q.end) {
      where.push("ts <= ?");
      params.push(q.end.getTime());
    }
    if (q.with !== undefined) {
      where.push("nick = ?");
      params.push(q.with);
    }
    if (q.withJid !== undefined) {
      // A bare JID matches its full JIDs too (XEP-0313 §4.1.1).
      where.push("(from_jid = ? OR from_jid LIKE ? ESCAPE '\\')");
      params.push(q.withJid, `${escapeLike(q.withJid)}/%`);
    }
    if (q.ids !== undefined) {
      const ids = [...new Set(q.ids)];
      if (ids.length > MAX_IDS) throw fail("not-acceptable", `At most ${MAX_IDS} ids per query`);
      if (ids.length === 0) return { messages: [], complete: true, ...(q.count === false ? {} : { count: 0 }) };
      const marks = ids.map(() => "?").join(", ");
      const found = await this.#db.all<{ archive_id: string }>(
        `SELECT archive_id FROM ${this.#t} WHERE user_jid = ? AND room = ? AND archive_id IN (${marks})`,
        [q.user, q.room, ...ids],
      );
      if (found.length < ids.length) {
        const have = new Set(found.map((r) => r.archive_id));
        throw fail("not-found", `No message ${ids.find((id) => !have.has(id))} in this archive`);
      }
      where.push(`archive_id IN (${marks})`);
      params.push(...ids);
    }
    if (q.afterId !== undefined) {
      const p = await this.#position(q.user, q.room, q.afterId);
      where.push("(ts, seq) > (?, ?)");
      params.push(p.ts, p.seq);
    }
    if (q.beforeId !== undefined) {
      const p = await this.#position(q.user, q.room, q.beforeId);
      where.push("(ts, seq) < (?, ?)");
      params.push(p.ts, p.seq);
    }
    const set = where.join(" AND ");

    // The page: RSM cursors within the set.
    const page = [...where];
    const pageParams = [...params];
    if (q.after !== undefined) {
      const p = await this.#position(q.user, q.room, q.after);
      page.push("(ts, seq) > (?, ?)");
      pageParams.push(p.ts, p.seq);
    }
    if (typeof q.before === "string") {
      const p = await this.#position(q.user, q.room, q.before);
      page.push("(ts, seq) < (?, ?)");
      pageParams.push(p.ts, p.seq);
    }
    // RSM leaves <after> with <before> undefined (XEP-0313 §4.3.2): we read forwards between them.
    const backwards = q.before !== undefined && q.after === undefined;
    const order = backwards ? "ts DESC, seq DESC" : "ts, seq";
    const rows = await this.#db.all<Row>(
      `SELECT ${COLUMNS} FROM ${this.#t} WHERE ${page.join(" AND ")} ORDER BY ${order} LIMIT ?`,
      [...pageParams, q.max + 1],
    );
    const cut = rows.length > q.max;
    const kept = rows.slice(0, q.max);
    if (backwards) kept.reverse();
    const messages = kept.map(toMessage);
    const result: ArchivePage = { messages, complete: !cut };
    const first = kept[0];
    const last = kept.at(-1);
    if (first && last) {
      result.first = first.archive_id;
      result.last = last.archive_id;
    }
    if (q.count !== false) {
      const cursorless = q.after === undefined && q.before === undefined;
      const count = await this.#count(set, params);
      if (count !== undefined) result.count = count;
      if (first) {
        if (cursorless) result.index = 0;
        else if (count !== undefined) {
          const index =
            q.before === true
              ? count - kept.length
              : await this.#count(`${set} AND (ts, seq) < (?, ?)`, [...params, Number(first.ts), Number(first.seq)]);
          if (index !== undefined) result.index = index;
        }
      }
    }
    return result;
  }

  /** Rows matching `where`, or undefined past the count limit (the walk stops there). */
  async #count(where: string, params: SqlValue[]): Promise<number | undefined> {
    const rows = await this.#db.all<{ n: number | string }>(
      `SELECT COUNT(*) AS n FROM (SELECT 1 FROM ${this.#t} WHERE ${where} LIMIT ?) AS matching`,
      [...params, this.#countLimit + 1],
    );
    const n = Number(rows[0]?.n ?? 0);
    return n > this.#countLimit ? undefined : n;
  }

  async history(q: HistoryQuery): Promise<ArchivedMessage[]> {
    await this.#flush();
    checkDate(q.since, "since");
    const limited = q.maxChars !== undefined || q.since !== undefined || q.seconds !== undefined;
    const cap = Math.min(q.maxStanzas ?? (limited ? HISTORY_MAX_STANZAS : HISTORY_DEFAULT_STANZAS), HISTORY_MAX_STANZAS);
    if (cap <= 0 || q.maxChars === 0) return [];
    const where = ["user_jid = ?", "room = ?", "retracted_at IS NULL"];
    const params: SqlValue[] = [q.user, q.room];
    // Every given limit applies (§7.2.14: the room sends what satisfies all of them).
    let cutoff: number | undefined;
    if (q.since !== undefined) cutoff = q.since.getTime();
    if (q.seconds !== undefined) cutoff = Math.max(cutoff ?? -Infinity, this.#now() - q.seconds * 1000);
    if (cutoff !== undefined) {
      where.push("ts >= ?");
      params.push(cutoff);
    }
    const rows = await this.#db.all<Row>(
      `SELECT ${COLUMNS} FROM ${this.#t} WHERE ${where.join(" AND ")} ORDER BY ts DESC, seq DESC LIMIT ?`,
      [...params, cap],
    );
    let messages = rows.map(toMessage);
    if (q.maxChars !== undefined) {
      const measure = q.measure ?? ((m: ArchivedMessage) => (m.correctedBody ?? m.body).length);
      let total = 0;
      let n = 0;
      for (const m of messages) {
        total += measure(m);
        if (total > q.maxChars) break;
        n++;
      }
      messages = messages.slice(0, n);
    }
    return messages.reverse();
  }

  async metadata(user: string, room: string): Promise<ArchiveMetadata> {
    await this.#flush();
    const edge = async (order: string) => {
      const rows = await this.#db.all<{ archive_id: string; ts: number | string }>(
        `SELECT archive_id, ts FROM ${this.#t} WHERE user_jid = ? AND room = ? ORDER BY ${order} LIMIT 1`,
        [user, room],
      );
      const r = rows[0];
      return r === undefined ? undefined : { id: r.archive_id, at: new Date(Number(r.ts)) };
    };
    const start = await edge("ts, seq");
    const end = await edge("ts DESC, seq DESC");
    return start && end ? { start, end } : {};
  }

  async enforceRetention(policy: RetentionPolicy): Promise<number> {
    await this.#flush();
    let deleted = 0;
    if (policy.maxAgeMs !== undefined) {
      const cutoff = this.#now() - policy.maxAgeMs;
      for (;;) {
        const n = await this.#db.run(
          `DELETE FROM ${this.#t} WHERE seq IN (SELECT seq FROM ${this.#t} WHERE ts < ? LIMIT ?)`,
          [cutoff, DELETE_BATCH],
        );
        deleted += n;
        if (n < DELETE_BATCH) break;
      }
    }
    if (policy.maxPerRoom !== undefined) {
      const keep = Math.max(0, Math.floor(policy.maxPerRoom));
      const over = await this.#db.all<{ user_jid: string; room: string }>(
        `SELECT user_jid, room FROM ${this.#t} GROUP BY user_jid, room HAVING COUNT(*) > ?`,
        [keep],
      );
      for (const { user_jid: user, room } of over) {
        if (keep === 0) {
          deleted += await this.#db.run(`DELETE FROM ${this.#t} WHERE user_jid = ? AND room = ?`, [user, room]);
          continue;
        }
        // The oldest message kept; everything before it goes.
        const rows = await this.#db.all<{ ts: number | string; seq: number | string }>(
          `SELECT ts, seq FROM ${this.#t} WHERE user_jid = ? AND room = ? ORDER BY ts DESC, seq DESC LIMIT 1 OFFSET ?`,
          [user, room, keep - 1],
        );
        const oldest = rows[0];
        if (oldest === undefined) continue;
        deleted += await this.#db.run(
          `DELETE FROM ${this.#t} WHERE user_jid = ? AND room = ? AND (ts, seq) < (?, ?)`,
          [user, room, Number(oldest.ts), Number(oldest.seq)],
        );
      }
    }
    return deleted;
  }

  async purgeUser(user: string, network?: string): Promise<void> {
    await this.#flush();
    if (network === undefined) await this.#db.run(`DELETE FROM ${this.#t} WHERE user_jid = ?`, [user]);
    else await this.#db.run(`DELETE FROM ${this.#t} WHERE user_jid = ? AND network = ?`, [user, network]);
  }

  async close(): Promise<void> {
    await this.#flush();
    await this.#db.close();
  }
}

/**
 * Opens (and creates if needed) the archive at `url`: `sqlite:<path>`,
 * `memory:` (private, gone at close) or `postgres://…`.
 */
export async function openArchive(options: ArchiveOptions): Promise<Archive> {
  const location = parseStoreUrl(options.url);
  let driver: SqlDriver;
  switch (location.kind) {
    case "sqlite":
      driver = openSqliteDriver(location.path);
      break;
    case "memory":
      driver = openSqliteDriver(":memory:");
      break;
    case "postgres":
      driver = await openPostgresDriver(location.url);
      break;
    case "redis":
      throw fail("not-acceptable", "Redis cannot hold the message archive: use sqlite:<path> or postgres://…");
  }
  const archive = new SqlArchive(driver, { now: options.now, countLimit: options.countLimit });
  try {
    await archive.init();
  } catch (cause) {
    await driver.close().catch(() => undefined);
    throw fail("unavailable", "Cannot open the message archive", { cause });
  }
  return archive;
}

/**
 * Where the archive goes for a given store URL: a SQLite store's archive is
 * a sibling file (`x.db` → `x.archive.db`), memory stays memory, Postgres
 * shares the store's database (own table), Redis gets `sqlite:estuary.archive.db`.
 */
export function defaultArchiveUrl(storeUrl: string): string {
  const location = parseStoreUrl(storeUrl);
  switch (location.kind) {
    case "memory":
      return "memory:";
    case "postgres":
      return location.url;
    case "redis":
      return "sqlite:estuary.archive.db";
    case "sqlite": {
      const path = location.path;
      const dot = path.lastIndexOf(".");
      const slash = path.lastIndexOf("/");
      return dot > slash + 1 ? `sqlite:${path.slice(0, dot)}.archive${path.slice(dot)}` : `sqlite:${path}.archive`;
    }
  }
}
