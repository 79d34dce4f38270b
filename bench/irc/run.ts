/**
 * Estuary vs Biboumi on the same loopback Prosody + InspIRCd, one after the
 * other in one invocation. Prints one JSON object on stdout, progress on
 * stderr. See bench/irc/README.md.
 *
 *   node_modules/.bin/node bench/irc/run.ts [--users 200] [--hold 20]
 *        [--messages 2000] [--runs 3] [--latency 200] [--window 100] [--room-size 10]
 *        [--only estuary|biboumi|baseline[,…]] [--baseline] [--profile] [--keep-profile DIR]
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { availableParallelism, cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { startProsody, type ProsodyHandle } from "../../test/support/prosody.ts";
import { startInspircd, type InspircdHandle } from "../../test/support/inspircd.ts";
import { connectClient, type TestClient } from "../../test/support/xmpp-client.ts";
import { ircRemote, type IrcRemote } from "../../test/support/irc-remote.ts";
import { startEstuary } from "./estuary.ts";
import { BIBOUMI_BINARY, configureBiboumiServer, startBiboumi } from "./biboumi.ts";
import { startBaseline } from "./baseline.ts";
import { adopt, rssKiB, type Tracked } from "./procs.ts";
import { IRC_SERVER, ircToXmpp, joinRoom, latencyIrcToXmpp, latencyXmppToIrc, log, medianRun, roomJid, xmppToIrc, type Pair, type Throughput } from "./drive.ts";
import { pool, round, sleep, slope } from "./stats.ts";
import { summarizeProfile, type ProfileSummary, type Window } from "./profile.ts";

const { values: args } = parseArgs({
  options: {
    users: { type: "string", default: "200" },
    hold: { type: "string", default: "20" },
    messages: { type: "string", default: "2000" },
    latency: { type: "string", default: "200" },
    window: { type: "string", default: "100" },
    runs: { type: "string", default: "3" },
    "store-dir": { type: "string" },
    "room-size": { type: "string", default: "10" },
    only: { type: "string" },
    baseline: { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    "keep-profile": { type: "string" },
    "heap-snapshots": { type: "string" },
    "memory-only": { type: "boolean", default: false },
    "estuary-log": { type: "string" },
    "node-flags": { type: "string" },
  },
});

const int = (name: string, v: string | undefined, min: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} must be an integer >= ${min}\n`);
    process.exit(2);
  }
  return n;
};
const USERS = int("users", args.users, 50);
const HOLD_S = int("hold", args.hold, 0);
const MESSAGES = int("messages", args.messages, 1);
const LATENCY = int("latency", args.latency, 1);
const WINDOW = int("window", args.window, 1);
const RUNS = int("runs", args.runs, 1);
/**
 * Where each gateway's temp dir (config, SQLite database) goes. Biboumi's SQLite runs with
 * SQLite's defaults (rollback journal, synchronous=FULL: several fdatasync() per stored message),
 * Estuary's with WAL + synchronous=NORMAL (none per message), so on a disk that other jobs keep
 * busy Biboumi's rate follows the disk's fsync latency. `--store-dir /dev/shm` (tmpfs) takes
 * the disk out of the comparison.
 */
const STORE_DIR = resolve(args["store-dir"] ?? tmpdir());
const ROOM_SIZE = int("room-size", args["room-size"], 1);
const RSS_USERS = 50;
const SAMPLE_EVERY_MS = 5000;
const PASSWORD = "bench-pw";
/**
 * InspIRCd's read size (<performance netbuffersize>, its maximum): with the default 10240 a
 * burst of more than ~2 buffers is read one buffer per second (test/support/inspircd.ts), which
 * capped IRC → XMPP near 450 msg/s for both gateways. 65534 bytes hold the 2000-line burst.
 */
const IRC_NET_BUFFER = 65534;

/** baseline: the thinnest Node gateway (baseline.ts), a floor to read the other two against. */
type Kind = "estuary" | "biboumi" | "baseline";
const KINDS: Kind[] = ["estuary", "biboumi", "baseline"];
const DOMAINS: Record<Kind, string> = { estuary: "irc.localhost", biboumi: "biboumi.localhost", baseline: "baseline.localhost" };
const SECRETS: Record<Kind, string> = { estuary: "estuary-bench-secret", biboumi: "biboumi-bench-secret", baseline: "baseline-bench-secret" };
/** Each gateway's letter in nicks and channel names (runs follow one another on one IRC server). */
const TAG: Record<Kind, string> = { estuary: "e", biboumi: "b", baseline: "n" };
const only = args.only?.split(",").map((k) => k.trim());
if (only?.some((k) => !KINDS.includes(k as Kind))) {
  process.stderr.write(`--only takes ${KINDS.join(", ")} (comma-separated)\n`);
  process.exit(2);
}
const kinds: Kind[] = only ? (only as Kind[]) : ["estuary", "biboumi", ...(args.baseline ? (["baseline"] as const) : [])];
if (kinds.includes("biboumi") && !existsSync(BIBOUMI_BINARY)) {
  // The comparison needs Debian's biboumi package (not part of scripts/setup.sh: the bench is not a test).
  process.stderr.write(`[bench] ${BIBOUMI_BINARY} is missing; installing the Debian package\n`);
  try {
    execFileSync("apt-get", ["install", "-y", "biboumi"], { stdio: ["ignore", 2, 2] });
  } catch {
    process.stderr.write(`could not install biboumi: run apt-get install -y biboumi as root (or pass --only estuary)\n`);
    process.exit(2);
  }
}

const mb = (kib: number): number => round(kib / 1024, 1);

/** Waits for Prosody to log the component's successful XEP-0114 handshake after log offset `from`. */
async function componentUp(prosody: ProsodyHandle, domain: string, from: number, proc: Tracked, ms = 20_000): Promise<void> {
  const needle = `${domain}:component\tinfo\tExternal component successfully authenticated`;
  const deadline = performance.now() + ms;
  while (!prosody.logs().slice(from).includes(needle)) {
    if (proc.exited()) throw new Error(`${domain} gateway exited during start-up:\n${proc.output().slice(-3000)}`);
    if (performance.now() > deadline) throw new Error(`${domain} did not connect to Prosody within ${ms} ms:\n${proc.output().slice(-3000)}`);
    await sleep(50);
  }
}

/** Logs in users [from, to), has each join its room (ROOM_SIZE per room), returns when all are in. */
async function joinUsers(
  kind: Kind,
  prosody: ProsodyHandle,
  clients: TestClient[],
  from: number,
  to: number,
): Promise<number> {
  const domain = DOMAINS[kind];
  const t0 = performance.now();
  const idx = Array.from({ length: to - from }, (_, i) => from + i);
  await pool(idx, 40, async (i) => {
    const c = await connectClient(prosody, `u${i}`, PASSWORD, `bench-${kind}`, { timeout: 30_000 });
    clients[i] = c;
    // Nothing reads these inboxes: keep them from growing.
    c.xmpp.on("stanza", () => {
      c.inbox.length = 0;
    });
    if (kind === "biboumi") await configureBiboumiServer(c, domain, IRC_SERVER, ircPort);
    await joinRoom(c, roomJid(`#r${Math.floor(i / ROOM_SIZE)}`, domain), `${TAG[kind]}u${i}`, 60_000);
  });
  return (performance.now() - t0) / 1000;
}

let ircPort = 0;
let ircdPid = 0;

/** Starts one instance of the gateway and waits until Prosody has accepted its component. */
async function launch(
  kind: Kind,
  prosody: ProsodyHandle,
  ircd: InspircdHandle,
  profile: boolean,
  heapSnapshots = false,
): Promise<{ proc: Tracked; dir: string }> {
  const domain = DOMAINS[kind];
  const dir = mkdtempSync(join(STORE_DIR, `bench-irc-${kind}-`));
  const logFrom = prosody.logs().length;
  const proc =
    kind === "estuary"
      ? startEstuary({ dir, domain, secret: SECRETS.estuary, componentPort: prosody.componentPort, ircPort: ircd.port, allow: prosody.domain, cpuProfile: profile, heapSnapshots, logLevel: args["estuary-log"], nodeFlags: args["node-flags"]?.split(/\s+/).filter(Boolean) })
      : kind === "baseline"
        ? startBaseline({ dir, domain, secret: SECRETS.baseline, componentPort: prosody.componentPort, ircPort: ircd.port })
        : startBiboumi({ dir, domain, secret: SECRETS.biboumi, componentPort: prosody.componentPort, admin: `admin@${prosody.domain}` });
  try {
    await componentUp(prosody, domain, logFrom, proc);
  } catch (err) {
    await proc.stop("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { proc, dir };
}

/**
 * Traffic: one XMPP user and one IRC person in the same channel; warm-up,
 * then throughput and latency both ways. Its own gateway instance, so the
 * memory phase starts from a process that has not seen this traffic.
 */
async function trafficPhase(kind: Kind, prosody: ProsodyHandle, ircd: InspircdHandle): Promise<Record<string, unknown>> {
  const domain = DOMAINS[kind];
  const profile = kind === "estuary" && args.profile === true;
  log(`${kind}: starting (traffic)${profile ? " with --cpu-prof" : ""}`);
  const { proc, dir } = await launch(kind, prosody, ircd, profile);
  let bench: TestClient | undefined;
  let listener: IrcRemote | undefined;
  try {
    const channel = `#tput${TAG[kind]}`;
    const room = roomJid(channel, domain);
    [bench, listener] = await Promise.all([connectClient(prosody, "bench", PASSWORD, `bench-${kind}`), ircRemote(ircd, `${TAG[kind]}listen`)]);
    await listener.join(channel);
    if (kind === "biboumi") await configureBiboumiServer(bench, domain, IRC_SERVER, ircd.port);
    const nick = await joinRoom(bench, room, `${TAG[kind]}bench`);
    const otherPids: Record<string, number> = {};
    const prosodyPid = Number(readFileSync(join(prosody.dir, "prosody.pid"), "utf8").trim());
    if (prosodyPid > 0) otherPids.prosody = prosodyPid;
    if (ircdPid > 0) otherPids.inspircd = ircdPid;
    const pair: Pair = { xmpp: bench, nick, room, irc: listener, channel, gatewayPid: proc.pid, otherPids };

    log(`${kind}: warm-up`);
    await xmppToIrc(pair, Math.min(200, MESSAGES), WINDOW, "wx");
    await ircToXmpp(pair, Math.min(200, MESSAGES), "wi");
    await latencyXmppToIrc(pair, 20, "wlx");
    await latencyIrcToXmpp(pair, 20, "wli");

    const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);
    // RUNS runs per direction, reported by the median run: on a shared machine one run can be
    // off by a factor of 2 or more (Biboumi's XMPP → IRC moved between 290 and 774 msg/s).
    log(`${kind}: ${RUNS} × ${MESSAGES} messages XMPP → IRC (window ${WINDOW})`);
    const x2iWindow = { fromUs: nowUs(), toUs: 0 };
    const x2iRuns: Throughput[] = [];
    for (let r = 0; r < RUNS; r++) x2iRuns.push(await xmppToIrc(pair, MESSAGES, WINDOW, `x2i${r}`));
    x2iWindow.toUs = nowUs();
    const x2i = medianRun(x2iRuns);
    log(`${kind}:   median ${x2i.msgsPerSec} msg/s (runs ${x2i.runsMsgsPerSec.join(", ")}), lost ${x2i.lostAllRuns}, gateway CPU ${x2i.gatewayCpuMsPerMsg} ms/msg`);
    log(`${kind}: ${RUNS} × ${MESSAGES} messages IRC → XMPP`);
    const i2xWindow = { fromUs: nowUs(), toUs: 0 };
    const i2xRuns: Throughput[] = [];
    for (let r = 0; r < RUNS; r++) i2xRuns.push(await ircToXmpp(pair, MESSAGES, `i2x${r}`));
    i2xWindow.toUs = nowUs();
    const i2x = medianRun(i2xRuns);
    log(`${kind}:   median ${i2x.msgsPerSec} msg/s (runs ${i2x.runsMsgsPerSec.join(", ")}), lost ${i2x.lostAllRuns}, gateway CPU ${i2x.gatewayCpuMsPerMsg} ms/msg`);
    log(`${kind}: latency, ${LATENCY} one at a time each way`);
    const latX2I = await latencyXmppToIrc(pair, LATENCY, "lx");
    const latI2X = await latencyIrcToXmpp(pair, LATENCY, "li");
    log(`${kind}:   XMPP→IRC p50 ${latX2I.p50Ms} p99 ${latX2I.p99Ms} ms; IRC→XMPP p50 ${latI2X.p50Ms} p99 ${latI2X.p99Ms} ms`);
    const rssAfterTraffic = rssKiB(proc.pid);
    const summary = await finish(kind, proc, [], bench, listener, dir, profile, { xmppToIrc: x2iWindow, ircToXmpp: i2xWindow });
    return {
      xmppToIrc: x2i,
      ircToXmpp: i2x,
      latencyXmppToIrc: latX2I,
      latencyIrcToXmpp: latI2X,
      rssAfterTrafficKiB: rssAfterTraffic,
      ...(summary ? { cpuProfile: summary } : {}),
    };
  } catch (err) {
    await finish(kind, proc, [], bench, listener, dir, false).catch(() => undefined);
    throw err;
  }
}

/**
 * --heap-snapshots DIR: SIGUSR2 makes the Estuary child write a heap snapshot
 * into its cwd (`dir`); waits until the file stops growing and the process
 * answers again, then moves it to DIR/<label>.heapsnapshot. Taken after the
 * RSS sample of the same step (writing a snapshot runs a full GC and grows RSS).
 */
async function heapSnapshot(proc: Tracked, dir: string, label: string): Promise<void> {
  const out = args["heap-snapshots"];
  if (!out) return;
  const before = new Set(readdirSync(dir));
  process.kill(proc.pid, "SIGUSR2");
  const deadline = performance.now() + 120_000;
  let file: string | undefined;
  let size = -1;
  for (;;) {
    if (performance.now() > deadline) throw new Error(`no heap snapshot for ${label}`);
    await sleep(500);
    file ??= readdirSync(dir).find((f) => f.endsWith(".heapsnapshot") && !before.has(f));
    if (!file) continue;
    const now = statSync(join(dir, file)).size;
    if (now > 0 && now === size) break;
    size = now;
  }
  mkdirSync(resolve(out), { recursive: true });
  const dest = join(resolve(out), `${label}.heapsnapshot`);
  copyFileSync(join(dir, file), dest);
  rmSync(join(dir, file));
  log(`estuary: heap snapshot ${dest}`);
}

/**
 * Memory: a fresh instance; RSS at rest, with 50 joined users (each its own
 * IRC connection), then with --users users held for --hold seconds.
 */
async function memoryPhase(kind: Kind, prosody: ProsodyHandle, ircd: InspircdHandle): Promise<Record<string, unknown>> {
  log(`${kind}: starting (memory)`);
  const snapshots = kind === "estuary" && args["heap-snapshots"] !== undefined;
  const { proc, dir } = await launch(kind, prosody, ircd, false, snapshots);
  const snap = (label: string): Promise<void> => (snapshots ? heapSnapshot(proc, dir, label) : Promise.resolve());
  const clients: TestClient[] = [];
  try {
    await sleep(2000);
    const rssRest = rssKiB(proc.pid);
    log(`${kind}: at rest ${mb(rssRest)} MiB; ${RSS_USERS} users joining (rooms of ${ROOM_SIZE})`);
    await snap("rest");
    const join50 = await joinUsers(kind, prosody, clients, 0, RSS_USERS);
    await sleep(3000);
    const rss50 = rssKiB(proc.pid);
    const perUser = (rss50 - rssRest) / RSS_USERS;
    log(`${kind}:   ${mb(rss50)} MiB, ${round(perUser, 1)} KiB/user (joins took ${round(join50, 1)} s)`);
    await snap(`users${RSS_USERS}`);

    let hold: Record<string, unknown> | undefined;
    if (USERS > RSS_USERS) {
      log(`${kind}: scaling to ${USERS} users`);
      const joinMore = await joinUsers(kind, prosody, clients, RSS_USERS, USERS);
      await sleep(3000);
      const samples: { t: number; rssKiB: number }[] = [];
      const t0 = performance.now();
      for (;;) {
        const t = (performance.now() - t0) / 1000;
        samples.push({ t: round(t, 1), rssKiB: rssKiB(proc.pid) });
        if (t >= HOLD_S) break;
        await sleep(Math.min(SAMPLE_EVERY_MS, Math.max(0, HOLD_S * 1000 - (performance.now() - t0))));
      }
      const rssN = samples[samples.length - 1]!.rssKiB;
      const rssValues = samples.map((x) => x.rssKiB);
      hold = {
        users: USERS,
        rooms: Math.ceil(USERS / ROOM_SIZE),
        joinSeconds: round(join50 + joinMore, 1),
        rssKiB: rssN,
        perUserKiB: round((rssN - rssRest) / USERS, 1),
        /** Cost of users 51..N: excludes one-time costs paid by the first joins. */
        marginalPerUserKiB: round((samples[0]!.rssKiB - rss50) / (USERS - RSS_USERS), 1),
        minKiB: Math.min(...rssValues),
        maxKiB: Math.max(...rssValues),
        slopeKiBPerMin: round(slope(samples.map((x) => ({ x: x.t / 60, y: x.rssKiB }))), 1),
        samples,
      };
      log(`${kind}:   ${USERS} users: ${mb(rssN)} MiB (${hold.perUserKiB} KiB/user), drift ${hold.slopeKiBPerMin} KiB/min over ${HOLD_S} s`);
      await snap(`users${USERS}`);
    }
    await finish(kind, proc, clients, undefined, undefined, dir, false);
    return {
      restKiB: rssRest,
      with50UsersKiB: rss50,
      perUserKiB: round(perUser, 1),
      joinSeconds50: round(join50, 1),
      ...(hold ? { hold } : {}),
    };
  } catch (err) {
    await finish(kind, proc, clients, undefined, undefined, dir, false).catch(() => undefined);
    throw err;
  }
}

async function runGateway(kind: Kind, prosody: ProsodyHandle, ircd: InspircdHandle): Promise<Record<string, unknown>> {
  const traffic = args["memory-only"] ? {} : await trafficPhase(kind, prosody, ircd);
  const rss = await memoryPhase(kind, prosody, ircd);
  const version = { estuary: "estuary (this tree)", biboumi: "biboumi 9.0 (Debian)", baseline: "baseline (bench/irc/baseline.ts: Node + @xmpp/component + raw sockets)" }[kind];
  return { version, profiled: kind === "estuary" && args.profile === true, ...traffic, rss };
}

/** Stops the clients and the gateway; returns the CPU profile summary when one was asked for. */
async function finish(
  kind: Kind,
  proc: Tracked,
  clients: TestClient[],
  bench: TestClient | undefined,
  listener: IrcRemote | undefined,
  dir: string,
  profile: boolean,
  windows: Record<string, Window> = {},
): Promise<Record<string, ProfileSummary> | undefined> {
  log(`${kind}: stopping`);
  if (kind === "estuary" && args["estuary-log"]) process.stderr.write(proc.output());
  listener?.quit();
  await pool([...clients.filter(Boolean), ...(bench ? [bench] : [])], 100, (c) => c.stop());
  clients.length = 0;
  // SIGINT: Estuary stops cleanly, so node writes the --cpu-prof file.
  await proc.stop(kind === "estuary" ? "SIGINT" : "SIGTERM", 15_000);
  let summary: Record<string, ProfileSummary> | undefined;
  if (profile) {
    const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
    if (file) {
      // Whole run, and each throughput phase on its own (V8 and hrtime share CLOCK_MONOTONIC).
      summary = { whole: summarizeProfile(join(dir, file)) };
      for (const [name, w] of Object.entries(windows)) summary[name] = summarizeProfile(join(dir, file), 25, w);
      if (args["keep-profile"]) {
        const dest = resolve(args["keep-profile"]);
        copyFileSync(join(dir, file), dest);
        log(`${kind}: CPU profile kept at ${dest}`);
      }
    } else log(`${kind}: no .cpuprofile written`);
  }
  rmSync(dir, { recursive: true, force: true });
  return summary;
}

const ratio = (a: unknown, b: unknown): number => (typeof a === "number" && typeof b === "number" && b !== 0 ? round(a / b, 2) : Number.NaN);

async function main(): Promise<void> {
  const started = performance.now();
  log(`Prosody + InspIRCd; ${USERS} users (${Math.max(USERS, RSS_USERS)} accounts), hold ${HOLD_S} s`);
  let prosody: ProsodyHandle | undefined;
  let ircd: InspircdHandle | undefined;
  let ircdGuard: { forget(): void } | undefined;
  const out: Record<string, unknown> = {
    machine: { cores: availableParallelism(), cpu: cpus()[0]?.model, memGiB: round(totalmem() / 2 ** 30, 1), node: process.version },
    run: { users: USERS, holdSeconds: HOLD_S, messages: MESSAGES, runs: RUNS, latencyMessages: LATENCY, window: WINDOW, roomSize: ROOM_SIZE, rssUsers: RSS_USERS, inspircdNetBufferSize: IRC_NET_BUFFER, storeDir: STORE_DIR },
  };
  try {
    [prosody, ircd] = await Promise.all([
      startProsody({ components: kinds.map((k) => ({ domain: DOMAINS[k], secret: SECRETS[k] })) }),
      startInspircd({ netBufferSize: IRC_NET_BUFFER }),
    ]);
    ircPort = ircd.port;
    ircdPid = Number(readFileSync(join(ircd.dir, "inspircd.pid"), "utf8").trim());
    if (Number.isInteger(ircdPid) && ircdPid > 0) ircdGuard = adopt(ircdPid);
    const accounts = ["bench", ...Array.from({ length: Math.max(USERS, RSS_USERS) }, (_, i) => `u${i}`)];
    log(`creating ${accounts.length} accounts`);
    const p = prosody;
    await pool(accounts, availableParallelism() * 4, (u) => p.addUser(u, PASSWORD));
    for (const kind of kinds) out[kind] = await runGateway(kind, prosody, ircd);
  } finally {
    await Promise.all([prosody?.stop(), ircd?.stop()]);
    ircdGuard?.forget();
  }
  const e = out.estuary as Record<string, Record<string, number>> | undefined;
  const b = out.biboumi as Record<string, Record<string, number>> | undefined;
  if (e && b) {
    out.ratios = {
      // > 1: Estuary faster.
      xmppToIrc: ratio(e.xmppToIrc?.msgsPerSec, b.xmppToIrc?.msgsPerSec),
      ircToXmpp: ratio(e.ircToXmpp?.msgsPerSec, b.ircToXmpp?.msgsPerSec),
      // < 1: Estuary's p99 lower.
      p99XmppToIrc: ratio(e.latencyXmppToIrc?.p99Ms, b.latencyXmppToIrc?.p99Ms),
      p99IrcToXmpp: ratio(e.latencyIrcToXmpp?.p99Ms, b.latencyIrcToXmpp?.p99Ms),
      // < 1: Estuary uses less memory per user.
      rssPerUser: ratio(e.rss?.perUserKiB, b.rss?.perUserKiB),
      rssRest: ratio(e.rss?.restKiB, b.rss?.restKiB),
    };
  }
  const n = out.baseline as Record<string, Record<string, number>> | undefined;
  if (n) {
    // What the floor allows: > 1 for throughput means the gateway reaches that share of it.
    const vs = (g: Record<string, Record<string, number>> | undefined) =>
      g && {
        xmppToIrc: ratio(g.xmppToIrc?.msgsPerSec, n.xmppToIrc?.msgsPerSec),
        ircToXmpp: ratio(g.ircToXmpp?.msgsPerSec, n.ircToXmpp?.msgsPerSec),
        rssPerUser: ratio(g.rss?.perUserKiB, n.rss?.perUserKiB),
      };
    out.againstBaseline = { estuary: vs(e), biboumi: vs(b) };
  }
  out.elapsedSeconds = round((performance.now() - started) / 1000, 1);
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`[bench] FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  // process.exit runs the "exit" hooks that SIGKILL every child (procs.ts, prosody.ts).
  process.on(sig, () => {
    process.stderr.write(`[bench] ${sig}: stopping\n`);
    process.exit(130);
  });
}
