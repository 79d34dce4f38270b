/**
 * A real ejabberd 23.01 (Debian package) for integration tests, one per call,
 * in its own temp dir on its own loopback ports, with its own Erlang node name
 * and cookie, so vitest workers can run several at once beside Prosody. It
 * returns the same handle shape as startProsody, so a test can take either.
 *
 * ejabberd reads one YAML file (https://docs.ejabberd.im/admin/configuration/);
 * we generate it. Facts this relies on, checked against Debian's 23.01-1:
 * - `ejabberdctl --config-dir D --spool S --logs L foreground` runs the node
 *   attached. ejabberdctl refuses any user but root and `ejabberd`, and as root
 *   it re-runs itself through `su ejabberd`, which starts a new session: the
 *   Erlang VM then leaves our process group and outlives a group kill. So we
 *   spawn ejabberdctl directly as the `ejabberd` user (uid/gid), which keeps
 *   bash and beam.smp in one process group we own, and chown the dir to it.
 * - ejabberdctl sources `D/ejabberdctl.cfg`. There we set the node name, a
 *   per-instance cookie (`-setcookie`, so no shared ~/.erlang.cookie), and
 *   ERL_DIST_PORT: with it the node listens for Erlang distribution on that
 *   fixed port, started with `-start_epmd false`, and ejabberdctl's own
 *   commands (`register`, `status`) dial that port directly. No epmd at all,
 *   so instances share no daemon and no name registry. The distribution
 *   listener is bound to 127.0.0.1 (`-kernel inet_dist_use_interface`).
 * - `D/inetrc` is read as ERL_INETRC; ours resolves "localhost" from a file
 *   (the node name is `…@localhost`) and silences "inetrc not found".
 * - Over plaintext c2s, 23.01 offers PLAIN when `starttls_required` is off and
 *   no certificate is configured; `auth_password_format: plain` keeps PLAIN
 *   (and every SCRAM) usable for accounts created by `ejabberdctl register`.
 * - The Mnesia spool is keyed by node name, so restart() reuses the name and
 *   accounts and rosters survive it.
 * - SIGTERM to beam.smp is an orderly `init:stop()` (OTP ≥ 20), the same
 *   shutdown as `ejabberdctl stop` without booting a second VM for it.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, mkdir, writeFile, rm, chown, readdir, readFile } from "node:fs/promises";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { freePorts } from "./ports.ts";
import type { ProsodyHandle } from "./prosody.ts";

export interface EjabberdOptions {
  /** XEP-0114 components (ejabberd_service listener entries). */
  components: { domain: string; secret: string }[];
  /** Accounts on "localhost", created once the node answers. */
  users?: { username: string; password: string }[];
  /** Adds mod_muc at `conference.localhost` with open rooms. */
  muc?: boolean;
  /**
   * ejabberd's `domain_balancing`: component domain → how many component
   * connections share it (`component_number`), or that and the balancing
   * `type`. The default type is `bare_source`: every stanza of one user goes
   * to the same connection, which is what a sharded gateway needs; `random`
   * spreads stanzas regardless of sender.
   */
  domainBalancing?: Record<string, number | { components: number; type: BalancingType }>;
  /** ejabberd's `loglevel` (default info); `debug` logs every stanza routed and sent. */
  loglevel?: "info" | "debug";
  /** Deadline for start and restart, in ms (default 20000). */
  startTimeout?: number;
}

export type EjabberdHandle = ProsodyHandle;

/** ejabberd_router's balancing types (ejabberd docs, option `domain_balancing`). */
export type BalancingType = "random" | "source" | "destination" | "bare_source" | "bare_destination";

const DOMAIN = "localhost";
const LOOPBACK = "127.0.0.1";
const EJABBERDCTL = "/usr/sbin/ejabberdctl";
const RUN_AS = "ejabberd";
const STOP_GRACE_MS = 8000;
const CTL_TIMEOUT_MS = 15_000;

interface Ports {
  c2s: number;
  component: number;
  /** Erlang distribution (ERL_DIST_PORT), for ejabberdctl's commands. */
  dist: number;
}

/** The ejabberd.yml for one instance, as a plain object (rendered with `yaml`). */
export function ejabberdConfig(ports: Ports, options: EjabberdOptions): Record<string, unknown> {
  const modules: Record<string, unknown> = {
    mod_roster: {},
    mod_disco: {},
    mod_ping: {},
    mod_caps: {},
  };
  if (options.muc) {
    modules.mod_muc = {
      hosts: [`conference.${DOMAIN}`],
      access: "all",
      access_create: "local",
      access_persistent: "local",
      // XEP-0045 §10.1.2: instant rooms, usable as soon as they are created.
      default_room_options: { persistent: false, public: true, mam: false },
    };
  }
  const config: Record<string, unknown> = {
    hosts: [DOMAIN],
    loglevel: options.loglevel ?? "info",
    // A debug log outgrows the default rotation size (rotated files are not kept) within seconds.
    ...(options.loglevel === "debug" ? { log_rotate_size: "infinity" } : {}),
    log_rotate_count: 0,
    auth_method: "internal",
    // Plain passwords so xmpp.js can use PLAIN (its SCRAM costs ~2 s CPU).
    auth_password_format: "plain",
    // No federation: no s2s listener, and outgoing s2s refused.
    s2s_access: "none",
    disable_sasl_mechanisms: ["digest-md5", "x-oauth2"],
    listen: [
      {
        port: ports.c2s,
        ip: LOOPBACK,
        module: "ejabberd_c2s",
        starttls_required: false,
        access: "c2s",
      },
      // ejabberd refuses an ejabberd_service listener without hosts.
      ...(options.components.length === 0
        ? []
        : [
            {
              port: ports.component,
              ip: LOOPBACK,
              module: "ejabberd_service",
              // XEP-0114 §3: each component domain authenticates with its secret.
              hosts: Object.fromEntries(options.components.map((c) => [c.domain, { password: c.secret }])),
            },
          ]),
    ],
    acl: { local: { user_regexp: "" } },
    access_rules: {
      local: { allow: "local" },
      c2s: { allow: "all" },
    },
    // ejabberdctl's commands (register, status) are allowed from the shell.
    api_permissions: {
      "console commands": { from: ["ejabberd_ctl"], who: "all", what: "*" },
    },
    shaper_rules: { max_user_sessions: 100 },
    modules,
  };
  if (options.domainBalancing && Object.keys(options.domainBalancing).length > 0) {
    config.domain_balancing = Object.fromEntries(
      Object.entries(options.domainBalancing).map(([domain, b]) => {
        const { components, type } = typeof b === "number" ? { components: b, type: "bare_source" as const } : b;
        return [domain, { type, component_number: components }];
      }),
    );
  }
  return config;
}

/** ejabberdctl.cfg: a shell fragment ejabberdctl sources before starting erl. */
function ctlConfig(node: string, cookie: string, distPort: number): string {
  return [
    `# Generated by test/support/ejabberd.ts`,
    `ERLANG_NODE=${node}`,
    `ERL_DIST_PORT=${distPort}`,
    `ERL_OPTIONS="-setcookie ${cookie} -kernel inet_dist_use_interface {127,0,0,1} -env ERL_CRASH_DUMP_BYTES 0"`,
    ``,
  ].join("\n");
}

const INETRC = `{lookup, [file, native]}.\n{host, {127,0,0,1}, ["localhost"]}.\n`;

/** Processes (group leaders) still running, killed if the test process exits. */
const livePgids = new Set<number>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const pgid of livePgids) killGroup(pgid, "SIGKILL");
    if (process.env.KEEP_EJABBERD_DIR) return;
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/**
 * A `sh` that kills the process group `pgid` when our stdin pipe closes, i.e.
 * when this process dies in any way, including SIGKILL (no "exit" hook), and
 * then removes the instance's dir (unless KEEP_EJABBERD_DIR).
 */
function spawnWatchdog(pgid: number, dir: string): ChildProcess {
  const script = 'read _ ; kill -s KILL -- "-$0" 2>/dev/null; [ -n "$2" ] || rm -rf -- "$1"';
  const wd = spawn("sh", ["-c", script, String(pgid), dir, process.env.KEEP_EJABBERD_DIR ? "keep" : ""], {
    stdio: ["pipe", "ignore", "ignore"],
  });
  wd.on("error", () => {});
  wd.unref();
  wd.stdin?.on("error", () => {});
  (wd.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return wd;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off("exit", onExit);
      resolve(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once("exit", onExit);
  });
}

function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: LOOPBACK, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Children of `pid`, from /proc/<pid>/stat (field 4 is the parent pid, proc(5)). */
async function childrenOf(pid: number): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // comm (field 2) is parenthesised and may hold spaces: read after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[1]) === pid) found.push(Number(entry));
  }
  return found;
}

/** uid/gid to run ejabberdctl with: the `ejabberd` user's when we are root. */
function runAsIds(): { uid: number; gid: number } | undefined {
  const me = process.getuid?.();
  const passwd = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .map((l) => l.split(":"))
    .find((f) => f[0] === RUN_AS);
  if (!passwd) throw new Error(`ejabberd: no '${RUN_AS}' user (is the Debian ejabberd package installed?)`);
  const ids = { uid: Number(passwd[2]), gid: Number(passwd[3]) };
  if (me === ids.uid) return undefined;
  if (me !== 0) throw new Error(`ejabberd: ejabberdctl runs only as root or '${RUN_AS}' (we are uid ${String(me)})`);
  return ids;
}

class PortInUse extends Error {}

function tail(text: string, lines = 40): string {
  return text.split("\n").slice(-lines).join("\n");
}

export async function startEjabberd(options: EjabberdOptions): Promise<EjabberdHandle> {
  if (!existsSync(EJABBERDCTL)) throw new Error(`ejabberd: ${EJABBERDCTL} not found (scripts/setup.sh installs it)`);
  installExitHook();
  const ids = runAsIds();
  const dir = await mkdtemp(join(tmpdir(), "estuary-ejabberd-"));
  liveDirs.add(dir);
  const spool = join(dir, "spool");
  const logsDir = join(dir, "logs");
  const logPath = join(logsDir, "ejabberd.log");
  const suffix = randomBytes(6).toString("hex");
  const node = `estuary-${suffix}@localhost`;
  const cookie = `estuary-${randomBytes(12).toString("hex")}`;
  const startTimeout = options.startTimeout ?? 20_000;

  let output = ""; // stdout/stderr of every run
  let finalLogs: string | undefined;
  let child: ChildProcess | undefined;
  let watchdog: ChildProcess | undefined;
  let ports: Ports;

  const readLog = (): string => (existsSync(logPath) ? readFileSync(logPath, "utf8") : "");
  const logs = (): string => {
    if (finalLogs !== undefined) return finalLogs;
    const log = readLog();
    return output.trim() === "" ? log : `${log}\n--- ejabberd stdout/stderr ---\n${output}`;
  };

  const ctlArgs = ["--config-dir", dir, "--spool", spool, "--logs", logsDir];
  const spawnOptions = {
    cwd: dir,
    // HOME is where erl would look for (or create) .erlang.cookie.
    env: { ...process.env, HOME: dir },
    ...(ids ?? {}),
  };

  const own = async (path: string): Promise<void> => {
    if (ids) await chown(path, ids.uid, ids.gid);
  };

  const writeConfigs = async (): Promise<void> => {
    const files: [string, string][] = [
      ["ejabberd.yml", `# Generated by test/support/ejabberd.ts\n${stringify(ejabberdConfig(ports, options))}`],
      ["ejabberdctl.cfg", ctlConfig(node, cookie, ports.dist)],
      ["inetrc", INETRC],
    ];
    for (const [name, text] of files) {
      await writeFile(join(dir, name), text);
      await own(join(dir, name));
    }
  };

  /** One ejabberdctl command against the running node (boots a short-lived VM, ~0.8 s). */
  const ctl = (...args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(EJABBERDCTL, [...ctlArgs, ...args], { ...spawnOptions, timeout: CTL_TIMEOUT_MS }, (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`ejabberdctl ${args.join(" ")} failed: ${err.message}\n${stdout}${stderr}`, { cause: err }));
        } else resolve(stdout);
      });
    });

  const addUser = async (username: string, password: string): Promise<void> => {
    await ctl("register", username, DOMAIN, password);
  };

  const halt = async (): Promise<void> => {
    const c = child;
    if (!c) return;
    watchdog?.kill("SIGKILL");
    watchdog = undefined;
    const pgid = c.pid;
    if (!exited(c) && pgid !== undefined) {
      // Stop beam.smp (the child of ejabberdctl's bash) in order; bash then
      // returns, so the child's exit means the VM, its ports and Mnesia are done.
      const vms = await childrenOf(pgid);
      for (const pid of vms) {
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          // gone meanwhile
        }
      }
      if (vms.length === 0 || !(await waitExit(c, STOP_GRACE_MS))) {
        killGroup(pgid, "SIGKILL");
        await waitExit(c, STOP_GRACE_MS);
      }
    }
    // erl_child_setup and inet_gethost leave with beam.smp; the group is only
    // killed on the forced path above, never once empty (its id could be reused).
    if (pgid !== undefined) livePgids.delete(pgid);
    child = undefined;
  };

  const launch = async (): Promise<void> => {
    const logStart = readLog().length;
    const c = spawn(EJABBERDCTL, [...ctlArgs, "foreground"], {
      ...spawnOptions,
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group, so stop() and the watchdog reach beam.smp too.
      detached: true,
    });
    child = c;
    c.unref();
    let spawnError: Error | undefined;
    c.on("error", (err) => {
      spawnError = err;
    });
    for (const stream of [c.stdout, c.stderr]) {
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        output += chunk;
      });
      (stream as unknown as { unref?: () => void } | null)?.unref?.();
    }
    if (c.pid !== undefined) {
      livePgids.add(c.pid);
      watchdog = spawnWatchdog(c.pid, dir);
    }

    // ejabberd_listener logs this once a listener socket is open.
    const accepting = (port: number, module: string): string =>
      `Start accepting TCP connections at ${LOOPBACK}:${port} for ${module}`;
    const deadline = Date.now() + startTimeout;
    for (;;) {
      const log = readLog().slice(logStart);
      const problem = (msg: string): Error =>
        new Error(`ejabberd ${msg} (dir ${dir})\n${tail(log + (output ? `\n${output}` : ""))}`);
      if (spawnError) throw problem(`could not be spawned: ${spawnError.message}`);
      if (/eaddrinuse/i.test(log) || /eaddrinuse/i.test(output)) {
        await halt();
        throw new PortInUse(problem("could not bind its ports").message);
      }
      if (exited(c)) {
        if (c.pid !== undefined) livePgids.delete(c.pid);
        child = undefined;
        throw problem(`exited during startup (code ${c.exitCode}, signal ${c.signalCode})`);
      }
      const componentsUp = options.components.length === 0 || log.includes(accepting(ports.component, "ejabberd_service"));
      if (log.includes(accepting(ports.c2s, "ejabberd_c2s")) && componentsUp && (await tcpAccepts(ports.c2s))) return;
      if (Date.now() > deadline) {
        await halt();
        throw problem(`did not become ready within ${startTimeout} ms`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  const pickPorts = async (): Promise<void> => {
    const [c2s, component, dist] = (await freePorts(3)) as [number, number, number];
    ports = { c2s, component, dist };
    await writeConfigs();
  };

  try {
    await own(dir);
    for (const d of [spool, logsDir]) {
      await mkdir(d);
      await own(d);
    }
    // A free port can be taken by another worker between freePorts() and
    // ejabberd's bind: pick new ones and try again. The node name stays, the
    // spool is still empty.
    for (let attempt = 1; ; attempt++) {
      try {
        await pickPorts();
        await launch();
        break;
      } catch (err) {
        if (!(err instanceof PortInUse) || attempt >= 3) throw err;
      }
    }
    await Promise.all((options.users ?? []).map((u) => addUser(u.username, u.password)));
  } catch (err) {
    await halt();
    liveDirs.delete(dir);
    if (!process.env.KEEP_EJABBERD_DIR) await rm(dir, { recursive: true, force: true });
    throw err;
  }

  let stopped = false;
  const handle: EjabberdHandle = {
    domain: DOMAIN,
    get c2sPort() {
      return ports.c2s;
    },
    get componentPort() {
      return ports.component;
    },
    mucDomain: `conference.${DOMAIN}`,
    dir,
    addUser,
    async restart() {
      if (stopped) throw new Error("ejabberd handle already stopped");
      await halt();
      await launch();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await halt();
      finalLogs = logs();
      liveDirs.delete(dir);
      if (!process.env.KEEP_EJABBERD_DIR) await rm(dir, { recursive: true, force: true });
    },
    logs,
  };
  return handle;
}
