/**
 * A real Prosody 0.12 for integration tests, one per call, in its own temp
 * dir on its own loopback ports, so vitest workers can run several at once.
 *
 * Prosody reads everything from one Lua config file
 * (https://prosody.im/doc/configure); we generate it. Facts this relies on,
 * checked against the Debian 0.12.3 package:
 * - `prosody --config FILE -F` runs in the foreground (util/startup.lua's
 *   argument table); `prosodyctl --config FILE register USER HOST PASS`
 *   creates an account.
 * - As root, Prosody refuses to start (and hangs) without `run_as_root`, and
 *   prosodyctl would switch to the `prosody` user, which cannot write our dir.
 * - A port that cannot be bound is logged ("Failed to open server port") but
 *   Prosody keeps running, so readiness is read from the log, not only from
 *   a TCP connect (which could reach another process on a reused port).
 * - With `storage = "internal"` accounts are plain files read on each login,
 *   so prosodyctl can add users while the server runs.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtemp, mkdir, writeFile, rm } from "node:fs/promises";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePorts } from "./ports.ts";

const execFileP = promisify(execFile);

export interface ProsodyOptions {
  /** XEP-0114 components, one connection each (Prosody accepts one per domain). */
  components: { domain: string; secret: string }[];
  /** Accounts on the VirtualHost, created before the server starts. */
  users?: { username: string; password: string }[];
  /** Adds a MUC service at `conference.<domain>` with instant, open rooms. */
  muc?: boolean;
  /**
   * Extra modules for the MUC component (with `muc`), e.g. ["muc_mam",
   * "muc_moderation"]: Prosody's own or Debian prosody-modules' (found in
   * PROSODY_MODULES_DIR, then added to plugin_paths).
   */
  mucModules?: string[];
  /** Extra modules for the VirtualHost (e.g. "mam"). */
  extraModules?: string[];
  /** Deadline for start and restart, in ms (default 15000). */
  startTimeout?: number;
  /**
   * XEP-0356: loads mod_privilege from Debian's prosody-modules (which speaks
   * urn:xmpp:privilege:2) and grants these entities (component domains) the
   * given permissions, as its `privileged_entities` option.
   */
  /**
   * XEP-0363: a `Component "upload.localhost" "http_file_share"` (Prosody
   * 0.12's mod_http_file_share, https://prosody.im/doc/modules/mod_http_file_share)
   * served on its own loopback HTTP port, letting `access` (JIDs or domains,
   * e.g. the gateway's component domains) request slots.
   */
  upload?: { access: string[]; sizeLimit?: number };
  privilegedEntities?: Record<string, { roster?: "none" | "get" | "set" | "both"; message?: "none" | "outgoing"; presence?: "none" | "managed_entity" | "roster" }>;
}

/** Where Debian's prosody-modules package puts mod_privilege (a directory per module). */
export const PROSODY_MODULES_DIR = "/usr/lib/prosody/modules";

export interface ProsodyHandle {
  /** The VirtualHost: "localhost". */
  domain: string;
  c2sPort: number;
  componentPort: number;
  /** "conference.localhost" (present even when `muc` is off, but then unserved). */
  mucDomain: string;
  /** The upload service's JID, "upload.localhost" (served only with the `upload` option; absent on handles of other servers). */
  uploadDomain?: string;
  /** Prosody's HTTP port (0 without the `upload` option; absent on handles of other servers). */
  httpPort?: number;
  /** Temp dir holding config, data, pidfile and log; removed by stop(). */
  dir: string;
  addUser(username: string, password: string): Promise<void>;
  /** Stops and starts again on the same ports with the same data. */
  restart(): Promise<void>;
  /** SIGTERM, SIGKILL after a deadline; removes the dir. Idempotent. */
  stop(): Promise<void>;
  /** Prosody's log (level info and up) plus anything it printed. */
  logs(): string;
}

const DOMAIN = "localhost";
const UPLOAD_DOMAIN = `upload.${DOMAIN}`;
const LOOPBACK = "127.0.0.1";
const STOP_GRACE_MS = 5000;

/** Modules for the VirtualHost. A sane subset of Debian's default config:
 * no tls (no certificates in tests), no limits (rate limits slow tests),
 * no smacks (resumption would hide disconnects), no http, no register. */
const HOST_MODULES = [
  "roster",
  "saslauth",
  "disco",
  "ping",
  "presence",
  "private",
  "blocklist",
  "carbons",
  "pep",
  "version",
  "time",
  "uptime",
  "posix",
];

/** Lua string literal (Lua 5.4 reference manual §3.1). */
function lua(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n").replace(/\r/g, "\\r")}"`;
}

interface Ports {
  c2s: number;
  s2s: number;
  component: number;
  /** Only bound with the `upload` option. */
  http: number;
}

function renderConfig(dir: string, ports: Ports, options: ProsodyOptions): string {
  const privileged = options.privilegedEntities;
  const modules = [...HOST_MODULES, ...(options.extraModules ?? []), ...(privileged ? ["privilege"] : [])];
  const lines = [
    `-- Generated by test/support/prosody.ts`,
    `run_as_root = true`,
    `daemonize = false`,
    `pidfile = ${lua(join(dir, "prosody.pid"))}`,
    `data_path = ${lua(join(dir, "data"))}`,
    `certificates = "certs"`,
    `admins = { }`,
    // prosody-modules' mod_privilege lives in mod_privilege/mod_privilege.lua under this dir.
    `plugin_paths = { ${privileged || options.mucModules?.length ? lua(PROSODY_MODULES_DIR) : ""} }`,
    `modules_enabled = { ${modules.map(lua).join(", ")} }`,
    `modules_disabled = { }`,
    // Every listener on loopback only; s2s needs a port because mod_s2s is
    // always loaded, but nothing federates.
    `interfaces = { ${lua(LOOPBACK)} }`,
    `local_interfaces = { ${lua(LOOPBACK)} }`,
    `c2s_interfaces = { ${lua(LOOPBACK)} }`,
    `s2s_interfaces = { ${lua(LOOPBACK)} }`,
    `component_interfaces = { ${lua(LOOPBACK)} }`,
    `c2s_ports = { ${ports.c2s} }`,
    `s2s_ports = { ${ports.s2s} }`,
    `component_ports = { ${ports.component} }`,
    `c2s_direct_tls_ports = { }`,
    `s2s_direct_tls_ports = { }`,
    `legacy_ssl_ports = { }`,
    `c2s_require_encryption = false`,
    `s2s_require_encryption = false`,
    `s2s_secure_auth = false`,
    // Plain passwords so xmpp.js can use PLAIN (its SCRAM costs ~2 s CPU).
    `allow_unencrypted_plain_auth = true`,
    `authentication = "internal_plain"`,
    `storage = "internal"`,
    `log = { info = ${lua(join(dir, "prosody.log"))} }`,
    // mod_http listens only once a module needs it (the upload component); never on https.
    ...(options.upload ? [`http_ports = { ${ports.http} }`, `http_interfaces = { ${lua(LOOPBACK)} }`, `https_ports = { }`, `https_interfaces = { }`] : []),
    // mod_privilege reads it per host, falling back to this global value.
    ...(privileged ? [`privileged_entities = { ${Object.entries(privileged).map(([jid, perms]) => `[${lua(jid)}] = { ${Object.entries(perms).map(([k, v]) => `${k} = ${lua(v)}`).join(", ")} }`).join(", ")} }`] : []),
    ``,
    `VirtualHost ${lua(DOMAIN)}`,
    ``,
  ];
  for (const c of options.components) {
    // XEP-0114 §3: the component authenticates with a shared secret.
    lines.push(`Component ${lua(c.domain)}`, `  component_secret = ${lua(c.secret)}`);
    // mod_privilege hooks the component's authentication on the component's own host, and the
    // VirtualHost's copy then advertises the grant: it must be loaded on both.
    if (privileged?.[c.domain]) lines.push(`  modules_enabled = { "privilege" }`);
    lines.push(``);
  }
  if (options.upload) {
    const base = `http://${LOOPBACK}:${ports.http}/`;
    lines.push(
      `Component ${lua(UPLOAD_DOMAIN)} "http_file_share"`,
      // Who may request slots: Prosody's default admits only its own hosts' users.
      `  http_file_share_access = { ${options.upload.access.map(lua).join(", ")} }`,
      ...(options.upload.sizeLimit !== undefined ? [`  http_file_share_size_limit = ${options.upload.sizeLimit}`] : []),
      // Routes registered for Host 127.0.0.1 (the port is stripped when matching), and the
      // slot URLs built on the loopback address rather than on the component's name.
      `  http_host = ${lua(LOOPBACK)}`,
      `  http_external_url = ${lua(base)}`,
      ``,
    );
  }
  if (options.muc) {
    lines.push(
      `Component ${lua(`conference.${DOMAIN}`)} "muc"`,
      // XEP-0045 §10.1.2: instant rooms, no waiting for a configuration form.
      `  muc_room_locking = false`,
      `  restrict_room_creation = false`,
      ...(options.mucModules?.length ? [`  modules_enabled = { ${options.mucModules.map(lua).join(", ")} }`] : []),
      ``,
    );
  }
  return lines.join("\n");
}

/** Processes still running, killed if the test process exits without stop(). */
const live = new Set<ChildProcess>();
/** Temp dirs not yet removed by stop(), removed on exit. */
const liveDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    if (process.env.KEEP_PROSODY_DIR) return;
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/**
 * A `sh` that kills `pid` when our stdin pipe closes, i.e. when this process
 * dies in any way, including SIGKILL, where no "exit" hook runs.
 */
function spawnWatchdog(pid: number): ChildProcess {
  const wd = spawn("sh", ["-c", 'read _ ; kill -KILL "$0" 2>/dev/null', String(pid)], {
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

class PortInUse extends Error {}

function tail(text: string, lines = 30): string {
  return text.split("\n").slice(-lines).join("\n");
}

export async function startProsody(options: ProsodyOptions): Promise<ProsodyHandle> {
  installExitHook();
  const dir = await mkdtemp(join(tmpdir(), "estuary-prosody-"));
  liveDirs.add(dir);
  const configPath = join(dir, "prosody.cfg.lua");
  const logPath = join(dir, "prosody.log");
  await mkdir(join(dir, "certs"));
  await mkdir(join(dir, "data"));

  let output = ""; // stdout/stderr of every run
  let finalLogs: string | undefined;
  let child: ChildProcess | undefined;
  let watchdog: ChildProcess | undefined;
  let ports: Ports;
  const startTimeout = options.startTimeout ?? 15_000;

  const readLog = (): string => (existsSync(logPath) ? readFileSync(logPath, "utf8") : "");
  const logs = (): string => {
    if (finalLogs !== undefined) return finalLogs;
    const log = readLog();
    return output.trim() === "" ? log : `${log}\n--- prosody stdout/stderr ---\n${output}`;
  };

  const writeConfig = (): Promise<void> => writeFile(configPath, renderConfig(dir, ports, options));

  const addUser = async (username: string, password: string): Promise<void> => {
    try {
      await execFileP("prosodyctl", ["--config", configPath, "register", username, DOMAIN, password], {
        timeout: 15_000,
      });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`prosodyctl register ${username}@${DOMAIN} failed: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`, {
        cause: err,
      });
    }
  };

  const halt = async (): Promise<void> => {
    const c = child;
    if (!c) return;
    watchdog?.kill("SIGKILL");
    watchdog = undefined;
    if (!exited(c)) {
      c.kill("SIGTERM");
      if (!(await waitExit(c, STOP_GRACE_MS))) {
        c.kill("SIGKILL");
        await waitExit(c, STOP_GRACE_MS);
      }
    }
    live.delete(c);
    child = undefined;
  };

  const launch = async (): Promise<void> => {
    const logStart = readLog().length;
    const c = spawn("prosody", ["--config", configPath, "-F"], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = c;
    live.add(c);
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
    if (c.pid !== undefined) watchdog = spawnWatchdog(c.pid);

    const c2sReady = `Activated service 'c2s' on [${LOOPBACK}]:${ports.c2s}`;
    const componentReady = `Activated service 'component' on [${LOOPBACK}]:${ports.component}`;
    const deadline = Date.now() + startTimeout;
    for (;;) {
      const log = readLog().slice(logStart);
      const problem = (msg: string): Error =>
        new Error(`Prosody ${msg} (dir ${dir})\n${tail(log + (output ? `\n${output}` : ""))}`);
      if (spawnError) throw problem(`could not be spawned: ${spawnError.message}`);
      if (log.includes("Failed to open server port")) {
        await halt();
        throw new PortInUse(problem("could not bind its ports").message);
      }
      if (exited(c)) {
        live.delete(c);
        throw problem(`exited during startup (code ${c.exitCode}, signal ${c.signalCode})`);
      }
      // mod_component only listens when an external component is configured.
      const componentsUp = options.components.length === 0 || log.includes(componentReady);
      const httpUp = !options.upload || log.includes(`Activated service 'http' on [${LOOPBACK}]:${ports.http}`);
      if (log.includes(c2sReady) && componentsUp && httpUp && (await tcpAccepts(ports.c2s))) return;
      if (Date.now() > deadline) {
        await halt();
        throw problem(`did not become ready within ${startTimeout} ms`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  const pickPorts = async (): Promise<void> => {
    const [c2s, s2s, component, http] = (await freePorts(4)) as [number, number, number, number];
    ports = { c2s, s2s, component, http };
    await writeConfig();
  };

  try {
    await pickPorts();
    await Promise.all((options.users ?? []).map((u) => addUser(u.username, u.password)));
    // A free port can be taken by another worker between freePort() and
    // Prosody's bind: pick new ones and try again.
    for (let attempt = 1; ; attempt++) {
      try {
        await launch();
        break;
      } catch (err) {
        if (!(err instanceof PortInUse) || attempt >= 3) throw err;
        await pickPorts();
      }
    }
  } catch (err) {
    await halt();
    await rm(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
    throw err;
  }

  let stopped = false;
  const handle: ProsodyHandle = {
    domain: DOMAIN,
    get c2sPort() {
      return ports.c2s;
    },
    get componentPort() {
      return ports.component;
    },
    mucDomain: `conference.${DOMAIN}`,
    uploadDomain: UPLOAD_DOMAIN,
    get httpPort() {
      return options.upload ? ports.http : 0;
    },
    dir,
    addUser,
    async restart() {
      if (stopped) throw new Error("Prosody handle already stopped");
      await halt();
      await launch();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await halt();
      finalLogs = logs();
      liveDirs.delete(dir);
      if (!process.env.KEEP_PROSODY_DIR) await rm(dir, { recursive: true, force: true });
    },
    logs,
  };
  return handle;
}
