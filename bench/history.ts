/**
 * Archive query latency on the embedded SQLite backend: one room of N
 * messages (default 100 000) among a few other rooms and users, then 200 runs
 * each of a first page, a middle page (RSM after), the last page (empty RSM
 * before, what clients ask on opening a room) and a one-hour time range, with
 * RSM count and first index on as the MAM handler would use them. Not a test:
 * prints one JSON object (ms).
 *
 *   node_modules/.bin/node bench/history.ts [messages] [sqlite|postgres://…]
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ARCHIVE_TABLE, type ArchivedMessage, type ArchiveQuery, openArchive } from "../core/history/archive.ts";

const N = Number(process.argv[2] ?? 100_000);
const target = process.argv[3] ?? "sqlite";
const RUNS = 200;
const PAGE = 50;
const USER = "alice@example.org";
const ROOM = "#big%irc.example@irc.gw.example";
const START = Date.UTC(2024, 0, 1);
/** About 4 messages a minute, with bursts sharing a millisecond. */
const atOf = (i: number) => START + Math.floor(i / 2) * 30_000;

const dir = mkdtempSync(join(tmpdir(), "estuary-bench-history-"));
const path = join(dir, "archive.db");
const url = target === "sqlite" ? `sqlite:${path}` : target;

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round((sorted[i] ?? 0) * 1000) / 1000;
}

try {
  const archive = await openArchive({ url });
  const message = (i: number, room = ROOM, user = USER): ArchivedMessage => ({
    archiveId: `m${i}-${room.length}-${user.length}`,
    user,
    network: "irc",
    room,
    from: `nick${i % 40}`,
    at: new Date(atOf(i)),
    body: `message number ${i} with some ordinary length of text to look like chat`,
  });
  const fillStart = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await archive.append(message(i));
  // Neighbours in the same table, so the indexes are not one room's alone.
  for (let i = 0; i < N / 10; i++) {
    await archive.append(message(i, "#small%irc.example@irc.gw.example"));
    await archive.append(message(i, ROOM, "bob@example.org"));
  }
  const fillSeconds = Number(process.hrtime.bigint() - fillStart) / 1e9;
  if (target !== "sqlite") {
    // What autovacuum does soon after a bulk load (planner statistics, visibility map);
    // without it the first series would time autovacuum running alongside.
    const specifier = "pg";
    const { default: pg } = (await import(specifier)) as {
      default: { Client: new (o: { connectionString: string }) => { connect(): Promise<void>; query(s: string): Promise<unknown>; end(): Promise<void> } };
    };
    const client = new pg.Client({ connectionString: target });
    await client.connect();
    await client.query(`VACUUM ANALYZE ${ARCHIVE_TABLE}`);
    await client.end();
  }

  async function time(make: (run: number) => ArchiveQuery, expectCount: (n: number) => boolean) {
    const samples: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const q = make(run);
      const t0 = process.hrtime.bigint();
      const page = await archive.query(q);
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (!expectCount(page.messages.length)) throw new Error(`unexpected page size ${page.messages.length} for ${JSON.stringify(q)}`);
    }
    samples.sort((a, b) => a - b);
    return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
  }

  const base = { user: USER, room: ROOM, max: PAGE };
  const idAt = (i: number) => message(i).archiveId;
  const results = {
    firstPage: await time(() => base, (n) => n === PAGE),
    middlePageAfter: await time((run) => ({ ...base, after: idAt(Math.floor(N / 2) + run * 7) }), (n) => n === PAGE),
    lastPageBefore: await time(() => ({ ...base, before: true }), (n) => n === PAGE),
    timeRangeHour: await time((run) => {
      const start = atOf(Math.floor((N / RUNS) * run));
      return { ...base, start: new Date(start), end: new Date(start + 3_600_000) };
    }, (n) => n > 0),
    middlePageNoCount: await time((run) => ({ ...base, after: idAt(Math.floor(N / 2) + run * 7), count: false }), (n) => n === PAGE),
  };
  await archive.close();
  console.log(
    JSON.stringify(
      {
        node: process.version,
        backend: target === "sqlite" ? "sqlite" : "postgres",
        roomMessages: N,
        tableRows: N + 2 * Math.floor(N / 10),
        pageSize: PAGE,
        runsEach: RUNS,
        fillMessagesPerSecond: Math.round((N * 1.2) / fillSeconds),
        queryMs: results,
        fileBytes: target === "sqlite" ? statSync(path).size : undefined,
      },
      null,
      2,
    ),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
