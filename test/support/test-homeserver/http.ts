/**
 * HTTP plumbing for the test homeserver: Matrix error responses, a small
 * method+path router, and body reading. No Matrix semantics live here.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * An error the Client-Server API reports as `{ errcode, error }` with an HTTP
 * status (spec: "Standard error response"). Core operations throw it; the HTTP
 * layer serialises it; the control API lets it propagate to the test.
 */
export class MatrixHttpError extends Error {
  readonly status: number;
  readonly errcode: string;
  readonly extra: Record<string, unknown>;
  constructor(status: number, errcode: string, message: string, extra: Record<string, unknown> = {}) {
    super(`${errcode}: ${message}`);
    this.name = "MatrixHttpError";
    this.status = status;
    this.errcode = errcode;
    this.extra = extra;
  }
}

export const forbidden = (msg: string) => new MatrixHttpError(403, "M_FORBIDDEN", msg);
export const notFound = (msg: string) => new MatrixHttpError(404, "M_NOT_FOUND", msg);
export const badJson = (msg: string) => new MatrixHttpError(400, "M_BAD_JSON", msg);
export const invalidParam = (msg: string) => new MatrixHttpError(400, "M_INVALID_PARAM", msg);

export type Json = Record<string, unknown>;

export interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  params: Record<string, string>;
  headers: IncomingMessage["headers"];
  /** Parsed JSON body ({} when empty); raw bytes are in `raw`. */
  body: Json;
  raw: Buffer;
  /** Aborted when the client goes away or the server stops (ends long polls). */
  signal: AbortSignal;
}

/** What a handler returns: JSON (status 200 by default) or raw bytes (media). */
export type Reply =
  | { status?: number; json: unknown; headers?: Record<string, string> }
  | { status?: number; bytes: Buffer; headers: Record<string, string> };

export type Handler = (req: Request) => Reply | Promise<Reply>;

interface Route {
  method: string;
  segments: string[];
  handler: Handler;
}

/**
 * Routes by method and `/`-separated segments; `:name` captures one segment
 * (URL-decoded, may be empty so `/state/m.room.name/` matches an empty state key).
 */
export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler): void {
    this.routes.push({ method, segments: pattern.split("/"), handler });
  }

  /** `undefined` when no pattern matches; `"method"` when only the method differs. */
  match(method: string, path: string): { handler: Handler; params: Record<string, string> } | "method" | undefined {
    const parts = path.split("/");
    let methodMismatch = false;
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      if (route.method !== method) {
        methodMismatch = true;
        continue;
      }
      return { handler: route.handler, params };
    }
    return methodMismatch ? "method" : undefined;
  }
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const v = parts[i]!;
    if (p.startsWith(":")) {
      try {
        params[p.slice(1)] = decodeURIComponent(v);
      } catch {
        return undefined;
      }
    } else if (p !== v) {
      return undefined;
    }
  }
  return params;
}

const MAX_BODY = 64 * 1024 * 1024;

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new MatrixHttpError(413, "M_TOO_LARGE", "request body too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export function parseJsonBody(raw: Buffer, contentType: string | undefined): Json {
  if (raw.length === 0) return {};
  if (contentType && !contentType.includes("json")) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new MatrixHttpError(400, "M_NOT_JSON", "body is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw badJson("body must be a JSON object");
  return parsed as Json;
}

export function writeReply(res: ServerResponse, reply: Reply): void {
  const status = reply.status ?? 200;
  if ("bytes" in reply) {
    res.writeHead(status, { ...reply.headers, "Content-Length": String(reply.bytes.length) });
    res.end(reply.bytes);
    return;
  }
  const body = Buffer.from(JSON.stringify(reply.json));
  res.writeHead(status, {
    ...reply.headers,
    "Content-Type": "application/json",
    "Content-Length": String(body.length),
  });
  res.end(body);
}

export function errorReply(err: MatrixHttpError, headers?: Record<string, string>): Reply {
  return { status: err.status, json: { errcode: err.errcode, error: err.message, ...err.extra }, headers };
}

/** Typed accessors for untrusted JSON bodies. */
export function str(body: Json, key: string): string | undefined {
  const v = body[key];
  return typeof v === "string" ? v : undefined;
}

export function obj(v: unknown): Json | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}
