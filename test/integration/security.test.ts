/**
 * Attempts to break in, on a real Prosody (and a real InspIRCd for IRC):
 * one user driving or reading another's session, a user the gateway does not
 * serve, secrets coming back in forms, data left behind after unregistering,
 * the store file's mode, a flood from one JID, oversized stanzas, and every
 * XMPP field that reaches IRC trying to smuggle a second command onto the
 * wire. Each test names the protection it checks (see SECURITY.md) and would
 * fail if that protection were removed.
 */
import { stat, mkdtemp, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { submitForm } from "../support/stanzas.ts";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { startInspircd, type InspircdHandle } from "../support/inspircd.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway, ircTestNetwork } from "../support/gateway.ts";
import { TestNetwork } from "../support/test-adapter.ts";
import { ircRemote, type IrcRemote } from "../support/irc-remote.ts";
import { waitFor } from "../support/wait.ts";
import { toPlain } from "../../core/format/model.ts";
import type { Gateway } from "../../core/gateway.ts";

const GW = "test.localhost";
const NS_REGISTER = "jabber:iq:register";
const NS_DATA = "jabber:x:data";
const NS_CMD = "http://jabber.org/protocol/commands";
const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";
const NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items";
const NS_MUC = "http://jabber.org/protocol/muc";
const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const PASSWORD = "correct-horse-battery-staple";

const registerIq = (username: string, password: string): Element =>
  xml("iq", { type: "set", to: GW }, xml("query", { xmlns: NS_REGISTER }, submitForm({ username, password })));

const commandIq = (to: string, node: string, attrs: Record<string, string> = {}, ...children: Element[]): Element =>
  xml("iq", { type: "set", to }, xml("command", { xmlns: NS_CMD, node, ...attrs }, ...children));

const pingIq = (to: string): Element => xml("iq", { type: "get", to }, xml("ping", { xmlns: "urn:xmpp:ping" }));

/** Values of a data form's field (none when the field carries no <value/>). */
function fieldValues(x: Element | undefined, name: string): string[] {
  const field = x?.getChildren("field").find((f) => f.attrs.var === name);
  if (!field) throw new Error(`no field ${name} in form`);
  return field.getChildren("value").map((v) => v.getText());
}

function errorCondition(stanza: Element): string | undefined {
  const err = stanza.getChild("error");
  return err?.children.find((c): c is Element => typeof c !== "string" && c.attrs.xmlns === NS_STANZAS && c.name !== "text")?.name;
}

function errorText(stanza: Element): string {
  return stanza.getChild("error")?.getChildText("text", NS_STANZAS) ?? "";
}

describe("security: users, forms, store and limits (test adapter, real Prosody)", () => {
  let prosody: ProsodyHandle;
  let dir: string;
  let dbPath: string;
  let net: TestNetwork;
  let gateway: Gateway;
  const clients: TestClient[] = [];
  const login = async (user: string, resource?: string): Promise<TestClient> => {
    const c = await connectClient(prosody, user, "pw", resource);
    clients.push(c);
    return c;
  };
  let romeo: TestClient;
  let juliet: TestClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-security-"));
    dbPath = join(dir, "new-store.sqlite");
    prosody = await startProsody({
      components: [{ domain: GW, secret: "gw-secret" }],
      users: ["romeo", "juliet", "mallory", "boss", "paris", "flood", "calm", "big"].map((username) => ({ username, password: "pw" })),
    });
    net = new TestNetwork();
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: { test: { domain: GW, secret: "gw-secret" } },
      adapters: { test: () => net.adapter() },
      // mallory@localhost stands for any JID outside the allowed list (a foreign domain over s2s
      // looks the same to the component: startProsody has a single VirtualHost).
      allow: ["romeo@localhost", "juliet@localhost", "boss@localhost", "paris@localhost", "flood@localhost", "calm@localhost", "big@localhost"],
      admins: ["boss@localhost"],
      storeUrl: `sqlite:${dbPath}`,
      limits: { maxBodyBytes: 4096, maxQueuedPerChat: 10, maxRoomsPerUser: 3 },
    });
    [romeo, juliet] = await Promise.all([login("romeo"), login("juliet")]);
    await romeo.iq(registerIq("romeo-net", PASSWORD));
    await juliet.iq(registerIq("juliet-net", "juliet-pass"));
    await romeo.send(xml("presence", { to: `#capulet@${GW}/romeo` }, xml("x", { xmlns: NS_MUC })));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `#capulet@${GW}/romeo` && s.attrs.type === undefined);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop().catch(() => {})));
    await gateway?.stop();
    await prosody?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe("per-bare-JID scoping", () => {
    it("juliet cannot speak in, private-message from or self-ping a room only romeo joined", async () => {
      const before = net.log.filter((r) => r.user === "juliet@localhost").length;
      await juliet.send(xml("message", { to: `#capulet@${GW}`, type: "groupchat", id: "j-room" }, xml("body", {}, "I am romeo")));
      const refused = await juliet.waitFor((s) => s.attrs.id === "j-room");
      expect(refused.attrs.type).toBe("error");
      expect(errorCondition(refused)).toBe("not-acceptable");

      await juliet.send(xml("message", { to: `#capulet@${GW}/alice`, type: "chat", id: "j-pm" }, xml("body", {}, "psst")));
      const pm = await juliet.waitFor((s) => s.attrs.id === "j-pm");
      expect(errorCondition(pm)).toBe("not-acceptable");

      await expect(juliet.iq(pingIq(`#capulet@${GW}/romeo`))).rejects.toMatchObject({ condition: "not-acceptable" });
      // The room really exists for romeo (positive control): his own self-ping succeeds.
      await expect(romeo.iq(pingIq(`#capulet@${GW}/romeo`))).resolves.toBeDefined();
      expect(net.log.filter((r) => r.user === "juliet@localhost").length).toBe(before);
      expect(net.log.some((r) => r.user === "romeo@localhost" && r.op === "send")).toBe(false);
    });

    it("admin commands are refused to non-admins and hidden from their command list", async () => {
      for (const node of ["admin/users", "admin/disconnect", "admin/stats"]) {
        await expect(juliet.iq(commandIq(GW, node, { action: "execute" }))).rejects.toMatchObject({ condition: "forbidden" });
      }
      const items = await juliet.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: NS_DISCO_ITEMS, node: NS_CMD })));
      const nodes = items.getChild("query")!.getChildren("item").map((i) => i.attrs.node);
      expect(nodes).toContain("status");
      expect(nodes.filter((n) => n?.startsWith("admin/"))).toEqual([]);
      // Positive control: the admin gets the list of users.
      const boss = await login("boss");
      const res = await boss.iq(commandIq(GW, "admin/users", { action: "execute" }));
      expect(fieldValues(res.getChild("command")!.getChild("x", NS_DATA), "registered")[0]).toContain("romeo@localhost");
      // And romeo, still connected, was not disconnected by juliet's attempt.
      expect(gateway.networks.get("test")!.sessions.state("romeo@localhost")).toBeDefined();
    });

    it("juliet cannot continue romeo's ad-hoc command session, and romeo's session survives the attempt", async () => {
      const started = await romeo.iq(commandIq(GW, "register", { action: "execute" }));
      const sessionid = started.getChild("command")!.attrs.sessionid!;
      expect(sessionid).toBeTruthy();
      await expect(
        juliet.iq(commandIq(GW, "register", { sessionid, action: "complete" }, submitForm({ username: "hijacked", password: "juliet-owns-you" }))),
      ).rejects.toMatchObject({ condition: "bad-request" });
      expect((await gateway.store.registrations.get("romeo@localhost", "test"))?.username).toBe("romeo-net");
      // The attempt did not consume romeo's session: he can still cancel it himself.
      const canceled = await romeo.iq(commandIq(GW, "register", { sessionid, action: "cancel" }));
      expect(canceled.getChild("command")!.attrs.status).toBe("canceled");
    });

    it("status and disco#items show juliet only her own state; her registration form never shows romeo's values", async () => {
      const mine = await juliet.iq(commandIq(GW, "status", { action: "execute" }));
      const x = mine.getChild("command")!.getChild("x", NS_DATA);
      expect(fieldValues(x, "rooms")).toEqual([""]);
      const his = await romeo.iq(commandIq(GW, "status", { action: "execute" }));
      expect(fieldValues(his.getChild("command")!.getChild("x", NS_DATA), "rooms")[0]).toContain("#capulet");

      const items = await juliet.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: NS_DISCO_ITEMS })));
      expect(items.getChild("query")!.getChildren("item").map((i) => i.attrs.jid)).not.toContain(`#capulet@${GW}`);

      const reg = await juliet.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: NS_REGISTER })));
      const text = reg.toString();
      expect(fieldValues(reg.getChild("query")!.getChild("x", NS_DATA), "username")).toEqual(["juliet-net"]);
      expect(text).not.toContain("romeo-net");
      expect(text).not.toContain(PASSWORD);
    });
  });

  it("a JID outside access.allow gets forbidden for every kind of stanza, and nothing reaches the network", async () => {
    const mallory = await login("mallory");
    const iqs: Element[] = [
      xml("iq", { type: "get", to: GW }, xml("query", { xmlns: NS_REGISTER })),
      registerIq("mallory", "x"),
      xml("iq", { type: "get", to: GW }, xml("query", { xmlns: NS_DISCO_INFO })),
      xml("iq", { type: "get", to: GW }, xml("query", { xmlns: NS_DISCO_ITEMS, node: NS_CMD })),
      commandIq(GW, "status", { action: "execute" }),
      commandIq(GW, "admin/users", { action: "execute" }),
      commandIq(`net@${GW}`, "configure", { action: "execute" }),
      pingIq(GW),
      pingIq(`#capulet@${GW}/romeo`),
    ];
    for (const iq of iqs) {
      await expect(mallory.iq(iq), iq.toString()).rejects.toMatchObject({ condition: "forbidden" });
    }
    await mallory.send(xml("message", { to: `bob@${GW}`, type: "chat", id: "m-chat" }, xml("body", {}, "hello")));
    expect(errorCondition(await mallory.waitFor((s) => s.attrs.id === "m-chat"))).toBe("forbidden");
    await mallory.send(xml("message", { to: `#capulet@${GW}`, type: "groupchat", id: "m-gc" }, xml("body", {}, "hello")));
    expect(errorCondition(await mallory.waitFor((s) => s.attrs.id === "m-gc"))).toBe("forbidden");
    await mallory.send(xml("presence", { to: `#capulet@${GW}/mallory` }, xml("x", { xmlns: NS_MUC })));
    const join = await mallory.waitFor((s) => s.name === "presence" && s.attrs.from === `#capulet@${GW}/mallory`);
    expect(join.attrs.type).toBe("error");
    expect(errorCondition(join)).toBe("forbidden");
    // Available presence to the gateway (would log a registered user in) and a subscription request.
    await mallory.send(xml("presence", { to: GW, type: "subscribe" }));
    const sub = await mallory.waitFor((s) => s.name === "presence" && s.attrs.from === GW);
    expect(sub.attrs.type).toBe("error");
    expect(errorCondition(sub)).toBe("forbidden");

    const g = gateway.networks.get("test")!;
    expect(net.log.filter((r) => r.user === "mallory@localhost")).toEqual([]);
    expect(net.sessions.has("mallory@localhost")).toBe(false);
    expect(g.sessions.state("mallory@localhost")).toBeUndefined();
    expect(g.rooms.list("mallory@localhost")).toEqual([]);
    expect(await gateway.store.registrations.get("mallory@localhost", "test")).toBeUndefined();
  });

  it("never echoes a stored secret: registration form, ad-hoc register form and the service configure form", async () => {
    const reg = await romeo.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: NS_REGISTER })));
    const regForm = reg.getChild("query")!.getChild("x", NS_DATA);
    expect(fieldValues(regForm, "username")).toEqual(["romeo-net"]); // the non-secret field is shown (control)
    expect(fieldValues(regForm, "password")).toEqual([]);
    expect(reg.toString()).not.toContain(PASSWORD);

    const cmd = await romeo.iq(commandIq(GW, "register", { action: "execute" }));
    const cmdForm = cmd.getChild("command")!.getChild("x", NS_DATA);
    expect(fieldValues(cmdForm, "username")).toEqual(["romeo-net"]);
    expect(fieldValues(cmdForm, "password")).toEqual([]);
    expect(cmd.toString()).not.toContain(PASSWORD);
    await romeo.iq(commandIq(GW, "register", { sessionid: cmd.getChild("command")!.attrs.sessionid!, action: "cancel" }));

    // Per-service settings (XEP-0050 configure on the service JID): the server password is kept, never shown.
    const first = await romeo.iq(commandIq(`net@${GW}`, "configure", { action: "execute" }));
    await romeo.iq(
      commandIq(`net@${GW}`, "configure", { sessionid: first.getChild("command")!.attrs.sessionid!, action: "complete" }, submitForm({ nick: "romeo", password: "server-pass-42" })),
    );
    const again = await romeo.iq(commandIq(`net@${GW}`, "configure", { action: "execute" }));
    const cfgForm = again.getChild("command")!.getChild("x", NS_DATA);
    expect(fieldValues(cfgForm, "nick")).toEqual(["romeo"]);
    expect(fieldValues(cfgForm, "password")).toEqual([]);
    expect(again.toString()).not.toContain("server-pass-42");
    expect(await gateway.store.scoped("romeo@localhost", "test").get<Record<string, string>>("server:net")).toMatchObject({ password: "server-pass-42" });
    await romeo.iq(commandIq(`net@${GW}`, "configure", { sessionid: again.getChild("command")!.attrs.sessionid!, action: "cancel" }));
  });

  it("unregistering removes the registration, rooms, scoped keys and id map of that user", async () => {
    const paris = await login("paris");
    const user = "paris@localhost";
    await paris.iq(registerIq("paris-net", "paris-pass"));
    await paris.send(xml("presence", { to: `#verona@${GW}/paris` }, xml("x", { xmlns: NS_MUC })));
    await paris.waitFor((s) => s.name === "presence" && s.attrs.from === `#verona@${GW}/paris` && s.attrs.type === undefined);
    await paris.send(xml("message", { to: `#verona@${GW}`, type: "groupchat", id: "p-1" }, xml("body", {}, "hello verona")));
    await paris.waitFor((s) => s.name === "message" && s.attrs.id === "p-1");
    const start = await paris.iq(commandIq(`net@${GW}`, "configure", { action: "execute" }));
    await paris.iq(commandIq(`net@${GW}`, "configure", { sessionid: start.getChild("command")!.attrs.sessionid!, action: "complete" }, submitForm({ nick: "paris", password: "srv" })));

    // The id map is checked from the outside: a reaction to p-1 works only while the gateway knows p-1.
    const react = (id: string): Element =>
      xml("message", { to: `#verona@${GW}`, type: "groupchat", id }, xml("reactions", { xmlns: "urn:xmpp:reactions:0", id: "p-1" }, xml("reaction", {}, "👍")));
    await paris.send(react("p-react-1"));
    await net.waitForSent((r) => r.user === user && r.op === "react");
    // Everything is there before (so the checks after can fail).
    expect(await gateway.store.registrations.get(user, "test")).toMatchObject({ username: "paris-net" });
    expect(await gateway.store.rooms.list(user, "test")).toEqual([{ room: "#verona", nick: "paris" }]);
    expect(await gateway.store.scoped(user, "test").get("server:net")).toBeDefined();

    await paris.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: NS_REGISTER }, xml("remove"))));

    expect(await gateway.store.registrations.get(user, "test")).toBeUndefined();
    expect((await gateway.store.registrations.list("test")).map((r) => r.user)).not.toContain(user);
    expect(await gateway.store.rooms.list(user, "test")).toEqual([]);
    expect(await gateway.store.scoped(user, "test").get("server:net")).toBeUndefined();
    const g = gateway.networks.get("test")!;
    expect(g.rooms.list(user)).toEqual([]);
    expect(g.sessions.state(user)).toBeUndefined();
    // Back as a new user in the same room: the old message id means nothing any more.
    await paris.iq(registerIq("paris-net", "paris-pass"));
    await paris.send(xml("presence", { to: `#verona@${GW}/paris` }, xml("x", { xmlns: NS_MUC })));
    await paris.waitFor((s) => s.name === "presence" && s.attrs.from === `#verona@${GW}/paris` && s.attrs.type === undefined);
    await paris.send(react("p-react-2"));
    const forgotten = await paris.waitFor((s) => s.name === "message" && s.attrs.id === "p-react-2");
    expect(errorCondition(forgotten)).toBe("item-not-found");
    // Other users are untouched.
    expect(await gateway.store.registrations.get("romeo@localhost", "test")).toMatchObject({ username: "romeo-net" });
  });

  it("creates a new SQLite store owner-only (0600), with sealed secrets in it", async () => {
    expect(existsSync(dbPath)).toBe(true);
    for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) {
      if (!existsSync(f)) continue;
      expect(((await stat(f)).mode & 0o777).toString(8), f).toBe("600");
    }
    // The password is nowhere in the file in clear (sealed with AES-GCM).
    const { readFileSync } = await import("node:fs");
    const raw = Buffer.concat([readFileSync(dbPath), existsSync(`${dbPath}-wal`) ? readFileSync(`${dbPath}-wal`) : Buffer.alloc(0)]);
    expect(raw.includes("romeo-net")).toBe(true); // control: the registration is in these bytes
    expect(raw.includes(PASSWORD)).toBe(false);
  });

  it("a flood from one JID is bounded (resource-constraint, nothing silently dropped) and does not starve another user", async () => {
    const [flood, calm] = await Promise.all([login("flood"), login("calm")]);
    await flood.iq(registerIq("flood-net", "pw"));
    await calm.iq(registerIq("calm-net", "pw"));
    const N = 2000;
    const ids = Array.from({ length: N }, (_, i) => `f-${i}`);
    // As fast as the socket takes them: no await between sends.
    const sending = Promise.all(ids.map((id) => flood.send(xml("message", { to: `target@${GW}`, type: "chat", id }, xml("body", {}, id)))));

    // Deadline 5 s: unloaded this takes ~1 s, bounded by the flood stanzas already ahead of calm's on
    // the single component stream (head-of-line; see SECURITY.md "resource abuse").
    const DEADLINE = 5000;
    const t0 = Date.now();
    await calm.iq(pingIq(GW), DEADLINE);
    await calm.send(xml("message", { to: `friend@${GW}`, type: "chat", id: "calm-1" }, xml("body", {}, "still heard")));
    await net.waitForSent((r) => r.user === "calm@localhost" && r.op === "send" && toPlain(r.message!.text) === "still heard", DEADLINE);
    expect(Date.now() - t0).toBeLessThan(DEADLINE);
    await sending;

    const errored = new Map<string, Element>();
    const accounted = (): true | undefined => {
      for (const s of flood.inbox) if (s.name === "message" && s.attrs.type === "error" && s.attrs.id?.startsWith("f-")) errored.set(s.attrs.id, s);
      const sent = net.log.filter((r) => r.user === "flood@localhost" && r.op === "send").length;
      return sent + errored.size === N ? true : undefined;
    };
    await waitFor(accounted, { timeout: 30_000, what: "every flood message either sent to the network or answered with an error" });
    const sentIds = new Set(net.log.filter((r) => r.user === "flood@localhost" && r.op === "send").map((r) => toPlain(r.message!.text)));
    expect(errored.size).toBeGreaterThan(0);
    for (const [id, e] of errored) {
      expect(sentIds.has(id), `${id} both sent and refused`).toBe(false);
      expect(errorCondition(e)).toBe("resource-constraint");
    }
    for (const id of ids) expect(sentIds.has(id) || errored.has(id), id).toBe(true);
  });

  it("limits.maxRoomsPerUser: a fourth room is refused with not-allowed, and the three joined stay", async () => {
    for (const r of ["#r1", "#r2", "#r3"]) {
      await juliet.send(xml("presence", { to: `${r}@${GW}/juliet` }, xml("x", { xmlns: NS_MUC })));
      const ok = await juliet.waitFor((s) => s.name === "presence" && s.attrs.from === `${r}@${GW}/juliet`);
      expect(ok.attrs.type, r).toBeUndefined();
    }
    await juliet.send(xml("presence", { to: `#r4@${GW}/juliet` }, xml("x", { xmlns: NS_MUC })));
    const refused = await juliet.waitFor((s) => s.name === "presence" && s.attrs.from === `#r4@${GW}/juliet`);
    expect(refused.attrs.type).toBe("error");
    expect(errorCondition(refused)).toBe("not-allowed");
    expect(gateway.networks.get("test")!.rooms.list("juliet@localhost").map((r) => r.room).sort()).toEqual(["#r1", "#r2", "#r3"]);
  });

  it("refuses an oversized body with policy-violation and a text; a stanza over Prosody's limit cuts only its sender", async () => {
    await romeo.send(xml("message", { to: `bob@${GW}`, type: "chat", id: "big-body" }, xml("body", {}, "x".repeat(5000))));
    const refused = await romeo.waitFor((s) => s.attrs.id === "big-body");
    expect(errorCondition(refused)).toBe("policy-violation");
    expect(errorText(refused)).toMatch(/4096 bytes/);
    expect(net.log.some((r) => r.user === "romeo@localhost" && r.op === "send")).toBe(false);

    // Prosody 0.12's c2s_stanza_size_limit is 256 KiB (mod_c2s.lua) and its component limit 512 KiB:
    // a 600 KiB stanza never reaches the gateway; Prosody closes that client's stream.
    const big = await login("big");
    await big.send(xml("message", { to: `bob@${GW}`, type: "chat", id: "huge" }, xml("body", {}, "y".repeat(600 * 1024)))).catch(() => {});
    await waitFor(() => (big.xmpp.status === "offline" || big.xmpp.status === "disconnect" ? true : undefined), {
      timeout: 10_000,
      what: "Prosody to close the stream of the client that sent an oversized stanza",
    });
    expect(gateway.networks.get("test")!.link.state).toBe("online");
    await expect(juliet.iq(pingIq(GW), 2000)).resolves.toBeDefined();
  });
});

describe("security: nothing from XMPP injects an IRC command (IRC adapter, Prosody + InspIRCd)", () => {
  const IRC_GW = "irc.localhost";
  const SERVER = "127.0.0.1";
  const ROOM = `#verona%${SERVER}@${IRC_GW}`;
  let prosody: ProsodyHandle;
  let ircd: InspircdHandle;
  let gateway: Gateway;
  let romeo: TestClient;
  let tybalt: TestClient;
  let watcher: IrcRemote;
  let romeoNick: string;

  /** Lines the watcher saw from a given IRC nick (prefix `:nick!`). */
  const linesFrom = (nick: string): string[] => watcher.lines.map((l) => l.line).filter((l) => l.toLowerCase().startsWith(`:${nick.toLowerCase()}!`));
  const commandsFrom = (nick: string): string[] => linesFrom(nick).map((l) => l.split(" ")[1] ?? "");

  beforeAll(async () => {
    [prosody, ircd] = await Promise.all([
      startProsody({
        components: [{ domain: IRC_GW, secret: "irc-secret" }],
        users: ["romeo", "tybalt", "mercutio"].map((username) => ({ username, password: "pw" })),
      }),
      startInspircd(),
    ]);
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: {
        irc: ircTestNetwork(IRC_GW, "irc-secret", SERVER, ircd.port, { lingerMs: 500 }),
      },
    });
    [romeo, tybalt, watcher] = await Promise.all([connectClient(prosody, "romeo", "pw"), connectClient(prosody, "tybalt", "pw"), ircRemote(ircd, "watcher")]);
    for (const ch of ["#verona", "#a", "#b"]) await watcher.join(ch);
    // Let anyone set the topic (InspIRCd creates channels +t), so romeo's TOPIC reaches the wire.
    watcher.send("MODE #verona -t");
    await watcher.waitLine("#verona -t", (l) => / MODE #verona :?-t/.test(l));
  });

  afterAll(async () => {
    watcher?.quit();
    await Promise.all([romeo?.stop(), tybalt?.stop()]);
    await gateway?.stop();
    await Promise.all([prosody?.stop(), ircd?.stop()]);
  });

  it("a nick with spaces (a legal XMPP resource) joins as one IRC nick, without extra parameters", async () => {
    await romeo.send(xml("presence", { to: `${ROOM}/nick with spaces` }, xml("x", { xmlns: NS_MUC })));
    const self = await romeo.waitFor(
      (s) => s.name === "presence" && s.attrs.type === undefined && (s.getChild("x", `${NS_MUC}#user`)?.getChildren("status") ?? []).some((c) => c.attrs.code === "110"),
      15_000,
    );
    romeoNick = self.attrs.from!.split("/")[1]!;
    expect(romeoNick).not.toContain(" ");
    const join = await watcher.waitLine("romeo's JOIN", (l) => l.toLowerCase().startsWith(`:${romeoNick.toLowerCase()}!`) && / JOIN :?#verona( |$)/i.test(l));
    // extended-join (IRCv3) adds the account and realname after the channel; the channel is the third word.
    expect(join.split(" ")[2]).toMatch(/^:?#verona$/i);
  });

  it("CR, LF in a body (sent as XML character references) never start a second command", async () => {
    // xmpp.js would send a raw CR that XML parsers normalise to LF; &#13; reaches the gateway as a real CR.
    await romeo.xmpp.write(
      `<message to="${ROOM}" type="groupchat" id="inj-body"><body>one&#13;QUIT :pwned by cr&#13;&#10;PRIVMSG #b :injected&#10;MODE #verona +o watcher</body></message>`,
    );
    await romeo.waitFor((s) => s.attrs.id === "inj-body" && s.attrs.type === "groupchat");
    await watcher.waitLine("the last line, as text", (l) => / PRIVMSG #verona :MODE #verona \+o watcher$/.test(l));
    await romeo.send(xml("message", { to: ROOM, type: "groupchat", id: "after-body" }, xml("body", {}, "still connected")));
    await watcher.waitLine("a plain line after the attempt", (l) => / PRIVMSG #verona :still connected$/.test(l));
    expect(commandsFrom(romeoNick).filter((c) => c !== "JOIN" && c !== "PRIVMSG")).toEqual([]);
    expect(linesFrom(romeoNick).filter((l) => / PRIVMSG #b /.test(l))).toEqual([]);
    // The CR-joined pieces arrive as text on one PRIVMSG: "one" and "QUIT :pwned by cr" are never a command.
    expect(linesFrom(romeoNick).some((l) => / PRIVMSG #verona :.*QUIT :pwned by cr/.test(l))).toBe(true);
  });

  it("a subject with CR/LF becomes one TOPIC line", async () => {
    await romeo.xmpp.write(`<message to="${ROOM}" type="groupchat" id="inj-topic"><subject>Fair Verona&#13;&#10;KICK #verona watcher :bye</subject></message>`);
    const topic = await watcher.waitLine("the topic", (l) => / TOPIC #verona :/.test(l));
    expect(topic).toMatch(/ TOPIC #verona :Fair Verona ?KICK #verona watcher :bye$/);
    expect(commandsFrom(romeoNick).filter((c) => !["JOIN", "PRIVMSG", "TOPIC"].includes(c))).toEqual([]);
    expect(watcher.lines.some((l) => / KICK #verona watcher/.test(l.line) && !/ TOPIC /.test(l.line))).toBe(false);
  });

  it("channel names with ',' or an escaped space (XEP-0106 \\20) are refused, never joined as two channels", async () => {
    for (const local of ["#a,#b", "#a\\20#b", "#a\\20b"]) {
      const to = `${local}%${SERVER}@${IRC_GW}/romeo`;
      await romeo.send(xml("presence", { to }, xml("x", { xmlns: NS_MUC })));
      const reply = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === to, 10_000);
      expect(reply.attrs.type, local).toBe("error");
    }
    // A control join proves the watcher would have seen a JOIN to #a / #b.
    await romeo.send(xml("presence", { to: `#b%${SERVER}@${IRC_GW}/romeo` }, xml("x", { xmlns: NS_MUC })));
    await watcher.waitLine("control JOIN #b", (l) => l.toLowerCase().startsWith(`:${romeoNick.toLowerCase()}!`) && / JOIN :?#b( |$)/i.test(l));
    expect(linesFrom(romeoNick).filter((l) => / JOIN :?#a/i.test(l))).toEqual([]);
  });

  it("a nick change to 'a:b' or with CR/LF never becomes a second command, and the user stays connected", async () => {
    await romeo.xmpp.write(`<presence to="${ROOM}/evil&#13;&#10;QUIT"/>`).catch(() => {});
    await romeo.send(xml("presence", { to: `${ROOM}/a:b` }));
    // Both are answered (error or nick change); neither is silently eaten.
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/a:b`, 10_000);
    await romeo.send(xml("message", { to: ROOM, type: "groupchat", id: "after-nick" }, xml("body", {}, "after nick attempts")));
    const line = await watcher.waitLine("a line after the nick attempts", (l) => / PRIVMSG #verona :after nick attempts$/.test(l));
    const nickNow = line.slice(1).split("!")[0]!;
    expect(watcher.lines.some((l) => /^:\S+ QUIT/i.test(l.line))).toBe(false);
    expect(commandsFrom(romeoNick).concat(commandsFrom(nickNow)).filter((c) => !["JOIN", "PRIVMSG", "TOPIC", "NICK"].includes(c))).toEqual([]);
  });

  it("a kick reason (muc#admin) with CR/LF stays on the KICK line", async () => {
    const rose = `#rose%${SERVER}@${IRC_GW}`;
    // romeo creates #rose, so he is its op on IRC; the watcher then joins it.
    await romeo.send(xml("presence", { to: `${rose}/romeo` }, xml("x", { xmlns: NS_MUC })));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${rose}/${romeoNick}` && s.attrs.type === undefined, 15_000);
    await watcher.join("#rose");
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${rose}/watcher` && s.attrs.type === undefined, 10_000);
    await romeo.xmpp.write(
      `<iq type="set" to="${rose}" id="kick-1"><query xmlns="http://jabber.org/protocol/muc#admin">` +
        `<item nick="watcher" role="none"><reason>go&#13;&#10;QUIT :pwned&#10;MODE #verona +b *!*@*</reason></item></query></iq>`,
    );
    const done = await romeo.waitFor((s) => s.name === "iq" && s.attrs.id === "kick-1");
    expect(done.attrs.type).toBe("result");
    const kick = await watcher.waitLine("the KICK", (l) => / KICK #rose watcher :/i.test(l));
    // The line breaks became spaces (adapters/irc/lines.ts oneLine): all of it is the reason's text.
    expect(kick).toMatch(/ KICK #rose watcher :go QUIT :pwned MODE #verona \+b \*!\*@\*$/);
    expect(commandsFrom(romeoNick).filter((c) => !["JOIN", "PRIVMSG", "TOPIC", "NICK", "KICK"].includes(c))).toEqual([]);
  });

  it("server settings from the configure command (realname, commandsAfterConnect) cannot carry CR/LF into another line", async () => {
    const service = `${SERVER}@${IRC_GW}`;
    const first = await tybalt.iq(commandIq(service, "configure", { action: "execute" }));
    const sessionid = first.getChild("command")!.attrs.sessionid!;
    // Raw XML so the CR survives as &#13;: a realname with CR LF QUIT, and a raw command whose single line hides a CR.
    await tybalt.xmpp.write(
      `<iq type="set" to="${service}" id="cfg-1"><command xmlns="${NS_CMD}" node="configure" sessionid="${sessionid}" action="complete">` +
        `<x xmlns="${NS_DATA}" type="submit">` +
        `<field var="nick"><value>tybalt</value></field>` +
        `<field var="realname"><value>Prince of Cats&#13;&#10;QUIT :pwned</value></field>` +
        `<field var="commandsAfterConnect"><value>PRIVMSG watcher :after&#13;JOIN #a</value></field>` +
        `</x></command></iq>`,
    );
    const saved = await tybalt.waitFor((s) => s.name === "iq" && s.attrs.id === "cfg-1");
    expect(saved.attrs.type).toBe("result");
    await tybalt.send(xml("presence", { to: `${ROOM}/tybalt` }, xml("x", { xmlns: NS_MUC })));
    await watcher.waitLine("tybalt's JOIN", (l) => /^:tybalt!\S+ JOIN :?#verona( |$)/i.test(l), 15_000);
    const pm = await watcher.waitLine("tybalt's command after connect", (l) => /^:tybalt!\S+ PRIVMSG watcher :/i.test(l));
    expect(pm).toMatch(/ PRIVMSG watcher :afterJOIN #a$/);
    watcher.send("WHOIS tybalt");
    const whois = await watcher.waitLine("WHOIS reply", (l) => / 311 watcher tybalt /i.test(l));
    expect(whois).toMatch(/:Prince of CatsQUIT :pwned$/);
    expect(commandsFrom("tybalt").filter((c) => !["JOIN", "PRIVMSG"].includes(c))).toEqual([]);
    expect(linesFrom("tybalt").some((l) => / JOIN :?#a( |$)/i.test(l))).toBe(false);
  });
});
