/**
 * Wire layer of the fake Bot API: request parsing and the response envelope.
 *
 * Telegram accepts parameters as a query string, application/x-www-form-urlencoded,
 * application/json or multipart/form-data, and answers every call with
 * `{ ok: true, result }` or `{ ok: false, error_code, description, parameters? }`
 * using error_code as the HTTP status (https://core.telegram.org/bots/api#making-requests).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ResponseParameters } from "grammy/types";

/** A failed call, answered with the documented error envelope. */
export class ApiError extends Error {
  readonly error_code: number;
  readonly description: string;
  readonly parameters: ResponseParameters | undefined;

  constructor(error_code: number, description: string, parameters?: ResponseParameters) {
    super(description);
    this.error_code = error_code;
    this.description = description;
    this.parameters = parameters;
  }
}

/** Telegram's "Bad Request: …" 400 answer. */
export function badRequest(what: string): ApiError {
  return new ApiError(400, `Bad Request: ${what}`);
}

export function forbidden(what: string): ApiError {
  return new ApiError(403, `Forbidden: ${what}`);
}

/** One file part of a multipart upload. */
export interface Upload {
  readonly filename: string;
  readonly contentType: string;
  readonly bytes: Uint8Array;
}

export interface ParsedBody {
  readonly params: Record<string, unknown>;
  /** Multipart file parts by field name (the `attach://<name>` target). */
  readonly uploads: Map<string, Upload>;
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Parses query string and body into one parameter bag, as Telegram merges them. */
export async function parseRequest(req: IncomingMessage, url: URL): Promise<ParsedBody> {
  const params: Record<string, unknown> = Object.fromEntries(url.searchParams);
  const uploads = new Map<string, Upload>();
  const body = await readAll(req);
  const type = (req.headers["content-type"] ?? "").toLowerCase();
  if (body.length === 0) return { params, uploads };
  if (type.startsWith("application/json")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      throw badRequest("can't parse JSON encoded request body");
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw badRequest("JSON request body must be an object");
    }
    Object.assign(params, parsed);
  } else if (type.startsWith("application/x-www-form-urlencoded")) {
    Object.assign(params, Object.fromEntries(new URLSearchParams(body.toString("utf8"))));
  } else if (type.startsWith("multipart/form-data")) {
    // Node's fetch Request parses multipart bodies, so no library is needed.
    const form = await new Request("http://fake.invalid/", {
      method: "POST",
      headers: { "content-type": req.headers["content-type"] ?? "" },
      body,
    }).formData();
    for (const [name, value] of form) {
      if (typeof value === "string") params[name] = value;
      else
        uploads.set(name, {
          filename: value.name,
          contentType: value.type || "application/octet-stream",
          bytes: new Uint8Array(await value.arrayBuffer()),
        });
    }
  }
  return { params, uploads };
}

export function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  const body = JSON.stringify(payload);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

export function sendResult(res: ServerResponse, result: unknown): void {
  sendJson(res, 200, { ok: true, result });
}

export function sendError(res: ServerResponse, error: ApiError): void {
  sendJson(res, error.error_code, {
    ok: false,
    error_code: error.error_code,
    description: error.description,
    ...(error.parameters === undefined ? {} : { parameters: error.parameters }),
  });
}

/**
 * Typed access to a parameter bag. Form-encoded values arrive as strings and
 * object-valued parameters (entities, reply_parameters, …) as JSON strings, so
 * every accessor coerces the way Telegram does.
 */
export class Params {
  readonly raw: Record<string, unknown>;
  readonly uploads: Map<string, Upload>;

  constructor(raw: Record<string, unknown>, uploads: Map<string, Upload> = new Map()) {
    this.raw = raw;
    this.uploads = uploads;
  }

  has(name: string): boolean {
    const v = this.raw[name];
    return v !== undefined && v !== null && v !== "";
  }

  int(name: string): number | undefined {
    const v = this.raw[name];
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v === "number" && Number.isInteger(v)) return v;
    if (typeof v === "string" && /^-?\d+$/.test(v.trim())) return Number(v.trim());
    throw badRequest(`invalid ${name} specified`);
  }

  requireInt(name: string): number {
    const v = this.int(name);
    if (v === undefined) throw badRequest(`${name} is empty`);
    return v;
  }

  str(name: string): string | undefined {
    const v = this.raw[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    throw badRequest(`invalid ${name} specified`);
  }

  bool(name: string): boolean | undefined {
    const v = this.raw[name];
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v === "boolean") return v;
    if (v === "true" || v === "1" || v === 1) return true;
    if (v === "false" || v === "0" || v === 0) return false;
    throw badRequest(`invalid ${name} specified`);
  }

  /** An object/array parameter, given natively (JSON body) or as a JSON string. */
  json<T>(name: string): T | undefined {
    const v = this.raw[name];
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v !== "string") return v as T;
    try {
      return JSON.parse(v) as T;
    } catch {
      throw badRequest(`can't parse ${name} JSON object`);
    }
  }

  /** chat_id: an integer or "@username" (https://core.telegram.org/bots/api#sendmessage). */
  chatId(name = "chat_id"): number | string {
    const v = this.raw[name];
    if (typeof v === "string" && v.startsWith("@")) return v;
    const id = this.int(name);
    if (id === undefined) throw badRequest(`${name} is empty`);
    return id;
  }
}
