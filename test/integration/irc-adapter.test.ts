/**
 * The IRC adapter against a real InspIRCd 3, with plain irc-framework clients
 * playing the people on IRC.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Adapter } from "../../core/adapter.ts";
import { isEstuaryError } from "../../core/errors.ts";
import { plain, toPlain, type RichText } from "../../core/format/model.ts";
import { silentLogger } from "../../core/log.ts";
import type { LegacyEvent } from "../../core/model.ts";
import { createIrcAdapter } from "../../adapters/irc/index.ts";
import { startInspircd, type InspircdHandle } from "../support/inspircd.ts";
import { memoryStore, openSession, type Harness } from "../support/adapter-harness.ts";
import { ircRemote, type IrcRemote } from "../support/irc-remote.ts";

async function until<T>(what: string, fn: () => T | undefined | false, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}

type Remote = IrcRemote;
const remote = ircRemote;
const remoteJoin = (r: Remote, channel: string): Promise<void> => r.join(channel);

const SERVER = "127.0.0.1";
const room = (c: string) => `${c}%${SERVER}`;
const contact = (n: string) => `${n.toLowerCase()}%${SERVER}`;
const text = (e: LegacyEvent) => ("text" in e ? toPlain(e.text as RichText) : "");

describe("IRC adapter against InspIRCd", () => {
  let ircd: InspircdHandle;
  let adapter: Adapter;
  let alice: Harness;
  let bob: Remote;
  let carol: Remote;

  beforeAll(async () => {
    ircd = await startInspircd();
    adapter = createIrcAdapter(
      {
        flood: { burst: 5, intervalMs: 0 },
        lingerMs: 60_000,
        joinTimeoutMs: 8000,
        reconnect: { initialMs: 8000, maxMs: 8000 },
        servers: { [SERVER]: { port: ircd.port } },
      },
      { log: silentLogger() },
    );
    [alice, bob, carol] = await Promise.all([
      openSession(adapter, "alice@example.org"),
      remote(ircd, "bob"),
      remote(ircd, "carol"),
    ]);
    await remoteJoin(bob, "#main");
    bob.send("TOPIC #main :Welcome to main");
    await bob.waitLine("topic set", (l) => l.includes("TOPIC #main :Welcome to main"));
  });

  afterAll(async () => {
    await alice?.session.close();
    bob?.client.quit();
    carol?.client.quit();
    await ircd?.stop();
  });

  it("joins: snapshot with the remote person, roles and the topic", async () => {
    const snap = await alice.session.joinRoom!(room("#Main"), "alice", {});
    expect(snap.nick).toBe("alice");
    expect(snap.self).toEqual({ role: "participant", affiliation: "none" });
    const b = snap.occupants.find((o) => o.nick === "bob");
    expect(b).toMatchObject({ role: "moderator", affiliation: "admin", contact: contact("bob") });
    expect(snap.subject?.text).toBe("Welcome to main");
    expect(snap.subject?.by).toBe("bob");
    expect(snap.subject?.at).toBeInstanceOf(Date);
    await bob.waitLine("alice joins", (l) => /^:alice!\S+ JOIN :?#main/i.test(l));
  });

  it("carries channel messages both ways, with formatting, msgid and server-time, without echo", async () => {
    bob.send("PRIVMSG #main :hello \x02bold\x02 \x1ditalic\x1d \x0304red\x03 done");
    const m = await alice.waitEvent("bob's message", (e) => e.type === "message" && text(e).startsWith("hello"));
    if (m.type !== "message") throw new Error("unreachable");
    expect(m.chat).toEqual({ kind: "room", room: room("#main") });
    expect(m.from).toEqual({ nick: "bob", contact: contact("bob") });
    expect(text(m)).toBe("hello bold italic red done");
    expect(m.text.blocks[0]).toEqual({
      type: "line",
      children: [
        { type: "text", text: "hello " },
        { type: "bold", children: [{ type: "text", text: "bold" }] },
        { type: "text", text: " " },
        { type: "italic", children: [{ type: "text", text: "italic" }] },
        { type: "text", text: " red done" },
      ],
    });
    expect(m.id).toMatch(/.+/);
    expect(m.at).toBeInstanceOf(Date);

    const rich: RichText = {
      blocks: [{ type: "line", children: [{ type: "text", text: "hi " }, { type: "bold", children: [{ type: "text", text: "bob" }] }] }],
    };
    await alice.session.sendMessage({ kind: "room", room: room("#main") }, { text: rich });
    await bob.waitLine("alice's message", (l) => / PRIVMSG #main :hi \x02bob\x02$/.test(l));
    // echo-message is on: the server sent alice's line back to her; it must not become an event.
    bob.send("PRIVMSG #main :marker-1");
    await alice.waitEvent("marker", (e) => e.type === "message" && text(e) === "marker-1");
    expect(alice.events.filter((e) => e.type === "message" && e.from.nick === "alice")).toEqual([]);
  });

  it("carries private messages, actions and notices both ways", async () => {
    bob.send("PRIVMSG alice :psst");
    const pm = await alice.waitEvent("pm", (e) => e.type === "message" && text(e) === "psst");
    expect(pm.type === "message" && pm.chat).toEqual({ kind: "direct", contact: contact("bob") });

    await alice.session.sendMessage({ kind: "direct", contact: contact("bob") }, { text: plain("back at you") });
    await bob.waitLine("pm to bob", (l) => /^:alice!\S+ PRIVMSG bob :back at you$/.test(l));

    bob.send("PRIVMSG #main :\x01ACTION waves\x01");
    const act = await alice.waitEvent("action", (e) => e.type === "message" && text(e) === "waves");
    expect(act.type === "message" && act.action).toBe(true);

    await alice.session.sendMessage({ kind: "room", room: room("#main") }, { text: plain("dances"), action: true });
    await bob.waitLine("alice's action", (l) => l.endsWith("PRIVMSG #main :\x01ACTION dances\x01"));

    bob.send("NOTICE #main :heads up");
    const n = await alice.waitEvent("notice", (e) => e.type === "message" && text(e) === "heads up");
    expect(n.type === "message" && n.notice).toBe(true);
  });

  it("reports nick changes, mode changes as roles, parts, quits and kicks", async () => {
    await remoteJoin(carol, "#main");
    await alice.waitEvent("carol joins", (e) => e.type === "join" && e.occupant.nick === "carol");

    bob.send("MODE #main +v alice");
    const selfVoice = await alice.waitEvent("voice", (e) => e.type === "occupant" && e.occupant.nick === "alice");
    expect(selfVoice).toMatchObject({ occupant: { role: "participant", affiliation: "member" } });
    bob.send("MODE #main +o carol");
    const op = await alice.waitEvent("op", (e) => e.type === "occupant" && e.occupant.nick === "carol");
    expect(op).toMatchObject({ room: room("#main"), occupant: { role: "moderator", affiliation: "admin" } });

    carol.send("NICK carla");
    await alice.waitEvent("nick", (e) => e.type === "nick" && e.old === "carol" && e.new === "carla");
    carol.send("PART #main :see you");
    const part = await alice.waitEvent("part", (e) => e.type === "part" && e.nick === "carla");
    expect(part).toMatchObject({ how: "leave", reason: "see you", room: room("#main") });

    await remoteJoin(carol, "#main");
    await alice.waitEvent("carla back", (e) => e.type === "join" && e.occupant.nick === "carla");
    bob.send("KICK #main carla :behave");
    const kick = await alice.waitEvent("kick", (e) => e.type === "part" && e.how === "kick");
    expect(kick).toMatchObject({ nick: "carla", by: "bob", reason: "behave" });

    await remoteJoin(carol, "#main");
    await until("carla joined again", () => alice.events.filter((e) => e.type === "join" && e.occupant.nick === "carla").length === 2);
    carol.send("QUIT :gone fishing");
    const quit = await alice.waitEvent("quit", (e) => e.type === "part" && e.how === "quit");
    expect(quit).toMatchObject({ nick: "carla", reason: "Quit: gone fishing" });
    carol = await remote(ircd, "carol");
  });

  it("reports topic changes and own role changes; the user kicks, and is kicked (room-closed)", async () => {
    await remoteJoin(bob, "#ops");
    const snap = await alice.session.joinRoom!(room("#ops"), "alice", {});
    expect(snap.self).toEqual({ role: "participant", affiliation: "none" });
    bob.send("MODE #ops +o alice");
    const opped = await alice.waitEvent("alice opped", (e) => e.type === "occupant" && e.room === room("#ops") && e.occupant.nick === "alice");
    expect(opped).toMatchObject({ occupant: { role: "moderator", affiliation: "admin" } });
    bob.send("TOPIC #ops :bob's topic");
    const t = await alice.waitEvent("topic", (e) => e.type === "topic" && e.text === "bob's topic");
    expect(t).toMatchObject({ by: "bob", room: room("#ops") });
    await alice.session.setSubject!(room("#ops"), "alice's topic");
    await bob.waitLine("topic from alice", (l) => l.endsWith("TOPIC #ops :alice's topic"));
    await remoteJoin(carol, "#ops");
    await alice.waitEvent("carol in #ops", (e) => e.type === "join" && e.room === room("#ops") && e.occupant.nick === "carol");
    await alice.session.kick!(room("#ops"), "carol", "out");
    await carol.waitLine("carol kicked", (l) => / KICK #ops carol :out$/.test(l));

    await remoteJoin(bob, "#kickme");
    await alice.session.joinRoom!(room("#kickme"), "alice", {});
    bob.send("KICK #kickme alice :bye alice");
    const closed = await alice.waitEvent("room-closed", (e) => e.type === "room-closed");
    expect(closed).toEqual({ type: "room-closed", room: room("#kickme"), how: "kick", by: "bob", reason: "bye alice" });
  });

  it("refuses joins the server refuses, and nick conflicts", async () => {
    await remoteJoin(bob, "#locked");
    bob.send("MODE #locked +k sesame");
    await bob.waitLine("key set", (l) => l.includes("MODE #locked +k"));
    const err = await alice.session.joinRoom!(room("#locked"), "alice", {}).catch((e: unknown) => e);
    // A wrong or missing key is a room password (XEP-0045 §7.2.6: the core answers not-authorized).
    expect(isEstuaryError(err) && err.kind).toBe("forbidden");
    expect((err as Error).message).toMatch(/key/i);
    const ok = await alice.session.joinRoom!(room("#locked"), "alice", { password: "sesame" });
    expect(ok.occupants.map((o) => o.nick)).toContain("bob");

    const conflict = await alice.session.changeNick!(room("#main"), "bob").catch((e: unknown) => e);
    expect(isEstuaryError(conflict) && conflict.kind).toBe("conflict");
    expect(await alice.session.changeNick!(room("#main"), "alice2")).toBe("alice2");
    await alice.waitEvent("own nick", (e) => e.type === "nick" && e.old === "alice" && e.new === "alice2");

    // Nick in use at registration: nick_ is tried.
    const dave = await openSession(adapter, "dave@example.org");
    const snap = await dave.session.joinRoom!(room("#main"), "bob", {});
    expect(snap.nick).toBe("bob_");
    await dave.session.close();
  });

  it("never lets hostile input start a second IRC command", async () => {
    bob.send("MODE #main +o alice2");
    await alice.waitEvent("alice2 opped", (e) => e.type === "occupant" && e.occupant.nick === "alice2" && e.occupant.role === "moderator");
    const before = bob.lines.length;
    const chat = { kind: "room" as const, room: room("#main") };
    await alice.session.sendMessage(chat, { text: { blocks: [{ type: "pre", text: "x\r\nQUIT :pwned\0" }] } });
    await alice.session.sendMessage(chat, { text: plain("y\rQUIT :pwned2") });
    await alice.session.setSubject!(room("#main"), "t\r\nQUIT :pwned3");
    await alice.session.kick!(room("#main"), "nobody", "r\r\nQUIT :pwned4").catch(() => {});
    const badNick = await alice.session.changeNick!(room("#main"), "x\r\nQUIT").catch((e: unknown) => e);
    expect(isEstuaryError(badNick)).toBe(true);
    const badChan = await alice.session.joinRoom!(room("#a\r\nQUIT"), "alice", {}).catch((e: unknown) => e);
    expect(isEstuaryError(badChan) && badChan.kind).toBe("bad-request");
    await alice.session.sendMessage(chat, { text: plain("still here") });
    await bob.waitLine("still here", (l) => l.endsWith("PRIVMSG #main :still here"));
    const seen = bob.lines.slice(before).map((l) => l.line);
    // The command is the second token: a smuggled line would read ":alice2!… QUIT :pwned".
    expect(seen.filter((l) => /^:alice\S* QUIT /.test(l))).toEqual([]);
    expect(seen.some((l) => /^\S+ PRIVMSG #main :x ?$/.test(l))).toBe(true);
    expect(seen.some((l) => /^\S+ PRIVMSG #main :QUIT :pwned$/.test(l))).toBe(true);
    expect(seen.some((l) => /^\S+ PRIVMSG #main :y ?QUIT :pwned2$/.test(l))).toBe(true);
    expect(seen.some((l) => l.endsWith("TOPIC #main :t QUIT :pwned3"))).toBe(true);
    // Kicking someone absent is refused by the server, and the refusal reaches the user.
    await alice.waitEvent("kick refusal", (e) => e.type === "service-message" && toPlain(e.text).includes("nobody"));
  });

  it("splits a long body into lines within 512 bytes, complete and in order", async () => {
    const words = Array.from({ length: 200 }, (_, i) => `w${i}é`);
    const body = words.join(" ");
    expect(Buffer.byteLength(body)).toBeGreaterThan(1200);
    const before = bob.lines.length;
    await alice.session.sendMessage({ kind: "room", room: room("#main") }, { text: plain(body) });
    await bob.waitLine("last word", (l) => l.endsWith(" w199é"));
    const got = bob.lines.slice(before).map((l) => l.line).filter((l) => l.includes(" PRIVMSG #main :w"));
    expect(got.length).toBeGreaterThan(2);
    for (const l of got) expect(Buffer.byteLength(l) + 2).toBeLessThanOrEqual(512);
    expect(got.map((l) => l.slice(l.indexOf(" :") + 2)).join(" ")).toBe(body);
  });

  it("applies flood control (burst 5, then one line per 2 s) and refuses a full queue", async () => {
    const slow = createIrcAdapter({ servers: { [SERVER]: { port: ircd.port } } }, { log: silentLogger() });
    const erin = await openSession(slow, "erin@example.org");
    const before = bob.lines.length;
    const lines = Array.from({ length: 7 }, (_, i) => `flood-${i}`).join("\n");
    await erin.session.sendMessage({ kind: "direct", contact: contact("bob") }, { text: plain(lines) });
    const arrivals = await until("7 lines", () => {
      const got = bob.lines.slice(before).filter((l) => l.line.includes("PRIVMSG bob :flood-"));
      return got.length === 7 ? got : undefined;
    });
    expect(arrivals.map((a) => a.line.split(":flood-")[1])).toEqual(["0", "1", "2", "3", "4", "5", "6"]);
    const t = arrivals.map((a) => a.at);
    expect(t[4]! - t[0]!).toBeLessThan(1000);
    expect(t[6]! - t[5]!).toBeGreaterThanOrEqual(1800);
    await erin.session.close();

    const tiny = createIrcAdapter(
      { maxQueue: 3, flood: { burst: 1, intervalMs: 60_000 }, servers: { [SERVER]: { port: ircd.port } } },
      { log: silentLogger() },
    );
    const fred = await openSession(tiny, "fred@example.org");
    const to = { kind: "direct" as const, contact: contact("bob") };
    await fred.session.sendMessage(to, { text: plain("one") });
    const waiting = fred.session.sendMessage(to, { text: plain("two\nthree") }).catch((e: unknown) => e);
    const full = await fred.session.sendMessage(to, { text: plain("four\nfive") }).catch((e: unknown) => e);
    expect(isEstuaryError(full) && full.kind).toBe("queue-full");
    expect((full as Error).message).toMatch(/not sent/i);
    await fred.session.close();
    const closed = await waiting;
    expect(isEstuaryError(closed) && closed.kind).toBe("unavailable");
  });

  it("reconnects after a server restart, rejoins, reports only the difference and delivers queued lines", async () => {
    await alice.session.joinRoom!(room("#survive"), "alice", {});
    await Promise.all([remoteJoin(bob, "#survive"), remoteJoin(carol, "#survive")]);
    await until("both seen", () => alice.events.filter((e) => e.type === "join" && e.room === room("#survive")).length === 2);
    const mark = alice.events.length;
    let queued: Promise<unknown> | undefined;
    await ircd.restart({
      whileDown: async () => {
        await alice.waitEvent("degraded", (e) => e.type === "status" && e.state === "degraded");
        queued = alice.session.sendMessage({ kind: "room", room: room("#survive") }, { text: plain("typed during the outage") });
      },
    });
    // Only bob comes back before alice's reconnect (backoff ≥ 4 s: room for a loaded machine); carol does not.
    bob = await remote(ircd, "bob");
    await remoteJoin(bob, "#survive");
    await queued;
    await bob.waitLine("queued message", (l) => l.endsWith("PRIVMSG #survive :typed during the outage"));
    const after = () => alice.events.slice(mark);
    await until("online again", () => after().some((e) => e.type === "status" && e.state === "online"));
    await until("carol's part", () => after().some((e) => e.type === "part" && e.room === room("#survive") && e.nick === "carol"));
    expect(after().filter((e) => e.type === "join" && e.room === room("#survive"))).toEqual([]);
    carol = await remote(ircd, "carol");
  });

  it("closes a connection lingerMs after its last channel is left; refuses servers not allowed", async () => {
    const brief = createIrcAdapter(
      { lingerMs: 300, flood: { burst: 5, intervalMs: 0 }, servers: { [SERVER]: { port: ircd.port } } },
      { log: silentLogger() },
    );
    const hank = await openSession(brief, "hank@example.org");
    await hank.session.joinRoom!(room("#survive"), "hank", {});
    await bob.waitLine("hank joins", (l) => /^:hank!\S+ JOIN/.test(l));
    await hank.session.leaveRoom!(room("#survive"), "later");
    await bob.waitLine("hank parts", (l) => /^:hank!\S+ PART #survive :later$/.test(l));
    // No channel shared any more: ask the server until hank is gone (QUIT after lingerMs).
    const left = Date.now();
    await until("hank disconnected", () => {
      if (bob.lines.some((l) => / 401 \S+ hank /.test(l.line) && l.at > left)) return true;
      bob.send("WHOIS hank");
      return undefined;
    }, 5000);
    expect(Date.now() - left).toBeGreaterThanOrEqual(250);
    await hank.session.close();

    const strict = createIrcAdapter({ allowedServers: ["*.libera.chat"] }, { log: silentLogger() });
    const ivy = await openSession(strict, "ivy@example.org");
    const err = await ivy.session.joinRoom!(room("#main"), "ivy", {}).catch((e: unknown) => e);
    expect(isEstuaryError(err) && err.kind).toBe("forbidden");
    await ivy.session.close();
  });

  it("rejects queued lines with unavailable when the server stays away past the retry window", async () => {
    const other = await startInspircd();
    const quick = createIrcAdapter(
      { flood: { burst: 5, intervalMs: 0 }, retryWindowMs: 300, reconnect: { initialMs: 60_000 } },
      { log: silentLogger() },
    );
    const r = `#gone%127.0.0.1`;
    // The second server listens on another port: per-user settings choose it.
    const store = memoryStore({ [`server:127.0.0.1`]: { port: other.port } });
    const h = await openSession(quick, "gina@example.org", store);
    await h.session.joinRoom!(r, "gina", {});
    await other.stop();
    await h.waitEvent("degraded", (e) => e.type === "status" && e.state === "degraded");
    const started = Date.now();
    const err = await h.session.sendMessage({ kind: "room", room: r }, { text: plain("lost?") }).catch((e: unknown) => e);
    expect(isEstuaryError(err) && err.kind).toBe("unavailable");
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await h.session.close();
  });
});
