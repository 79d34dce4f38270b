/**
 * The state store (core/store) on real Redis and PostgreSQL servers: the same
 * behaviours test/unit/core/store/index.test.ts checks on SQLite, plus what
 * only the real backends can show: what actually lands in the database
 * (secrets sealed, purged keys gone or expiring), Redis' own TTLs, Postgres'
 * prefix deletion and expiry sweep, and surviving a close and reopen.
 *
 * One server of each kind for the whole file; every test starts from an empty
 * keyspace (FLUSHALL / DROP TABLE) and opens its own store.
 */
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { createClient } from "@keyv/redis";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { EstuaryError } from "../../core/errors.ts";
import { POSTGRES_TABLE } from "../../core/store/backend.ts";
import { openStore, type Store, type StoreOptions } from "../../core/store/index.ts";
import { startPostgres, type PostgresHandle } from "../support/postgres.ts";
import { startRedis, type RedisHandle } from "../support/redis.ts";
import { waitFor } from "../support/wait.ts";

const KEY = randomBytes(32).toString("base64");

/** Direct access to what the backend holds, bypassing keyv and the store. */
interface RawAccess {
  /** Every stored key with its raw (serialized) value. */
  entries(): Promise<Map<string, string>>;
  /** Empties the keyspace before a test. */
  reset(): Promise<void>;
}

/** The slice of `pg` (no type declarations installed) these tests use. */
interface PgClient {
  connect(): Promise<void>;
  query(sql: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
}
const pg = createRequire(import.meta.url)("pg") as { Client: new (options: { connectionString: string }) => PgClient };

async function withPg<T>(url: string, fn: (c: PgClient) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const rawRedis = (url: string) => createClient({ url });

async function withRedis<T>(url: string, fn: (c: ReturnType<typeof rawRedis>) => Promise<T>): Promise<T> {
  const client = rawRedis(url);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** Remaining TTL in ms of a Redis key (-1: none, -2: no such key). */
function redisPttl(url: string, key: string): Promise<number> {
  return withRedis(url, (c) => c.pTTL(key));
}

let redis: RedisHandle;
let postgres: PostgresHandle;

beforeAll(async () => {
  [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
});

afterAll(async () => {
  await Promise.all([redis?.stop(), postgres?.stop()]);
});

const backends: { name: "redis" | "postgres"; url: () => string; raw: () => RawAccess }[] = [
  {
    name: "redis",
    url: () => redis.url,
    raw: () => ({
      entries: () =>
        withRedis(redis.url, async (c) => {
          const out = new Map<string, string>();
          for (const k of await c.keys("*")) out.set(k, (await c.get(k)) ?? "");
          return out;
        }),
      reset: () => withRedis(redis.url, async (c) => void (await c.flushAll())),
    }),
  },
  {
    name: "postgres",
    url: () => postgres.url,
    raw: () => ({
      entries: () =>
        withPg(postgres.url, async (c) => {
          const { rows } = await c.query(`SELECT key, value FROM ${POSTGRES_TABLE}`);
          return new Map(rows.map((r) => [String(r.key), String(r.value)]));
        }),
      reset: () => withPg(postgres.url, async (c) => void (await c.query(`DROP TABLE IF EXISTS ${POSTGRES_TABLE}`))),
    }),
  },
];

const opened: Store[] = [];

/** `null`: no encryption key at all. */
async function open(url: string, encryptionKey: string | null = KEY, extra: Partial<StoreOptions> = {}): Promise<Store> {
  const store = await openStore({ url, encryptionKey: encryptionKey ?? undefined, ...extra });
  opened.push(store);
  return store;
}

afterEach(async () => {
  vi.useRealTimers();
  for (const s of opened.splice(0)) await s.close();
});

describe.each(backends)("store on $name", ({ name, url, raw }) => {
  beforeEach(async () => {
    await raw().reset();
  });

  it("opens as the right kind", async () => {
    const s = await open(url());
    expect(s.kind).toBe(name);
  });

  it("stores, lists and deletes registrations", async () => {
    const s = await open(url());
    expect(await s.registrations.get("alice@x", "irc")).toBeUndefined();
    await s.registrations.set("alice@x", "irc", { nick: "al", password: "pw1" }, ["password"]);
    await s.registrations.set("bob@x", "irc", { nick: "bo" }, []);
    await s.registrations.set("alice@x", "telegram", { token: "t" }, ["token"]);
    expect(await s.registrations.get("alice@x", "irc")).toEqual({ nick: "al", password: "pw1" });
    expect(await s.registrations.get("alice@x", "telegram")).toEqual({ token: "t" });
    expect(await s.registrations.list("irc")).toEqual([
      { user: "alice@x", network: "irc" },
      { user: "bob@x", network: "irc" },
    ]);
    expect(await s.registrations.list()).toHaveLength(3);
    // Re-registering replaces values and does not duplicate the index entry.
    await s.registrations.set("alice@x", "irc", { nick: "al2" }, ["password"]);
    expect(await s.registrations.get("alice@x", "irc")).toEqual({ nick: "al2" });
    expect(await s.registrations.list("irc")).toHaveLength(2);
    await s.registrations.delete("alice@x", "telegram");
    expect(await s.registrations.get("alice@x", "telegram")).toBeUndefined();
    expect(await s.registrations.list("telegram")).toEqual([]);
    expect(await s.registrations.list()).toHaveLength(2);
  });

  it("seals secret fields in the database and opens them on get", async () => {
    const s = await open(url());
    const secret = "Pl41nt3xt-S3cr3t-Value";
    const visible = "Visible-Nick-Value";
    await s.registrations.set("alice@x", "irc", { nick: visible, password: secret }, ["password"]);
    const stored = [...(await raw().entries())].map(([k, v]) => `${k}=${v}`).join("\n");
    // The non-secret field is stored in clear: the raw read does see the record.
    expect(stored).toContain(visible);
    expect(stored).not.toContain(secret);
    expect((await s.registrations.get("alice@x", "irc"))?.password).toBe(secret);
  });

  it("keeps concurrent registrations all listed", async () => {
    const s = await open(url());
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.registrations.set(`u${i}@x`, `n${i % 3}`, { a: "b" }, [])));
    expect(await s.registrations.list()).toHaveLength(20);
  });

  it("tracks rooms per user and network", async () => {
    const s = await open(url());
    await s.rooms.add("alice@x", "irc", "#a", "al");
    await s.rooms.add("alice@x", "irc", "#b", "al");
    await s.rooms.add("alice@x", "irc", "#a", "al_");
    await s.rooms.add("alice@x", "matrix", "!r:m.org", "al");
    expect(await s.rooms.list("alice@x", "irc")).toEqual([
      { room: "#b", nick: "al" },
      { room: "#a", nick: "al_" },
    ]);
    await s.rooms.remove("alice@x", "irc", "#b");
    await s.rooms.remove("alice@x", "irc", "#nope");
    expect(await s.rooms.list("alice@x", "irc")).toEqual([{ room: "#a", nick: "al_" }]);
    expect(await s.rooms.list("alice@x", "matrix")).toEqual([{ room: "!r:m.org", nick: "al" }]);
    await s.rooms.remove("alice@x", "irc", "#a");
    expect(await s.rooms.list("alice@x", "irc")).toEqual([]);
  });

  it("links message ids both ways, per scope", async () => {
    const s = await open(url());
    const scope = "alice@x\nirc\n#chan";
    await s.idmap.link(scope, "L1", ["x1", "x2"]);
    expect(await s.idmap.xmppFor(scope, "L1")).toBe("x1");
    expect(await s.idmap.legacyFor(scope, "x1")).toBe("L1");
    expect(await s.idmap.legacyFor(scope, "x2")).toBe("L1");
    expect(await s.idmap.xmppFor("alice@x\nirc\n#other", "L1")).toBeUndefined();
    expect(await s.idmap.xmppFor("bob@x\nirc\n#chan", "L1")).toBeUndefined();
    await s.idmap.link("free-form scope", "L9", ["x9"]);
    expect(await s.idmap.legacyFor("free-form scope", "x9")).toBe("L9");
    await s.idmap.link(scope, "L2", []);
    expect(await s.idmap.xmppFor(scope, "L2")).toBeUndefined();
  });

  it("expires id map entries after their TTL", async () => {
    const s = await open(url(), KEY, { idmapTtlMs: 300 });
    const scope = "alice@x\nirc\n#chan";
    await s.idmap.link(scope, "L1", ["x1"]);
    expect(await s.idmap.xmppFor(scope, "L1")).toBe("x1");
    await waitFor(async () => ((await s.idmap.xmppFor(scope, "L1")) === undefined ? true : undefined), {
      timeout: 3000,
      what: "the id map entry to expire",
    });
    expect(await s.idmap.legacyFor(scope, "x1")).toBeUndefined();
  });

  it("gives adapters a scoped key-value space with TTLs", async () => {
    const s = await open(url());
    const a = s.scoped("alice@x", "telegram");
    const b = s.scoped("bob@x", "telegram");
    await a.set("offset", 42);
    await a.set("session", { token: "abc", list: [1, 2] });
    await a.set("nonce", "n", 300);
    expect(await a.get("offset")).toBe(42);
    expect(await a.get("session")).toEqual({ token: "abc", list: [1, 2] });
    expect(await b.get("offset")).toBeUndefined();
    expect(await a.get("nonce")).toBe("n");
    await waitFor(async () => ((await a.get("nonce")) === undefined ? true : undefined), {
      timeout: 3000,
      what: "the scoped key to expire",
    });
    expect(await a.get("offset")).toBe(42);
    await a.delete("offset");
    expect(await a.get("offset")).toBeUndefined();
    expect(await a.get("session")).toEqual({ token: "abc", list: [1, 2] });
  });

  it("purges one user on one network and nothing else", async () => {
    const s = await open(url());
    for (const [user, network] of [
      ["alice@x", "irc"],
      ["alice@x", "telegram"],
      ["bob@x", "irc"],
    ] as const) {
      await s.registrations.set(user, network, { nick: user, password: "p" }, ["password"]);
      await s.rooms.add(user, network, "#r", "n");
      await s.scoped(user, network).set("k", user);
      await s.idmap.link(`${user}\n${network}\n#r`, "L", [`x-${user}`]);
    }
    await s.purgeUser("alice@x", "irc");

    expect(await s.registrations.get("alice@x", "irc")).toBeUndefined();
    expect(await s.rooms.list("alice@x", "irc")).toEqual([]);
    expect(await s.scoped("alice@x", "irc").get("k")).toBeUndefined();
    expect(await s.idmap.xmppFor("alice@x\nirc\n#r", "L")).toBeUndefined();
    expect(await s.idmap.legacyFor("alice@x\nirc\n#r", "x-alice@x")).toBeUndefined();
    expect(await s.registrations.list("irc")).toEqual([{ user: "bob@x", network: "irc" }]);
    // Nothing named after alice on irc is left in the database.
    const left = [...(await raw().entries()).keys()].filter((k) => k.includes("alice@x") && k.includes("irc"));
    expect(left).toEqual([]);

    for (const [user, network] of [
      ["alice@x", "telegram"],
      ["bob@x", "irc"],
    ] as const) {
      expect(await s.registrations.get(user, network)).toEqual({ nick: user, password: "p" });
      expect(await s.rooms.list(user, network)).toEqual([{ room: "#r", nick: "n" }]);
      expect(await s.scoped(user, network).get("k")).toBe(user);
      expect(await s.idmap.xmppFor(`${user}\n${network}\n#r`, "L")).toBe(`x-${user}`);
    }

    // The purged user starts afresh: new links work, old ones stay gone.
    await s.idmap.link("alice@x\nirc\n#r", "L2", ["y"]);
    expect(await s.idmap.xmppFor("alice@x\nirc\n#r", "L2")).toBe("y");
    expect(await s.idmap.xmppFor("alice@x\nirc\n#r", "L")).toBeUndefined();
  });

  it("survives close and reopen: registrations, rooms, id map, scoped keys", async () => {
    const a = await open(url());
    await a.registrations.set("alice@x", "irc", { nick: "al", password: "pw" }, ["password"]);
    await a.rooms.add("alice@x", "irc", "#a", "al");
    await a.idmap.link("alice@x\nirc\n#a", "L1", ["x1"]);
    await a.scoped("alice@x", "irc").set("cursor", 7);
    await a.close();

    const b = await open(url());
    expect(await b.registrations.get("alice@x", "irc")).toEqual({ nick: "al", password: "pw" });
    expect(await b.registrations.list()).toEqual([{ user: "alice@x", network: "irc" }]);
    expect(await b.rooms.list("alice@x", "irc")).toEqual([{ room: "#a", nick: "al" }]);
    expect(await b.idmap.xmppFor("alice@x\nirc\n#a", "L1")).toBe("x1");
    expect(await b.idmap.legacyFor("alice@x\nirc\n#a", "x1")).toBe("L1");
    expect(await b.scoped("alice@x", "irc").get("cursor")).toBe(7);
    // The reopened store writes as well as it reads.
    await b.rooms.add("alice@x", "irc", "#b", "al");
    expect(await b.rooms.list("alice@x", "irc")).toHaveLength(2);
  });

  it("refuses to open with a wrong or missing key, clearly and without leaking secrets", async () => {
    const a = await open(url());
    await a.registrations.set("u", "irc", { password: "TopSecretPw" }, ["password"]);
    await a.close();
    const err = await openStore({ url: url(), encryptionKey: randomBytes(32).toString("hex") }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EstuaryError);
    expect((err as EstuaryError).kind).toBe("internal");
    expect((err as EstuaryError).message).toMatch(/encryption key does not match/);
    expect(String(err) + String((err as Error).cause)).not.toContain("TopSecretPw");
    const missing = await openStore({ url: url() }).catch((e: unknown) => e);
    expect(missing).toMatchObject({ kind: "internal", message: expect.stringMatching(/configure the encryption key/) });
    // The failed opens released their connections cleanly: the right key still opens the data.
    const b = await open(url());
    expect(await b.registrations.get("u", "irc")).toEqual({ password: "TopSecretPw" });
  });

  it("derives the key from a passphrase with the store's salt, stably across reopens", async () => {
    const a = await open(url(), "a long passphrase");
    await a.registrations.set("u", "irc", { password: "p" }, ["password"]);
    await a.close();
    const b = await open(url(), "a long passphrase");
    expect(await b.registrations.get("u", "irc")).toEqual({ password: "p" });
    await b.close();
    await expect(openStore({ url: url(), encryptionKey: "another passphrase" })).rejects.toMatchObject({ kind: "internal" });
  });

  it("refuses to store secrets without an encryption key", async () => {
    const s = await open(url(), null);
    await expect(s.registrations.set("u", "irc", { password: "p" }, ["password"])).rejects.toMatchObject({
      kind: "internal",
    });
    await s.registrations.set("u", "irc", { nick: "plain" }, ["password"]);
    expect(await s.registrations.get("u", "irc")).toEqual({ nick: "plain" });
  });

  it("never mixes users, networks or rooms whose names hold separators", async () => {
    const s = await open(url());
    const part = fc.string({ unit: fc.constantFrom(":", "%", "3A", "\n", "a", "@", "_", "\\"), maxLength: 6 });
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.tuple(part, part, part), fc.tuple(part, part, part), async ([u1, n1, r1], [u2, n2, r2]) => {
        fc.pre(u1 !== u2 || n1 !== n2 || r1 !== r2);
        const tag = `.${round++}`;
        const [m1, m2] = [n1 + tag, n2 + tag];
        await s.scoped(u1, m1).set(r1, "first");
        await s.scoped(u2, m2).set(r2, "second");
        expect(await s.scoped(u1, m1).get(r1)).toBe("first");
        await s.rooms.add(u1, m1, r1, "one");
        await s.rooms.add(u2, m2, r2, "two");
        const rooms = await s.rooms.list(u1, m1);
        if (u1 !== u2 || m1 !== m2) expect(rooms).toEqual([{ room: r1, nick: "one" }]);
        else expect(rooms).toEqual([{ room: r1, nick: "one" }, { room: r2, nick: "two" }]);
      }),
      { numRuns: 40 },
    );
  });
});

describe("redis specifics", () => {
  const raw = backends[0]?.raw as () => RawAccess;
  beforeEach(async () => {
    await raw().reset();
  });

  it("expires TTL'd keys by Redis' own TTL, and leaves a purged user's id map to it", async () => {
    const s = await open(redis.url, KEY, { idmapTtlMs: 60_000 });
    await s.scoped("alice@x", "irc").set("nonce", "n", 30_000);
    await s.scoped("alice@x", "irc").set("cursor", 1);
    const entries = await raw().entries();
    const nonceKey = [...entries.keys()].find((k) => k.startsWith("estuary:kv:") && k.endsWith(":nonce"));
    const cursorKey = [...entries.keys()].find((k) => k.startsWith("estuary:kv:") && k.endsWith(":cursor"));
    expect(nonceKey).toBeDefined();
    const pttl = await redisPttl(redis.url, nonceKey as string);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(30_000);
    expect(await redisPttl(redis.url, cursorKey as string)).toBe(-1);

    for (let i = 0; i < 5; i++) await s.idmap.link("alice@x\nirc\n#r", `legacy-${i}`, [`xmpp-${i}`]);
    await s.purgeUser("alice@x", "irc");
    // Redis has no cheap prefix delete: the old space's entries stay until their TTL, unreachable.
    const ids = [...(await raw().entries()).keys()].filter((k) => k.startsWith("estuary:id:"));
    expect(ids).toHaveLength(10);
    for (const k of ids) {
      const left = await redisPttl(redis.url, k);
      expect(left, k).toBeGreaterThan(0);
      expect(left, k).toBeLessThanOrEqual(60_000);
    }
    expect(await s.idmap.xmppFor("alice@x\nirc\n#r", "legacy-0")).toBeUndefined();
  });

  it("keeps working when Redis drops its connections", async () => {
    const s = await open(redis.url);
    await s.rooms.add("alice@x", "irc", "#a", "al");
    // What a Redis restart or failover does to the gateway's connection.
    const killed = await withRedis(redis.url, (c) => c.sendCommand(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]));
    expect(Number(killed)).toBeGreaterThanOrEqual(1);
    const rooms = await waitFor(() => s.rooms.list("alice@x", "irc").catch(() => undefined), {
      timeout: 5000,
      what: "the store to answer again after its connection was killed",
    });
    expect(rooms).toEqual([{ room: "#a", nick: "al" }]);
  });
});

describe("postgres specifics", () => {
  const raw = backends[1]?.raw as () => RawAccess;
  beforeEach(async () => {
    await raw().reset();
  });

  it("physically deletes a purged user's id map entries, and only those", async () => {
    const s = await open(postgres.url);
    // Users whose names hold LIKE wildcards and escapes: the prefix delete must treat them literally.
    for (let i = 0; i < 20; i++) await s.idmap.link("al%_\\ice@x\nirc\n#r", `legacy-${i}`, [`xmpp-${i}`]);
    await s.idmap.link("bob@x\nirc\n#r", "legacy-bob", ["xmpp-bob"]);
    await s.idmap.link("shared scope", "legacy-shared", ["xmpp-shared"]);
    await s.purgeUser("al%_\\ice@x", "irc");
    const ids = [...(await raw().entries()).keys()].filter((k) => k.startsWith("estuary:id:"));
    expect(ids.sort()).toHaveLength(4); // bob's and the shared scope's L and X entries
    expect(ids.filter((k) => k.includes("bob") || k.includes("shared"))).toHaveLength(4);
    expect(await s.idmap.xmppFor("bob@x\nirc\n#r", "legacy-bob")).toBe("xmpp-bob");
    expect(await s.idmap.legacyFor("shared scope", "xmpp-shared")).toBe("legacy-shared");
  });

  it("neither crashes nor breaks when Postgres terminates its idle connections", async () => {
    const s = await open(postgres.url);
    await s.rooms.add("alice@x", "irc", "#a", "al");
    // What a server restart, failover or idle_session_timeout does to the pool's idle connections.
    // An idle pg client's error reaches the pool, which re-emits it: without a listener that is an
    // uncaught exception (vitest fails the run on it).
    const terminated = await withPg(postgres.url, async (c) => {
      const { rows } = await c.query(
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
      );
      return rows.length;
    });
    expect(terminated).toBeGreaterThanOrEqual(1);
    const rooms = await waitFor(() => s.rooms.list("alice@x", "irc").catch(() => undefined), {
      timeout: 5000,
      what: "the store to answer again after its connections were terminated",
    });
    expect(rooms).toEqual([{ room: "#a", nick: "al" }]);
    await s.rooms.add("alice@x", "irc", "#b", "al");
    expect(await s.rooms.list("alice@x", "irc")).toHaveLength(2);
  });

  it("keeps an open store working when another store on the same database closes", async () => {
    const a = await open(postgres.url);
    await a.rooms.add("alice@x", "irc", "#a", "al");
    // A failed open (wrong key) closes its own connections, and only those.
    await expect(openStore({ url: postgres.url, encryptionKey: randomBytes(32).toString("hex") })).rejects.toMatchObject({
      kind: "internal",
    });
    const b = await open(postgres.url);
    await b.close();
    expect(await a.rooms.list("alice@x", "irc")).toEqual([{ room: "#a", nick: "al" }]);
  });

  it("sweeps expired rows nobody reads again, keeping live ones", async () => {
    // The sweep runs on an hourly interval: fake only setInterval to fire it now; Date and I/O stay real.
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const s = await open(postgres.url);
    const a = s.scoped("alice@x", "irc");
    await a.set("short", "gone soon", 1);
    await a.set("long", "stays", 600_000);
    await a.set("forever", "stays too");
    const keyOf = async (suffix: string): Promise<string> =>
      [...(await raw().entries()).keys()].find((k) => k.endsWith(`:${suffix}`)) as string;
    const short = await keyOf("short");
    expect(short).toBeDefined();
    // keyv keeps the expiry inside the serialized value: wait until it has passed (1 ms TTL).
    const { expires } = JSON.parse((await raw().entries()).get(short) as string) as { expires: number };
    expect(typeof expires).toBe("number");
    await waitFor(() => (Date.now() > expires ? true : undefined), { what: "the short TTL to pass" });
    vi.advanceTimersByTime(60 * 60_000);
    await waitFor(async () => ((await raw().entries()).has(short) ? undefined : true), {
      timeout: 3000,
      what: "the sweep to delete the expired row",
    });
    const keys = [...(await raw().entries()).keys()];
    expect(keys.some((k) => k.endsWith(":long"))).toBe(true);
    expect(keys.some((k) => k.endsWith(":forever"))).toBe(true);
  });
});
