import { mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EstuaryError } from "../../../../core/errors.ts";
import { createMediaStore, sanitizeMediaType, type MediaStore } from "../../../../core/http/media.ts";

let root: string;
let dir: string;
let clock: number;
const stores: MediaStore[] = [];

function store(options: { maxBytes?: number; ttlMs?: number } = {}): MediaStore {
  const s = createMediaStore({ dir, publicUrl: "https://gw.example.org/files/", maxBytes: options.maxBytes ?? 1024, ttlMs: options.ttlMs ?? 60_000, now: () => clock });
  stores.push(s);
  return s;
}

function idOf(url: string): string {
  const m = /^https:\/\/gw\.example\.org\/files\/media\/([^/]+)\/[^/]+$/.exec(url);
  expect(m, url).not.toBeNull();
  return m![1]!;
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "estuary-media-"));
  dir = join(root, "media");
  clock = 1_000_000;
});

afterEach(async () => {
  for (const s of stores.splice(0)) s.close();
  await rm(root, { recursive: true, force: true });
});

describe("createMediaStore", () => {
  it("creates its directory with mode 0700 and files with 0600", async () => {
    const media = store();
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const id = idOf(await media.publish(new Uint8Array([1, 2, 3]), { mediaType: "image/png", name: "a.png" }));
    for (const entry of await readdir(dir)) expect((await stat(join(dir, entry))).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(expect.arrayContaining([id, `${id}.json`]));
  });

  it("publishes under an unguessable id and a URL carrying the encoded name", async () => {
    const media = store();
    const url = await media.publish(new Uint8Array([7, 8, 9]), { mediaType: "image/png", name: "holiday pic #1.png" });
    expect(url).toMatch(/\/media\/[A-Za-z0-9_-]{24}\/holiday%20pic%20%231\.png$/);
    const got = await media.get(idOf(url));
    expect(got).toMatchObject({ mediaType: "image/png", name: "holiday pic #1.png", size: 3 });
    expect([...(await readFile(got!.path))]).toEqual([7, 8, 9]);
  });

  it("gives every file its own id", async () => {
    const media = store();
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) ids.add(idOf(await media.publish(new Uint8Array([i]), {})));
    expect(ids.size).toBe(50);
  });

  it("defaults and cleans the metadata", async () => {
    const media = store();
    const plain = await media.get(idOf(await media.publish(new Uint8Array([1]), {})));
    expect(plain).toMatchObject({ mediaType: "application/octet-stream", name: "file" });
    const hostile = await media.get(idOf(await media.publish(new Uint8Array([1]), { mediaType: "text/html\r\nSet-Cookie: x=y", name: "../../etc/passwd" })));
    expect(hostile).toMatchObject({ mediaType: "application/octet-stream", name: "passwd" });
  });

  it("refuses a file over maxBytes with too-large", async () => {
    const media = store({ maxBytes: 4 });
    const err = await media.publish(new Uint8Array(5), {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EstuaryError);
    expect((err as EstuaryError).kind).toBe("too-large");
    expect(await readdir(dir)).toEqual([]);
    await expect(media.publish(new Uint8Array(4), {})).resolves.toMatch(/media\//);
  });

  it("looks up nothing but well-formed ids", async () => {
    const media = store();
    await writeFile(join(root, "secret"), "x");
    await writeFile(join(root, "secret.json"), JSON.stringify({ mediaType: "text/plain", name: "s", size: 1, created: clock }));
    for (const id of ["../secret", "..%2Fsecret", "", "short", "A".repeat(25), "A".repeat(23) + "/"]) {
      expect(await media.get(id), id).toBeUndefined();
    }
  });

  it("stops serving a file after its ttl and sweeps it", async () => {
    const media = store({ ttlMs: 60_000 });
    const keep = idOf(await media.publish(new Uint8Array([1]), {}));
    clock += 30_000;
    const newer = idOf(await media.publish(new Uint8Array([2]), {}));
    clock += 30_000; // the first is now exactly ttl old
    expect(await media.get(keep)).toBeUndefined();
    expect(await media.get(newer)).toBeDefined();
    expect(await media.sweep()).toBe(1);
    expect((await readdir(dir)).sort()).toEqual([newer, `${newer}.json`].sort());
    expect(await media.sweep()).toBe(0);
  });

  it("sweeps bytes whose publish never wrote metadata, once old", async () => {
    const media = store({ ttlMs: 60_000 });
    const orphan = join(dir, "B".repeat(24));
    await writeFile(orphan, "x");
    clock = Date.now();
    expect(await media.sweep()).toBe(0);
    const old = new Date(Date.now() - 120_000);
    await utimes(orphan, old, old);
    expect(await media.sweep()).toBe(1);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("sanitizeMediaType", () => {
  it("keeps valid types with parameters, lowercasing the essence", () => {
    expect(sanitizeMediaType("Text/Plain; charset=utf-8")).toBe("text/plain; charset=utf-8");
    expect(sanitizeMediaType("image/svg+xml")).toBe("image/svg+xml");
  });
  it("falls back to application/octet-stream for anything else", () => {
    for (const bad of [undefined, "", "text", "text/plain\nX: y", "a b/c", "text/plain; x=\u00e9"]) {
      expect(sanitizeMediaType(bad)).toBe("application/octet-stream");
    }
  });
});
