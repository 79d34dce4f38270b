/**
 * A test homeserver: an in-process implementation of the parts of the Matrix
 * Client-Server API (https://spec.matrix.org/latest/client-server-api/) that
 * matrix-js-sdk uses, for tests. No real homeserver can be installed here.
 *
 * Single server, no federation, no E2EE (key endpoints store and echo only),
 * one linear timeline per room, history visibility "shared".
 * Requests to endpoints it does not implement get 404 M_UNRECOGNIZED and are
 * recorded in `unknownRequests` so tests can assert the SDK hit none.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { errorReply, MatrixHttpError, parseJsonBody, readBody, Router, writeReply, type Json, type Reply } from "./test-homeserver/http.ts";
import { clientEvent } from "./test-homeserver/events.ts";
import { Rooms, type CreateRoomOptions } from "./test-homeserver/rooms.ts";
import { Accounts, Stream } from "./test-homeserver/store.ts";
import { accountRoutes } from "./test-homeserver/routes-account.ts";
import { roomRoutes } from "./test-homeserver/routes-rooms.ts";
import { mediaRoutes } from "./test-homeserver/media.ts";
import { RateLimiter, type LimitOptions } from "./test-homeserver/rate-limit.ts";
import { SimulatedUser } from "./test-homeserver/control.ts";
import type { Context } from "./test-homeserver/context.ts";

export { MatrixHttpError } from "./test-homeserver/http.ts";
export type { Json } from "./test-homeserver/http.ts";
export type { CreateRoomOptions } from "./test-homeserver/rooms.ts";
export type { LimitOptions } from "./test-homeserver/rate-limit.ts";
export { SimulatedUser } from "./test-homeserver/control.ts";

export interface RequestRecord {
  method: string;
  path: string;
}

/**
 * Endpoints of unstable MSCs the SDK probes on start-up. A server without the
 * feature answers 404 M_UNRECOGNIZED, which the SDK treats as "unsupported";
 * these are answered the same way but are not counted as unknown.
 */
const UNSUPPORTED_PROBES = [/^\/_matrix\/client\/unstable\/org\.matrix\.msc4143\/rtc\/transports$/];

export class TestHomeserver {
  readonly serverName: string;
  /** Every request received, in order. */
  readonly requests: RequestRecord[] = [];
  /** Requests to endpoints this server does not implement. */
  readonly unknownRequests: RequestRecord[] = [];
  /** Handler crashes (answered 500): a bug in this server, never expected. */
  readonly serverErrors: unknown[] = [];
  private readonly stream = new Stream();
  private readonly accounts: Accounts;
  private readonly rooms: Rooms;
  private readonly router = new Router();
  private readonly limiter = new RateLimiter();
  private readonly stopping = new AbortController();
  private server: Server | undefined;
  private baseUrl = "";

  private constructor(serverName: string) {
    this.serverName = serverName;
    this.accounts = new Accounts(serverName, this.stream);
    this.rooms = new Rooms(serverName, this.stream, this.accounts);
    const ctx: Context = { serverName, baseUrl: () => this.baseUrl, stream: this.stream, accounts: this.accounts, rooms: this.rooms };
    accountRoutes(this.router, ctx);
    roomRoutes(this.router, ctx);
    mediaRoutes(this.router, ctx);
  }

  /** Starts on a free port of 127.0.0.1. */
  static async start(opts: { serverName?: string } = {}): Promise<TestHomeserver> {
    const hs = new TestHomeserver(opts.serverName ?? "test.local");
    const server = createServer((req, res) => void hs.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    hs.server = server;
    hs.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return hs;
  }

  get url(): string {
    return this.baseUrl;
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.rooms.stopTimers();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  // ---- control API ----

  addUser(opts: { localpart: string; password: string; displayname?: string }): string {
    return this.accounts.addUser(opts);
  }

  /** An access token for `userId` without an HTTP login (as `createClient({ accessToken })` needs). */
  loginAs(userId: string, deviceId?: string): { userId: string; accessToken: string; deviceId: string } {
    const s = this.accounts.createSession(userId, deviceId);
    return { userId: s.userId, accessToken: s.accessToken, deviceId: s.deviceId };
  }

  asUser(userId: string): SimulatedUser {
    return new SimulatedUser(userId, this.rooms, this.accounts);
  }

  createRoom(creatorUserId: string, opts: CreateRoomOptions = {}): string {
    return this.rooms.createRoom(creatorUserId, opts);
  }

  /** The room's events, oldest first, as clients see them (redacted ones pruned). */
  events(roomId: string): Json[] {
    return this.rooms.get(roomId).events.map((e) => clientEvent(e));
  }

  /** Current state content, or undefined. */
  state(roomId: string, type: string, stateKey = ""): Json | undefined {
    return this.rooms.get(roomId).getState(type, stateKey)?.content;
  }

  membership(roomId: string, userId: string): string | undefined {
    return this.rooms.get(roomId).membership(userId);
  }

  accountData(userId: string, type: string, roomId?: string): Json | undefined {
    const account = this.accounts.get(userId);
    return (roomId ? account.roomAccountData.get(roomId) : account.accountData)?.get(type)?.value;
  }

  /** Resolves with the first event (already in the room or arriving later) that matches. */
  waitForEvent(roomId: string, predicate: (ev: Json) => boolean, timeoutMs = 5_000): Promise<Json> {
    const existing = this.events(roomId).find(predicate);
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const unsubscribe = this.rooms.onEvent((ev) => {
        if (ev.room_id !== roomId) return;
        const json = clientEvent(ev);
        if (!predicate(json)) return;
        clearTimeout(timer);
        unsubscribe();
        resolve(json);
      });
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new Error(`no matching event in ${roomId} within ${timeoutMs} ms`));
      }, timeoutMs);
    });
  }

  /** How many /sync long polls are parked on the server right now (a client is idle and listening). */
  get waitingSyncs(): number {
    return this.stream.waiting;
  }

  /** Makes the next matching request(s) fail with 429 M_LIMIT_EXCEEDED. */
  limitNext(matcher: string | RegExp, opts: LimitOptions = {}): void {
    this.limiter.add(matcher, opts);
  }

  /** Bytes and type of uploaded media, by mxc:// URI. */
  media(mxc: string): { bytes: Buffer; contentType: string } | undefined {
    const m = /^mxc:\/\/([^/]+)\/(.+)$/.exec(mxc);
    if (!m || m[1] !== this.serverName) return undefined;
    return this.accounts.media.get(m[2]!);
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = req.method ?? "GET";
    const path = url.pathname;
    const record = { method, path };
    this.requests.push(record);
    const aborted = new AbortController();
    res.on("close", () => aborted.abort());
    const signal = AbortSignal.any([aborted.signal, this.stopping.signal]);
    let reply: Reply;
    try {
      const limited = this.limiter.check(method, path);
      const match = this.router.match(method, path);
      if (limited) {
        reply = limited;
      } else if (match === undefined || match === "method") {
        if (!UNSUPPORTED_PROBES.some((re) => re.test(path))) this.unknownRequests.push(record);
        // Spec: unknown endpoints get 404 and known ones with the wrong method 405, both M_UNRECOGNIZED.
        reply = errorReply(new MatrixHttpError(match === "method" ? 405 : 404, "M_UNRECOGNIZED", "Unrecognized request"));
      } else {
        const raw = await readBody(req);
        const isUpload = path === "/_matrix/media/v3/upload";
        const body = isUpload ? {} : parseJsonBody(raw, req.headers["content-type"]);
        reply = await match.handler({ method, path, query: url.searchParams, params: match.params, headers: req.headers, body, raw, signal });
      }
    } catch (err) {
      if (err instanceof MatrixHttpError) {
        reply = errorReply(err);
      } else {
        this.serverErrors.push(err);
        reply = errorReply(new MatrixHttpError(500, "M_UNKNOWN", String(err)));
      }
    }
    if (!res.destroyed) writeReply(res, reply);
  }
}
