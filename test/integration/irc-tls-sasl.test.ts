/**
 * The IRC adapter's TLS (certificate validation, a private CA) and SASL PLAIN
 * against real servers: InspIRCd 3 with a GnuTLS listener using a throwaway
 * CA made here with openssl, and Atheme services linked to it for accounts.
 * The adapter is driven directly with a fake SessionContext, as in
 * irc-adapter.test.ts; plain irc-framework clients play the people on IRC.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AdapterSession } from "../../core/adapter.ts";
import { isEstuaryError } from "../../core/errors.ts";
import { plain, toPlain, type RichText } from "../../core/format/model.ts";
import { silentLogger } from "../../core/log.ts";
import type { LegacyEvent } from "../../core/model.ts";
import { createIrcAdapter } from "../../adapters/irc/index.ts";
import { startAtheme, type AthemeHandle } from "../support/atheme.ts";
import { startInspircd, type InspircdHandle } from "../support/inspircd.ts";
import { memoryStore, openSession, type Harness } from "../support/adapter-harness.ts";
import { ircRemote, type IrcRemote } from "../support/irc-remote.ts";
import { waitFor } from "../support/wait.ts";

const run = promisify(execFile);

/** A CA and a server certificate for 127.0.0.1 and localhost signed by it (RFC 5280 subjectAltName). */
async function makeCertificates(dir: string): Promise<{ caFile: string; ca: string; cert: string; key: string }> {
  const f = (name: string) => join(dir, name);
  await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=Estuary Test CA", "-keyout", f("ca.key"), "-out", f("ca.pem")]);
  await run("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", f("server.key"), "-out", f("server.csr")]);
  await writeFile(f("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  await run("openssl", ["x509", "-req", "-days", "1", "-in", f("server.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-CAcreateserial", "-extfile", f("ext.cnf"), "-out", f("server.pem")]);
  const [ca, cert, key] = await Promise.all([readFile(f("ca.pem"), "utf8"), readFile(f("server.pem"), "utf8"), readFile(f("server.key"), "utf8")]);
  return { caFile: f("ca.pem"), ca, cert, key };
}

const adapterFor = (servers: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  createIrcAdapter({ flood: { burst: 5, intervalMs: 0 }, lingerMs: 60_000, joinTimeoutMs: 8000, servers, ...extra }, { log: silentLogger() });

const text = (e: LegacyEvent) => ("text" in e && typeof e.text !== "string" ? toPlain(e.text as RichText) : "");
const statusText = (e: LegacyEvent) => (e.type === "status" ? e.text : "");

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

describe("IRC adapter over TLS and with SASL (InspIRCd + Atheme)", () => {
  let certDir: string;
  let certs: Awaited<ReturnType<typeof makeCertificates>>;
  let ircd: InspircdHandle;
  let atheme: AthemeHandle;
  let bob: IrcRemote;
  const sessions: AdapterSession[] = [];
  const remotes: IrcRemote[] = [];

  beforeAll(async () => {
    certDir = await mkdtemp(join(tmpdir(), "estuary-irc-tls-"));
    certs = await makeCertificates(certDir);
    ircd = await startInspircd({ tls: { cert: certs.cert, key: certs.key }, services: true });
    atheme = await startAtheme(ircd.services!);
    bob = await ircRemote(ircd, "bob");
    remotes.push(bob);
    await bob.join("#secure");
  }, 45_000);

  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.close()));
    for (const r of remotes) r.quit();
    await atheme?.stop();
    await ircd?.stop();
    await rm(certDir, { recursive: true, force: true });
  });

  const track = async (h: Promise<Harness>) => {
    const harness = await h;
    sessions.push(harness.session);
    return harness;
  };

  describe("TLS", () => {
    it("refuses a certificate signed by an unknown CA: the join fails with a clear error", async () => {
      const adapter = adapterFor({ "127.0.0.1": { port: ircd.tlsPort, tls: true } });
      const h = await track(openSession(adapter, "untrusting@example.org"));
      const err = await rejection(h.session.joinRoom!("#secure%127.0.0.1", "untrusting", {}));
      expect(isEstuaryError(err) && err.kind).toBe("unavailable");
      expect(err.message).toMatch(/TLS certificate is not trusted/);
      expect(err.message).toMatch(/servers\.127\.0\.0\.1\.ca/);
      expect(h.events.some((e) => e.type === "status" && e.state === "error" && /not trusted/.test(e.text ?? ""))).toBe(true);
      // Nobody by that nick ever registered on the server.
      bob.send("WHOIS untrusting");
      await bob.waitLine("no such nick", (l) => / 401 bob untrusting /.test(l));
    });

    it("trusts the server with the admin's `ca` (a PEM file path) and talks over TLS, by name (SNI) too", async () => {
      const adapter = adapterFor({ localhost: { port: ircd.tlsPort, tls: true, ca: certs.caFile } });
      const h = await track(openSession(adapter, "trusting@example.org"));
      const snap = await h.session.joinRoom!("#secure%localhost", "trusting", {});
      expect(snap.occupants.map((o) => o.nick)).toContain("bob");
      // The server sees a TLS client (RPL_WHOISSECURE, m_sslinfo).
      bob.send("WHOIS trusting");
      await bob.waitLine("671 for trusting", (l) => / 671 bob trusting /.test(l));

      bob.send("PRIVMSG #secure :hello over TLS");
      const got = await h.waitEvent("bob's message", (e) => e.type === "message" && text(e) === "hello over TLS");
      expect(got.type === "message" && got.from.nick).toBe("bob");
      await h.session.sendMessage!({ kind: "room", room: "#secure%localhost" }, { text: plain("and back") });
      await bob.waitLine("trusting's message", (l) => /^:trusting!\S+ PRIVMSG #secure :and back$/.test(l));
    });

    it("connects with validation off (rejectUnauthorized: false, insecure) to the untrusted server", async () => {
      const adapter = adapterFor({ "127.0.0.1": { port: ircd.tlsPort, tls: true, rejectUnauthorized: false } });
      const h = await track(openSession(adapter, "careless@example.org"));
      const snap = await h.session.joinRoom!("#secure%127.0.0.1", "careless", {});
      expect(snap.occupants.map((o) => o.nick)).toContain("bob");
      bob.send("WHOIS careless");
      await bob.waitLine("671 for careless", (l) => / 671 bob careless /.test(l));
    });

    it("takes the CA as PEM text, and refuses an unreadable CA file at startup", async () => {
      const adapter = adapterFor({ "127.0.0.1": { port: ircd.tlsPort, tls: true, ca: certs.ca } });
      const h = await track(openSession(adapter, "pem@example.org"));
      const snap = await h.session.joinRoom!("#secure%127.0.0.1", "pemuser", {});
      expect(snap.nick).toBe("pemuser");
      expect(() => adapterFor({ "127.0.0.1": { ca: join(certDir, "missing.pem") } })).toThrow(/cannot read the CA file/);
      expect(() => adapterFor({ "127.0.0.1": { ca: join(certDir, "ext.cnf") } })).toThrow(/PEM certificates/);
    });
  });

  describe("SASL PLAIN (Atheme)", () => {
    const account = "saslacct";
    const password = "correct-horse-1";
    let owner: IrcRemote;

    beforeAll(async () => {
      // NickServ REGISTER <password> <email> registers the current nick as an account and logs in.
      owner = await ircRemote(ircd, account);
      remotes.push(owner);
      owner.send(`PRIVMSG NickServ :REGISTER ${password} ${account}@example.org`);
      await owner.waitLine("registration", (l) => /^:NickServ!\S+ NOTICE saslacct :.*registered/i.test(l));
    });

    const settings = (pw: string, nick: string) =>
      memoryStore({ "server:127.0.0.1": { saslAccount: account, saslPassword: pw, nick } });

    it("logs in with the user's saslAccount/saslPassword: 900, and WHOIS shows the account (330)", async () => {
      const adapter = adapterFor({ "127.0.0.1": { port: ircd.port } });
      const h = await track(openSession(adapter, "sasluser@example.org", settings(password, "sasluser")));
      const snap = await h.session.joinRoom!("#secure%127.0.0.1", "sasluser", {});
      expect(snap.nick).toBe("sasluser");
      expect(h.events.map(statusText)).toContain(`Connected to 127.0.0.1 (logged in as ${account})`);
      bob.send("WHOIS sasluser");
      await bob.waitLine("330 for sasluser", (l) => / 330 bob sasluser saslacct :/.test(l));
    });

    it("a wrong password fails the join clearly and registers nobody", async () => {
      const adapter = adapterFor({ "127.0.0.1": { port: ircd.port } });
      const h = await track(openSession(adapter, "wrongpw@example.org", settings("not-the-password", "wrongpw")));
      const err = await rejection(h.session.joinRoom!("#secure%127.0.0.1", "wrongpw", {}));
      expect(isEstuaryError(err) && err.kind).toBe("not-allowed");
      expect(err.message).toMatch(/^SASL login as saslacct on 127\.0\.0\.1 failed: /);
      expect(h.events.some((e) => e.type === "status" && e.state === "error" && /SASL login/.test(e.text ?? ""))).toBe(true);
      bob.send("WHOIS wrongpw");
      await bob.waitLine("no such nick wrongpw", (l) => / 401 bob wrongpw /.test(l));
      // A second try is a fresh attempt that fails the same way (no stuck or looping state).
      const again = await rejection(h.session.joinRoom!("#secure%127.0.0.1", "wrongpw", {}));
      expect(again.message).toMatch(/SASL login as saslacct/);
    });

    it("stops reconnecting when the password no longer works: the room closes with the reason", async () => {
      const adapter = adapterFor({ "127.0.0.1": { port: ircd.port } }, { reconnect: { initialMs: 100, maxMs: 200 } });
      const pw2 = "second-password-2";
      const h = await track(openSession(adapter, "changing@example.org", settings(password, "changing")));
      await h.session.joinRoom!("#secure%127.0.0.1", "changing", {});
      // The account owner changes the password, then an operator kills the gateway's connection.
      owner.send(`PRIVMSG NickServ :SET PASSWORD ${pw2}`);
      await owner.waitLine("password changed", (l) => /^:NickServ!\S+ NOTICE saslacct :.*password.*changed/i.test(l));
      const killed = await ircRemote(ircd, "killer");
      remotes.push(killed);
      killed.send("OPER admin admin");
      await killed.waitLine("oper up", (l) => / 381 killer /.test(l));
      killed.send("KILL changing :test");
      const closed = await h.waitEvent("room closed", (e) => e.type === "room-closed", 15_000);
      expect(closed.type === "room-closed" && closed.how).toBe("error");
      expect(closed.type === "room-closed" && closed.reason).toMatch(/SASL login as saslacct on 127\.0\.0\.1 failed/);
      expect(h.events.some((e) => e.type === "status" && e.state === "error" && /SASL login/.test(e.text ?? ""))).toBe(true);
      // Idle, not reconnecting: a new join is a new attempt, answered at once with the same error.
      const err = await rejection(h.session.joinRoom!("#secure%127.0.0.1", "changing", {}));
      expect(err.message).toMatch(/SASL login as saslacct/);
    });
  });
});
