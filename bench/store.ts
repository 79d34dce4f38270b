/**
 * Store throughput on the embedded SQLite backend with 100k entries: raw keyv
 * set/get through our node:sqlite adapter, and the id map's link/lookup path
 * (the per-message hot path). Not a test: prints one JSON object.
 *
 *   node_modules/.bin/node bench/store.ts [entries]
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBackend } from "../core/store/backend.ts";
import { openStore } from "../core/store/index.ts";

const N = Number(process.argv[2] ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), "estuary-bench-"));

async function timed(count: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await fn(i);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return Math.round(count / seconds);
}

try {
  const kvPath = join(dir, "kv.db");
  const backend = createBackend(`sqlite:${kvPath}`, { sweepIntervalMs: 0 });
  const value = { cursor: "x".repeat(64), n: 1 };
  const kvSet = await timed(N, (i) => backend.keyv.set(`estuary:bench:${i}`, value));
  const kvGet = await timed(N, (i) => backend.keyv.get(`estuary:bench:${(i * 7919) % N}`));
  await backend.close();

  const store = await openStore({ url: `sqlite:${join(dir, "store.db")}`, encryptionKey: randomBytes(32).toString("hex"), sweepIntervalMs: 0 });
  const users = 100;
  const scope = (i: number) => `user${i % users}@example.org\nirc\n#chan${i % 7}`;
  const link = await timed(N, (i) => store.idmap.link(scope(i), `legacy-${i}`, [`xmpp-${i}-${randomBytes(4).toString("hex")}`]));
  const xmppFor = await timed(N, (i) => store.idmap.xmppFor(scope((i * 7919) % N), `legacy-${(i * 7919) % N}`));
  const legacyMiss = await timed(N, (i) => store.idmap.legacyFor(scope(i), `absent-${i}`));
  await store.close();

  console.log(
    JSON.stringify(
      {
        node: process.version,
        entries: N,
        opsPerSecond: { set: kvSet, get: kvGet, idmapLink: link, idmapXmppFor: xmppFor, idmapLegacyForMiss: legacyMiss },
        fileBytes: { kv: statSync(kvPath).size, store: statSync(join(dir, "store.db")).size },
      },
      null,
      2,
    ),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
