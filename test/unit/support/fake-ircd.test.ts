/**
 * The fake IRC server (test/support/fake-ircd.ts) against a bare socket
 * client: what it sends must be what the IRCv3 specifications say a server
 * sends, or tests built on it prove nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeIrcd } from "../../support/fake-ircd.ts";
import { escapeTag, formatLine, parseLine, unescapeTag, type Line } from "../../support/fake-ircd/protocol.ts";
import { rawClient, type RawClient } from "../../support/fake-ircd/raw-client.ts";

const ALL = ["message-tags", "server-time", "batch", "echo-message", "draft/chathistory", "draft/relaymsg"];
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe("fake-ircd line syntax", () => {
  it("escapes and unescapes tag values per message-tags", () => {
    const value = "a;b c\\d\r\ne";
    expect(escapeTag(value)).toBe("a\\:b\\sc\\\\d\\r\\ne");
    expect(unescapeTag(escapeTag(value))).toBe(value);
    // Invalid escapes drop the backslash; a trailing backslash is dropped.
    expect(unescapeTag("a\\bc\\")).toBe("abc");
  });

  it("parses tags, prefix, middles and trailing; formats back", () => {
    const l = parseLine("@msgid=x1;time=2024-01-01T00:00:00.000Z;+draft/reply=y :n!u@h PRIVMSG #c :hello world")!;
    expect(l.command).toBe("PRIVMSG");
    expect(l.prefix).toBe("n!u@h");
    expect(l.params).toEqual(["#c", "hello world"]);
    expect(l.tags.get("+draft/reply")).toBe("y");
    expect(formatLine(l)).toBe("@msgid=x1;time=2024-01-01T00:00:00.000Z;+draft/reply=y :n!u@h PRIVMSG #c :hello world");
  });
});

describe("fake-ircd over a socket", () => {
  let ircd: FakeIrcd;
  const clients: RawClient[] = [];
  const client = async (nick: string, caps?: string[]): Promise<RawClient> => {
    const c = await rawClient(ircd.port);
    clients.push(c);
    await c.register(nick, caps);
    return c;
  };
  const joined = (c: RawClient, channel: string) => {
    c.send(`JOIN ${channel}`);
    return c.next(`366 ${channel}`, (l) => l.command === "366");
  };
  /** Collects one chathistory batch: the BATCH + line, then every line of it up to BATCH -. */
  const batch = async (c: RawClient, request: string): Promise<{ start: Line; lines: Line[] }> => {
    c.send(request);
    const start = await c.next("BATCH +", (l) => l.command === "BATCH" && l.params[0]!.startsWith("+"));
    const id = start.params[0]!.slice(1);
    await c.next("BATCH -", (l) => l.command === "BATCH" && l.params[0] === `-${id}`);
    const lines = c.lines.map((x) => x.line).filter((l) => l.tags.get("batch") === id);
    return { start, lines };
  };

  beforeAll(async () => {
    ircd = await FakeIrcd.start({ chathistoryMax: 5 });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await ircd.stop();
  });

  it("negotiates capabilities: values only with CAP LS 302, REQ all or nothing, registration held until CAP END", async () => {
    const c = await rawClient(ircd.port);
    clients.push(c);
    c.send("CAP LS");
    const plain = await c.next("CAP LS", (l) => l.command === "CAP" && l.params[1] === "LS");
    expect(plain.params[2]!.split(" ")).toContain("draft/relaymsg");
    c.send("CAP LS 302");
    const v302 = await c.next("CAP LS 302", (l) => l.command === "CAP" && l.params[1] === "LS");
    expect(v302.params[2]!.split(" ")).toEqual(expect.arrayContaining(["draft/relaymsg=/", "draft/chathistory", "batch", "echo-message"]));
    c.send("CAP REQ :batch no-such-cap");
    expect((await c.next("NAK", (l) => l.command === "CAP")).params.slice(1)).toEqual(["NAK", "batch no-such-cap"]);
    c.send("CAP REQ :batch server-time");
    expect((await c.next("ACK", (l) => l.command === "CAP")).params.slice(1)).toEqual(["ACK", "batch server-time"]);
    c.send("NICK held");
    c.send("USER held 0 * :Held");
    c.send("PING :before-end");
    await c.next("PONG", (l) => l.command === "PONG" && l.params[1] === "before-end");
    expect(c.lines.some((l) => l.line.command === "001")).toBe(false);
    c.send("CAP END");
    await c.next("001", (l) => l.command === "001");
    const isupport = await c.next("005", (l) => l.command === "005");
    expect(isupport.params).toEqual(expect.arrayContaining(["CHATHISTORY=5", "MSGREFTYPES=msgid,timestamp", "NICKLEN=30"]));
    c.send("CAP LIST");
    expect((await c.next("LIST", (l) => l.command === "CAP")).params[2]).toBe("batch server-time");
  });

  it("joins with NAMES and answers MODE #chan with 324; channel messages carry msgid and time for those who asked", async () => {
    const ann = await client("ann", ALL);
    const bea = await client("bea", ALL);
    const old = await client("old"); // no capabilities at all
    await joined(ann, "#room");
    await joined(bea, "#room");
    const names = await joined(old, "#room").then(() => old.lines.find((l) => l.line.command === "353")!.line);
    expect(names.params.slice(2)).toEqual(["#room", "@ann bea old"]);
    old.send("MODE #room");
    expect((await old.next("324", (l) => l.command === "324")).params.slice(1)).toEqual(["#room", "+nt"]);

    ann.send("PRIVMSG #room :hello there");
    const atBea = await bea.next("hello", (l) => l.command === "PRIVMSG");
    const echo = await ann.next("echo", (l) => l.command === "PRIVMSG");
    const atOld = await old.next("hello", (l) => l.command === "PRIVMSG");
    expect(atBea.prefix).toMatch(/^ann!ann@/);
    expect(atBea.params).toEqual(["#room", "hello there"]);
    expect(atBea.tags.get("msgid")).toMatch(/\S/);
    expect(atBea.tags.get("time")).toMatch(ISO);
    // echo-message: the sender's copy is the same message.
    expect(echo.tags.get("msgid")).toBe(atBea.tags.get("msgid"));
    expect(atOld.tags.size).toBe(0);
    // Without echo-message nothing comes back to the sender.
    old.send("PRIVMSG #room :from old");
    await bea.next("from old", (l) => l.command === "PRIVMSG" && l.params[1] === "from old");
    old.send("PING :sync");
    await old.next("PONG", (l) => l.command === "PONG" && l.params[1] === "sync");
    expect(old.lines.some((l) => l.line.params[1] === "from old")).toBe(false);
    expect(ircd.history("#room")!.map((m) => m.text)).toEqual(["hello there", "from old"]);
  });

  it("answers CHATHISTORY LATEST/BEFORE/AFTER/AROUND/BETWEEN in a chathistory batch with the original tags", async () => {
    const cy = await client("cy", ALL);
    const dee = await client("dee", ALL);
    await joined(cy, "#hist");
    await joined(dee, "#hist");
    for (let i = 1; i <= 8; i++) cy.send(`PRIVMSG #hist :m${i}`);
    await dee.next("m8", (l) => l.params[1] === "m8");
    const stored = ircd.history("#hist")!;
    const id = (n: number) => stored[n - 1]!.msgid;
    const ts = (n: number) => stored[n - 1]!.time.toISOString();
    const texts = (b: { lines: Line[] }) => b.lines.map((l) => l.params[1]);

    const latest = await batch(dee, "CHATHISTORY LATEST #hist * 3");
    expect(latest.start.params.slice(1)).toEqual(["chathistory", "#hist"]);
    expect(texts(latest)).toEqual(["m6", "m7", "m8"]);
    const first = latest.lines[0]!;
    expect(first.tags.get("msgid")).toBe(id(6));
    expect(first.tags.get("time")).toBe(ts(6));
    expect(first.prefix).toMatch(/^cy!/);

    expect(texts(await batch(dee, `CHATHISTORY LATEST #hist msgid=${id(6)} 10`))).toEqual(["m7", "m8"]);
    expect(texts(await batch(dee, `CHATHISTORY BEFORE #hist msgid=${id(5)} 2`))).toEqual(["m3", "m4"]);
    expect(texts(await batch(dee, `CHATHISTORY AFTER #hist msgid=${id(5)} 2`))).toEqual(["m6", "m7"]);
    expect(texts(await batch(dee, `CHATHISTORY BEFORE #hist timestamp=${ts(3)} 10`))).toEqual(["m1", "m2"]);
    expect(texts(await batch(dee, `CHATHISTORY AFTER #hist timestamp=${ts(7)} 10`))).toEqual(["m8"]);
    expect(texts(await batch(dee, `CHATHISTORY AROUND #hist msgid=${id(4)} 3`))).toEqual(["m3", "m4", "m5"]);
    expect(texts(await batch(dee, `CHATHISTORY BETWEEN #hist msgid=${id(2)} msgid=${id(6)} 10`))).toEqual(["m3", "m4", "m5"]);
    // Backwards: excluding both ends, nearest the first reference when the limit cuts.
    expect(texts(await batch(dee, `CHATHISTORY BETWEEN #hist msgid=${id(7)} timestamp=${ts(1)} 2`))).toEqual(["m5", "m6"]);
    // The server's CHATHISTORY=5 caps the limit (and 0 means "as many as allowed").
    expect(texts(await batch(dee, "CHATHISTORY LATEST #hist * 50"))).toEqual(["m4", "m5", "m6", "m7", "m8"]);
    expect(texts(await batch(dee, "CHATHISTORY LATEST #hist * 0"))).toHaveLength(5);
    // An unknown msgid: nothing is before or after it, an empty batch.
    expect(texts(await batch(dee, "CHATHISTORY BEFORE #hist msgid=nope 5"))).toEqual([]);
  });

  it("answers malformed or unauthorised CHATHISTORY with FAIL, and without the capability with 421", async () => {
    const eve = await client("eve", ALL);
    const fail = async (request: string) => {
      eve.send(request);
      return (await eve.next(`FAIL for ${request}`, (l) => l.command === "FAIL" || l.command === "421")).params;
    };
    expect(await fail("CHATHISTORY LATEST #hist")).toEqual(["CHATHISTORY", "NEED_MORE_PARAMS", "LATEST", "Missing parameters"]);
    expect(await fail("CHATHISTORY SIDEWAYS #hist * 5")).toEqual(["CHATHISTORY", "UNKNOWN_COMMAND", "SIDEWAYS", "Unknown command"]);
    expect((await fail("CHATHISTORY BEFORE #hist * 5")).slice(0, 2)).toEqual(["CHATHISTORY", "INVALID_PARAMS"]);
    expect((await fail("CHATHISTORY BEFORE #hist timestamp=yesterday 5")).slice(0, 2)).toEqual(["CHATHISTORY", "INVALID_PARAMS"]);
    // eve is not in #hist.
    expect(await fail("CHATHISTORY LATEST #hist * 5")).toEqual(["CHATHISTORY", "INVALID_TARGET", "LATEST", "#hist", "Messages could not be retrieved"]);
    const old = await client("old2", ["batch"]);
    old.send("CHATHISTORY LATEST #hist * 5");
    expect((await old.next("421", (l) => l.command === "421")).params.slice(1)).toEqual(["CHATHISTORY", "Unknown command"]);
  });

  it("RELAYMSG: an operator relays as a spoofed nick with a separator; others get it tagged with the relayer; errors are FAILs", async () => {
    const relay = await client("relaybot", ALL);
    const fay = await client("fay", ALL);
    const gus = await client("gus", ["message-tags", "server-time"]); // no draft/relaymsg: no tag
    await joined(relay, "#br");
    await joined(fay, "#br");
    await joined(gus, "#br");
    const fail = async (c: RawClient, line: string) => {
      c.send(line);
      return (await c.next(`FAIL for ${line}`, (l) => l.command === "FAIL")).params.slice(0, 2);
    };
    expect(await fail(relay, "RELAYMSG #br plainnick :hi")).toEqual(["RELAYMSG", "INVALID_NICK"]);
    expect(await fail(relay, "RELAYMSG #br bad!nick/x :hi")).toEqual(["RELAYMSG", "INVALID_NICK"]);
    expect(await fail(relay, "RELAYMSG #br a.b/x :hi")).toEqual(["RELAYMSG", "INVALID_NICK"]);
    expect(await fail(fay, "RELAYMSG #br smt/discord :hi")).toEqual(["RELAYMSG", "PRIVS_NEEDED"]);

    relay.send("RELAYMSG #br smt/discord :hi from afar");
    const atFay = await fay.next("relayed", (l) => l.command === "PRIVMSG");
    expect(atFay.prefix).toMatch(/^smt\/discord!/);
    expect(atFay.params).toEqual(["#br", "hi from afar"]);
    expect(atFay.tags.get("draft/relaymsg")).toBe("relaybot");
    expect(atFay.tags.get("msgid")).toMatch(/\S/);
    const atGus = await gus.next("relayed", (l) => l.command === "PRIVMSG");
    expect(atGus.tags.has("draft/relaymsg")).toBe(false);
    expect(atGus.tags.get("msgid")).toBe(atFay.tags.get("msgid"));
    // echo-message: the relayer gets its own relayed line back, tagged.
    const echo = await relay.next("echo", (l) => l.command === "PRIVMSG");
    expect(echo.tags.get("draft/relaymsg")).toBe("relaybot");
    // A CTCP ACTION inside RELAYMSG is passed on as is (a /me of the spoofed nick).
    relay.send("RELAYMSG #br smt/discord :\x01ACTION waves\x01");
    expect((await fay.next("action", (l) => l.command === "PRIVMSG")).params[1]).toBe("\x01ACTION waves\x01");
    expect(ircd.history("#br")!.map((m) => [m.prefix.split("!")[0], m.text, m.relayedBy])).toEqual([
      ["smt/discord", "hi from afar", "relaybot"],
      ["smt/discord", "\x01ACTION waves\x01", "relaybot"],
    ]);
  });

  it("offers neither capability when configured without them", async () => {
    const bare = await FakeIrcd.start({ chathistory: false, relaymsg: false });
    try {
      const c = await rawClient(bare.port);
      clients.push(c);
      c.send("CAP LS 302");
      const ls = await c.next("CAP LS", (l) => l.command === "CAP");
      expect(ls.params[2]!.split(" ").sort()).toEqual(["batch", "echo-message", "message-tags", "server-time"]);
      await c.register("solo", []);
      const isupport = await c.next("005", (l) => l.command === "005");
      expect(isupport.params.some((p) => p.startsWith("CHATHISTORY") || p.startsWith("MSGREFTYPES"))).toBe(false);
    } finally {
      await bare.stop();
    }
  });
});
