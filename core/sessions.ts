/**
 * Per-user adapter sessions of one network, and which of the user's XMPP
 * resources are online (from their presence to the gateway domain).
 *
 * A session is keyed by the user's bare JID and nothing else: every XMPP
 * resource of the user shares it, and no other user can reach it.
 * Networks that need registration open the session when the user comes
 * online and close it when their last resource leaves (XEP-0100 §4.4/§4.5);
 * networks usable without registration (IRC) open it on first use.
 */
import type { AdapterSession, SessionContext } from "./adapter.ts";
import { fail } from "./errors.ts";
import { metrics } from "./metrics.ts";
import type { LegacyEvent, SessionState } from "./model.ts";
import type { Network } from "./network.ts";

interface Entry {
  /** Last time the user or the network did something in this session (ms). */
  lastActive: number;
  session?: AdapterSession;
  opening?: Promise<AdapterSession>;
  abort: AbortController;
  state: SessionState;
  stateText?: string;
}

export class SessionManager {
  private readonly entries = new Map<string, Entry>();
  private readonly online = new Map<string, Set<string>>();
  private readonly net: () => Network;
  private readonly onEvent: (user: string, event: LegacyEvent) => void;

  constructor(net: () => Network, onEvent: (user: string, event: LegacyEvent) => void) {
    this.net = net;
    this.onEvent = onEvent;
  }

  /** The open session of a user, if any (never opens one). */
  peek(user: string): AdapterSession | undefined {
    return this.entries.get(user)?.session;
  }

  state(user: string): { state: SessionState; text?: string } | undefined {
    const e = this.entries.get(user);
    return e ? { state: e.state, text: e.stateText } : undefined;
  }

  users(): string[] {
    return [...this.entries.keys()];
  }

  /** The user's session, opened if needed. Throws registration-required when the network needs it. */
  async get(user: string): Promise<AdapterSession> {
    const existing = this.entries.get(user);
    if (existing?.session) return existing.session;
    if (existing?.opening) return existing.opening;
    const net = this.net();
    if (this.entries.size >= net.limits.maxUsers) {
      throw fail("not-allowed", "The gateway has reached its user limit; try again later");
    }
    // The entry is in place before the first await: a second call for this user (a presence and
    // a message arriving together) shares this opening instead of opening a second session, and
    // concurrent users count against limits.maxUsers at once.
    const abort = new AbortController();
    const entry: Entry = { abort, state: "connecting", lastActive: Date.now() };
    entry.opening = this.open(user, entry).then(
      (session) => {
        entry.session = session;
        entry.opening = undefined;
        if (entry.state === "connecting") entry.state = "online";
        metrics.sessions.set({ network: net.name }, this.openCount());
        if (abort.signal.aborted) void session.close("closed while opening").catch(() => {});
        return session;
      },
      (err: unknown) => {
        if (this.entries.get(user) === entry) this.entries.delete(user);
        throw err;
      },
    );
    this.entries.set(user, entry);
    return entry.opening;
  }

  private async open(user: string, entry: Entry): Promise<AdapterSession> {
    const net = this.net();
    const abort = entry.abort;
    const registration = await net.store.registrations.get(user, net.name);
    if (net.adapter.registration.required && !registration) {
      throw fail("registration-required", `Register with ${net.domain} first (${net.adapter.displayName} account needed)`);
    }
    const ctx: SessionContext = {
      user,
      registration: registration ?? {},
      emit: (event) => {
        // A closed session's late events (a socket closing, a timer) must not reach the user.
        if (abort.signal.aborted) return;
        if (event.type === "status") {
          entry.state = event.state;
          entry.stateText = event.text;
        } else entry.lastActive = Date.now();
        this.onEvent(user, event);
      },
      log: net.log.child({ session: net.name }),
      store: net.store.scoped(user, net.name),
      signal: abort.signal,
      fetch: net.fetch,
      ...(net.media ? { media: net.media } : {}),
    };
    return net.adapter.openSession(ctx);
  }

  async close(user: string, reason?: string): Promise<void> {
    const entry = this.entries.get(user);
    if (!entry) return;
    this.entries.delete(user);
    entry.abort.abort();
    const session = entry.session ?? (await entry.opening?.catch(() => undefined));
    metrics.sessions.set({ network: this.net().name }, this.openCount());
    if (!session) return;
    try {
      await session.close(reason);
    } catch (err) {
      this.net().log.warn({ err }, "session close failed");
    }
  }

  async closeAll(reason?: string): Promise<void> {
    await Promise.all([...this.entries.keys()].map((u) => this.close(u, reason)));
  }

  /** Marks the user's session as in use (a stanza from them). */
  touch(user: string): void {
    const e = this.entries.get(user);
    if (e) e.lastActive = Date.now();
  }

  /**
   * Closes sessions nobody uses any more: on networks usable without
   * registration (IRC) nothing else ends them, and they would pile up to
   * `limits.maxUsers`. A session stays while the user is in a room, is online
   * to the gateway, or anything happened in it within `idleMs`.
   */
  async closeIdle(idleMs: number, now = Date.now()): Promise<number> {
    const net = this.net();
    if (net.adapter.registration.required) return 0;
    const idle = [...this.entries].filter(
      ([user, e]) => e.session && now - e.lastActive >= idleMs && !this.isOnline(user) && net.rooms.list(user).length === 0,
    );
    for (const [user] of idle) await this.close(user, "Idle");
    return idle.length;
  }

  /** Records an available presence from a resource; true when the user just came online. */
  resourceAvailable(user: string, full: string): boolean {
    let set = this.online.get(user);
    const wasOnline = set !== undefined && set.size > 0;
    if (!set) this.online.set(user, (set = new Set()));
    set.add(full);
    return !wasOnline;
  }

  /** Records an unavailable presence; true when the user's last resource left. */
  resourceUnavailable(user: string, full: string): boolean {
    const set = this.online.get(user);
    if (!set || !set.delete(full)) return false;
    if (set.size > 0) return false;
    this.online.delete(user);
    return true;
  }

  isOnline(user: string): boolean {
    return (this.online.get(user)?.size ?? 0) > 0;
  }

  private openCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.session) n++;
    return n;
  }
}
