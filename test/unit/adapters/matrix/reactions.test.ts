/**
 * The Matrix adapter's reaction log: what a reaction annotated survives a
 * restart (a new log on the same store), stays bounded, and ages out.
 */
import { describe, expect, it } from "vitest";
import { BUCKET_CAP, BUCKETS, ReactionLog, TTL_MS } from "../../../../adapters/matrix/reactions.ts";
import type { ScopedStore } from "../../../../core/adapter.ts";

/** A ScopedStore that records names and the TTLs they were written with. */
function store(): ScopedStore & { data: Map<string, unknown>; ttls: Map<string, number | undefined> } {
  const data = new Map<string, unknown>();
  const ttls = new Map<string, number | undefined>();
  return {
    data,
    ttls,
    async get<T>(k: string) {
      return structuredClone(data.get(k)) as T | undefined;
    },
    async set(k, v, ttl) {
      data.set(k, structuredClone(v));
      ttls.set(k, ttl);
    },
    async delete(k) {
      data.delete(k);
    },
  };
}

describe("ReactionLog", () => {
  it("a reaction seen before a restart is found by the next process, once", async () => {
    const s = store();
    await new ReactionLog(s).add("$r1", { target: "$m", sender: "@bob:hs", key: "👍" });
    const restarted = new ReactionLog(s);
    expect(await restarted.take("$r1")).toEqual({ target: "$m", sender: "@bob:hs", key: "👍" });
    expect(await restarted.take("$r1")).toBeUndefined();
    expect(await new ReactionLog(s).take("$r1")).toBeUndefined();
  });

  it("an event that was no reaction is unknown", async () => {
    expect(await new ReactionLog(store()).take("$message")).toBeUndefined();
  });

  it("stays within BUCKETS store keys of BUCKET_CAP entries each, written with a TTL", async () => {
    const s = store();
    const log = new ReactionLog(s);
    const n = BUCKETS * BUCKET_CAP + 500;
    await Promise.all(Array.from({ length: n }, (_, i) => log.add(`$r${i}`, { target: "$m", sender: "@bob:hs", key: String(i) })));
    expect(s.data.size).toBeLessThanOrEqual(BUCKETS);
    for (const v of s.data.values()) expect((v as unknown[]).length).toBeLessThanOrEqual(BUCKET_CAP);
    expect([...s.ttls.values()].every((t) => t === TTL_MS)).toBe(true);
    // The newest are kept (a restarted process finds them); the oldest went first.
    expect(await new ReactionLog(s).take(`$r${n - 1}`)).toMatchObject({ key: String(n - 1) });
    const survivors = (await Promise.all(Array.from({ length: 200 }, (_, i) => new ReactionLog(s).take(`$r${i}`)))).filter(Boolean);
    expect(survivors.length).toBeLessThan(200);
  });

  it("entries older than the TTL are forgotten even while their bucket lives on", async () => {
    const s = store();
    let now = 1_000_000;
    await new ReactionLog(s, () => now).add("$old", { target: "$m", sender: "@bob:hs", key: "👍" });
    now += TTL_MS + 1;
    expect(await new ReactionLog(s, () => now).take("$old")).toBeUndefined();
  });
});
