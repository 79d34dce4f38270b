import { afterEach, describe, expect, it } from "vitest";
import { IrcClient, type ConnectOptions } from "../../../../../adapters/irc/wire/client.ts";
import { saslPlainLines } from "../../../../../adapters/irc/wire/registration.ts";
import { LineServer } from "../../../../support/line-server.ts";

let server: LineServer | undefined;
let client: IrcClient | undefined;

afterEach(async () => {
  client?.end();
  await server?.stop();
  server = client = undefined;
});

async function connect(options: Partial<ConnectOptions> = {}): Promise<{ s: LineServer; c: IrcClient; events: [string, unknown][] }> {
  const s = (server = await LineServer.start());
  const c = (client = new IrcClient());
  const events: [string, unknown][] = [];
  for (const name of ["registered", "loggedin", "sasl failed", "socket close"]) c.on(name, (ev: unknown) => events.push([name, ev]));
  c.connect({ host: s.host, port: s.port, nick: "me", username: "meuser", gecos: "Real Name", ...options });
  await s.expect("CAP LS 302");
  return { s, c, events };
}

describe("saslPlainLines", () => {
  it("cuts the base64 payload in 400-byte lines, with a `+` after an exact multiple of 400", () => {
    // 3 bytes of base64 input per 4 of output: 300 bytes → 400 base64 characters exactly.
    const exact = saslPlainLines("a", "p".repeat(300 - 4));
    expect(exact.map((l) => l.length - "AUTHENTICATE ".length)).toEqual([400, 1]);
    expect(exact[1]).toBe("AUTHENTICATE +");
    const longer = saslPlainLines("a", "p".repeat(400));
    expect(longer).toHaveLength(2);
    expect(longer[1]).not.toBe("AUTHENTICATE +");
    expect(Buffer.from(longer.map((l) => l.slice(13)).join(""), "base64").toString()).toBe(`a\0a\0${"p".repeat(400)}`);
    expect(saslPlainLines("acct", "pw")).toEqual([`AUTHENTICATE ${Buffer.from("acct\0acct\0pw").toString("base64")}`]);
  });
});

describe("registration", () => {
  it("sends WEBIRC, CAP LS 302, PASS, NICK, USER in that order", async () => {
    const { s } = await connect({ password: "server pw", webirc: { password: "wp", username: "gw", hostname: "h.example", address: "::1" } });
    await s.expect(/^USER /);
    expect(s.lines).toEqual(["WEBIRC wp gw h.example 0::1", "CAP LS 302", "PASS :server pw", "NICK me", "USER meuser 0 * :Real Name"]);
  });

  it("reads a multi-line CAP LS with values, asks for what it wants, ends on ACK and registers", async () => {
    const { s, c, events } = await connect({ enable_echomessage: true });
    c.requestCap(["draft/relaymsg"]);
    s.send(":srv CAP * LS * :multi-prefix sasl=PLAIN,EXTERNAL draft/relaymsg=/ unknown-cap");
    s.send(":srv CAP * LS :echo-message server-time batch");
    const req = await s.expect(/^CAP REQ/);
    expect(req.slice("CAP REQ :".length).split(" ").sort()).toEqual(["batch", "draft/relaymsg", "echo-message", "multi-prefix", "server-time"]);
    expect(c.network.cap.available.get("draft/relaymsg")).toBe("/");
    expect(c.network.cap.available.get("sasl")).toBe("PLAIN,EXTERNAL");
    expect(c.network.cap.available.get("batch")).toBe("");
    s.send(":srv CAP me ACK :multi-prefix draft/relaymsg echo-message server-time batch");
    await s.expect("CAP END");
    expect([...c.network.cap.enabled].sort()).toEqual(["batch", "draft/relaymsg", "echo-message", "multi-prefix", "server-time"]);
    expect(c.network.cap.isEnabled("echo-message")).toBe(true);
    expect(c.network.cap.isEnabled("sasl")).toBe(false);
    s.send(":srv 001 me_ :Welcome");
    await waitEvent(events, "registered");
    expect(events.find(([n]) => n === "registered")?.[1]).toMatchObject({ nick: "me_" });
    expect(c.nick).toBe("me_");
    expect(c.user.nick).toBe("me_");
    // No SASL was asked for: none is reported.
    expect(events.some(([n]) => n === "sasl failed")).toBe(false);
  });

  it("ends at once when nothing it wants is offered", async () => {
    const { s } = await connect();
    s.send(":srv CAP * LS :foo bar");
    await s.expect("CAP END");
    expect(s.lines.some((l) => l.startsWith("CAP REQ"))).toBe(false);
  });

  it("logs in with SASL PLAIN: AUTHENTICATE PLAIN, the payload after `+`, loggedin, CAP END after 903", async () => {
    const { s, events } = await connect({ account: { account: "acct", password: "secret" } });
    s.send(":srv CAP * LS :sasl=PLAIN batch");
    await s.expect(/^CAP REQ :(sasl batch|batch sasl)$/);
    s.send(":srv CAP me ACK :batch sasl");
    await s.expect("AUTHENTICATE PLAIN");
    s.send("AUTHENTICATE +");
    await s.expect(`AUTHENTICATE ${Buffer.from("acct\0acct\0secret").toString("base64")}`);
    expect(s.lines).not.toContain("CAP END");
    s.send(":srv 900 me me!u@h acct :You are now logged in as acct", ":srv 903 me :SASL authentication successful");
    await s.expect("CAP END");
    await waitEvent(events, "loggedin");
    expect(events.find(([n]) => n === "loggedin")?.[1]).toMatchObject({ nick: "me", ident: "u", hostname: "h", account: "acct" });
    s.send(":srv 001 me :Welcome");
    await waitEvent(events, "registered");
    expect(events.some(([n]) => n === "sasl failed")).toBe(false);
  });

  it("reports a refused login (904) with the server's text", async () => {
    const { s, events } = await connect({ account: { account: "acct", password: "bad" } });
    s.send(":srv CAP * LS :sasl");
    s.send(":srv CAP me ACK :sasl");
    await s.expect("AUTHENTICATE PLAIN");
    s.send("AUTHENTICATE +");
    await s.expect(/^AUTHENTICATE [A-Za-z0-9+/=]+$/);
    s.send(":srv 904 me :SASL authentication failed");
    await waitEvent(events, "sasl failed");
    expect(events.find(([n]) => n === "sasl failed")?.[1]).toMatchObject({ reason: "fail", message: "SASL authentication failed" });
    await s.expect("CAP END");
  });

  it("reports capability_missing when the server offers no SASL, and unsupported_mechanism without PLAIN", async () => {
    const first = await connect({ account: { account: "acct", password: "pw" } });
    first.s.send(":srv CAP * LS :batch");
    await waitEvent(first.events, "sasl failed");
    expect(first.events.find(([n]) => n === "sasl failed")?.[1]).toEqual({ reason: "capability_missing" });
    client!.end();
    await server!.stop();

    const second = await connect({ account: { account: "acct", password: "pw" } });
    second.s.send(":srv CAP * LS :sasl=EXTERNAL");
    second.s.send(":srv CAP me ACK :sasl");
    await waitEvent(second.events, "sasl failed");
    expect(second.events.find(([n]) => n === "sasl failed")?.[1]).toEqual({ reason: "unsupported_mechanism" });
    await second.s.expect("CAP END");
    expect(second.s.lines).not.toContain("AUTHENTICATE PLAIN");
  });

  it("reports capability_missing when a server without CAP registers us anonymously", async () => {
    const { s, events } = await connect({ account: { account: "acct", password: "pw" } });
    s.send(":srv 001 me :Welcome");
    await waitEvent(events, "registered");
    expect(events.map(([n]) => n)).toEqual(["sasl failed", "registered"]);
  });
});

async function waitEvent(events: [string, unknown][], name: string): Promise<void> {
  const { waitFor } = await import("../../../../support/wait.ts");
  await waitFor(() => (events.some(([n]) => n === name) ? true : undefined), { what: name });
}
