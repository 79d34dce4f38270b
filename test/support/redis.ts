/**
 * A throwaway Redis (Debian's /usr/bin/redis-server) for integration tests:
 * bound to 127.0.0.1 on a free port, working dir in a temp dir, persistence
 * off (`--save ""`, `--appendonly no`), so nothing outlives `stop()`.
 *
 * Readiness is a plain RESP exchange: the inline command `PING\r\n` answers
 * `+PONG\r\n` once the server accepts commands
 * (https://redis.io/docs/latest/develop/reference/protocol-spec/#inline-commands).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { waitFor } from "./wait.ts";

export interface RedisHandle {
  url: string;
  port: number;
  stop(): Promise<void>;
}

const BINARY = "/usr/bin/redis-server";

/** True when a server on `port` answers PING with +PONG. */
export function redisPing(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d: Buffer) => {
      reply += d.toString("latin1");
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
    sock.once("error", () => done(false));
    sock.once("close", () => done(false));
  });
}

function exited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null;
}

async function startOnce(dir: string): Promise<{ proc: ChildProcess; port: number }> {
  const port = await freePort();
  const proc = spawn(
    BINARY,
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no"],
    { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  proc.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const spawnError = new Promise<never>((_, reject) => proc.once("error", reject));
  try {
    await Promise.race([
      spawnError,
      waitFor(
        async () => {
          if (exited(proc)) throw new Error(`redis-server exited (${proc.exitCode ?? proc.signalCode}):\n${output}`);
          return (await redisPing(port)) ? true : undefined;
        },
        { timeout: 10_000, interval: 30, what: `redis-server to answer PING on ${port}` },
      ),
    ]);
  } catch (err) {
    if (!exited(proc)) proc.kill("SIGKILL");
    throw err;
  }
  return { proc, port };
}

export async function startRedis(): Promise<RedisHandle> {
  const dir = await mkdtemp(join(tmpdir(), "estuary-redis-"));
  let started: { proc: ChildProcess; port: number } | undefined;
  // The free port may be taken between probing and binding: retry with a fresh one.
  for (let attempt = 1; started === undefined; attempt++) {
    try {
      started = await startOnce(dir);
    } catch (err) {
      if (attempt >= 3) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  const { proc, port } = started;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      if (!exited(proc)) {
        const gone = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
        await gone;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
