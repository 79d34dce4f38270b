/**
 * Network media made reachable by XMPP clients: bytes stored on disk under
 * an unguessable id (the id is the only access control, as with XEP-0363
 * upload slots, so it carries 144 random bits), served by ./server.ts at
 * `${publicUrl}media/<id>/<name>`, and deleted after a time to live.
 *
 * Layout under `dir` (mode 0700, files 0600): `<id>` holds the bytes,
 * `<id>.json` the metadata. The sidecar is written last, so a file without
 * one is an interrupted publish: never served, swept once old.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { MediaPublisher } from "../adapter.ts";
import { fail } from "../errors.ts";
import { sanitizeFilename } from "./filename.ts";

export interface MediaStoreOptions {
  /** Where files live; created with mode 0700 if missing. */
  dir: string;
  /** Public base URL of the HTTP listener (config `http.publicUrl`), ending with "/". */
  publicUrl: string;
  /** Largest file accepted, in bytes. */
  maxBytes: number;
  /** How long a file stays available (default 7 days). */
  ttlMs?: number;
  /** How often expired files are swept (default: ttl/10, between 1 min and 1 h). */
  sweepIntervalMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface StoredMedia {
  path: string;
  mediaType: string;
  name: string;
  size: number;
}

export interface MediaStore extends MediaPublisher {
  /** The file for an id, or undefined when unknown, malformed or expired. */
  get(id: string): Promise<StoredMedia | undefined>;
  /** Deletes expired files now; resolves with how many were removed. */
  sweep(): Promise<number>;
  /** Stops the sweep timer. */
  close(): void;
}

interface Sidecar {
  mediaType: string;
  name: string;
  size: number;
  created: number;
}

export const DEFAULT_MEDIA_TTL_MS = 7 * 24 * 3600 * 1000;
const ID_BYTES = 18; // 144 bits → 24 base64url characters, no padding
const ID_PATTERN = /^[A-Za-z0-9_-]{24}$/;
const SIDECAR = ".json";
const FALLBACK_TYPE = "application/octet-stream";

/**
 * A media type safe to echo in a Content-Type header: `type/subtype` with
 * RFC 9110 §5.6.2 token characters, plus parameters of printable ASCII.
 */
export function sanitizeMediaType(raw: string | undefined): string {
  if (raw === undefined) return FALLBACK_TYPE;
  const m = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*(;[\x20-\x7e]*)?$/.exec(raw);
  if (!m) return FALLBACK_TYPE;
  return `${m[1]!.toLowerCase()}${m[2] ?? ""}`;
}

export function createMediaStore(options: MediaStoreOptions): MediaStore {
  const { dir, maxBytes } = options;
  const ttlMs = options.ttlMs ?? DEFAULT_MEDIA_TTL_MS;
  const now = options.now ?? Date.now;
  const base = options.publicUrl.endsWith("/") ? options.publicUrl : `${options.publicUrl}/`;
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  const expired = (created: number): boolean => now() - created >= ttlMs;

  async function readSidecar(id: string): Promise<Sidecar | undefined> {
    try {
      const parsed = JSON.parse(await readFile(join(dir, id + SIDECAR), "utf8")) as Partial<Sidecar>;
      if (typeof parsed.created !== "number" || typeof parsed.size !== "number") return undefined;
      return {
        mediaType: sanitizeMediaType(parsed.mediaType),
        name: sanitizeFilename(parsed.name) ?? "file",
        size: parsed.size,
        created: parsed.created,
      };
    } catch {
      return undefined;
    }
  }

  const store: MediaStore = {
    async publish(data, meta) {
      if (data.byteLength > maxBytes) throw fail("too-large", `The file is larger than the gateway's limit of ${maxBytes} bytes`);
      const id = randomBytes(ID_BYTES).toString("base64url");
      const name = sanitizeFilename(meta.name) ?? "file";
      const sidecar: Sidecar = { mediaType: sanitizeMediaType(meta.mediaType), name, size: data.byteLength, created: now() };
      // "wx": never overwrite (an id collision at 144 bits means something is badly wrong).
      await writeFile(join(dir, id), data, { mode: 0o600, flag: "wx" });
      await writeFile(join(dir, id + SIDECAR), JSON.stringify(sidecar), { mode: 0o600, flag: "wx" });
      return `${base}media/${id}/${encodeURIComponent(name)}`;
    },

    async get(id) {
      // The id is the only thing looked up, and only in this shape: no path can be built from a request.
      if (!ID_PATTERN.test(id)) return undefined;
      const meta = await readSidecar(id);
      if (meta === undefined || expired(meta.created)) return undefined;
      const path = join(dir, id);
      try {
        const st = await stat(path);
        if (!st.isFile()) return undefined;
        return { path, mediaType: meta.mediaType, name: meta.name, size: st.size };
      } catch {
        return undefined;
      }
    },

    async sweep() {
      let removed = 0;
      let entries: string[];
      try {
        entries = await readdir(dir);
      } catch {
        return 0;
      }
      const ids = new Set(entries.filter((e) => ID_PATTERN.test(e)));
      for (const entry of entries) {
        if (!entry.endsWith(SIDECAR)) continue;
        const id = entry.slice(0, -SIDECAR.length);
        if (!ID_PATTERN.test(id)) continue;
        ids.delete(id);
        const meta = await readSidecar(id);
        // An unreadable sidecar is judged by its age on disk.
        const created = meta?.created ?? (await mtime(join(dir, entry)));
        if (created !== undefined && expired(created)) {
          await rm(join(dir, id), { force: true });
          await rm(join(dir, entry), { force: true });
          removed++;
        }
      }
      // Bytes whose publish never wrote a sidecar.
      for (const id of ids) {
        const created = await mtime(join(dir, id));
        if (created !== undefined && expired(created)) {
          await rm(join(dir, id), { force: true });
          removed++;
        }
      }
      return removed;
    },

    close() {
      clearInterval(timer);
    },
  };

  const interval = options.sweepIntervalMs ?? Math.min(3_600_000, Math.max(60_000, Math.floor(ttlMs / 10)));
  const timer = setInterval(() => {
    store.sweep().catch(() => {
      // A failed sweep is retried on the next tick; the files stay unserved past their ttl anyway.
    });
  }, interval);
  // The sweep must not keep the process alive on shutdown.
  timer.unref();
  return store;
}

async function mtime(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return undefined;
  }
}
