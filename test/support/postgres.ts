/**
 * A throwaway PostgreSQL (Debian's postgresql, binaries under
 * /usr/lib/postgresql/<major>/bin) for integration tests: a fresh cluster made
 * by `initdb` in a temp dir, trust authentication, listening on 127.0.0.1 on a
 * free port with its Unix socket in the same temp dir, and a database
 * `estuary`. Nothing of it outlives `stop()`.
 *
 * PostgreSQL refuses to run as root, so when we are root the server and initdb
 * run as the `postgres` system user (spawn's uid/gid, so our signals reach the
 * server itself rather than a runuser/su wrapper). `stop()` sends SIGINT, the
 * "fast shutdown" (https://www.postgresql.org/docs/15/server-shutdown.html).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./ports.ts";
import { waitFor } from "./wait.ts";

const run = promisify(execFile);

export interface PostgresHandle {
  /** `postgresql://postgres@127.0.0.1:<port>/estuary` */
  url: string;
  port: number;
  stop(): Promise<void>;
}

export const POSTGRES_DATABASE = "estuary";

/** The bin dir of the newest installed major version that has initdb. */
export function postgresBinDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined) throw new Error(`no PostgreSQL found under ${root}/*/bin/initdb (run scripts/setup.sh)`);
  return join(root, newest, "bin");
}

/** uid/gid of the `postgres` user when we are root (PostgreSQL will not run as root), else nothing. */
function serverIdentity(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string): number => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}

function exited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null;
}

async function stopServer(proc: ChildProcess): Promise<void> {
  if (exited(proc)) return;
  const gone = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  proc.kill("SIGINT");
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  await gone;
  clearTimeout(timer);
}

export async function startPostgres(): Promise<PostgresHandle> {
  const bin = postgresBinDir();
  const who = serverIdentity();
  const dir = await mkdtemp(join(tmpdir(), "estuary-postgres-"));
  const data = join(dir, "data");
  // C locale: the cluster must not depend on which locales the machine has generated.
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C", LANG: "C" };
  const asServer = who === undefined ? {} : { uid: who.uid, gid: who.gid };
  try {
    if (who !== undefined) await chown(dir, who.uid, who.gid);
    await run(
      join(bin, "initdb"),
      ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
      { env, cwd: dir, ...asServer },
    );
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  async function startOnce(): Promise<{ proc: ChildProcess; port: number }> {
    const port = await freePort();
    // fsync off: a throwaway cluster need not survive a machine crash, and tests run faster.
    const proc = spawn(
      join(bin, "postgres"),
      ["-D", data, "-k", dir, "-h", "127.0.0.1", "-p", String(port), "-c", "fsync=off", "-c", "full_page_writes=off"],
      { env, cwd: dir, stdio: ["ignore", "pipe", "pipe"], ...asServer },
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
            if (exited(proc)) throw new Error(`postgres exited (${proc.exitCode ?? proc.signalCode}):\n${output}`);
            // pg_isready exits 0 once the server accepts connections.
            const ready = await run(join(bin, "pg_isready"), ["-q", "-h", "127.0.0.1", "-p", String(port)], { env }).then(
              () => true,
              () => false,
            );
            return ready ? true : undefined;
          },
          { timeout: 20_000, interval: 50, what: `postgres to accept connections on ${port}` },
        ),
      ]);
    } catch (err) {
      await stopServer(proc);
      throw err;
    }
    return { proc, port };
  }

  let started: { proc: ChildProcess; port: number } | undefined;
  // The free port may be taken between probing and binding: retry with a fresh one.
  for (let attempt = 1; started === undefined; attempt++) {
    try {
      started = await startOnce();
    } catch (err) {
      if (attempt >= 3) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  const { proc, port } = started;
  try {
    await run(join(bin, "createdb"), ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", POSTGRES_DATABASE], { env });
  } catch (err) {
    await stopServer(proc);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/${POSTGRES_DATABASE}`,
    port,
    async stop() {
      await stopServer(proc);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
