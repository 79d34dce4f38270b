/**
 * The gateway's optional HTTP listener: Prometheus metrics, a health check
 * for orchestrators, and the media published by adapters (./media.ts).
 *
 * Media is user-controlled content served from the gateway's origin, so it
 * is served inert: `X-Content-Type-Options: nosniff` (the browser keeps the
 * stored type), and `Content-Security-Policy: default-src 'none'; sandbox`
 * so an HTML or SVG file renders without scripts, forms or same-origin access.
 */
import { createReadStream } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pipeline } from "node:stream/promises";
import { Counter, type Registry } from "prom-client";
import type { Logger } from "pino";
import { contentDisposition } from "./filename.ts";
import type { MediaStore } from "./media.ts";

export interface Health {
  ok: boolean;
  /** Component name → state, e.g. `{ "irc.example.org": "online" }`. */
  components: Record<string, string>;
}

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  media?: MediaStore;
  registry: Registry;
  health: () => Health;
  log: Logger;
}

export interface HttpServer {
  /** Where the listener is reachable, e.g. `http://127.0.0.1:8080/`. */
  url: string;
  close(): Promise<void>;
}

type Route = "metrics" | "health" | "media" | "other";

const COMMON_HEADERS = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};
const MEDIA_CSP = "default-src 'none'; sandbox";

/** One counter per registry (tests start several servers on one registry). */
function requestCounter(registry: Registry): Counter<"route" | "status"> {
  const name = "estuary_http_requests_total";
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<"route" | "status">;
  return new Counter({
    name,
    help: "HTTP requests served by the gateway's listener",
    labelNames: ["route", "status"],
    registers: [registry],
  });
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { registry, log } = options;
  const requests = requestCounter(registry);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<Route> {
    const path = (req.url ?? "/").split("?")[0]!;
    const route: Route = path === "/metrics" ? "metrics" : path === "/health" ? "health" : path.startsWith("/media/") ? "media" : "other";
    // RFC 9110 §15.5.6: 405 names the methods that would work.
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(res, 405, "text/plain; charset=utf-8", "Method not allowed\n", { allow: "GET, HEAD" });
      return route;
    }
    if (route === "metrics") {
      send(res, 200, registry.contentType, await registry.metrics());
    } else if (route === "health") {
      let health: Health;
      try {
        health = options.health();
      } catch (err) {
        log.warn({ err }, "health callback failed");
        health = { ok: false, components: {} };
      }
      const body = JSON.stringify({ status: health.ok ? "ok" : "unhealthy", components: health.components });
      send(res, health.ok ? 200 : 503, "application/json", body, { "cache-control": "no-store" });
    } else if (route === "media") {
      await serveMedia(path, req, res);
    } else {
      notFound(res);
    }
    return route;
  }

  async function serveMedia(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    // /media/<id> or /media/<id>/<name>: only the id is used, the name is for the user's eyes.
    const segments = path.split("/").slice(2);
    const id = segments[0];
    const media = segments.length <= 2 && id !== undefined ? await options.media?.get(id) : undefined;
    if (media === undefined) {
      notFound(res);
      return;
    }
    res.writeHead(200, {
      ...COMMON_HEADERS,
      "content-type": media.mediaType,
      "content-length": String(media.size),
      "content-disposition": contentDisposition(media.name, "inline"),
      "content-security-policy": MEDIA_CSP,
      "cache-control": "private, max-age=86400",
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    await pipeline(createReadStream(media.path), res);
  }

  const server = createServer((req, res) => {
    handle(req, res).then(
      (route) => {
        requests.inc({ route, status: String(res.statusCode) });
        log.debug({ method: req.method, route, status: res.statusCode }, "http request");
      },
      (err: unknown) => {
        log.warn({ err, method: req.method }, "http request failed");
        requests.inc({ route: "other", status: "500" });
        if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", "Internal error\n");
        else res.destroy();
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (err) => log.error({ err }, "http listener error"));
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}/`;
  log.info({ url }, "http listener started");

  return {
    url,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive connections would hold close() open until they time out.
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...COMMON_HEADERS,
    "content-type": type,
    "content-length": String(Buffer.byteLength(body)),
    ...extra,
  });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

function notFound(res: ServerResponse): void {
  send(res, 404, "text/plain; charset=utf-8", "Not found\n");
}
