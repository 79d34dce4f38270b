/**
 * Child processes of the benchmark (the gateways under test): every one is
 * tracked so that it dies with the bench, whether the bench ends normally,
 * throws, is interrupted, or is SIGKILLed (a watchdog shell kills the child
 * when our stdin pipe to it closes).
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { readFileSync } from "node:fs";

const live = new Set<ChildProcess>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const c of live) {
      try {
        c.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

function watchdog(pid: number): ChildProcess {
  const wd = spawn("sh", ["-c", 'read _ ; kill -KILL "$0" 2>/dev/null', String(pid)], { stdio: ["pipe", "ignore", "ignore"] });
  wd.on("error", () => {});
  wd.unref();
  wd.stdin?.on("error", () => {});
  (wd.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return wd;
}

export interface Tracked {
  child: ChildProcess;
  pid: number;
  /** stdout+stderr so far (last 200 kB). */
  output(): string;
  exited(): boolean;
  /** `signal`, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export function spawnTracked(cmd: string, args: string[], options: SpawnOptions = {}): Tracked {
  hookExit();
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  if (child.pid === undefined) throw new Error(`could not spawn ${cmd}`);
  live.add(child);
  const wd = watchdog(child.pid);
  let out = "";
  for (const s of [child.stdout, child.stderr]) {
    s?.setEncoding("utf8");
    s?.on("data", (d: string) => {
      out += d;
      if (out.length > 400_000) out = out.slice(-200_000);
    });
  }
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  child.on("exit", () => {
    live.delete(child);
    // Never let the watchdog kill a pid reused by someone else.
    wd.kill("SIGKILL");
  });
  return {
    child,
    pid: child.pid,
    output: () => out,
    exited,
    async stop(signal = "SIGTERM", graceMs = 10_000) {
      if (exited()) return;
      const gone = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill(signal);
      const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await gone;
      clearTimeout(t);
      live.delete(child);
    },
  };
}

/** Resident set size in KiB (VmRSS of /proc/<pid>/status, proc(5)). */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** CPU time (user+system) of a process in seconds, from /proc/<pid>/stat (proc(5) fields 14, 15). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime is field 14, stime 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / 100; // USER_HZ is 100 on Linux
}

const adopted = new Set<number>();

/**
 * Makes a process started elsewhere (test/support/inspircd.ts keeps no exit
 * hook) die with the bench too: SIGKILL on exit and a watchdog for SIGKILL
 * of the bench itself. `forget` once it has been stopped normally.
 */
export function adopt(pid: number): { forget(): void } {
  hookExit();
  adopted.add(pid);
  const wd = watchdog(pid);
  return {
    forget: () => {
      adopted.delete(pid);
      wd.kill("SIGKILL");
    },
  };
}

process.on("exit", () => {
  for (const pid of adopted) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});
