import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  ARCHIVE_TABLE,
  type Archive,
  type ArchivedMessage,
  type ArchiveQuery,
  defaultArchiveUrl,
  HISTORY_DEFAULT_STANZAS,
  openArchive,
} from "../../../../core/history/archive.ts";
import { numberPlaceholders } from "../../../../core/history/postgres-driver.ts";
import { EstuaryError } from "../../../../core/errors.ts";
import { type PostgresHandle, startPostgres } from "../../../support/postgres.ts";

const USER = "alice@example.org";
const ROOM = "#chan%irc.example@irc.gw.example";
const BASE = Date.UTC(2024, 0, 1, 12, 0, 0);

let dir: string;
let clock = BASE;
const opened: Archive[] = [];
let pg: PostgresHandle | undefined;

function msg(i: number, over: Partial<ArchivedMessage> = {}): ArchivedMessage {
  return {
    archiveId: `id-${i}`,
    user: USER,
    network: "irc",
    room: ROOM,
    from: `nick${i % 3}`,
    at: new Date(BASE + i * 60_000),
    body: `message ${i}`,
    ...over,
  };
}

async function fill(a: Archive, n: number, over: (i: number) => Partial<ArchivedMessage> = () => ({})): Promise<void> {
  for (let i = 0; i < n; i++) await a.append(msg(i, over(i)));
}

function ids(messages: ArchivedMessage[]): string[] {
  return messages.map((m) => m.archiveId);
}

function range(from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, k) => `id-${from + k}`);
}

async function rejects(p: Promise<unknown>, kind: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EstuaryError);
  expect((err as EstuaryError).kind).toBe(kind);
}

/** Drops the archive table of the shared Postgres database, so each test starts empty. */
async function dropPostgresTable(url: string): Promise<void> {
  const specifier = "pg";
  const { default: pgModule } = (await import(specifier)) as {
    default: { Client: new (o: { connectionString: string }) => { connect(): Promise<void>; query(s: string): Promise<unknown>; end(): Promise<void> } };
  };
  const client = new pgModule.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP TABLE IF EXISTS ${ARCHIVE_TABLE}`);
  await client.end();
}

const backends = [
  { name: "sqlite", persistent: true, url: () => `sqlite:${join(dir, "archive.db")}` },
  { name: "memory", persistent: false, url: () => "memory:" },
  { name: "postgres", persistent: true, url: () => (pg as PostgresHandle).url },
];

beforeAll(async () => {
  pg = await startPostgres();
});

afterAll(async () => {
  await pg?.stop();
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "estuary-archive-"));
  clock = BASE;
});

afterEach(async () => {
  for (const a of opened.splice(0)) await a.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(backends)("archive on $name", ({ name, persistent, url }) => {
  async function open(countLimit?: number): Promise<Archive> {
    const a = await openArchive({ url: url(), now: () => clock, countLimit });
    opened.push(a);
    return a;
  }

  beforeEach(async () => {
    if (name === "postgres") await dropPostgresTable((pg as PostgresHandle).url);
  });

  async function pageAll(a: Archive, q: Omit<ArchiveQuery, "max">, max: number, direction: "forward" | "backward") {
    const seen: string[][] = [];
    let cursor: string | undefined;
    for (let guard = 0; guard < 10_000; guard++) {
      const page = await a.query({
        ...q,
        max,
        ...(direction === "forward" ? { after: cursor } : { before: cursor ?? true }),
      });
      seen.push(ids(page.messages));
      // first/last are the page's ends, and index is the position of first in the whole set.
      expect(page.first).toBe(page.messages[0]?.archiveId);
      expect(page.last).toBe(page.messages.at(-1)?.archiveId);
      if (page.complete) return { pages: seen, last: page };
      expect(page.messages).toHaveLength(max);
      cursor = direction === "forward" ? page.last : page.first;
    }
    throw new Error("paging never completed");
  }

  it("queries by inclusive time range, oldest first", async () => {
    const a = await open();
    await fill(a, 10);
    const page = await a.query({ user: USER, room: ROOM, start: new Date(BASE + 3 * 60_000), end: new Date(BASE + 6 * 60_000), max: 50 });
    expect(ids(page.messages)).toEqual(range(3, 7));
    expect(page).toMatchObject({ complete: true, count: 4, index: 0, first: "id-3", last: "id-6" });
    const m = page.messages[0] as ArchivedMessage;
    expect(m).toEqual(msg(3));
  });

  it("finds nothing, completely, between a start after the end (XEP-0313 §4.1.2)", async () => {
    const a = await open();
    await fill(a, 10);
    const page = await a.query({ user: USER, room: ROOM, start: new Date(BASE + 6 * 60_000), end: new Date(BASE + 3 * 60_000), max: 50 });
    expect(page).toEqual({ messages: [], complete: true, count: 0 });
    const last = await a.query({ user: USER, room: ROOM, start: new Date(BASE + 6 * 60_000), end: new Date(BASE + 3 * 60_000), before: true, max: 5 });
    expect(last).toEqual({ messages: [], complete: true, count: 0 });
  });

  it("orders by the message's time, then by arrival for the same millisecond", async () => {
    const a = await open();
    const at = new Date(BASE);
    await a.append(msg(1, { at: new Date(BASE + 5000) }));
    for (const i of [7, 3, 9, 2]) await a.append(msg(i, { at }));
    // Backlog that arrives late with an older timestamp sorts by its time.
    await a.append(msg(0, { at: new Date(BASE - 5000) }));
    const page = await a.query({ user: USER, room: ROOM, max: 50 });
    expect(ids(page.messages)).toEqual(["id-0", "id-7", "id-3", "id-9", "id-2", "id-1"]);
  });

  it("filters by occupant nick and by real JID (bare matches full)", async () => {
    const a = await open();
    await fill(a, 12, (i) => (i % 4 === 0 ? { fromJid: `bob@example.net/phone${i}` } : i % 4 === 1 ? { fromJid: "bob@example.net" } : {}));
    const byNick = await a.query({ user: USER, room: ROOM, with: "nick1", max: 50 });
    expect(ids(byNick.messages)).toEqual(["id-1", "id-4", "id-7", "id-10"]);
    expect(byNick.count).toBe(4);
    const byJid = await a.query({ user: USER, room: ROOM, withJid: "bob@example.net", max: 50 });
    expect(ids(byJid.messages)).toEqual(["id-0", "id-1", "id-4", "id-5", "id-8", "id-9"]);
    const full = await a.query({ user: USER, room: ROOM, withJid: "bob@example.net/phone4", max: 50 });
    expect(ids(full.messages)).toEqual(["id-4"]);
    // LIKE wildcards in the JID are literal.
    const wild = await a.query({ user: USER, room: ROOM, withJid: "bob@example.ne_", max: 50 });
    expect(wild.messages).toEqual([]);
  });

  it("pages forwards and backwards through 1000 messages with no gap or duplicate", async () => {
    const a = await open();
    // Three messages per millisecond: order within a millisecond is arrival order.
    await fill(a, 1000, (i) => ({ at: new Date(BASE + Math.floor(i / 3)), from: `n${i % 5}` }));
    const all = range(0, 1000);
    for (const max of [7, 50, 250]) {
      const fwd = await pageAll(a, { user: USER, room: ROOM }, max, "forward");
      expect(fwd.pages.flat()).toEqual(all);
      expect(fwd.pages).toHaveLength(Math.ceil(1000 / max));
      const back = await pageAll(a, { user: USER, room: ROOM }, max, "backward");
      expect(back.pages.reverse().flat()).toEqual(all);
    }
    // Index and count on a middle page.
    const mid = await a.query({ user: USER, room: ROOM, after: "id-499", max: 10 });
    expect(ids(mid.messages)).toEqual(range(500, 510));
    expect(mid).toMatchObject({ complete: false, count: 1000, index: 500 });
    // Paging within a filter visits exactly the filtered set.
    const only = await pageAll(a, { user: USER, room: ROOM, with: "n2" }, 13, "forward");
    expect(only.pages.flat()).toEqual(all.filter((_, i) => i % 5 === 2));
  });

  it("says complete exactly when the page reaches the end in its direction", async () => {
    const a = await open();
    await fill(a, 10);
    const q = { user: USER, room: ROOM };
    expect((await a.query({ ...q, max: 5 })).complete).toBe(false);
    expect((await a.query({ ...q, max: 10 })).complete).toBe(true);
    expect((await a.query({ ...q, max: 5, after: "id-4" })).complete).toBe(true);
    expect((await a.query({ ...q, max: 5, after: "id-3" })).complete).toBe(false);
    const afterLast = await a.query({ ...q, max: 5, after: "id-9" });
    expect(afterLast).toMatchObject({ messages: [], complete: true, count: 10 });
    expect(afterLast.first).toBeUndefined();
    // Backwards: complete when the oldest message is in the page.
    expect((await a.query({ ...q, max: 5, before: "id-5" })).complete).toBe(true);
    expect((await a.query({ ...q, max: 5, before: "id-6" })).complete).toBe(false);
    expect((await a.query({ ...q, max: 5, before: "id-0" })).messages).toEqual([]);
    expect((await a.query({ ...q, max: 5, before: "id-0" })).complete).toBe(true);
    // An empty archive is complete at once.
    expect(await a.query({ user: "nobody@x", room: ROOM, max: 5 })).toEqual({ messages: [], complete: true, count: 0 });
  });

  it("returns the last page for an empty <before/>, oldest first", async () => {
    const a = await open();
    await fill(a, 30);
    const page = await a.query({ user: USER, room: ROOM, before: true, max: 8 });
    expect(ids(page.messages)).toEqual(range(22, 30));
    expect(page).toMatchObject({ complete: false, count: 30, index: 22, first: "id-22", last: "id-29" });
    const whole = await a.query({ user: USER, room: ROOM, before: true, max: 30 });
    expect(whole.complete).toBe(true);
    expect(whole.index).toBe(0);
  });

  it("bounds the set with after-id/before-id, and pages within it", async () => {
    const a = await open();
    await fill(a, 30);
    const q = { user: USER, room: ROOM, afterId: "id-9", beforeId: "id-20" };
    const all = await a.query({ ...q, max: 50 });
    expect(ids(all.messages)).toEqual(range(10, 20));
    expect(all).toMatchObject({ complete: true, count: 10 });
    const last = await a.query({ ...q, before: true, max: 4 });
    expect(ids(last.messages)).toEqual(range(16, 20));
    expect(last).toMatchObject({ complete: false, index: 6, count: 10 });
    const next = await a.query({ ...q, after: "id-15", max: 4 });
    expect(ids(next.messages)).toEqual(range(16, 20));
    expect(next.complete).toBe(true);
  });

  it("fetches by ids in archive order, and rejects unknown ids as not-found", async () => {
    const a = await open();
    await fill(a, 10);
    const page = await a.query({ user: USER, room: ROOM, ids: ["id-7", "id-2", "id-7"], max: 50 });
    expect(ids(page.messages)).toEqual(["id-2", "id-7"]);
    expect(page.complete).toBe(true);
    await rejects(a.query({ user: USER, room: ROOM, ids: ["id-2", "nope"], max: 50 }), "not-found");
    await rejects(a.query({ user: USER, room: ROOM, after: "nope", max: 50 }), "not-found");
    await rejects(a.query({ user: USER, room: ROOM, before: "nope", max: 50 }), "not-found");
    await rejects(a.query({ user: USER, room: ROOM, afterId: "nope", max: 50 }), "not-found");
    // Another user's id is not in this user's archive.
    await a.append(msg(50, { user: "bob@example.org" }));
    await rejects(a.query({ user: USER, room: ROOM, ids: ["id-50"], max: 50 }), "not-found");
  });

  it("answers max=0 with the count only", async () => {
    const a = await open();
    await fill(a, 6);
    const page = await a.query({ user: USER, room: ROOM, max: 0 });
    expect(page).toEqual({ messages: [], complete: false, count: 6 });
    const noCount = await a.query({ user: USER, room: ROOM, max: 2, count: false });
    expect(noCount.count).toBeUndefined();
    expect(noCount.index).toBeUndefined();
    expect(ids(noCount.messages)).toEqual(range(0, 2));
  });

  it("leaves out count and index past the count limit, never the page", async () => {
    const a = await open(5);
    await fill(a, 8);
    const first = await a.query({ user: USER, room: ROOM, max: 3 });
    expect(first).toMatchObject({ complete: false, index: 0 });
    expect(first.count).toBeUndefined();
    const mid = await a.query({ user: USER, room: ROOM, after: "id-2", max: 3 });
    expect(ids(mid.messages)).toEqual(range(3, 6));
    expect(mid.count).toBeUndefined();
    expect(mid.index).toBeUndefined();
    // A filtered set under the limit is counted.
    const small = await a.query({ user: USER, room: ROOM, start: new Date(BASE + 4 * 60_000), after: "id-5", max: 1 });
    expect(small).toMatchObject({ count: 4, index: 2, complete: false });
  });

  it("reflects corrections and retractions", async () => {
    const a = await open();
    await fill(a, 3, () => ({ originId: "o" }));
    await a.correct(USER, ROOM, "id-1", "fixed text");
    await a.correct(USER, ROOM, "id-1", "fixed again");
    clock = BASE + 99_000;
    await a.retract(USER, ROOM, "id-2");
    await a.correct(USER, ROOM, "id-2", "too late");
    await a.correct(USER, ROOM, "unknown", "ignored");
    const [m0, m1, m2] = (await a.query({ user: USER, room: ROOM, max: 50 })).messages;
    expect(m0?.correctedBody).toBeUndefined();
    expect(m1).toMatchObject({ body: "message 1", correctedBody: "fixed again" });
    expect(m2).toMatchObject({ body: "", retracted: true, retractedAt: new Date(BASE + 99_000), originId: "o" });
    expect(m2?.correctedBody).toBeUndefined();
    // Retraction kept in place: the archive still pages over the tombstone.
    expect((await a.query({ user: USER, room: ROOM, max: 50 })).count).toBe(3);
  });

  it("ignores a second append of the same id, but not the same id for another user", async () => {
    const a = await open();
    await a.append(msg(1));
    await a.append(msg(1, { body: "duplicate" }));
    await a.append(msg(1, { user: "bob@example.org", body: "bob's copy" }));
    expect((await a.query({ user: USER, room: ROOM, max: 50 })).messages).toEqual([msg(1)]);
    expect((await a.query({ user: "bob@example.org", room: ROOM, max: 50 })).messages[0]?.body).toBe("bob's copy");
  });

  it("writes the appends of one turn in batches that every read and update waits for", async () => {
    const a = await open();
    // Not awaited, as core/events.ts does: 150 appends (more than one INSERT statement's rows),
    // one of them a duplicate id, then reads and updates at once.
    const appended = Array.from({ length: 150 }, (_, i) => a.append(msg(i)));
    const dup = a.append(msg(5, { body: "duplicate" }));
    const page = await a.query({ user: USER, room: ROOM, max: 200 });
    expect(ids(page.messages)).toEqual(range(0, 150));
    expect(page.messages[5]?.body).toBe("message 5");
    await Promise.all([...appended, dup]);
    void a.append(msg(150));
    expect(ids(await a.history({ user: USER, room: ROOM, maxStanzas: 2 }))).toEqual(["id-149", "id-150"]);
    void a.append(msg(151));
    await a.correct(USER, ROOM, "id-151", "fixed");
    void a.append(msg(152));
    await a.retract(USER, ROOM, "id-152");
    void a.append(msg(153));
    expect((await a.metadata(USER, ROOM)).end?.id).toBe("id-153");
    const last = (await a.query({ user: USER, room: ROOM, max: 3, before: true })).messages;
    expect(last.map((m) => [m.archiveId, m.correctedBody ?? null, m.retracted ?? false])).toEqual([
      ["id-151", "fixed", false],
      ["id-152", null, true],
      ["id-153", null, false],
    ]);
  });

  it("rejects only the append that could not be written, and writes the others", async () => {
    const a = await open();
    // One turn: a bad row (NOT NULL column) between good ones; only it fails.
    const before = a.append(msg(0));
    const bad = a.append(msg(1, { body: null as unknown as string }));
    const after = a.append(msg(2));
    await expect(bad).rejects.toThrow();
    await expect(Promise.all([before, after])).resolves.toBeDefined();
    await a.append(msg(3));
    expect(ids((await a.query({ user: USER, room: ROOM, max: 10 })).messages)).toEqual(["id-0", "id-2", "id-3"]);
  });

  it("writes pending appends before closing", async () => {
    const a = await open();
    const pending = a.append(msg(1));
    await a.close();
    opened.splice(opened.indexOf(a), 1);
    await expect(pending).resolves.toBeUndefined();
    const b = await open();
    const expected = persistent ? ["id-1"] : []; // memory: a new archive
    expect(ids((await b.query({ user: USER, room: ROOM, max: 10 })).messages)).toEqual(expected);
  });

  describe("join history", () => {
    async function seeded(): Promise<Archive> {
      const a = await open();
      // 40 messages one minute apart, the last one at BASE + 39 min; bodies "message N".
      await fill(a, 40);
      clock = BASE + 40 * 60_000;
      return a;
    }

    it("limits by maxstanzas, newest kept, oldest first", async () => {
      const a = await seeded();
      expect(ids(await a.history({ user: USER, room: ROOM, maxStanzas: 5 }))).toEqual(range(35, 40));
      expect(await a.history({ user: USER, room: ROOM, maxStanzas: 0 })).toEqual([]);
      // No limit asked: the room's default.
      expect(ids(await a.history({ user: USER, room: ROOM }))).toEqual(range(40 - HISTORY_DEFAULT_STANZAS, 40));
    });

    it("limits by maxchars", async () => {
      const a = await seeded();
      // "message 39".length = 10: 35 chars fit three messages, not four.
      expect(ids(await a.history({ user: USER, room: ROOM, maxChars: 35 }))).toEqual(range(37, 40));
      expect(ids(await a.history({ user: USER, room: ROOM, maxChars: 30 }))).toEqual(range(37, 40));
      expect(ids(await a.history({ user: USER, room: ROOM, maxChars: 29 }))).toEqual(range(38, 40));
      expect(await a.history({ user: USER, room: ROOM, maxChars: 0 })).toEqual([]);
      // A caller-supplied measure (whole stanzas, §7.2.14).
      expect(ids(await a.history({ user: USER, room: ROOM, maxChars: 100, measure: () => 50 }))).toEqual(range(38, 40));
    });

    it("limits by seconds and by since, all limits together", async () => {
      const a = await seeded();
      // The last 5 minutes: messages at 35..39 minutes (clock at 40).
      expect(ids(await a.history({ user: USER, room: ROOM, seconds: 300 }))).toEqual(range(35, 40));
      expect(ids(await a.history({ user: USER, room: ROOM, since: new Date(BASE + 30 * 60_000) }))).toEqual(range(30, 40));
      // Every limit applies: since 30 min but only 3 stanzas; since 10 min and seconds 120.
      expect(ids(await a.history({ user: USER, room: ROOM, since: new Date(BASE + 30 * 60_000), maxStanzas: 3 }))).toEqual(range(37, 40));
      expect(ids(await a.history({ user: USER, room: ROOM, since: new Date(BASE + 10 * 60_000), seconds: 120 }))).toEqual(range(38, 40));
    });

    it("leaves out retracted messages and shows corrections", async () => {
      const a = await seeded();
      await a.retract(USER, ROOM, "id-38");
      await a.correct(USER, ROOM, "id-39", "edited");
      const h = await a.history({ user: USER, room: ROOM, maxStanzas: 3 });
      expect(ids(h)).toEqual(["id-36", "id-37", "id-39"]);
      expect(h[2]?.correctedBody).toBe("edited");
    });
  });

  it("deletes by age and by count per room, and nothing else", async () => {
    const a = await open();
    const other = "#other%irc.example@irc.gw.example";
    await fill(a, 20); // BASE + 0..19 min
    for (let i = 0; i < 5; i++) await a.append(msg(100 + i, { room: other, at: new Date(BASE + (10 + i) * 60_000) }));
    clock = BASE + 30 * 60_000;
    // Older than 25 minutes: minutes 0..4 of ROOM; `other` starts at minute 10.
    expect(await a.enforceRetention({ maxAgeMs: 25 * 60_000 })).toBe(5);
    expect(ids((await a.query({ user: USER, room: ROOM, max: 50 })).messages)).toEqual(range(5, 20));
    expect((await a.query({ user: USER, room: other, max: 50 })).count).toBe(5);
    // Keep the newest 10 of each room: ROOM loses 5 more, `other` (5) nothing.
    expect(await a.enforceRetention({ maxPerRoom: 10 })).toBe(5);
    expect(ids((await a.query({ user: USER, room: ROOM, max: 50 })).messages)).toEqual(range(10, 20));
    expect((await a.query({ user: USER, room: other, max: 50 })).count).toBe(5);
    // Idempotent.
    expect(await a.enforceRetention({ maxAgeMs: 25 * 60_000, maxPerRoom: 10 })).toBe(0);
    // Same-millisecond ties: the count is exact.
    const tie = "#tie%irc.example@irc.gw.example";
    for (let i = 0; i < 6; i++) await a.append(msg(200 + i, { room: tie, at: new Date(BASE + 29 * 60_000) }));
    // ROOM 10 → 4, other 5 → 4, tie 6 → 4.
    expect(await a.enforceRetention({ maxPerRoom: 4 })).toBe(6 + 1 + 2);
    expect(ids((await a.query({ user: USER, room: tie, max: 50 })).messages)).toEqual(["id-202", "id-203", "id-204", "id-205"]);
  });

  it("purges one user, on one network or all", async () => {
    const a = await open();
    await fill(a, 3);
    await fill(a, 3, () => ({ network: "matrix", room: "!r%m@matrix.gw.example" }));
    await fill(a, 3, () => ({ user: "bob@example.org" }));
    await a.purgeUser(USER, "matrix");
    expect((await a.query({ user: USER, room: ROOM, max: 50 })).count).toBe(3);
    expect((await a.query({ user: USER, room: "!r%m@matrix.gw.example", max: 50 })).count).toBe(0);
    await a.purgeUser(USER);
    expect((await a.query({ user: USER, room: ROOM, max: 50 })).count).toBe(0);
    expect((await a.query({ user: "bob@example.org", room: ROOM, max: 50 })).count).toBe(3);
  });

  it("reports the archive's first and last message", async () => {
    const a = await open();
    expect(await a.metadata(USER, ROOM)).toEqual({});
    await fill(a, 4);
    expect(await a.metadata(USER, ROOM)).toEqual({
      start: { id: "id-0", at: new Date(BASE) },
      end: { id: "id-3", at: new Date(BASE + 3 * 60_000) },
    });
  });

  if (persistent) {
    it("keeps its data across a reopen", async () => {
      const a = await open();
      await fill(a, 5);
      await a.retract(USER, ROOM, "id-4");
      await a.close();
      const b = await open();
      const page = await b.query({ user: USER, room: ROOM, max: 50 });
      expect(ids(page.messages)).toEqual(range(0, 5));
      expect(page.messages[4]?.retracted).toBe(true);
      // The sequence keeps growing: a new same-millisecond message sorts after the old ones.
      await b.append(msg(9, { at: new Date(BASE) }));
      expect(ids((await b.query({ user: USER, room: ROOM, max: 2 })).messages)).toEqual(["id-0", "id-9"]);
    });
  }
});

describe("archive files and URLs", () => {
  it("creates the SQLite file owner-only", async () => {
    const path = join(dir, "private.db");
    const a = await openArchive({ url: `sqlite:${path}` });
    opened.push(a);
    await a.append(msg(1));
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it("refuses Redis and unknown URLs", async () => {
    await rejects(openArchive({ url: "redis://127.0.0.1:6379" }), "not-acceptable");
    await rejects(openArchive({ url: "mysql://x" }), "not-acceptable");
  });

  it("derives the archive URL from the store URL", () => {
    expect(defaultArchiveUrl("sqlite:/var/lib/estuary/estuary.db")).toBe("sqlite:/var/lib/estuary/estuary.archive.db");
    expect(defaultArchiveUrl("sqlite:data/state")).toBe("sqlite:data/state.archive");
    expect(defaultArchiveUrl("sqlite:/a.b/state")).toBe("sqlite:/a.b/state.archive");
    expect(defaultArchiveUrl("memory:")).toBe("memory:");
    expect(defaultArchiveUrl("postgres://u@h/db")).toBe("postgres://u@h/db");
    expect(defaultArchiveUrl("redis://h")).toBe("sqlite:estuary.archive.db");
  });

  it("numbers placeholders for Postgres", () => {
    expect(numberPlaceholders("a = ? AND (b, c) > (?, ?) LIMIT ?")).toBe("a = $1 AND (b, c) > ($2, $3) LIMIT $4");
  });
});
