/**
 * Soak: many users through one Estuary process for a while, sampling its
 * memory, to show whether memory stays flat under steady traffic.
 *
 *   node_modules/.bin/node bench/soak/run.ts [--users 1000] [--minutes 3] [--interval 5]
 *                                            [--probe-every 30] [--snapshots DIR]
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
 * RSS alone cannot tell a leak from V8 growing its heap or malloc keeping
 * freed memory, so the child also runs with `--expose-gc` and
 * bench/soak/probe.ts preloaded (`--import`; shard-entry stays the main
 * module). Every `--probe-every` seconds (0 = never, RSS only as before) the
 * bench asks the probe, over the child's stdin, for a full GC and then
 * reads what is left: heapUsed (the live JS heap: a leak climbs here),
 * heapTotal and old space (what V8 has committed), external/arrayBuffers,
 * V8's malloced memory, and RssAnon/RssFile/RssShmem; "native rest" is
 * RssAnon minus V8's physical heap (SQLite's page caches, glibc arenas,
 * sockets' buffers). The forced GCs flatten the natural sawtooth, so RSS
 * figures of a probed run are not comparable 1:1 to an unprobed one.
 * `--snapshots DIR` writes two heap snapshots (after a full GC) into DIR,
 * at 60 % and at the end of the run: compare them per constructor with
 * `node_modules/.bin/node bench/irc/heap.ts DIR/mid.heapsnapshot DIR/end.heapsnapshot`.
 * A snapshot costs the child ~100 MiB of native memory that malloc keeps
 * afterwards (and its GC shrinks new space), so the RSS figures of a
 * `--snapshots` run after 60 % say nothing: use a separate run for RSS.
 * The child inherits the bench's environment, so malloc and V8 experiments
 * go on the command line, e.g. `MALLOC_ARENA_MAX=2 node_modules/.bin/node
 * bench/soak/run.ts …` or `NODE_OPTIONS=--max-semi-space-size=…`.
 *
 * Prints one JSON object on stdout: RSS at rest (started, no users), RSS with
 * every user joined, RSS per user, the samples, and the least-squares slope in
 * MiB/min over the whole run and over its second half (after warm-up); with
 * probes, the probes and the slopes of the live heap (heapUsed after a full
 * GC), of RSS after that GC and of the native rest over the second half; the
 * archive's and store's file sizes (main file + WAL) at the end; Estuary's CPU
 * seconds per 1000 messages sent during the traffic phase (what a V8 setting
 * costs).
 * Progress goes to stderr.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { xml } from "@xmpp/client";
import { startProsody, type ProsodyHandle } from "../../test/support/prosody.ts";
import { connectClient, type TestClient } from "../../test/support/xmpp-client.ts";
import { REPORT_PREFIX } from "../../test/support/shard-entry.ts";
import { cpuSeconds, rssKiB, spawnTracked, type Tracked } from "../irc/procs.ts";
import { pool, round, sleep, slope } from "../irc/stats.ts";
import { shippedRuntime } from "../shipped.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const NODE = join(ROOT, "node_modules/.bin/node");
const ENTRY = join(ROOT, "test/support/shard-entry.ts");
const PROBE = pathToFileURL(join(import.meta.dirname, "probe.ts")).href;
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
    "probe-every": { type: "string", default: "30" },
    snapshots: { type: "string" },
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
const PROBE_MS = num("probe-every", args["probe-every"], 0) * 1000;
const SNAPSHOTS = args.snapshots === undefined ? undefined : resolve(args.snapshots);

const log = (msg: string): void => {
  process.stderr.write(`[soak] ${msg}\n`);
};
const mib = (kib: number): number => round(kib / 1024, 1);
const bytesMiB = (b: number): number => round(b / 1048576, 1);

/** What the probe reports (bench/soak/probe.ts). */
interface ProbeReport {
  event: "probe";
  gcMs: number;
  heapUsedBeforeGc: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  heap: { totalPhysicalSize: number; heapSizeLimit: number; mallocedMemory: number };
  spaces: Record<string, { size: number; used: number; physical: number }>;
  procKiB: Record<string, number>;
}

/** Talks to the probe over the child's stdin/stdout: one request at a time. */
class Probe {
  #waiting: ((fact: Record<string, unknown>) => void) | undefined;
  #buf = "";
  readonly #proc: Tracked;
  constructor(proc: Tracked) {
    this.#proc = proc;
    proc.child.stdout?.on("data", (d: string) => {
      this.#buf += d;
      let nl: number;
      while ((nl = this.#buf.indexOf("\n")) >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        if (!line.startsWith(`${REPORT_PREFIX}{"event":"probe`) && !line.startsWith(`${REPORT_PREFIX}{"event":"snapshot`)) continue;
        const fact = JSON.parse(line.slice(REPORT_PREFIX.length)) as Record<string, unknown>;
        const w = this.#waiting;
        this.#waiting = undefined;
        w?.(fact);
      }
    });
  }
  async #ask(cmd: string, timeoutMs: number): Promise<Record<string, unknown>> {
    const answer = new Promise<Record<string, unknown>>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`probe: no answer to ${cmd} in ${timeoutMs} ms`)), timeoutMs);
      this.#waiting = (f) => {
        clearTimeout(t);
        res(f);
      };
    });
    this.#proc.child.stdin?.write(`${cmd}\n`);
    const fact = await answer;
    if (fact.event === "probe-error") throw new Error(`probe: ${String(fact.error)}`);
    return fact;
  }
  gc(): Promise<ProbeReport> {
    return this.#ask("gc", 60_000) as Promise<unknown> as Promise<ProbeReport>;
  }
  async snapshot(file: string): Promise<void> {
    await this.#ask(`snap ${file}`, 300_000);
  }
}

/** Bytes of a SQLite file and its WAL (0 for what is missing). */
function dbFiles(path: string): { fileMiB: number; walMiB: number } {
  const size = (p: string): number => (existsSync(p) ? statSync(p).size : 0);
  return { fileMiB: bytesMiB(size(path)), walMiB: bytesMiB(size(`${path}-wal`)) };
}

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

/** One probe as the JSON shows it, in MiB. */
function probeRow(minute: number, p: ProbeReport) {
  const old = p.spaces.old_space;
  const rssAnonKiB = p.procKiB.RssAnon ?? 0;
  return {
    minute: round(minute, 2),
    gcMs: round(p.gcMs, 1),
    heapUsedBeforeGcMiB: bytesMiB(p.heapUsedBeforeGc),
    heapUsedMiB: bytesMiB(p.heapUsed),
    heapTotalMiB: bytesMiB(p.heapTotal),
    heapPhysicalMiB: bytesMiB(p.heap.totalPhysicalSize),
    oldSpaceMiB: old ? bytesMiB(old.size) : Number.NaN,
    oldSpaceUsedMiB: old ? bytesMiB(old.used) : Number.NaN,
    newSpaceMiB: p.spaces.new_space ? bytesMiB(p.spaces.new_space.size) : Number.NaN,
    newSpacePhysicalMiB: p.spaces.new_space ? bytesMiB(p.spaces.new_space.physical) : Number.NaN,
    externalMiB: bytesMiB(p.external),
    arrayBuffersMiB: bytesMiB(p.arrayBuffers),
    v8MallocedMiB: bytesMiB(p.heap.mallocedMemory),
    rssMiB: bytesMiB(p.rss),
    rssAnonMiB: mib(rssAnonKiB),
    rssFileMiB: mib(p.procKiB.RssFile ?? 0),
    rssShmemMiB: mib(p.procKiB.RssShmem ?? 0),
    nativeRestMiB: round(rssAnonKiB / 1024 - p.heap.totalPhysicalSize / 1048576, 1),
  };
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
    const probing = PROBE_MS > 0 || SNAPSHOTS !== undefined;
    // As deployed (bench/shipped.ts); NODE_OPTIONS and the environment given to the bench override.
    const shipped = shippedRuntime();
    const nodeArgs = [...shipped.flags, ...(probing ? ["--expose-gc", "--import", PROBE] : [])];
    proc = spawnTracked(NODE, [...nodeArgs, ENTRY, "--config", configFile], {
      cwd: ROOT,
      env: { ...shipped.env, ...process.env, ESTUARY_TEST_FORGET_SENT: "1" },
      stdio: [probing ? "pipe" : "ignore", "pipe", "pipe"],
    });
    const probe = probing ? new Probe(proc) : undefined;
    if (SNAPSHOTS !== undefined) mkdirSync(SNAPSHOTS, { recursive: true });
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
    const probes: ReturnType<typeof probeRow>[] = [];
    const start = performance.now();
    const cpuStart = cpuSeconds(proc.pid);
    const sentStart = sent;
    const end = start + MINUTES * 60_000;
    const minuteNow = (): number => (performance.now() - start) / 60_000;
    const runProbe = async (): Promise<void> => {
      const minute = minuteNow();
      const row = probeRow(minute, await probe!.gc());
      probes.push(row);
      log(`t=${round(minute, 1)} min after full GC: heapUsed ${row.heapUsedMiB} MiB, heapTotal ${row.heapTotalMiB}, rss ${row.rssMiB}, native rest ${row.nativeRestMiB}`);
    };
    let nextProbe = PROBE_MS > 0 ? start : Number.POSITIVE_INFINITY;
    let midSnapshot = SNAPSHOTS === undefined;
    while (performance.now() < end) {
      const minute = minuteNow();
      const rss = rssKiB(proc.pid);
      samples.push({ minute: round(minute, 2), rssMiB: mib(rss) });
      log(`t=${round(minute, 1)} min rss ${mib(rss)} MiB, sent ${sent}, answered ${answered}`);
      if (performance.now() >= nextProbe) {
        await runProbe();
        nextProbe += PROBE_MS;
      }
      if (!midSnapshot && minute >= MINUTES * 0.6) {
        midSnapshot = true;
        await probe!.snapshot(join(SNAPSHOTS!, "mid.heapsnapshot"));
        log(`heap snapshot ${join(SNAPSHOTS!, "mid.heapsnapshot")}`);
      }
      await sleep(Math.min(SAMPLE_MS, Math.max(0, end - performance.now())));
    }
    samples.push({ minute: round(minuteNow(), 2), rssMiB: mib(rssKiB(proc.pid)) });
    // CPU per message tells what a smaller young generation costs in scavenges.
    const cpuPer1000 = round(((cpuSeconds(proc.pid) - cpuStart) / Math.max(1, sent - sentStart)) * 1000, 3);
    if (PROBE_MS > 0) await runProbe();
    if (SNAPSHOTS !== undefined) {
      await probe!.snapshot(join(SNAPSHOTS, "end.heapsnapshot"));
      log(`heap snapshot ${join(SNAPSHOTS, "end.heapsnapshot")}`);
    }
    running = false;
    await Promise.all(senders);
    await sleep(2000);

    const points = samples.map((s) => ({ x: s.minute, y: s.rssMiB }));
    const half = points.filter((p) => p.x >= MINUTES / 2);
    const probeHalf = probes.filter((p) => p.minute >= MINUTES / 2);
    const probeSlope = (key: "heapUsedMiB" | "rssMiB" | "nativeRestMiB" | "heapTotalMiB"): number =>
      round(slope(probeHalf.map((p) => ({ x: p.minute, y: p[key] }))), 3);
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
      cpuSecondsPer1000Messages: cpuPer1000,
      samples,
      ...(probes.length > 0
        ? {
            probeEverySeconds: PROBE_MS / 1000,
            heapUsedAfterGcFirstMiB: probes[0]!.heapUsedMiB,
            heapUsedAfterGcLastMiB: probes.at(-1)!.heapUsedMiB,
            heapUsedAfterGcSlopeSecondHalfMiBPerMin: probeSlope("heapUsedMiB"),
            heapTotalSlopeSecondHalfMiBPerMin: probeSlope("heapTotalMiB"),
            rssAfterGcSlopeSecondHalfMiBPerMin: probeSlope("rssMiB"),
            nativeRestSlopeSecondHalfMiBPerMin: probeSlope("nativeRestMiB"),
            probes,
          }
        : {}),
      ...(SNAPSHOTS !== undefined ? { snapshots: [join(SNAPSHOTS, "mid.heapsnapshot"), join(SNAPSHOTS, "end.heapsnapshot")] } : {}),
      archive: dbFiles(join(dir, "estuary.archive.sqlite")),
      store: dbFiles(join(dir, "estuary.sqlite")),
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
