/**
 * Bridges managed at run time through XEP-0050 admin commands, end to end: a
 * real Prosody (MUC room@conference.localhost), a real InspIRCd, Estuary with
 * the IRC adapter on a SQLite store. An admin XMPP user creates a bridge
 * between the MUC and #rt, lists, pauses, resumes and removes it; a
 * non-admin is refused; a gateway restart brings the run-time bridge back.
 * A config-file bridge (cfg@conference.localhost ↔ #cfg) shows what cannot
 * be done to those at run time.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { startInspircd, type InspircdHandle } from "../support/inspircd.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { ircRemote, type IrcRemote } from "../support/irc-remote.ts";
import { waitFor } from "../support/wait.ts";
import { configSchema } from "../../config/schema.ts";
import { startGateway, type Gateway } from "../../core/gateway.ts";
import { silentLogger } from "../../core/log.ts";

const GW = "irc.localhost";
const ROOM = "room@conference.localhost";
const SERVER = "127.0.0.1";
const NS_CMD = "http://jabber.org/protocol/commands";
const NS_DATA = "jabber:x:data";
const NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items";
const MUC = "http://jabber.org/protocol/muc";
const MUC_USER = "http://jabber.org/protocol/muc#user";
/** How long "nothing arrives" is watched for while paused (the relay path takes well under 100 ms here). */
const QUIET_MS = 1500;

const codes = (p: Element): string[] => (p.getChild("x", MUC_USER)?.getChildren("status") ?? []).map((s) => s.attrs.code ?? "");

function form(values: Record<string, string>): Element {
  return xml("x", { xmlns: NS_DATA, type: "submit" }, ...Object.entries(values).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))));
}

/** The rows of an XEP-0004 §3.4 result table, as records. */
function rows(cmd: Element): Record<string, string>[] {
  const x = cmd.getChild("x", NS_DATA);
  return (x?.getChildren("item") ?? []).map((item) => Object.fromEntries(item.getChildren("field").map((f) => [f.attrs.var, f.getChildText("value") ?? ""])));
}

describe("bridges created and managed through admin commands", () => {
  let prosody: ProsodyHandle;
  let ircd: InspircdHandle;
  let dir: string;
  let gateway: Gateway;
  let admin: TestClient;
  let alice: TestClient;
  let mallory: TestClient;
  let bob: IrcRemote;

  const startGw = async () => {
    const config = configSchema.parse({
      xmpp: { host: "127.0.0.1", port: prosody.componentPort, reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } },
      access: { allow: ["localhost"], admins: ["admin@localhost"] },
      networks: {
        irc: {
          domain: GW,
          secret: "irc-secret",
          options: { servers: { [SERVER]: { port: ircd.port } }, allowedServers: [SERVER], flood: { burst: 50, intervalMs: 0 } },
        },
      },
      store: { url: `sqlite:${join(dir, "estuary.sqlite")}`, encryptionKey: "test-key-0123456789abcdef" },
      log: { level: "silent" },
      bridges: [{ name: "cfg", xmpp: { room: "cfg@conference.localhost" }, irc: { server: SERVER, channel: "#cfg", nick: "cfgbridge" } }],
    });
    gateway = await startGateway(config, { logger: silentLogger() });
    await Promise.all([...gateway.networks.values()].map((n) => n.link.online(20_000)));
  };

  /** Runs a command; with `values`, submits them to the form it answered with. */
  const command = async (c: TestClient, node: string, values?: Record<string, string>): Promise<Element> => {
    const first = (await c.iq(xml("iq", { type: "set", to: GW }, xml("command", { xmlns: NS_CMD, node, action: "execute" })))).getChild("command", NS_CMD)!;
    if (values === undefined) return first;
    expect(first.attrs.status).toBe("executing");
    const done = await c.iq(xml("iq", { type: "set", to: GW }, xml("command", { xmlns: NS_CMD, node, sessionid: first.attrs.sessionid, action: "complete" }, form(values))));
    return done.getChild("command", NS_CMD)!;
  };
  const note = (cmd: Element) => cmd.getChildText("note") ?? "";
  const list = async () => rows(await command(admin, "admin/bridges"));
  const relayIn = (s: Element) => s.name === "presence" && s.attrs.from === `${ROOM}/relay` && s.attrs.type === undefined;
  const relayOut = (s: Element) => s.name === "presence" && s.attrs.from === `${ROOM}/relay` && s.attrs.type === "unavailable";
  const ircJoins = () => bob.lines.filter((l) => /^:rtbridge!\S+ JOIN :?#rt/i.test(l.line)).length;
  const fromRoom = (nick: string, body: string) => (s: Element) =>
    s.name === "message" && s.attrs.type === "groupchat" && s.attrs.from === `${ROOM}/${nick}` && s.getChildText("body") === body;
  const waitIrc = (text: string, ms = 10_000) => bob.waitLine(`IRC: ${text}`, (l) => l.endsWith(` PRIVMSG #rt :${text}`), ms);
  const say = (text: string) => alice.send(xml("message", { to: ROOM, type: "groupchat" }, xml("body", {}, text)));

  /** Both ways, with fresh texts. */
  const crossesBothWays = async (tag: string) => {
    await say(`from xmpp ${tag}`);
    await waitIrc(`<alice> from xmpp ${tag}`);
    bob.send(`PRIVMSG #rt :from irc ${tag}`);
    await alice.waitFor(fromRoom("bob", `from irc ${tag}`), 10_000);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-bridge-admin-"));
    [prosody, ircd] = await Promise.all([
      startProsody({
        muc: true,
        components: [{ domain: GW, secret: "irc-secret" }],
        users: [
          { username: "admin", password: "pw" },
          { username: "alice", password: "pw" },
          { username: "mallory", password: "pw" },
        ],
      }),
      startInspircd(),
    ]);
    [admin, alice, mallory, bob] = await Promise.all([
      connectClient(prosody, "admin", "pw"),
      connectClient(prosody, "alice", "pw"),
      connectClient(prosody, "mallory", "pw"),
      ircRemote(ircd, "bob"),
    ]);
    await alice.send(xml("presence", { to: `${ROOM}/alice` }, xml("x", { xmlns: MUC })));
    await alice.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/alice` && codes(s).includes("110"), 10_000);
    await bob.join("#rt");
    await startGw();
  }, 60_000);

  afterAll(async () => {
    bob?.quit();
    await Promise.all([admin?.stop(), alice?.stop(), mallory?.stop()]);
    await gateway?.stop();
    await Promise.all([prosody?.stop(), ircd?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refuses the bridge commands to a non-admin (forbidden) and hides them from their command list", async () => {
    for (const node of ["admin/bridges", "admin/bridge-create", "admin/bridge-remove"]) {
      await expect(command(mallory, node)).rejects.toMatchObject({ condition: "forbidden" });
    }
    const nodes = async (c: TestClient) =>
      (await c.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: NS_DISCO_ITEMS, node: NS_CMD })))).getChild("query")!.getChildren("item").map((i) => i.attrs.node);
    expect(await nodes(mallory)).not.toContain("admin/bridges");
    expect(await nodes(admin)).toEqual(expect.arrayContaining(["admin/bridges", "admin/bridge-create", "admin/bridge-pause", "admin/bridge-resume", "admin/bridge-remove"]));
  });

  it("refuses an invalid definition with the config schema's reasons, never echoing a token", async () => {
    const form = await command(admin, "admin/bridge-create");
    const fields = form.getChild("x", NS_DATA)!.getChildren("field");
    expect(fields.find((f) => f.attrs.var === "matrix_token")?.attrs.type).toBe("text-private");
    expect(fields.find((f) => f.attrs.var === "telegram_token")?.attrs.type).toBe("text-private");
    const err = await command(admin, "admin/bridge-create", {
      name: "bad",
      xmpp_room: ROOM,
      irc_server: SERVER,
      irc_channel: "no-hash",
      matrix_homeserver: "not a url",
      matrix_user: "@x:hs.test",
      matrix_room: "#r:hs.test",
      matrix_token: "sekrit-token-value",
    }).catch((e: { condition?: string; element?: Element }) => e);
    expect(err).toMatchObject({ condition: "not-acceptable" });
    const text = (err as { element: Element }).element.getChildText("text") ?? "";
    expect(text).toMatch(/IRC channel: must be an IRC channel/);
    expect(text).toMatch(/Matrix homeserver URL/);
    expect(text).not.toContain("sekrit");
    expect((await list()).map((r) => r.name)).toEqual(["cfg"]);
  });

  it("creates a bridge between the MUC and #rt: messages cross both ways at once", async () => {
    const done = await command(admin, "admin/bridge-create", { name: "rt", xmpp_room: ROOM, irc_server: SERVER, irc_channel: "#rt", irc_nick: "rtbridge" });
    expect(done.attrs.status).toBe("completed");
    expect(note(done)).toMatch(/rt created/);
    await alice.waitFor(relayIn, 15_000);
    await waitFor(() => (ircJoins() === 1 ? true : undefined), { timeout: 15_000, what: "the IRC relay to join #rt" });
    await crossesBothWays("1");
  });

  it("lists the bridges: legs, running or paused, per-leg state, where each comes from", async () => {
    const all = await list();
    expect(all.map((r) => r.name)).toEqual(["cfg", "rt"]);
    const rt = all.find((r) => r.name === "rt")!;
    expect(rt).toMatchObject({ source: "run time", state: "running", legs: "xmpp, irc" });
    expect(rt.details).toMatch(/xmpp: relay in room@conference\.localhost as relay, 1 puppet present/);
    expect(rt.details).toMatch(/irc: joined .* as rtbridge/);
    expect(all.find((r) => r.name === "cfg")).toMatchObject({ source: "configuration file", state: "running" });
  });

  it("pauses: nothing crosses either way; resumes: the next message crosses", async () => {
    const paused = await command(admin, "admin/bridge-pause", { name: "rt" });
    expect(note(paused)).toMatch(/rt paused/);
    await alice.waitFor(relayOut, 10_000);
    expect((await list()).find((r) => r.name === "rt")?.state).toBe("paused");

    await say("while paused");
    bob.send("PRIVMSG #rt :paused on irc");
    // Bounded wait for something that must NOT happen.
    await expect(waitIrc("<alice> while paused", QUIET_MS)).rejects.toThrow(/timed out/);
    await expect(alice.waitFor(fromRoom("bob", "paused on irc"), QUIET_MS)).rejects.toThrow(/no matching stanza/);

    const resumed = await command(admin, "admin/bridge-resume", { name: "rt" });
    expect(note(resumed)).toMatch(/rt resumed/);
    await alice.waitFor(relayIn, 15_000);
    await waitFor(() => (ircJoins() === 2 ? true : undefined), { timeout: 15_000, what: "the IRC relay to rejoin #rt" });
    // Positive control: the same path works again, so the silence above was the pause.
    await crossesBothWays("2");
    expect(bob.lines.some((l) => l.line.includes("while paused"))).toBe(false);
    expect(alice.inbox.some(fromRoom("bob", "paused on irc"))).toBe(false);
  });

  it("refuses to remove a config-file bridge (and says where it lives) but pauses it", async () => {
    const err = await command(admin, "admin/bridge-remove", { name: "cfg", confirm: "true" }).catch((e: { condition?: string; element?: Element }) => e);
    expect(err).toMatchObject({ condition: "not-allowed" });
    expect((err as { element: Element }).element.getChildText("text")).toMatch(/configuration file/);
    await command(admin, "admin/bridge-pause", { name: "cfg" });
    expect((await list()).find((r) => r.name === "cfg")?.state).toBe("paused");
  });

  it("after a gateway restart on the same store, the run-time bridge is back and relays; the pause of cfg holds", async () => {
    await gateway.stop();
    await alice.waitFor(relayOut, 10_000);
    await startGw();
    await alice.waitFor(relayIn, 20_000);
    await waitFor(() => (ircJoins() === 3 ? true : undefined), { timeout: 20_000, what: "the IRC relay to rejoin #rt after the restart" });
    await crossesBothWays("3");
    const all = await list();
    expect(all.find((r) => r.name === "rt")).toMatchObject({ source: "run time", state: "running" });
    expect(all.find((r) => r.name === "cfg")?.state).toBe("paused");
  });

  it("removes the bridge after confirmation: gone from the list, from the store, and from the room", async () => {
    const kept = await command(admin, "admin/bridge-remove", { name: "rt", confirm: "false" });
    expect(note(kept)).toBe("Nothing done.");
    expect((await list()).map((r) => r.name)).toContain("rt");

    const removed = await command(admin, "admin/bridge-remove", { name: "rt", confirm: "true" });
    expect(note(removed)).toMatch(/rt removed/);
    await alice.waitFor(relayOut, 10_000);
    expect((await list()).map((r) => r.name)).toEqual(["cfg"]);
    const stored = await gateway.store.scoped("~gateway", "bridges").get<{ name: string }[]>("runtime");
    expect(stored?.map((b) => b.name)).toEqual([]);
    await say("after removal");
    await expect(waitIrc("<alice> after removal", QUIET_MS)).rejects.toThrow(/timed out/);
  });
});
