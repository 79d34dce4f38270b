/**
 * Soak: many users through one Estuary process for a while, sampling its
 * memory, to show whether memory stays flat under steady traffic.
 *
 *   node_modules/.bin/node bench/soak/run.ts [--users 1000] [--minutes 3] [--interval 5]
 *
 * Setup (all on 127.0.0.1): a Prosody, and Estuary as a real child process
 * (test/support/shard-entry.ts: the production CLI with the `test` network's
 * in-process adapter, whose contact `echo` answers every direct message). The
 * test adapter instead of IRC keeps the cost on Estuary's side: no IRC server
 * and no per-user IRC connection, so the figures are the core's (component
 * stream, dispatch, sessions, rooms, store), not an adapter's.
 *
 * Each user registers, joins one room (`#soak-<n>`, 10 users a room), then
 * every `--interval` seconds (staggered) sends a message, alternately to its
 * room (the gateway reflects it to the sender, XEP-0045 §7.4) and to
 * `echo` (answered by the adapter). Estuary's RSS (/proc/<pid>/status) is
 * sampled every 10 s.
 *
 * Prints one JSON object on stdout: RSS at rest (started, no users), RSS with
 * every user joined, RSS per user, the samples, and the least-squares slope in
 * MiB/min over the whole run and over its second half (after warm-up).
 * Progress goes to stderr.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { xml } from "@xmpp/client";
import { startProsody, type ProsodyHandle } from "../../test/support/prosody.ts";
import { connectClient, type TestClient } from "../../test/support/xmpp-client.ts";
import { REPORT_PREFIX } from "../../test/support/shard-entry.ts";
import { rssKiB, spawnTracked, type Tracked } from "../irc/procs.ts";
import { pool, round, sleep, slope } from "../irc/stats.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const NODE = join(ROOT, "node_modules/.bin/node");
const ENTRY = join(ROOT, "test/support/shard-entry.ts");
const GW = "soak.localhost";
const SECRET = "soak-secret";
const PASSWORD = "pw";
const ROOM_SIZE = 10;
const SAMPLE_MS = 10_000;

const { values: args } = parseArgs({
  options: {
    users: { type: "string", default: "1000" },
    minutes: { type: "string", default: "3" },
    interval: { type: "string", default: "5" },
  },
});
const num = (name: string, v: string | undefined, min: number): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}`);
  return n;
};
const USERS = Math.floor(num("users", args.users, 1));
const MINUTES = num("minutes", args.minutes, 0.5);
const INTERVAL_MS = num("interval", args.interval, 0.1) * 1000;

const log = (msg: string): void => {
  process.stderr.write(`[soak] ${msg}\n`);
};
const mib = (kib: number): number => round(kib / 1024, 1);

function estuaryConfig(dir: string, componentPort: number): string {
  return `xmpp:
  host: 127.0.0.1
  port: ${componentPort}
access:
  allow: [localhost]
networks:
  test:
    domain: ${GW}
    secret: ${SECRET}
store:
  url: sqlite:${join(dir, "estuary.sqlite")}
  encryptionKey: soak-store-key-0123456789
limits:
  maxUsers: ${Math.max(USERS, 10_000)}
log:
  level: warn
`;
}

/**
 * Accounts written straight into the test Prosody's storage: `prosodyctl
 * register` boots Prosody once per account (~0.5 s each, minutes for 1000).
 * test/support/prosody.ts uses `storage = "internal"` with
 * `authentication = "internal_plain"`, whose account record is the Lua table
 * file `<data_path>/<host>/accounts/<user>.dat` (the shape `prosodyctl register`
 * writes, and Prosody reads it at login). One account goes through prosodyctl
 * first, as a check that this is still the format.
 */
async function createAccounts(prosody: ProsodyHandle): Promise<void> {
  await prosody.addUser("u0", PASSWORD);
  const dir = join(prosody.dir, "data", prosody.domain, "accounts");
  const written = readFileSync(join(dir, "u0.dat"), "utf8");
  const expected = `return {\n\t["password"] = ${JSON.stringify(PASSWORD)};\n};\n`;
  if (written !== expected) throw new Error(`Prosody's account file format changed:\n${written}`);
  mkdirSync(dir, { recursive: true });
  for (let i = 1; i < USERS; i++) writeFileSync(join(dir, `u${i}.dat`), expected);
}

async function waitOnline(proc: Tracked, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!proc.output().includes(`${REPORT_PREFIX}{"event":"state","domain":"${GW}","state":"online"}`)) {
    if (proc.exited()) throw new Error(`Estuary exited:\n${proc.output().slice(-4000)}`);
    if (Date.now() > deadline) throw new Error(`Estuary not online after ${timeoutMs} ms:\n${proc.output().slice(-4000)}`);
    await sleep(50);
  }
}

/** Registers (XEP-0077 form) and joins the user's room, waiting for self-presence (status 110). */
async function enter(c: TestClient, i: number): Promise<void> {
  await c.iq(
    xml(
      "iq",
      { type: "set", to: GW },
      xml(
        "query",
        { xmlns: "jabber:iq:register" },
        xml("x", { xmlns: "jabber:x:data", type: "submit" }, xml("field", { var: "username" }, xml("value", {}, `u${i}`)), xml("field", { var: "password" }, xml("value", {}, PASSWORD))),
      ),
    ),
    30_000,
  );
  const room = `#soak-${Math.floor(i / ROOM_SIZE)}@${GW}`;
  await c.send(xml("presence", { to: `${room}/u${i}` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
  await c.waitFor(
    (s) => s.name === "presence" && s.attrs.from === `${room}/u${i}` && (s.getChild("x", "http://jabber.org/protocol/muc#user")?.getChildren("status") ?? []).some((st) => st.attrs.code === "110"),
    60_000,
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "estuary-soak-"));
  let prosody: ProsodyHandle | undefined;
  let proc: Tracked | undefined;
  const clients: TestClient[] = [];
  try {
    prosody = await startProsody({ components: [{ domain: GW, secret: SECRET }] });
    log(`creating ${USERS} accounts`);
    await createAccounts(prosody);

    const configFile = join(dir, "estuary.yaml");
    writeFileSync(configFile, estuaryConfig(dir, prosody.componentPort));
    proc = spawnTracked(NODE, [ENTRY, "--config", configFile], { cwd: ROOT, env: { ...process.env, ESTUARY_TEST_FORGET_SENT: "1" } });
    await waitOnline(proc);
    await sleep(3000);
    const rssRest = rssKiB(proc.pid);
    log(`Estuary at rest: ${mib(rssRest)} MiB; ${USERS} users registering and joining`);

    const t0 = performance.now();
    let answered = 0;
    await pool(Array.from({ length: USERS }, (_, i) => i), 40, async (i) => {
      const c = await connectClient(prosody!, `u${i}`, PASSWORD, "soak", { timeout: 30_000 });
      clients[i] = c;
      await enter(c, i);
      // From now on nothing reads the inbox: count answers and keep it empty.
      c.xmpp.on("stanza", (s) => {
        if (s.name === "message" && s.attrs.type !== "error" && s.getChildText("body")?.startsWith("soak ")) answered++;
        c.inbox.length = 0;
      });
      c.inbox.length = 0;
    });
    const joinSeconds = round((performance.now() - t0) / 1000, 1);
    await sleep(5000);
    const rssJoined = rssKiB(proc.pid);
    log(`${USERS} users joined in ${joinSeconds} s: ${mib(rssJoined)} MiB`);

    // Steady traffic: each user sends every INTERVAL_MS, staggered over the interval.
    let sent = 0;
    let errors = 0;
    let running = true;
    const senders = clients.map(async (c, i) => {
      await sleep((i / USERS) * INTERVAL_MS);
      for (let n = 0; running; n++) {
        const toRoom = n % 2 === 0;
        const to = toRoom ? `#soak-${Math.floor(i / ROOM_SIZE)}@${GW}` : `echo@${GW}`;
        c.send(xml("message", { to, type: toRoom ? "groupchat" : "chat", id: `s${i}-${n}` }, xml("body", {}, `soak ${i} ${n}`))).then(
          () => sent++,
          () => errors++,
        );
        await sleep(INTERVAL_MS);
      }
    });

    const samples: { minute: number; rssMiB: number }[] = [];
    const start = performance.now();
    const end = start + MINUTES * 60_000;
    while (performance.now() < end) {
      const minute = (performance.now() - start) / 60_000;
      const rss = rssKiB(proc.pid);
      samples.push({ minute: round(minute, 2), rssMiB: mib(rss) });
      log(`t=${round(minute, 1)} min rss ${mib(rss)} MiB, sent ${sent}, answered ${answered}`);
      await sleep(Math.min(SAMPLE_MS, Math.max(0, end - performance.now())));
    }
    samples.push({ minute: round((performance.now() - start) / 60_000, 2), rssMiB: mib(rssKiB(proc.pid)) });
    running = false;
    await Promise.all(senders);
    await sleep(2000);

    const points = samples.map((s) => ({ x: s.minute, y: s.rssMiB }));
    const half = points.filter((p) => p.x >= MINUTES / 2);
    const result = {
      setup: "Prosody 0.12 + one Estuary process (test network adapter, SQLite store), all on 127.0.0.1",
      users: USERS,
      roomSize: ROOM_SIZE,
      minutes: MINUTES,
      messageIntervalSeconds: INTERVAL_MS / 1000,
      joinSeconds,
      messagesSent: sent,
      sendErrors: errors,
      answersReceived: answered,
      rssAtRestMiB: mib(rssRest),
      rssJoinedMiB: mib(rssJoined),
      rssPerUserKiB: round((rssJoined - rssRest) / USERS, 1),
      rssSlopeMiBPerMin: round(slope(points), 2),
      rssSlopeSecondHalfMiBPerMin: round(slope(half), 2),
      samples,
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await pool(clients.filter(Boolean), 50, (c) => c.stop());
    await proc?.stop();
    await prosody?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
