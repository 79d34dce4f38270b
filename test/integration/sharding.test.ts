/**
 * Sharding on ejabberd: `domain_balancing` with `type: bare_source` and
 * `component_number: 2` spreads users over two component connections by a
 * hash of their bare JID, so two Estuary processes sharing one store each
 * serve part of the users. Real child processes (test/support/shard-entry.ts:
 * the production CLI with the echoing test adapter) on one SQLite file (WAL),
 * each with `xmpp.failover` watching the others (core/failover.ts).
 *
 * ejabberd 23.01 keeps a fixed table of N slots and silently drops what hashes
 * to a free one, so without failover a killed shard's users lose everything
 * they send until it is back (measured before failover: 39–55 messages at one
 * every 50 ms, 2–3 s). With failover the survivor notices the death through
 * its peer socket and claims the freed slot with a new stream at once.
 *
 * A shard is killed with SIGKILL while a user it serves sends a message every
 * 50 ms to an echoing contact; a supervisor loop (what systemd's
 * `Restart=always`, `RestartSec=1` does) starts it again. Measured: the gap
 * from the kill to the first answered message, and how many messages got
 * neither an answer nor an error ("lost"). The restarted process finds both
 * slots taken: ejabberd accepts its stream but routes nothing to it (it is a
 * hot spare). Then a third process (another spare) joins, and the survivor,
 * now holding both slots, is killed and held down: the spares claim both.
 *
 * Measurements are printed as one JSON line ("sharding measurements").
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { xml } from "@xmpp/client";
import { startEjabberd, type EjabberdHandle } from "../support/ejabberd.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { REPORT_PREFIX } from "../support/shard-entry.ts";
import { waitFor } from "../support/wait.ts";
import { freePorts } from "../support/ports.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const NODE = join(ROOT, "node_modules/.bin/node");
const ENTRY = join(ROOT, "test/support/shard-entry.ts");
const GW = "test.localhost";
const SECRET = "shard-secret";
const ECHO = `echo@${GW}`;
// bare_source hashes the JID deterministically, so these names always land on both slots.
const USERS = Array.from({ length: 8 }, (_, i) => `user${i}`);
const RESTART_SEC = 1000; // as deploy/systemd/estuary@.service: RestartSec=1

type Fact = { event: "state"; state: string } | { event: "echo"; user: string };

/** One supervised Estuary process: restarted RESTART_SEC after it dies, until stopped (systemd's Restart=always). */
class Supervised {
  readonly name: string;
  readonly config: string;
  child: ChildProcess | undefined;
  starts = 0;
  online = false;
  /** Milliseconds from each spawn to its component stream online. */
  readonly startToOnlineMs: number[] = [];
  /** Bare JIDs this process answered for. */
  readonly served = new Set<string>();
  private stopping = false;
  private listeners: Array<(f: Fact) => void> = [];
  output = "";

  constructor(name: string, config: string) {
    this.name = name;
    this.config = config;
  }

  start(): void {
    this.starts++;
    this.online = false;
    const spawnedAt = Date.now();
    const child = spawn(NODE, [ENTRY, "--config", this.config], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    child.stderr!.on("data", (d: Buffer) => {
      this.output += d.toString();
    });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (!line.startsWith(REPORT_PREFIX)) {
        this.output += `${line}\n`;
        return;
      }
      const fact = JSON.parse(line.slice(REPORT_PREFIX.length)) as Fact;
      if (fact.event === "state") {
        if (fact.state === "online" && !this.online) this.startToOnlineMs.push(Date.now() - spawnedAt);
        this.online = fact.state === "online";
      }
      if (fact.event === "echo") this.served.add(fact.user);
      for (const l of this.listeners) l(fact);
    });
    child.on("exit", () => {
      if (this.child === child) {
        this.child = undefined;
        this.online = false;
      }
      if (!this.stopping && !this.held) setTimeout(() => !this.stopping && !this.held && this.start(), RESTART_SEC);
    });
  }

  /** SIGKILL; with `hold`, not restarted until resume(). Resolves once the dead process's output is all read. */
  kill(hold = false): Promise<void> {
    if (hold) this.held = true;
    const child = this.child;
    if (!child) return Promise.resolve();
    const closed = new Promise<void>((r) => child.once("close", () => r()));
    child.kill("SIGKILL");
    return closed;
  }

  private held = false;

  resume(): void {
    this.held = false;
    if (!this.child) this.start();
  }

  /** Resolves when the process reports its component stream online. */
  waitOnline(timeout = 20_000): Promise<void> {
    return waitFor(() => (this.online ? true : undefined), { timeout, what: `${this.name} online` }).then(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(t);
  }
}

/**
 * The echo contact's answer, not a bounce: an error may carry the original body (RFC 6120
 * §8.3.1), and right after a server restart, before any component is back, ejabberd bounces
 * stanzas for the domain that way.
 */
function isEcho(st: { name: string; attrs: Record<string, string | undefined>; getChildText(n: string): string | null }, body: string): boolean {
  return st.name === "message" && st.attrs.type !== "error" && (st.attrs.from ?? "").startsWith(ECHO) && st.getChildText("body") === body;
}

/** What happened to each message of a run: answered (echo), errored, or nothing. */
interface Probe {
  sent: Map<string, number>;
  answered: Map<string, number>;
  errored: Map<string, number>;
}

/**
 * Sends `<tag>-N` to the echo contact every `everyMs` until `until()` is true,
 * then waits (bounded) for the last answers. The echo is a new message, so
 * answers are matched by body text; errors bounce with the stanza id.
 */
async function probe(client: TestClient, tag: string, everyMs: number, until: () => boolean, settleMs = 4000): Promise<Probe> {
  const result: Probe = { sent: new Map(), answered: new Map(), errored: new Map() };
  const onStanza = (s: { name: string; attrs: Record<string, string | undefined>; getChildText(n: string): string | null }): void => {
    if (s.name !== "message") return;
    if (s.attrs.type === "error" && s.attrs.id?.startsWith(`${tag}-`)) result.errored.set(s.attrs.id, Date.now());
    const body = s.getChildText("body");
    if (s.attrs.type !== "error" && s.attrs.from?.startsWith(ECHO) && body?.startsWith(`${tag}-`)) result.answered.set(body, Date.now());
  };
  client.xmpp.on("stanza", onStanza);
  try {
    for (let n = 0; !until(); n++) {
      const id = `${tag}-${n}`;
      result.sent.set(id, Date.now());
      await client.send(xml("message", { to: ECHO, type: "chat", id }, xml("body", {}, id)));
      await new Promise((r) => setTimeout(r, everyMs));
    }
    const deadline = Date.now() + settleMs;
    while (Date.now() < deadline && [...result.sent.keys()].some((id) => !result.answered.has(id) && !result.errored.has(id))) {
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    client.xmpp.off("stanza", onStanza);
  }
  return result;
}

function lost(p: Probe, from = 0): string[] {
  return [...p.sent].filter(([id, at]) => at >= from && !p.answered.has(id) && !p.errored.has(id)).map(([id]) => id);
}

describe("sharding on ejabberd (domain_balancing bare_source, component_number 2) with failover", () => {
  let ejabberd: EjabberdHandle;
  let dir: string;
  let peerPorts: number[] = [];
  const shards: Supervised[] = [];
  const clients = new Map<string, TestClient>();
  const measured: Record<string, unknown> = {};

  const shardConfig = (i: number): string => `# shard ${i}
xmpp:
  host: 127.0.0.1
  port: ${ejabberd.componentPort}
  reconnect: { initialDelayMs: 200, maxDelayMs: 1000 }
  failover:
    listen: 127.0.0.1:${peerPorts[i - 1]}
    peers: [${peerPorts
      .map((p, j) => (j === i - 1 ? undefined : `127.0.0.1:${p}`))
      .filter(Boolean)
      .join(", ")}]
access:
  allow: [localhost]
networks:
  test:
    domain: ${GW}
    secret: ${SECRET}
store:
  url: sqlite:${join(dir, "shared.sqlite")}
  encryptionKey: shard-store-key-0123456789
log:
  level: warn
`;

  const addShard = async (i: number): Promise<Supervised> => {
    const file = join(dir, `shard-${i}.yaml`);
    await writeFile(file, shardConfig(i));
    const s = new Supervised(`shard-${i}`, file);
    shards.push(s);
    s.start();
    return s;
  };

  /** Every user sends one message; resolves with who answered whom. */
  const round = async (tag: string): Promise<void> => {
    for (const s of shards) s.served.clear();
    await Promise.all(
      [...clients].map(async ([u, c]) => {
        await c.send(xml("message", { to: ECHO, type: "chat", id: tag }, xml("body", {}, `${tag} ${u}`)));
        await c.waitFor((st) => isEcho(st, `${tag} ${u}`), 15_000);
      }),
    );
  };

  /**
   * Every user is answered, each resending until it is (a message sent while a slot is free is
   * dropped by ejabberd, so a single round would fail on the gap rather than on the outcome).
   */
  const roundUntilServed = async (tag: string, attempts = 8): Promise<void> => {
    for (const s of shards) s.served.clear();
    await Promise.all(
      [...clients].map(async ([u, c]) => {
        for (let n = 0; ; n++) {
          const body = `${tag}-${n} ${u}`;
          await c.send(xml("message", { to: ECHO, type: "chat", id: `${tag}-${n}` }, xml("body", {}, body)));
          try {
            await c.waitFor((st) => isEcho(st, body), 4000);
            return;
          } catch (err) {
            if (n + 1 >= attempts) throw err;
          }
        }
      }),
    );
  };

  const servedBy = (): Record<string, string[]> => Object.fromEntries(shards.map((s) => [s.name, [...s.served].sort()]));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-shards-"));
    peerPorts = await freePorts(3);
    ejabberd = await startEjabberd({
      components: [{ domain: GW, secret: SECRET }],
      domainBalancing: { [GW]: 2 },
      // SHARD_DEBUG=1: every stanza routed and sent, in ejabberd's log (printed at the end).
      ...(process.env.SHARD_DEBUG ? { loglevel: "debug" as const } : {}),
    });
    // One at a time: each ejabberdctl call boots an Erlang VM, and many at once time out on 2 cores.
    for (const u of USERS) await ejabberd.addUser(u, "pw");
    // The first shard creates the store (salt, key check) before the second opens it.
    await (await addShard(1)).waitOnline();
    await (await addShard(2)).waitOnline();
    for (const u of USERS) clients.set(u, await connectClient(ejabberd, u, "pw"));
  }, 90_000);

  afterAll(async () => {
    console.log(`sharding measurements: ${JSON.stringify(measured)}`);
    if (process.env.SHARD_DEBUG) {
      for (const s of shards) console.log(s.name, s.output);
      console.log(`ejabberd log:\n${ejabberd.logs()}`);
    }
    await Promise.all([...clients.values()].map((c) => c.stop()));
    await Promise.all(shards.map((s) => s.stop()));
    await ejabberd?.stop();
    await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it("spreads users over both shards by bare JID, each user always on the same one", async () => {
    await Promise.all(
      [...clients].map(async ([u, c]) => {
        await c.iq(
          xml(
            "iq",
            { type: "set", to: GW },
            xml(
              "query",
              { xmlns: "jabber:iq:register" },
              xml("x", { xmlns: "jabber:x:data", type: "submit" }, xml("field", { var: "username" }, xml("value", {}, u)), xml("field", { var: "password" }, xml("value", {}, "pw"))),
            ),
          ),
        );
      }),
    );
    const [a, b] = shards as [Supervised, Supervised];
    const seen = { a: new Set<string>(), b: new Set<string>() };
    for (const r of [1, 2]) {
      await round(`hello-${r}`);
      for (const u of a.served) seen.a.add(u);
      for (const u of b.served) seen.b.add(u);
    }
    measured.spread = { [a.name]: [...seen.a].sort(), [b.name]: [...seen.b].sort() };
    expect(seen.a.size).toBeGreaterThan(0);
    expect(seen.b.size).toBeGreaterThan(0);
    // bare_source: no user was ever served by both.
    expect([...seen.a].filter((u) => seen.b.has(u))).toEqual([]);
    expect(seen.a.size + seen.b.size).toBe(USERS.length);
    // Each shard's slot is where its users were in the last round: keep that for the next test.
    for (const u of seen.a) a.served.add(u);
    for (const u of seen.b) b.served.add(u);
  }, 60_000);

  it("a killed shard's users are served by the survivor within milliseconds, losing at most the gap's message; the restarted shard is a spare", async () => {
    const [victim, survivor] = shards as [Supervised, Supervised];
    const victimUser = [...victim.served][0]!.split("@")[0]!;
    const otherUser = [...survivor.served][0]!.split("@")[0]!;
    const startsBefore = victim.starts;
    let stopAt = Infinity;
    const until = () => Date.now() >= stopAt;
    const victimRun = probe(clients.get(victimUser)!, "v", 50, until);
    const otherRun = probe(clients.get(otherUser)!, "o", 50, until);
    // Steady traffic first, then the kill.
    await new Promise((r) => setTimeout(r, 500));
    survivor.served.clear();
    const killedAt = Date.now();
    void victim.kill();
    await waitFor(() => (victim.starts > startsBefore ? true : undefined), { timeout: 10_000, what: "the supervisor restarted the shard" });
    await victim.waitOnline();
    const backAt = Date.now();
    // Keep sending for 2 s after the restarted shard is online.
    stopAt = backAt + 2000;
    const [v, o] = await Promise.all([victimRun, otherRun]);

    const firstAnswerAfterKill = Math.min(...[...v.answered].filter(([id]) => v.sent.get(id)! > killedAt).map(([, at]) => at));
    const lostAfterKill = lost(v, killedAt);
    measured.kill = {
      sent: v.sent.size,
      answered: v.answered.size,
      errored: v.errored.size,
      lost: lostAfterKill.length,
      lostIds: lostAfterKill,
      lostSentMsAfterKill: lostAfterKill.map((id) => v.sent.get(id)! - killedAt),
      killedAt,
      gapMs: firstAnswerAfterKill - killedAt,
      killToRestartedOnlineMs: backAt - killedAt,
      otherShard: { sent: o.sent.size, answered: o.answered.size, errored: o.errored.size, lost: lost(o).length },
    };
    // The survivor took the dead shard's slot and answered its user, long before the restart.
    expect(survivor.served.has(`${victimUser}@localhost`)).toBe(true);
    expect(firstAnswerAfterKill).toBeLessThan(backAt);
    // Lost: at most what was sent in the takeover gap (the victim's death until the survivor's
    // claimed stream holds the slot), measured at 0–1 message at one every 50 ms. Nothing bounced.
    expect(firstAnswerAfterKill - killedAt).toBeLessThan(1000);
    // How many fall in the gap depends on the machine's load (0–1 measured idle, up to 5 on a
    // loaded 2-core machine); what must hold is that nothing sent after the takeover is lost.
    expect(lostAfterKill.filter((id) => v.sent.get(id)! > firstAnswerAfterKill)).toEqual([]);
    expect(lost(v).length).toBe(lostAfterKill.length);
    expect(v.errored.size).toBe(0);
    expect(lost(o)).toEqual([]);
    expect(o.errored.size).toBe(0);

    // The survivor holds both slots; the restarted process's stream is accepted but routed nothing.
    await round("after-restart");
    measured.afterRestart = servedBy();
    await waitFor(() => (survivor.served.size === USERS.length ? true : undefined), { timeout: 5000, what: "the survivor reporting every user served" });
    expect(victim.served.size).toBe(0);
  }, 60_000);

  it("when the process holding both slots dies, the spares claim both and every user is served again at once", async () => {
    const [spare1, holder] = shards as [Supervised, Supervised];
    const spare2 = await addShard(3);
    await spare2.waitOnline();
    await round("three");
    // A third connection on a domain balanced over 2 gets no slot either.
    await waitFor(() => (holder.served.size === USERS.length ? true : undefined), { timeout: 5000, what: "the holder reporting every user served" });
    expect(spare2.served.size).toBe(0);

    const users = [...clients.keys()];
    let stopAt = Infinity;
    const runs = users.map((u) => probe(clients.get(u)!, `h${u}`, 200, () => Date.now() >= stopAt));
    await new Promise((r) => setTimeout(r, 500));
    // Killed and held down for 3 s (a supervisor that cannot restart it).
    const killedAt = Date.now();
    await holder.kill(true);
    for (const s of shards) s.served.clear();
    await new Promise((r) => setTimeout(r, 3000));
    stopAt = Date.now();
    const results = await Promise.all(runs);
    const claimedBy = servedBy();
    holder.resume();
    await holder.waitOnline();

    const lostIds = results.flatMap((r) => lost(r, killedAt));
    const firstAnswers = results.map((r) => Math.min(...[...r.answered].filter(([id]) => r.sent.get(id)! > killedAt).map(([, at]) => at)) - killedAt);
    measured.spares = {
      users: users.length,
      sent: results.reduce((n, r) => n + r.sent.size, 0),
      answered: results.reduce((n, r) => n + r.answered.size, 0),
      errored: results.reduce((n, r) => n + r.errored.size, 0),
      lost: lostIds.length,
      lostIds,
      maxGapMs: Math.max(...firstAnswers),
      claimedBy,
    };
    // Both slots were taken over: every user was answered by a spare while the holder was down.
    expect(holder.served.size).toBe(0);
    expect(spare1.served.size + spare2.served.size).toBe(USERS.length);
    // As above: only what was sent in the takeover gap (measured 0 at 8 users × one every 200 ms
    // on an idle machine, one per user of the slot under load), nothing after it.
    expect(Math.max(...firstAnswers)).toBeLessThan(1000);
    results.forEach((r, i) => {
      expect(lost(r, killedAt).filter((id) => r.sent.get(id)! > killedAt + firstAnswers[i]!)).toEqual([]);
    });
    expect(results.every((r) => r.errored.size === 0)).toBe(true);
  }, 90_000);

  it("after a server restart while the other shards are down, the survivor claims the slot nobody else will take", async () => {
    const [survivor, ...others] = shards as [Supervised, ...Supervised[]];
    for (const s of others) await s.kill(true);
    // The survivor first takes over every slot of the dead (a claim after a peer's death), so the
    // server restart below starts from one process holding both slots.
    await roundUntilServed("before-server-restart");
    // Its report of each answer comes over stdout, which may trail the answer itself.
    await waitFor(() => (survivor.served.size === USERS.length ? true : undefined), { timeout: 5000, what: "the survivor reporting every user served" });
    const restartedAt = Date.now();
    await ejabberd.restart();
    // Every user logs in again (the server restart ended their sessions).
    for (const [u, c] of clients) {
      await c.stop().catch(() => undefined);
      clients.set(u, await connectClient(ejabberd, u, "pw"));
    }
    // The users hash to both slots: each is answered only if the survivor holds both, the one its
    // own stream took on reconnecting and the one only a claim can take (no peer died since).
    await roundUntilServed("after-server-restart");
    const answeredAllMs = Date.now() - restartedAt;
    await waitFor(() => (survivor.served.size === USERS.length ? true : undefined), { timeout: 5000, what: "the survivor reporting every user served" });
    measured.serverRestart = { answeredAllMs, servedBy: servedBy() };
    for (const s of others) s.resume();
  }, 120_000);
});
