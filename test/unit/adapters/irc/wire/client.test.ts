import { afterEach, describe, expect, it } from "vitest";
import { IrcClient, type ConnectOptions } from "../../../../../adapters/irc/wire/client.ts";
import { MAX_BATCH_LINES, MAX_NAMES_HELD, MAX_OPEN_BATCHES } from "../../../../../adapters/irc/wire/events.ts";
import { FakeIrcd } from "../../../../support/fake-ircd.ts";
import { LineServer } from "../../../../support/line-server.ts";
import { waitFor } from "../../../../support/wait.ts";

const EVENTS = [
  "registered", "socket close", "join", "userlist", "batch start", "batch end", "channel info", "topic", "topicsetby", "part", "kick", "quit",
  "nick", "mode", "away", "back", "invite", "displayed host", "privmsg", "action", "notice",
];

let server: LineServer | undefined;
let client: IrcClient | undefined;
let ircd: FakeIrcd | undefined;

afterEach(async () => {
  client?.end();
  await server?.stop();
  await ircd?.stop();
  server = client = ircd = undefined;
});

interface Run {
  s: LineServer;
  c: IrcClient;
  events: [string, Record<string, unknown>][];
  raw: string[];
  next(name: string, from?: number): Promise<Record<string, unknown>>;
}

/** A client registered with a scripted server (no CAP: the server goes straight to 001 and 005). */
async function registered(options: Partial<ConnectOptions> = {}, isupport = "PREFIX=(qaohv)~&@%+ CHANTYPES=# CHANMODES=beI,k,l,imnpst STATUSMSG=@+"): Promise<Run> {
  const s = (server = await LineServer.start());
  const c = (client = new IrcClient());
  const events: [string, Record<string, unknown>][] = [];
  const raw: string[] = [];
  for (const name of EVENTS) c.on(name, (ev: Record<string, unknown>) => events.push([name, ev]));
  c.connection.on("message", (msg: { command: string }) => raw.push(msg.command));
  const next = (name: string, from = 0) =>
    waitFor(() => events.slice(from).find(([n]) => n === name)?.[1], { what: `event ${name}` });
  c.connect({ host: s.host, port: s.port, nick: "me", ...options });
  await s.expect(/^USER /);
  s.send(":srv 001 me :Welcome", `:srv 005 me ${isupport} :are supported by this server`);
  await next("registered");
  await waitFor(() => (raw.includes("005") ? true : undefined));
  return { s, c, events, raw, next };
}

describe("IrcClient events", () => {
  it("NAMES with multi-prefix and userhost-in-names: every prefix as a mode, the mask split", async () => {
    const { s, next } = await registered();
    s.send(":srv 353 me = #c :@+alice!a@host.one +bob ~&carol me", ":srv 353 me = #C :dave", ":srv 366 me #c :End of /NAMES list.");
    const ev = await next("userlist");
    expect(ev.channel).toBe("#c");
    expect((ev.users as object[]).map((u) => ({ ...u, tags: undefined }))).toEqual([
      { nick: "alice", ident: "a", hostname: "host.one", modes: ["o", "v"], tags: undefined },
      { nick: "bob", ident: "", hostname: "", modes: ["v"], tags: undefined },
      { nick: "carol", ident: "", hostname: "", modes: ["q", "a"], tags: undefined },
      { nick: "me", ident: "", hostname: "", modes: [], tags: undefined },
      { nick: "dave", ident: "", hostname: "", modes: [], tags: undefined },
    ]);
    expect(client!.names).toBeUndefined();
  });

  it("PRIVMSG, CTCP ACTION, NOTICE from a person and from the server, STATUSMSG, server-time", async () => {
    const { s, next, events } = await registered();
    s.send("@time=2024-01-02T03:04:05.000Z;msgid=abc :alice!a@h PRIVMSG #c :hello there");
    const pm = await next("privmsg");
    expect(pm).toMatchObject({ from_server: false, nick: "alice", ident: "a", hostname: "h", target: "#c", message: "hello there", time: Date.UTC(2024, 0, 2, 3, 4, 5) });
    expect(pm.tags).toMatchObject({ msgid: "abc" });
    s.send(":alice!a@h PRIVMSG me :\x01ACTION waves\x01", ":alice!a@h PRIVMSG me :\x01VERSION\x01", ":alice!a@h NOTICE @#c :ops only", ":srv.example NOTICE * :*** Looking up your hostname");
    expect(await next("action")).toMatchObject({ nick: "alice", target: "me", message: "waves" });
    expect(await next("notice")).toMatchObject({ nick: "alice", target: "#c", group: "@", message: "ops only" });
    const serverNotice = await waitFor(() => events.filter(([n]) => n === "notice")[1]?.[1]);
    expect(serverNotice).toMatchObject({ from_server: true, nick: "", hostname: "srv.example", target: "*" });
    // CTCP requests other than ACTION are neither events nor answered.
    expect(events.filter(([n]) => n === "privmsg")).toHaveLength(1);
    expect(s.lines.some((l) => l.startsWith("NOTICE alice"))).toBe(false);
  });

  it("decodes a line that is not UTF-8 as Latin-1, on its own", async () => {
    const { s, events } = await registered();
    s.send(Buffer.concat([Buffer.from(":bob!b@h PRIVMSG #c :caf"), Buffer.from([0xe9]), Buffer.from("\r\n:bob!b@h PRIVMSG #c :caf\u00e9 \u2713\r\n")]));
    await waitFor(() => (events.filter(([n]) => n === "privmsg").length === 2 ? true : undefined));
    expect(events.filter(([n]) => n === "privmsg").map(([, e]) => e.message)).toEqual(["café", "café ✓"]);
  });

  it("MODE: parameters by CHANMODES and PREFIX", async () => {
    const { s, next } = await registered();
    s.send(":op!o@h MODE #c +ob-v+lk alice bob 5 key");
    expect(await next("mode")).toMatchObject({
      target: "#c",
      nick: "op",
      raw_modes: "+ob-v+lk",
      modes: [
        { mode: "+o", param: "alice" },
        { mode: "+b", param: "bob" },
        { mode: "-v", param: "5" },
        { mode: "+l", param: "key" },
        { mode: "+k", param: null },
      ],
    });
  });

  it("channel and people: join, topic, part, kick, quit, nick, away, back, invite, displayed host, channel info", async () => {
    const { s, next, c, events } = await registered();
    s.send(
      ":me!u@h JOIN #c",
      ":srv 332 me #c :the topic",
      ":srv 333 me #c alice!a@h 1700000000",
      ":srv 324 me #c +nl 10",
      ":alice!a@h TOPIC #c :new topic",
      ":bob!b@h PART #c :bye",
      ":op!o@h KICK #c carol :behave",
      ":dave!d@h QUIT :gone",
      ":erin!e@h AWAY :lunch",
      ":erin!e@h AWAY",
      ":frank!f@h INVITE me #secret",
      ":srv 396 me cloak.example :is now your displayed host",
      ":me!u@h NICK other",
    );
    expect(await next("join")).toMatchObject({ nick: "me", ident: "u", hostname: "h", channel: "#c" });
    expect(await next("topic")).toMatchObject({ channel: "#c", topic: "the topic" });
    expect(await next("topicsetby")).toMatchObject({ channel: "#c", nick: "alice", ident: "a", hostname: "h", when: "1700000000" });
    expect(await next("channel info")).toMatchObject({ channel: "#c", raw_modes: "+nl", modes: [{ mode: "+n", param: null }, { mode: "+l", param: "10" }] });
    expect((await waitFor(() => events.filter(([n]) => n === "topic")[1]))[1]).toMatchObject({ nick: "alice", channel: "#c", topic: "new topic" });
    expect(await next("part")).toMatchObject({ nick: "bob", channel: "#c", message: "bye" });
    expect(await next("kick")).toMatchObject({ nick: "op", channel: "#c", kicked: "carol", message: "behave" });
    expect(await next("quit")).toMatchObject({ nick: "dave", message: "gone" });
    expect(await next("away")).toMatchObject({ nick: "erin", message: "lunch", self: false });
    expect(await next("back")).toMatchObject({ nick: "erin", message: "", self: false });
    expect(await next("invite")).toMatchObject({ nick: "frank", ident: "f", hostname: "h", invited: "me", channel: "#secret" });
    expect(await next("displayed host")).toMatchObject({ nick: "me", hostname: "cloak.example" });
    expect(await next("nick")).toMatchObject({ nick: "me", new_nick: "other" });
    expect(c.nick).toBe("other");
    expect(c.user.host).toBe("cloak.example");
  });

  it("holds a batch's lines until its end, each with the batch, then `batch end` (chathistory)", async () => {
    const { s, events, raw, next } = await registered();
    s.send("BATCH +h1 chathistory #c", "@batch=h1;time=2024-01-01T00:00:00Z :alice!a@h PRIVMSG #c :old one", "@batch=h1 :bob!b@h PRIVMSG #c :old two", "@batch=zz :x!x@h PRIVMSG #c :unknown batch");
    await waitFor(() => (raw.filter((c) => c === "PRIVMSG").length === 3 ? true : undefined));
    // Every line is a raw `message` at once; the batch's own privmsgs wait for its end. A line
    // naming a batch that was never opened is handled at once rather than lost.
    expect(events.filter(([n]) => n === "privmsg").map(([, e]) => [e.message, e.batch])).toEqual([["unknown batch", undefined]]);
    s.send("BATCH -h1");
    const end = await next("batch end");
    expect(end).toMatchObject({ id: "h1", type: "chathistory", params: ["#c"] });
    const msgs = events.filter(([n]) => n === "privmsg").map(([, e]) => e);
    expect(msgs.map((m) => [m.message, m.batch])).toEqual([
      ["unknown batch", undefined],
      ["old one", { id: "h1", type: "chathistory", params: ["#c"] }],
      ["old two", { id: "h1", type: "chathistory", params: ["#c"] }],
    ]);
    expect(events.map(([n]) => n).filter((n) => n.startsWith("batch") || n === "privmsg")).toEqual(["privmsg", "batch start", "privmsg", "privmsg", "batch end"]);
    expect(client!.batches).toBeUndefined();
  });

  it("never holds a batch without bound: past MAX_BATCH_LINES its lines are handed on in order, and past MAX_OPEN_BATCHES a batch is not held", async () => {
    const { s, events, next } = await registered();
    const n = MAX_BATCH_LINES + 3;
    s.send("BATCH +big chathistory #c", ...Array.from({ length: n }, (_, i) => `@batch=big :alice!a@h PRIVMSG #c :line ${i}`));
    await waitFor(() => (events.filter(([e]) => e === "privmsg").length === n ? true : undefined), { timeout: 20_000, what: "every line of the long batch" });
    expect(events.filter(([e]) => e === "privmsg").map(([, e]) => e.message)).toEqual(Array.from({ length: n }, (_, i) => `line ${i}`));
    expect(client!.batches).toBeUndefined();

    const opens = Array.from({ length: MAX_OPEN_BATCHES + 1 }, (_, i) => `BATCH +b${i} netsplit a b`);
    s.send(...opens, `@batch=b${MAX_OPEN_BATCHES} :x!x@h QUIT :split`);
    // The batch over the bound was not opened: its QUIT comes at once.
    expect(await next("quit")).toMatchObject({ nick: "x" });
    expect(client!.batches?.size).toBe(MAX_OPEN_BATCHES);
  });

  it("holds at most MAX_NAMES_HELD names while NAMES lists are being collected", async () => {
    const { s, next } = await registered();
    const perLine = 500;
    const lines = Math.ceil(MAX_NAMES_HELD / perLine) + 2;
    s.send(...Array.from({ length: lines }, (_, l) => `:srv 353 me = #huge :${Array.from({ length: perLine }, (_, i) => `n${l}_${i}`).join(" ")}`), ":srv 366 me #huge :End of /NAMES list.");
    const ev = await next("userlist");
    expect((ev.users as object[]).length).toBe(MAX_NAMES_HELD);
    expect(client!.names).toBeUndefined();
  });

  it("answers PING, confirms writes, and a second line does not wait for a read", async () => {
    const { s, c } = await registered();
    s.send("PING :token123");
    await s.expect("PONG token123");
    const written = await new Promise<boolean>((resolve) => c.connection.write("PRIVMSG #c :héllo", () => resolve(true)));
    expect(written).toBe(true);
    await s.expect("PRIVMSG #c :héllo");
    c.raw("PRIVMSG", "#c", "two words");
    await s.expect("PRIVMSG #c :two words");
  });

  it("PINGs after silence and drops a server that stays silent, with the reason in `socket close`", async () => {
    const { s, c, next } = await registered({ ping_interval: 0.1, ping_timeout: 0.35 });
    await s.expect(/^PING \d+$/);
    const err = (await next("socket close")) as unknown as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/Ping timeout/);
    expect(c.connected).toBe(false);
  });

  it("a server that keeps talking is never timed out", async () => {
    const { s, c, events } = await registered({ ping_interval: 0.1, ping_timeout: 0.25 });
    for (let i = 0; i < 8; i++) {
      s.send(`:srv NOTICE me :tick ${i}`);
      await waitFor(() => (events.filter(([n]) => n === "notice").length > i ? true : undefined));
      await new Promise((r) => setTimeout(r, 80));
    }
    expect(c.connected).toBe(true);
    expect(events.some(([n]) => n === "socket close")).toBe(false);
  });

  it("quit sends QUIT and closes; writes after that are dropped but still called back", async () => {
    const { s, c, events } = await registered();
    c.quit("see you");
    await s.expect("QUIT :see you");
    const closed = await waitFor(() => events.find(([n]) => n === "socket close"));
    // A close we asked for carries no error.
    expect(closed[1]).toBeUndefined();
    expect(c.connected).toBe(false);
    await new Promise<void>((resolve) => expect(c.connection.write("PRIVMSG #c :late", resolve)).toBe(false));
  });
});

describe("IrcClient against the fake IRCv3 server", () => {
  it("registers with CAP 302, gets echo-message and server-time, joins and hears itself", async () => {
    ircd = await FakeIrcd.start();
    const c = (client = new IrcClient());
    c.requestCap(["draft/relaymsg", "draft/chathistory", "chathistory"]);
    const got: [string, Record<string, unknown>][] = [];
    for (const name of ["registered", "userlist", "privmsg"]) c.on(name, (ev: Record<string, unknown>) => got.push([name, ev]));
    c.connect({ host: ircd.host, port: ircd.port, nick: "lean", username: "lean", gecos: "Lean", enable_echomessage: true });
    await waitFor(() => got.find(([n]) => n === "registered"));
    expect(c.network.cap.isEnabled("echo-message")).toBe(true);
    expect(c.network.cap.isEnabled("draft/relaymsg")).toBe(true);
    expect(c.network.cap.available.get("draft/relaymsg")).toBe("/");
    expect(await waitFor(() => c.network.options.NICKLEN)).toBe("30");
    c.connection.write("JOIN #room");
    const names = await waitFor(() => got.find(([n]) => n === "userlist")?.[1]);
    expect(names.users).toMatchObject([{ nick: "lean", modes: ["o"] }]);
    c.connection.write("PRIVMSG #room :echo me");
    const echo = await waitFor(() => got.find(([n]) => n === "privmsg")?.[1]);
    expect(echo).toMatchObject({ nick: "lean", target: "#room", message: "echo me" });
    expect(typeof echo.time).toBe("number");
  });
});

