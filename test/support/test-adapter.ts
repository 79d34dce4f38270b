/**
 * A test-only network adapter: exercises the core end to end through a real
 * XMPP server without any real network. Tests play "the remote person" by
 * emitting events into a user's session, and read what the user sent.
 *
 * Its little world: rooms are `#name`, contacts anything else, `net` is the
 * service. `#closed` refuses joins, nick `taken` is in use, nick `long-nick`
 * is shortened by the "network" (XEP-0045 status 210), contact `nobody` does
 * not exist, password `wrong` fails registration.
 */
import type { Adapter, AdapterSession, SessionContext } from "../../core/adapter.ts";
import { fail } from "../../core/errors.ts";
import type { ChatRef, ChatState, LegacyEvent, OutgoingMessage, RoomSnapshot, Show } from "../../core/model.ts";

export interface SentRecord {
  user: string;
  op: "send" | "correct" | "retract" | "react" | "typing" | "subject" | "nick" | "leave" | "presence" | "read" | "join";
  chat?: ChatRef;
  message?: OutgoingMessage;
  target?: string;
  value?: unknown;
}

export class TestNetwork {
  readonly sessions = new Map<string, SessionContext>();
  /** false: usable without registering, like IRC. */
  registrationRequired = true;
  readonly log: SentRecord[] = [];
  private nextId = 1;
  /** Rooms whose join the network does not answer yet (holdJoin). */
  private readonly joinGates = new Map<string, Promise<void>>();
  private waiters: { pred: (r: SentRecord) => boolean; resolve: (r: SentRecord) => void }[] = [];

  /** Makes joins of `room` wait until the returned function is called (a slow network join). */
  holdJoin(room: string): () => void {
    let release!: () => void;
    this.joinGates.set(room, new Promise<void>((r) => (release = r)));
    return () => {
      this.joinGates.delete(room);
      release();
    };
  }

  /** Plays the network: an event into the user's session. */
  emit(user: string, event: LegacyEvent): void {
    const ctx = this.sessions.get(user);
    if (!ctx) throw new Error(`no test session for ${user}`);
    ctx.emit(event);
  }

  /** Resolves with the first record (already logged or to come) that matches. */
  waitForSent(pred: (r: SentRecord) => boolean, timeoutMs = 10_000): Promise<SentRecord> {
    const found = this.log.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timed out waiting for the test network to receive something")), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
    });
  }

  private record(r: SentRecord): void {
    this.log.push(r);
    const still = [];
    for (const w of this.waiters) (w.pred(r) ? w.resolve(r) : still.push(w));
    this.waiters = still;
  }

  private id(): string {
    return `m${this.nextId++}`;
  }

  adapter(): Adapter {
    const net = this;
    return {
      network: "test",
      gatewayType: "test",
      displayName: "Test network",
      capabilities: { rooms: true },
      registration: {
        required: net.registrationRequired,
        instructions: "Enter your test network username and password",
        fields: [
          { var: "username", label: "Username", type: "text-single", required: true },
          { var: "password", label: "Password", type: "text-private", required: true, secret: true },
        ],
      },
      ids: {
        parse(local) {
          if (local === "") return undefined;
          if (local === "net") return { kind: "service", service: "net" };
          if (local.startsWith("#")) return local.length > 1 ? { kind: "room", room: local } : undefined;
          return { kind: "contact", contact: local };
        },
        format(address) {
          return address.kind === "room" ? address.room : address.kind === "contact" ? address.contact : address.service;
        },
      },
      serviceSettings: {
        fields: [
          { var: "nick", label: "Nickname", type: "text-single" },
          { var: "password", label: "Server password", type: "text-private", secret: true },
        ],
        key: (service) => `server:${service}`,
        validate(values) {
          if (values.nick?.includes(" ")) throw fail("not-acceptable", "Nickname: no spaces");
          return values;
        },
      },
      async validateRegistration(values) {
        if (values.password === "wrong") throw fail("not-acceptable", "Login failed: wrong password");
        return values;
      },
      async openSession(ctx) {
        net.sessions.set(ctx.user, ctx);
        ctx.signal.addEventListener("abort", () => {
          if (net.sessions.get(ctx.user) === ctx) net.sessions.delete(ctx.user);
        });
        queueMicrotask(() => ctx.emit({ type: "status", state: "online" }));
        return net.session(ctx);
      },
    };
  }

  private session(ctx: SessionContext): AdapterSession {
    const net = this;
    const user = ctx.user;
    return {
      async close() {},
      async sendMessage(chat, message) {
        if (chat.kind === "direct" && chat.contact === "nobody") throw fail("not-found", "No such user: nobody");
        const id = net.id();
        net.record({ user, op: "send", chat, message, target: id });
        return { id };
      },
      async correct(chat, target, message) {
        const id = net.id();
        net.record({ user, op: "correct", chat, message, target, value: id });
        return { id };
      },
      async retract(chat, target) {
        net.record({ user, op: "retract", chat, target });
      },
      async react(chat, target, emojis) {
        net.record({ user, op: "react", chat, target, value: emojis });
      },
      async markRead(chat, target) {
        net.record({ user, op: "read", chat, target });
      },
      async setTyping(chat, state: ChatState) {
        net.record({ user, op: "typing", chat, value: state });
      },
      async joinRoom(room, nick): Promise<RoomSnapshot> {
        net.record({ user, op: "join", chat: { kind: "room", room }, value: nick });
        await net.joinGates.get(room);
        if (room === "#closed") throw fail("not-allowed", "Cannot join #closed (invite only)");
        if (nick === "taken") throw fail("conflict", "Nickname taken is already in use");
        return {
          nick: nick === "long-nick" ? "long-ni" : nick,
          self: { role: "participant", affiliation: "none" },
          occupants: [
            { nick: "alice", contact: "alice", role: "moderator", affiliation: "admin" },
            { nick: "bob", contact: "bob", role: "participant", affiliation: "none" },
          ],
          subject: { text: `Welcome to ${room}`, by: "alice" },
        };
      },
      async leaveRoom(room) {
        net.record({ user, op: "leave", chat: { kind: "room", room } });
      },
      async setSubject(room, subject) {
        net.record({ user, op: "subject", chat: { kind: "room", room }, value: subject });
        ctx.emit({ type: "topic", room, text: subject, by: undefined });
      },
      async changeNick(room, nick) {
        if (nick === "taken") throw fail("conflict", "Nickname taken is already in use");
        net.record({ user, op: "nick", chat: { kind: "room", room }, value: nick });
        return nick;
      },
      async contactInfo(contact) {
        return contact === "nurse" ? { name: "The Nurse" } : undefined;
      },
      async setPresence(show: Show, status?: string) {
        net.record({ user, op: "presence", value: { show, status } });
      },
    };
  }
}
