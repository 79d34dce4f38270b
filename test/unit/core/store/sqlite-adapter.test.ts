import { mkdtempSync, rmSync, statSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Keyv } from "keyv";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { prefixUpperBound, SqliteAdapter } from "../../../../core/store/sqlite-adapter.ts";

let dir: string;
const open: SqliteAdapter[] = [];

function adapter(options: { path?: string; now?: () => number; sweepIntervalMs?: number } = {}): SqliteAdapter {
  const a = new SqliteAdapter({ path: options.path ?? join(dir, "kv.db"), sweepIntervalMs: 0, ...options });
  open.push(a);
  return a;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "estuary-sqlite-"));
});

afterEach(async () => {
  for (const a of open.splice(0)) await a.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe("SqliteAdapter", () => {
  it("gets, sets, overwrites and deletes raw values", async () => {
    const a = adapter();
    expect(await a.get("k")).toBeUndefined();
    await a.set("k", "one");
    expect(await a.get("k")).toBe("one");
    await a.set("k", "two");
    expect(await a.get("k")).toBe("two");
    expect(await a.has("k")).toBe(true);
    expect(await a.delete("k")).toBe(true);
    expect(await a.delete("k")).toBe(false);
    expect(await a.get("k")).toBeUndefined();
    expect(await a.has("k")).toBe(false);
  });

  it("handles many keys at once", async () => {
    const a = adapter();
    await a.setMany([
      { key: "a", value: "1" },
      { key: "b", value: "2" },
    ]);
    expect(await a.getMany(["a", "x", "b"])).toEqual(["1", undefined, "2"]);
    expect(await a.hasMany(["a", "x"])).toEqual([true, false]);
    expect(await a.deleteMany(["a", "b", "x"])).toBe(true);
    expect(await a.getMany(["a", "b"])).toEqual([undefined, undefined]);
    expect(await a.deleteMany(["a"])).toBe(false);
  });

  it("treats expired rows as absent, using the injected clock", async () => {
    let now = 1_000_000;
    const a = adapter({ now: () => now });
    await a.set("short", "v", 100);
    await a.set("forever", "w");
    now += 99;
    expect(await a.get("short")).toBe("v");
    now += 1;
    expect(await a.get("short")).toBeUndefined();
    expect(await a.has("short")).toBe(false);
    expect(await a.get("forever")).toBe("w");
    // Overwriting without a TTL makes the key permanent again.
    await a.set("short", "again", 10);
    await a.set("short", "kept");
    now += 1_000_000;
    expect(await a.get("short")).toBe("kept");
  });

  it("sweeps expired rows and leaves live ones", async () => {
    let now = 5_000;
    const a = adapter({ now: () => now });
    await a.setMany(Array.from({ length: 2500 }, (_, i) => ({ key: `e${i}`, value: "x", ttl: 10 })));
    await a.set("live", "y", 1_000);
    await a.set("permanent", "z");
    now += 10;
    expect(a.sweep()).toBe(2500);
    expect(a.sweep()).toBe(0);
    expect(await a.get("live")).toBe("y");
    expect(await a.get("permanent")).toBe("z");
  });

  it("sweeps on its own timer", async () => {
    let now = 0;
    const path = join(dir, "timer.db");
    const a = adapter({ path, now: () => now, sweepIntervalMs: 5 });
    await a.set("gone", "x", 1);
    await a.set("stays", "y");
    now = 10;
    // Count rows through a second connection: reading through the adapter would delete the row itself.
    const spy = new DatabaseSync(path, { readOnly: true });
    try {
      const count = () => (spy.prepare("SELECT count(*) AS n FROM kv").get() as { n: number }).n;
      expect(count()).toBe(2);
      const deadline = Date.now() + 5_000;
      while (count() !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(count()).toBe(1);
    } finally {
      spy.close();
    }
    expect(await a.get("stays")).toBe("y");
  });

  it("persists across close and reopen", async () => {
    const path = join(dir, "persist.db");
    const a = adapter({ path });
    await a.set("k", "v");
    await a.disconnect();
    const b = adapter({ path });
    expect(await b.get("k")).toBe("v");
  });

  it("creates the database and its WAL files owner-only (0600)", async () => {
    const path = join(dir, "secret.db");
    const a = adapter({ path });
    await a.set("k", "v");
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      expect(existsSync(file), file).toBe(true);
      expect(statSync(file).mode & 0o777, file).toBe(0o600);
    }
  });

  it("lists a namespace's keys through keyv's iterator, and only those", async () => {
    const a = adapter();
    const users = new Keyv({ store: a, namespace: "users" });
    // A second keyv on its own adapter: keyv writes its namespace onto the adapter it is given.
    const other = new Keyv({ store: adapter({ path: join(dir, "kv.db") }), namespace: "usersx" });
    for (let i = 0; i < 600; i++) await users.set(`u${String(i).padStart(3, "0")}`, i);
    await other.set("intruder", -1);
    expect(users.iterator).toBeTypeOf("function");
    const seen: [string, unknown][] = [];
    for await (const [k, v] of (users.iterator as NonNullable<typeof users.iterator>)(undefined)) seen.push([k, v]);
    expect(seen).toHaveLength(600);
    expect(seen[0]).toEqual(["u000", 0]);
    expect(seen.at(-1)).toEqual(["u599", 599]);
    expect(seen.map(([k]) => k)).not.toContain("intruder");
  });

  it("iterates raw pairs of a namespace and skips expired ones", async () => {
    let now = 0;
    const a = adapter({ now: () => now });
    await a.set("ns:a", "1");
    await a.set("ns:b", "2", 5);
    await a.set("nt:c", "3");
    await a.set("n", "4");
    now = 10;
    const pairs: unknown[] = [];
    for await (const pair of a.iterator("ns")) pairs.push(pair);
    expect(pairs).toEqual([["ns:a", "1"]]);
    const all: unknown[] = [];
    for await (const pair of a.iterator()) all.push(pair[0]);
    expect(all).toEqual(["n", "ns:a", "nt:c"]);
  });

  it("clears only its namespace when keyv set one, everything otherwise", async () => {
    const a = adapter();
    await a.set("ns:a", "1");
    await a.set("other:b", "2");
    a.namespace = "ns";
    await a.clear();
    expect(await a.get("ns:a")).toBeUndefined();
    expect(await a.get("other:b")).toBe("2");
    a.namespace = undefined;
    await a.clear();
    expect(await a.get("other:b")).toBeUndefined();
  });

  it("deletes by prefix without touching neighbours", async () => {
    const a = adapter();
    for (const k of ["p:1", "p:2", "p:", "p;", "p", "o:9", "p:\u{10ffff}"]) await a.set(k, "x");
    expect(a.deletePrefix("p:")).toBe(4);
    for (const k of ["p;", "p", "o:9"]) expect(await a.get(k), k).toBe("x");
  });
});

describe("prefixUpperBound", () => {
  it("bumps the last code point, skipping surrogates and carrying past U+10FFFF", () => {
    expect(prefixUpperBound("ab:")).toBe("ab;");
    expect(prefixUpperBound("a\ud7ff")).toBe("a\ue000");
    expect(prefixUpperBound("a\u{10ffff}")).toBe("b");
    expect(prefixUpperBound("")).toBeUndefined();
  });
});
