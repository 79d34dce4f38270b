/**
 * The README's quick start, for real: scripts/demo.sh starts Prosody,
 * InspIRCd and Estuary on loopback; we log in with an account it printed,
 * discover the IRC gateway, join the demo channel as the banner suggests,
 * then Ctrl-C (SIGINT) the script and check that all three processes are gone.
 *
 * Ports and the state directory come from the script's knobs so this test
 * never touches run/demo or the default ports.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { freePorts } from "../support/ports.ts";
import { waitFor } from "../support/wait.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";

/** Pid → [ppid, command name, state] from /proc (Linux). */
function processTable(): Map<number, { ppid: number; comm: string; state: string }> {
  const table = new Map<number, { ppid: number; comm: string; state: string }>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split at the last ')'.
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const [state, ppid] = stat.slice(close + 2).split(" ");
      table.set(Number(entry), { ppid: Number(ppid), comm, state: state ?? "" });
    } catch {
      // exited while we read
    }
  }
  return table;
}

function descendants(root: number): Map<number, string> {
  const table = processTable();
  const out = new Map<number, string>();
  const queue = [root];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [pid, p] of table) {
      if (p.ppid === parent && !out.has(pid)) {
        out.set(pid, readCmdline(pid) || p.comm);
        queue.push(pid);
      }
    }
  }
  return out;
}

function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return "";
  }
}

/** Gone, or a zombie (it has exited; only its parent's reaping is pending). */
function exited(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

interface Demo {
  proc: ChildProcess;
  output(): string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs scripts/demo.sh on the given dir and ports and waits for its ready line. */
async function startDemo(dir: string, ports: { c2s: number; component: number; irc: number }): Promise<Demo> {
  let output = "";
  const proc = spawn("bash", ["scripts/demo.sh"], {
    cwd: ROOT,
    env: {
      ...process.env,
      ESTUARY_DEMO_DIR: dir,
      ESTUARY_DEMO_C2S_PORT: String(ports.c2s),
      ESTUARY_DEMO_COMPONENT_PORT: String(ports.component),
      ESTUARY_DEMO_IRC_PORT: String(ports.irc),
      ESTUARY_DEMO_LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  for (const stream of [proc.stdout, proc.stderr]) {
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      output += chunk;
    });
  }
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once("exit", (code, signal) => resolve({ code, signal })),
  );
  await waitFor(
    () => {
      if (proc.exitCode !== null) throw new Error(`demo.sh exited with ${proc.exitCode}`);
      return /^\[demo\] ready$/m.test(output) ? true : undefined;
    },
    { timeout: 90_000, interval: 50, what: "the demo's ready line" },
  ).catch((err: unknown) => {
    proc.kill("SIGINT");
    throw new Error(`${(err as Error).message}\n--- demo output ---\n${output}`);
  });
  return { proc, output: () => output, exit };
}

/** The accounts the banner lists. */
function accountsIn(output: string): { user: string; password: string }[] {
  return [...output.matchAll(/^\s+(\w+)@localhost\s+password: (\S+)$/gm)].map((m) => ({ user: m[1]!, password: m[2]! }));
}

describe("scripts/demo.sh (README quick start)", () => {
  let dir: string;
  let ports: { c2s: number; component: number; irc: number };
  let demo: Demo;
  let client: TestClient | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "estuary-demo-"));
    const [c2s, component, irc] = (await freePorts(3)) as [number, number, number];
    ports = { c2s, component, irc };
    demo = await startDemo(dir, ports);
  }, 120_000);

  afterAll(async () => {
    await client?.stop();
    if (demo && demo.proc.exitCode === null && demo.proc.signalCode === null) {
      demo.proc.kill("SIGINT");
      await demo.exit;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const accounts = (): { user: string; password: string }[] => accountsIn(demo.output());

  it("prints two accounts and the loopback server, and keeps its secrets private", () => {
    const output = demo.output();
    expect(accounts()).toHaveLength(2);
    expect(output).toContain(`127.0.0.1 port ${ports.c2s}`);
    expect(output).toContain("#estuary%127.0.0.1@irc.localhost");
    for (const file of ["store.key", "estuary.yaml", "state.json"]) {
      expect((statSync(join(dir, file)).mode & 0o777).toString(8), file).toBe("600");
    }
  });

  it("lets a printed account log in and discover the IRC gateway", async () => {
    const [alice] = accounts();
    client = await connectClient({ service: `xmpp://127.0.0.1:${ports.c2s}`, domain: "localhost" }, alice!.user, alice!.password);
    const res = await client.iq(xml("iq", { type: "get", to: "irc.localhost" }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
    const identities = res.getChild("query")!.getChildren("identity").map((i) => `${i.attrs.category}/${i.attrs.type}`);
    expect(identities).toContain("gateway/irc");
  });

  it("joins the channel the banner suggests, on the demo's InspIRCd", async () => {
    const room = "#estuary%127.0.0.1@irc.localhost";
    await client!.send(xml("presence", { to: `${room}/alice` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    const self = await client!.waitFor(
      (p: Element) =>
        p.name === "presence" &&
        p.attrs.from?.startsWith(`${room}/`) === true &&
        (p.attrs.type === "error" || (p.getChild("x", NS_MUC_USER)?.getChildren("status") ?? []).some((s) => s.attrs.code === "110")),
      30_000,
    );
    expect(self.attrs.type, self.toString()).toBeUndefined();
  }, 40_000);

  it("stops Prosody, InspIRCd and Estuary on Ctrl-C (SIGINT)", async () => {
    await client?.stop();
    client = undefined;
    const children = descendants(demo.proc.pid!);
    const commands = [...children.values()].join("\n");
    expect(commands).toContain("prosody");
    expect(commands).toContain("inspircd");
    expect(commands).toContain("bin/estuary.js");

    demo.proc.kill("SIGINT");
    const { code } = await demo.exit;
    const output = demo.output();
    expect(code, output.slice(-3000)).toBe(0);
    for (const [pid, command] of children) {
      await waitFor(() => (exited(pid) ? true : undefined), { timeout: 5000, what: `pid ${pid} (${command}) to exit` });
    }
    expect(output).toMatch(/^\[demo\] stopped$/m);
    expect(existsSync(join(dir, "demo.pids"))).toBe(false);
  }, 60_000);

  it("reuses its state when run again: same accounts, same passwords", async () => {
    const before = accounts();
    const again = await startDemo(dir, ports);
    try {
      expect(accountsIn(again.output())).toEqual(before);
      const [, bob] = before;
      const c = await connectClient({ service: `xmpp://127.0.0.1:${ports.c2s}`, domain: "localhost" }, bob!.user, bob!.password);
      await c.stop();
    } finally {
      again.proc.kill("SIGINT");
      expect((await again.exit).code).toBe(0);
    }
  }, 120_000);
});
