import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Counter, Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../../../core/log.ts";
import type { MediaStore } from "../../../../core/http/media.ts";
import { startHttpServer, type Health, type HttpServer } from "../../../../core/http/server.ts";

let root: string;
let server: HttpServer;
let health: Health = { ok: true, components: { "irc.example.org": "online" } };
let healthThrows = false;
const registry = new Registry();
const lookedUp: string[] = [];
const ID = "A".repeat(24);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "estuary-http-"));
  await writeFile(join(root, "file"), "<svg onload=alert(1)></svg>");
  new Counter({ name: "estuary_test_counter", help: "test", registers: [registry] }).inc(3);
  // A stand-in store: the server's job is routing and headers, the store's is tested apart.
  const media = {
    publish: async () => "unused",
    get: async (id: string) => {
      lookedUp.push(id);
      return id === ID ? { path: join(root, "file"), mediaType: "image/svg+xml", name: "pic \"1\".svg", size: 27 } : undefined;
    },
    sweep: async () => 0,
    close: () => {},
  } satisfies MediaStore;
  server = await startHttpServer({
    host: "127.0.0.1",
    port: 0,
    media,
    registry,
    health: () => {
      if (healthThrows) throw new Error("boom");
      return health;
    },
    log: silentLogger(),
  });
});

afterAll(async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
});

/** Raw request (fetch would normalise paths like /media/../x before sending). */
function raw(method: string, path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("startHttpServer", () => {
  it("listens on a free port when asked for port 0", () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(server.url).not.toMatch(/:0\/$/);
  });

  it("serves the registry's metrics in Prometheus text format", async () => {
    const res = await raw("GET", "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe(registry.contentType);
    expect(res.body).toContain("estuary_test_counter 3");
  });

  it("counts its own requests in the registry", async () => {
    await raw("GET", "/health");
    const res = await raw("GET", "/metrics");
    expect(res.body).toMatch(/estuary_http_requests_total\{route="health",status="200"\} [1-9]/);
  });

  it("answers /health 200 or 503 from the callback", async () => {
    health = { ok: true, components: { "irc.example.org": "online" } };
    let res = await raw("GET", "/health");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: "ok", components: { "irc.example.org": "online" } });
    health = { ok: false, components: { "irc.example.org": "offline" } };
    res = await raw("GET", "/health");
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toEqual({ status: "unhealthy", components: { "irc.example.org": "offline" } });
    healthThrows = true;
    res = await raw("GET", "/health");
    healthThrows = false;
    expect(res.status).toBe(503);
  });

  it("serves media inert: type kept, nosniff, sandboxing CSP, inline with a safe name", async () => {
    const res = await raw("GET", `/media/${ID}/whatever-name.svg`);
    expect(res.status).toBe(200);
    expect(res.body).toBe("<svg onload=alert(1)></svg>");
    expect(res.headers["content-type"]).toBe("image/svg+xml");
    expect(res.headers["content-length"]).toBe("27");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["content-security-policy"]).toMatch(/^default-src 'none'/);
    expect(res.headers["content-security-policy"]).toMatch(/sandbox/);
    expect(res.headers["content-disposition"]).toBe(`inline; filename="pic _1_.svg"; filename*=UTF-8''pic%20%221%22.svg`);
  });

  it("answers HEAD on media with headers and no body", async () => {
    const res = await raw("HEAD", `/media/${ID}/x`);
    expect(res.status).toBe(200);
    expect(res.headers["content-length"]).toBe("27");
    expect(res.body).toBe("");
  });

  it("looks up only the id segment, so traversal finds nothing", async () => {
    lookedUp.length = 0;
    for (const path of [`/media/../${ID}`, "/media/..%2F..%2Fetc%2Fpasswd/x", `/media/${ID}/a/b`, "/media/", "/media/unknown/x"]) {
      expect((await raw("GET", path)).status, path).toBe(404);
    }
    expect(lookedUp).toEqual(["..", "..%2F..%2Fetc%2Fpasswd", "", "unknown"]);
  });

  it("answers 404 elsewhere and 405 to other methods", async () => {
    expect((await raw("GET", "/")).status).toBe(404);
    expect((await raw("GET", "/metrics/x")).status).toBe(404);
    const res = await raw("POST", "/metrics");
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("GET, HEAD");
    expect((await raw("DELETE", `/media/${ID}/x`)).status).toBe(405);
  });

  it("answers 404 for media when no store is configured", async () => {
    const bare = await startHttpServer({ host: "127.0.0.1", port: 0, registry, health: () => health, log: silentLogger() });
    try {
      const res = await fetch(`${bare.url}media/${ID}/x`);
      expect(res.status).toBe(404);
    } finally {
      await bare.close();
    }
  });

  it("rejects when the port is taken", async () => {
    const port = Number(new URL(server.url).port);
    await expect(startHttpServer({ host: "127.0.0.1", port, registry, health: () => health, log: silentLogger() })).rejects.toThrow(/EADDRINUSE/);
  });
});
