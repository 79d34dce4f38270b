/**
 * The HTTP listener with a real media store and the process registry: what
 * an adapter publishes is what an XMPP client downloads, with inert headers.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMediaStore, type MediaStore } from "../../core/http/media.ts";
import { startHttpServer, type HttpServer } from "../../core/http/server.ts";
import { silentLogger } from "../../core/log.ts";
import { metrics, registry } from "../../core/metrics.ts";

let root: string;
let media: MediaStore;
let server: HttpServer;
const components: Record<string, string> = { "irc.example.org": "online", "telegram.example.org": "online" };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "estuary-http-it-"));
  media = createMediaStore({ dir: join(root, "media"), publicUrl: "https://gateway.example.org/estuary/", maxBytes: 1024 * 1024 });
  server = await startHttpServer({
    host: "127.0.0.1",
    port: 0,
    media,
    registry,
    health: () => ({ ok: Object.values(components).every((s) => s === "online"), components: { ...components } }),
    log: silentLogger(),
  });
});

afterAll(async () => {
  await server?.close();
  media?.close();
  await rm(root, { recursive: true, force: true });
});

/** The published URL points at the public address; the test reaches the same path on the listener. */
function local(publicUrl: string): string {
  const u = new URL(publicUrl);
  expect(u.origin).toBe("https://gateway.example.org");
  expect(u.pathname.startsWith("/estuary/media/")).toBe(true);
  return new URL(u.pathname.slice("/estuary/".length) + u.search, server.url).href;
}

describe("HTTP listener", () => {
  it("serves published bytes at the returned URL with the specified headers", async () => {
    const bytes = new Uint8Array(3000).map((_, i) => (i * 7) % 256);
    const url = await media.publish(bytes, { mediaType: "text/html", name: "page <1>.html" });
    const res = await fetch(local(url));
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
    expect(res.headers.get("content-type")).toBe("text/html");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("content-security-policy")).toMatch(/^default-src 'none'/);
    expect(res.headers.get("content-disposition")).toBe(`inline; filename="page <1>.html"; filename*=UTF-8''page%20%3C1%3E.html`);
  });

  it("answers 404 for an unknown id", async () => {
    const url = await media.publish(new Uint8Array([1]), { name: "a.bin" });
    const known = local(url);
    const unknown = known.replace(/\/media\/[^/]+\//, `/media/${"x".repeat(24)}/`);
    expect((await fetch(known)).status).toBe(200);
    expect((await fetch(unknown)).status).toBe(404);
  });

  it("exposes the estuary_ metrics on /metrics", async () => {
    metrics.messages.inc({ network: "irc", direction: "in" });
    const res = await fetch(new URL("metrics", server.url));
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^estuary_messages_total\{network="irc",direction="in"\} [1-9]/m);
    expect(text).toContain("# TYPE estuary_component_online gauge");
    expect(text).toContain("estuary_process_cpu_user_seconds_total");
  });

  it("turns /health to 503 while a component is down, and back", async () => {
    const healthy = await fetch(new URL("health", server.url));
    expect(healthy.status).toBe(200);
    expect(await healthy.json()).toMatchObject({ status: "ok" });
    components["telegram.example.org"] = "offline";
    try {
      const down = await fetch(new URL("health", server.url));
      expect(down.status).toBe(503);
      expect(await down.json()).toEqual({ status: "unhealthy", components: { "irc.example.org": "online", "telegram.example.org": "offline" } });
    } finally {
      components["telegram.example.org"] = "online";
    }
    expect((await fetch(new URL("health", server.url))).status).toBe(200);
  });
});
