import KeyvPostgres from "@keyv/postgres";
import KeyvRedis from "@keyv/redis";
import { afterEach, describe, expect, it } from "vitest";
import { EstuaryError } from "../../../../core/errors.ts";
import { type Backend, createBackend, parseStoreUrl, POSTGRES_TABLE } from "../../../../core/store/backend.ts";
import { openStore } from "../../../../core/store/index.ts";
import { SqliteAdapter } from "../../../../core/store/sqlite-adapter.ts";
import { freePort } from "../../../support/ports.ts";

const created: Backend[] = [];
afterEach(async () => {
  for (const b of created.splice(0)) await b.close();
});

describe("parseStoreUrl", () => {
  it("recognises every supported scheme", () => {
    expect(parseStoreUrl("sqlite:state/estuary.db")).toEqual({ kind: "sqlite", path: "state/estuary.db" });
    expect(parseStoreUrl("sqlite:///var/lib/estuary.db")).toEqual({ kind: "sqlite", path: "/var/lib/estuary.db" });
    expect(parseStoreUrl("memory:")).toEqual({ kind: "memory" });
    expect(parseStoreUrl("redis://127.0.0.1:6379/0")).toEqual({ kind: "redis", url: "redis://127.0.0.1:6379/0" });
    expect(parseStoreUrl("rediss://h")).toMatchObject({ kind: "redis" });
    expect(parseStoreUrl("postgres://u:p@h/db")).toMatchObject({ kind: "postgres" });
    expect(parseStoreUrl("postgresql://u:p@h/db")).toMatchObject({ kind: "postgres" });
  });

  it("rejects unknown schemes and empty paths with a typed error", () => {
    for (const url of ["mysql://h/db", "sqlite:", "estuary.db", ""]) {
      expect(() => parseStoreUrl(url), url).toThrow(EstuaryError);
    }
  });
});

describe("createBackend", () => {
  it("builds the SQLite adapter for memory: with an iterable keyv", async () => {
    const b = createBackend("memory:", { sweepIntervalMs: 0 });
    created.push(b);
    expect(b.kind).toBe("memory");
    expect(b.keyv.store).toBeInstanceOf(SqliteAdapter);
    expect(b.keyv.iterator).toBeTypeOf("function");
    expect(b.deletePrefix).toBeTypeOf("function");
  });

  it("builds a Redis backend without connecting until used", async () => {
    const port = await freePort();
    const b = createBackend(`redis://127.0.0.1:${port}`);
    created.push(b);
    expect(b.kind).toBe("redis");
    const store = b.keyv.store as KeyvRedis<string>;
    expect(store).toBeInstanceOf(KeyvRedis);
    expect(store.opts.url).toBe(`redis://127.0.0.1:${port}`);
    expect(store.client.isOpen).toBe(false);
    // Keys are complete names: neither keyv nor the adapter may prefix them.
    expect(store.namespace).toBeUndefined();
    expect(b.keyv.useKeyPrefix).toBe(false);
    expect(b.deletePrefix).toBeUndefined();
  });

  it("builds a Postgres backend on its own table, and reports an unreachable server as unavailable", async () => {
    const port = await freePort();
    const url = `postgres://estuary@127.0.0.1:${port}/estuary`;
    const b = createBackend(url);
    created.push(b);
    expect(b.kind).toBe("postgres");
    const store = b.keyv.store as KeyvPostgres;
    expect(store).toBeInstanceOf(KeyvPostgres);
    expect(store.opts.table).toBe(POSTGRES_TABLE);
    expect(store.opts.keySize).toBeGreaterThanOrEqual(1024);

    const err = await openStore({ url }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EstuaryError);
    expect((err as EstuaryError).kind).toBe("unavailable");
  });
});
