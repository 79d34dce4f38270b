/**
 * Estuary's persistent state on keyv: registrations (secrets sealed),
 * message id map, joined rooms, and the per-user key-value space of adapters.
 *
 * Key layout (keys.ts: `estuary:<kind>:<part>:…`, every part escaped so `:`
 * never occurs inside one, hence distinct part lists give distinct keys):
 *
 *   estuary:meta:salt                  scrypt salt (base64) when the key is a passphrase
 *   estuary:meta:keycheck              a sealed constant: a wrong key fails at open, clearly
 *   estuary:nets                       [network…] that have ≥1 registration       (index)
 *   estuary:regidx:<net>               [user…] registered on <net>                 (index)
 *   estuary:reg:<net>:<user>           { values, sealed: [field…] }, sealed fields AES-GCM
 *   estuary:rooms:<user>:<net>         [[room, nick]…]  (one small value per user: list = 1 read)
 *   estuary:kvidx:<user>:<net>         [name…] scoped keys in use                  (index)
 *   estuary:kv:<user>:<net>:<name>     an adapter's value, optional TTL
 *   estuary:idgen:<user>:<net>         the user's id map "space": a random token
 *   estuary:id:<space>:<chat>:L:<id>   legacy id → first XMPP id     (TTL, default 30 d)
 *   estuary:id:<space>:<chat>:X:<id>   XMPP id → legacy id           (TTL, default 30 d)
 *
 * So `registrations.list` reads `nets` + one `regidx` per network, `rooms.list`
 * one key, and `purgeUser` deletes a known, small set of keys: nothing scans
 * the keyspace on any backend. The id map is the one unbounded family; it is
 * bounded by TTL and purged by dropping the user's `idgen` token: entries of
 * the old space become unreachable at once (lookups go through the token) and
 * are deleted right away where the backend has a cheap prefix delete (SQLite:
 * a primary-key range; Postgres: one `LIKE 'prefix%'` statement), else by their
 * TTL (Redis). Scopes that are not `${user}\n${network}\n${chat}` live in the
 * shared space `~`.
 *
 * Index keys are read-modify-written under an in-process lock per key: one
 * gateway process owns a store (true for SQLite; for Redis/Postgres run one
 * gateway per database).
 */
import { randomBytes } from "node:crypto";
import type { Keyv } from "keyv";
import type { ScopedStore } from "../adapter.ts";
import { EstuaryError, isEstuaryError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { type Backend, createBackend, parseStoreUrl, type StoreKind } from "./backend.ts";
import { createSealer, deriveKey, parseKeySpec, randomKey, SALT_BYTES, type Sealer } from "./crypto.ts";
import { keys } from "./keys.ts";

export type { StoreKind } from "./backend.ts";
export { parseStoreUrl } from "./backend.ts";

export const DEFAULT_STORE_URL = "sqlite:estuary.db";
export const DEFAULT_IDMAP_TTL_MS = 30 * 24 * 60 * 60_000;

export interface StoreOptions {
  /** `sqlite:<path>` (default), `memory:`, `redis://…`, `postgres://…` / `postgresql://…`. */
  url: string;
  /** 32-byte key as hex or base64, or a passphrase (crypto.ts). Needed to store secret fields persistently. */
  encryptionKey?: string;
  log?: Logger;
  /** Lifetime of id map entries; default 30 days. */
  idmapTtlMs?: number;
  /** SQLite expired-row sweep period; default 5 minutes, 0 disables. */
  sweepIntervalMs?: number;
}

export interface Store {
  readonly kind: StoreKind;
  registrations: {
    /** Secrets decrypted. */
    get(user: string, network: string): Promise<Record<string, string> | undefined>;
    /** Secret fields sealed at rest. */
    set(user: string, network: string, values: Record<string, string>, secretFields: string[]): Promise<void>;
    delete(user: string, network: string): Promise<void>;
    list(network?: string): Promise<{ user: string; network: string }[]>;
  };
  /** Message id map: network message id ↔ XMPP ids, per conversation scope; entries expire (default 30 days). */
  idmap: {
    link(scope: string, legacyId: string, xmppIds: string[]): Promise<void>;
    legacyFor(scope: string, xmppId: string): Promise<string | undefined>;
    /** The first xmpp id linked. */
    xmppFor(scope: string, legacyId: string): Promise<string | undefined>;
  };
  /** Rooms a user is in on a network (to rejoin after a restart). */
  rooms: {
    add(user: string, network: string, room: string, nick: string): Promise<void>;
    remove(user: string, network: string, room: string): Promise<void>;
    list(user: string, network: string): Promise<{ room: string; nick: string }[]>;
  };
  /** Per-user per-network key-value space handed to adapters (the ScopedStore of core/adapter.ts). */
  scoped(user: string, network: string): ScopedStore;
  /** Removes everything of a user on a network (unregister): registration, rooms, scoped keys, id map scopes of that user. */
  purgeUser(user: string, network: string): Promise<void>;
  close(): Promise<void>;
}

interface StoredRegistration {
  values: Record<string, string>;
  sealed: string[];
}

const KEY_CHECK_PLAIN = "estuary key check";
const KEY_CHECK_CONTEXT = "meta\nkeycheck";
const SHARED_SPACE = "~";

/** AAD binding a sealed field to its owner, so a sealed value moved to another slot does not open. */
function fieldContext(user: string, network: string, field: string): string {
  return `reg\n${user}\n${network}\n${field}`;
}

/** Serialises async critical sections per key (read-modify-write of index keys). */
class KeyedLock {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}

/** Backend failures surface as one typed error; EstuaryErrors pass through. */
async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (cause) {
    if (isEstuaryError(cause)) throw cause;
    throw new EstuaryError("unavailable", "The gateway's state store is unavailable", { cause });
  }
}

function splitScope(scope: string): { user: string; network: string; chat: string } | undefined {
  const a = scope.indexOf("\n");
  if (a < 0) return undefined;
  const b = scope.indexOf("\n", a + 1);
  if (b < 0) return undefined;
  return { user: scope.slice(0, a), network: scope.slice(a + 1, b), chat: scope.slice(b + 1) };
}

async function resolveSealer(kv: Keyv, backend: Backend, encryptionKey: string | undefined): Promise<Sealer | undefined> {
  const check = await kv.get<string>(keys.keyCheck());
  if (encryptionKey === undefined || encryptionKey === "") {
    if (check !== undefined) {
      throw new EstuaryError("internal", "This store holds sealed secrets: configure the encryption key it was created with");
    }
    // Nothing outlives a memory store, so a random key per run seals just as well.
    return backend.kind === "memory" ? createSealer(randomKey()) : undefined;
  }
  const spec = parseKeySpec(encryptionKey);
  let key: Buffer;
  if (spec.kind === "raw") key = spec.key;
  else {
    let salt = await kv.get<string>(keys.salt());
    if (salt === undefined) {
      salt = randomBytes(SALT_BYTES).toString("base64");
      await kv.set(keys.salt(), salt);
    }
    key = await deriveKey(spec.passphrase, Buffer.from(salt, "base64"));
  }
  const sealer = createSealer(key);
  if (check === undefined) {
    await kv.set(keys.keyCheck(), sealer.seal(KEY_CHECK_PLAIN, KEY_CHECK_CONTEXT));
  } else {
    try {
      sealer.open(check, KEY_CHECK_CONTEXT);
    } catch (cause) {
      throw new EstuaryError("internal", "The encryption key does not match the one this store was created with", { cause });
    }
  }
  return sealer;
}

export async function openStore(options: StoreOptions): Promise<Store> {
  parseStoreUrl(options.url); // a bad URL fails before anything opens
  const backend = createBackend(options.url, { log: options.log, sweepIntervalMs: options.sweepIntervalMs });
  const kv = backend.keyv;
  let sealer: Sealer | undefined;
  try {
    sealer = await guard(() => resolveSealer(kv, backend, options.encryptionKey));
  } catch (e) {
    await backend.close().catch(() => undefined);
    throw e;
  }
  return buildStore(backend, sealer, options.idmapTtlMs ?? DEFAULT_IDMAP_TTL_MS);
}

function buildStore(backend: Backend, sealer: Sealer | undefined, idmapTtlMs: number): Store {
  const kv = backend.keyv;
  const lock = new KeyedLock();
  /** `${user}\n${network}` → id map space token (this process is the only writer). */
  const spaces = new Map<string, string>();
  let closed: Promise<void> | undefined;

  async function addToIndex(indexKey: string, item: string): Promise<void> {
    await lock.run(indexKey, async () => {
      const list = (await kv.get<string[]>(indexKey)) ?? [];
      if (!list.includes(item)) await kv.set(indexKey, [...list, item]);
    });
  }

  /** Returns true when the index is now empty (and deleted). */
  async function removeFromIndex(indexKey: string, item: string): Promise<boolean> {
    return lock.run(indexKey, async () => {
      const list = await kv.get<string[]>(indexKey);
      if (list === undefined) return true;
      const rest = list.filter((x) => x !== item);
      if (rest.length === 0) await kv.delete(indexKey);
      else if (rest.length !== list.length) await kv.set(indexKey, rest);
      return rest.length === 0;
    });
  }

  async function space(user: string, network: string, create: boolean): Promise<string | undefined> {
    const id = `${user}\n${network}`;
    const cached = spaces.get(id);
    if (cached !== undefined) return cached;
    const k = keys.idEpoch(user, network);
    return lock.run(k, async () => {
      let token = spaces.get(id) ?? (await kv.get<string>(k));
      if (token === undefined && create) {
        token = randomBytes(9).toString("base64url");
        await kv.set(k, token);
      }
      if (token !== undefined) spaces.set(id, token);
      return token;
    });
  }

  /** Where a scope's entries live: its user's space, or the shared one. */
  async function scopeSpace(scope: string, create: boolean): Promise<{ space: string; chat: string } | undefined> {
    const parts = splitScope(scope);
    if (parts === undefined) return { space: SHARED_SPACE, chat: scope };
    const token = await space(parts.user, parts.network, create);
    return token === undefined ? undefined : { space: token, chat: parts.chat };
  }

  const registrations: Store["registrations"] = {
    get: (user, network) =>
      guard(async () => {
        const stored = await kv.get<StoredRegistration>(keys.registration(user, network));
        if (stored === undefined) return undefined;
        const sealed = new Set(stored.sealed);
        if (sealed.size > 0 && sealer === undefined) {
          throw new EstuaryError("internal", "A registration holds sealed secrets but no encryption key is configured");
        }
        return Object.fromEntries(
          Object.entries(stored.values).map(([field, value]) => [
            field,
            sealed.has(field) ? (sealer as Sealer).open(value, fieldContext(user, network, field)) : value,
          ]),
        );
      }),

    set: (user, network, values, secretFields) =>
      guard(async () => {
        const secret = new Set(secretFields);
        const sealedFields = Object.keys(values).filter((f) => secret.has(f));
        if (sealedFields.length > 0 && sealer === undefined) {
          throw new EstuaryError(
            "internal",
            "Secret registration fields cannot be stored: the gateway has no encryption key configured",
          );
        }
        const record: StoredRegistration = {
          values: Object.fromEntries(
            Object.entries(values).map(([field, value]) => [
              field,
              secret.has(field) ? (sealer as Sealer).seal(value, fieldContext(user, network, field)) : value,
            ]),
          ),
          sealed: sealedFields,
        };
        // Index first: a crash in between leaves an index entry without a record (listed, get → undefined),
        // never a record that list() cannot find.
        await addToIndex(keys.networks(), network);
        await addToIndex(keys.registrationIndex(network), user);
        await kv.set(keys.registration(user, network), record);
      }),

    delete: (user, network) =>
      guard(async () => {
        await kv.delete(keys.registration(user, network));
        if (await removeFromIndex(keys.registrationIndex(network), user)) {
          await removeFromIndex(keys.networks(), network);
        }
      }),

    list: (network) =>
      guard(async () => {
        const networks = network === undefined ? ((await kv.get<string[]>(keys.networks())) ?? []) : [network];
        const out: { user: string; network: string }[] = [];
        for (const net of networks) {
          for (const user of (await kv.get<string[]>(keys.registrationIndex(net))) ?? []) out.push({ user, network: net });
        }
        return out;
      }),
  };

  const idmap: Store["idmap"] = {
    link: (scope, legacyId, xmppIds) =>
      guard(async () => {
        const first = xmppIds[0];
        if (first === undefined) return;
        const where = (await scopeSpace(scope, true)) as { space: string; chat: string };
        await kv.setMany([
          { key: keys.idEntry(where.space, where.chat, "L", legacyId), value: first, ttl: idmapTtlMs },
          ...xmppIds.map((x) => ({ key: keys.idEntry(where.space, where.chat, "X", x), value: legacyId, ttl: idmapTtlMs })),
        ]);
      }),

    legacyFor: (scope, xmppId) =>
      guard(async () => {
        const where = await scopeSpace(scope, false);
        return where && (await kv.get<string>(keys.idEntry(where.space, where.chat, "X", xmppId)));
      }),

    xmppFor: (scope, legacyId) =>
      guard(async () => {
        const where = await scopeSpace(scope, false);
        return where && (await kv.get<string>(keys.idEntry(where.space, where.chat, "L", legacyId)));
      }),
  };

  const rooms: Store["rooms"] = {
    add: (user, network, room, nick) =>
      guard(async () => {
        const k = keys.rooms(user, network);
        await lock.run(k, async () => {
          const list = (await kv.get<[string, string][]>(k)) ?? [];
          await kv.set(k, [...list.filter(([r]) => r !== room), [room, nick]]);
        });
      }),

    remove: (user, network, room) =>
      guard(async () => {
        const k = keys.rooms(user, network);
        await lock.run(k, async () => {
          const list = await kv.get<[string, string][]>(k);
          if (list === undefined) return;
          const rest = list.filter(([r]) => r !== room);
          if (rest.length === 0) await kv.delete(k);
          else if (rest.length !== list.length) await kv.set(k, rest);
        });
      }),

    list: (user, network) =>
      guard(async () => ((await kv.get<[string, string][]>(keys.rooms(user, network))) ?? []).map(([room, nick]) => ({ room, nick }))),
  };

  function scoped(user: string, network: string): ScopedStore {
    const index = keys.scopedIndex(user, network);
    // Adapters keep per-server passwords, tokens and sync state here: every value is sealed
    // like registration secrets, bound to its slot so it cannot be moved to another user.
    const context = (name: string): string => `kv\n${user}\n${network}\n${name}`;
    return {
      get: <T>(name: string) =>
        guard(async () => {
          const raw = await kv.get<unknown>(keys.scoped(user, network, name));
          if (sealer && raw !== null && typeof raw === "object" && typeof (raw as { sealed?: unknown }).sealed === "string") {
            return JSON.parse(sealer.open((raw as { sealed: string }).sealed, context(name))) as T;
          }
          return (raw ?? undefined) as T | undefined;
        }),
      set: <T>(name: string, value: T, ttlMs?: number) =>
        guard(async () => {
          await addToIndex(index, name);
          const stored = sealer ? { sealed: sealer.seal(JSON.stringify(value), context(name)) } : value;
          await kv.set(keys.scoped(user, network, name), stored, ttlMs);
        }),
      delete: (name: string) =>
        guard(async () => {
          await kv.delete(keys.scoped(user, network, name));
          await removeFromIndex(index, name);
        }),
    };
  }

  async function purgeUser(user: string, network: string): Promise<void> {
    await guard(async () => {
      await registrations.delete(user, network);
      await kv.delete(keys.rooms(user, network));

      const index = keys.scopedIndex(user, network);
      await lock.run(index, async () => {
        const names = (await kv.get<string[]>(index)) ?? [];
        if (names.length > 0) await kv.deleteMany(names.map((n) => keys.scoped(user, network, n)));
        await kv.delete(index);
      });

      const epochKey = keys.idEpoch(user, network);
      await lock.run(epochKey, async () => {
        const token = await kv.get<string>(epochKey);
        spaces.delete(`${user}\n${network}`);
        await kv.delete(epochKey);
        if (token !== undefined && backend.deletePrefix) await backend.deletePrefix(keys.idSpacePrefix(token));
      });
    });
  }

  return {
    kind: backend.kind,
    registrations,
    idmap,
    rooms,
    scoped,
    purgeUser,
    close() {
      closed ??= backend.close();
      return closed;
    },
  };
}
