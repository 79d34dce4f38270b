/**
 * In-memory state of the test homeserver: the stream position every change
 * advances, accounts, sessions (access tokens/devices), account data,
 * presence, to-device queues, filters and media. Room state lives in rooms.ts.
 */
import { randomBytes } from "node:crypto";
import { forbidden, MatrixHttpError, type Json } from "./http.ts";

export function randomId(bytes = 12): string {
  return randomBytes(bytes).toString("base64url");
}

/**
 * One global, monotonically increasing position. Every change that a /sync
 * could report is stamped with the position it was made at, so an
 * incremental sync returns exactly what has a position above its `since`.
 */
export class Stream {
  pos = 0;
  private waiters = new Set<() => void>();

  /** How many long polls are parked waiting for a change. */
  get waiting(): number {
    return this.waiters.size;
  }

  /** Advance and wake every long poll (each re-checks whether it has news). */
  advance(): number {
    this.pos += 1;
    const woken = this.waiters;
    this.waiters = new Set();
    queueMicrotask(() => {
      for (const wake of woken) wake();
    });
    return this.pos;
  }

  /** Resolves on the next advance, after `ms`, or when `signal` aborts. */
  waitForChange(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal.addEventListener("abort", done, { once: true });
      this.waiters.add(done);
    });
  }
}

export interface Positioned<T> {
  value: T;
  pos: number;
}

export interface Device {
  deviceId: string;
  displayName?: string;
  deviceKeys?: Json;
  oneTimeKeyCounts: Record<string, number>;
  fallbackKeyTypes: string[];
  toDevice: { pos: number; sender: string; type: string; content: Json }[];
}

export interface Account {
  userId: string;
  password: string;
  displayname?: string;
  avatarUrl?: string;
  accountData: Map<string, Positioned<Json>>;
  roomAccountData: Map<string, Map<string, Positioned<Json>>>;
  filters: Json[];
  presence: Positioned<{ presence: string; statusMsg?: string; lastActive: number }>;
  devices: Map<string, Device>;
}

export interface Session {
  accessToken: string;
  userId: string;
  deviceId: string;
}

export interface Media {
  bytes: Buffer;
  contentType: string;
  filename?: string;
  uploader: string;
}

export class Accounts {
  readonly users = new Map<string, Account>();
  readonly sessions = new Map<string, Session>();
  readonly media = new Map<string, Media>();
  private readonly toDeviceTxns = new Set<string>();
  readonly serverName: string;
  private readonly stream: Stream;

  constructor(serverName: string, stream: Stream) {
    this.serverName = serverName;
    this.stream = stream;
  }

  addUser(opts: { localpart: string; password: string; displayname?: string }): string {
    const userId = `@${opts.localpart}:${this.serverName}`;
    if (this.users.has(userId)) throw new MatrixHttpError(400, "M_USER_IN_USE", `${userId} exists`);
    this.users.set(userId, {
      userId,
      password: opts.password,
      displayname: opts.displayname ?? opts.localpart,
      accountData: new Map(),
      roomAccountData: new Map(),
      filters: [],
      presence: { value: { presence: "offline", lastActive: Date.now() }, pos: 0 },
      devices: new Map(),
    });
    return userId;
  }

  get(userId: string): Account {
    const account = this.users.get(userId);
    if (!account) throw new MatrixHttpError(404, "M_NOT_FOUND", `unknown user ${userId}`);
    return account;
  }

  /** Accepts a full user ID or a localpart of this server (login identifiers allow both). */
  resolveUser(user: string): Account | undefined {
    const userId = user.startsWith("@") ? user : `@${user}:${this.serverName}`;
    return this.users.get(userId);
  }

  createSession(userId: string, deviceId = randomId(6).toUpperCase(), displayName?: string): Session {
    const account = this.get(userId);
    if (!account.devices.has(deviceId)) {
      account.devices.set(deviceId, { deviceId, displayName, oneTimeKeyCounts: {}, fallbackKeyTypes: [], toDevice: [] });
    }
    const session = { accessToken: `syt_${randomId(24)}`, userId, deviceId };
    this.sessions.set(session.accessToken, session);
    return session;
  }

  login(user: string, password: string, deviceId?: string, displayName?: string): Session {
    const account = this.resolveUser(user);
    // Same error for unknown user and wrong password: don't reveal which accounts exist.
    if (!account || account.password !== password) throw forbidden("Invalid username or password");
    return this.createSession(account.userId, deviceId, displayName);
  }

  logout(accessToken: string): void {
    this.sessions.delete(accessToken);
  }

  setAccountData(userId: string, type: string, content: Json, roomId?: string): void {
    const account = this.get(userId);
    let target = account.accountData;
    if (roomId) {
      target = account.roomAccountData.get(roomId) ?? new Map();
      account.roomAccountData.set(roomId, target);
    }
    target.set(type, { value: content, pos: this.stream.advance() });
  }

  getAccountData(userId: string, type: string, roomId?: string): Json {
    const account = this.get(userId);
    const source = roomId ? account.roomAccountData.get(roomId) : account.accountData;
    const entry = source?.get(type);
    if (!entry) throw new MatrixHttpError(404, "M_NOT_FOUND", "Account data not found");
    return entry.value;
  }

  setPresence(userId: string, presence: string, statusMsg?: string): void {
    const account = this.get(userId);
    account.presence = { value: { presence, statusMsg, lastActive: Date.now() }, pos: this.stream.advance() };
  }

  /**
   * PUT /sendToDevice: `*` as device ID fans out to all of the user's devices.
   * A repeated `txnKey` (sender, device, txnId) is not delivered twice.
   */
  sendToDevice(sender: string, type: string, messages: Json, txnKey?: string): void {
    if (txnKey !== undefined) {
      if (this.toDeviceTxns.has(txnKey)) return;
      this.toDeviceTxns.add(txnKey);
    }
    const pos = this.stream.advance();
    for (const [userId, perDevice] of Object.entries(messages)) {
      const account = this.users.get(userId);
      if (!account || typeof perDevice !== "object" || perDevice === null) continue;
      for (const [deviceId, content] of Object.entries(perDevice as Json)) {
        const targets = deviceId === "*" ? [...account.devices.values()] : [account.devices.get(deviceId)];
        for (const device of targets) device?.toDevice.push({ pos, sender, type, content: content as Json });
      }
    }
  }

  /** The position where an inline or stored filter can be found, parsed. */
  resolveFilter(userId: string, filter: string | null): Json {
    if (!filter) return {};
    if (filter.trimStart().startsWith("{")) {
      try {
        return JSON.parse(filter) as Json;
      } catch {
        throw new MatrixHttpError(400, "M_NOT_JSON", "filter is not valid JSON");
      }
    }
    const stored = this.get(userId).filters[Number(filter)];
    if (!stored) throw new MatrixHttpError(400, "M_INVALID_PARAM", `unknown filter ${filter}`);
    return stored;
  }
}
