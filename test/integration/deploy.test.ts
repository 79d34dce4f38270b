/**
 * The deployment files, checked without a container engine or a running
 * systemd: docker-compose.yml by Debian's docker-compose (v1) `config`, the
 * Estuary config it mounts by Estuary's own loader, the Prosody config by
 * `prosodyctl check config`, the systemd units by `systemd-analyze verify`,
 * and the Dockerfile against the tree it copies.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ConfigError, loadConfig } from "../../config/load.ts";
import { ircOptionsSchema } from "../../adapters/irc/options.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const SECRETS = { ESTUARY_IRC_SECRET: "component-secret-for-tests", ESTUARY_STORE_KEY: "store-key-0123456789abcdef" };

/** Runs a command; resolves with its exit code and output instead of throwing. */
async function exec(cmd: string, args: string[], env: Record<string, string> = {}, cwd = ROOT) {
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === "number" ? err.code : -1, stdout: err.stdout ?? "", stderr: err.stderr ?? "" };
  }
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "estuary-deploy-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("docker-compose.yml", () => {
  it("is a valid compose file once the required secrets are set", async () => {
    const res = await exec("docker-compose", ["-f", "docker-compose.yml", "config", "-q"], SECRETS);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
  });

  it("refuses to start without the secrets, naming the missing one", async () => {
    const res = await exec("docker-compose", ["-f", "docker-compose.yml", "config", "-q"], { ESTUARY_STORE_KEY: SECRETS.ESTUARY_STORE_KEY });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/ESTUARY_IRC_SECRET/);
  });

  it("wires Prosody, InspIRCd, Redis and Estuary with restarts and files that exist", async () => {
    const res = await exec("docker-compose", ["-f", "docker-compose.yml", "config"], SECRETS);
    expect(res.code).toBe(0);
    const compose = parse(res.stdout) as {
      services: Record<string, { restart?: string; volumes?: Array<string | { type: string; source: string; target: string }>; environment?: Record<string, string>; ports?: unknown[] }>;
    };
    expect(Object.keys(compose.services).sort()).toEqual(["estuary", "inspircd", "prosody", "redis"]);
    for (const [name, svc] of Object.entries(compose.services)) {
      expect(svc.restart, name).toBe("unless-stopped");
      for (const v of svc.volumes ?? []) {
        // Bind mounts name files of this repository; they must be there.
        const source = typeof v === "string" ? v.split(":")[0]! : v.type === "bind" ? v.source : undefined;
        if (source?.startsWith("/")) expect(existsSync(source), `${name} mounts ${source}`).toBe(true);
      }
    }
    // The secret reaches both ends of the component stream.
    expect(compose.services.estuary!.environment?.ESTUARY_IRC_SECRET).toBe(SECRETS.ESTUARY_IRC_SECRET);
    expect(compose.services.prosody!.environment?.ESTUARY_IRC_SECRET).toBe(SECRETS.ESTUARY_IRC_SECRET);
    // Nothing published beyond loopback; the component port and Redis not at all.
    const published = JSON.stringify(Object.values(compose.services).map((s) => s.ports ?? []));
    expect(published).not.toMatch(/5347|6379/);
    for (const svc of Object.values(compose.services)) {
      for (const p of (svc.ports ?? []) as Array<{ host_ip?: string } | string>) {
        expect(typeof p === "string" ? p.startsWith("127.0.0.1:") : p.host_ip === "127.0.0.1").toBe(true);
      }
    }
  });
});

describe("deploy/estuary.yaml", () => {
  it("is a valid Estuary configuration: Redis store, the compose Prosody, health listener", async () => {
    const config = await loadConfig(join(ROOT, "deploy/estuary.yaml"), SECRETS);
    expect(config.store.url).toBe("redis://redis:6379");
    expect(config.store.encryptionKey).toBe(SECRETS.ESTUARY_STORE_KEY);
    expect(config.xmpp).toMatchObject({ host: "prosody", port: 5347 });
    expect(config.networks.irc).toMatchObject({ domain: "irc.localhost", secret: SECRETS.ESTUARY_IRC_SECRET });
    // The image's HEALTHCHECK asks 127.0.0.1:8080 (ESTUARY_HEALTH_URL in docker-compose.yml).
    expect(config.http).toMatchObject({ host: "0.0.0.0", port: 8080 });
    // The IRC adapter accepts its options (it validates them only when started).
    const irc = ircOptionsSchema.parse(config.networks.irc!.options);
    expect(irc.allowedServers).toEqual(["inspircd"]);
  });

  it("follows ESTUARY_XMPP_DOMAIN, and names a missing secret", async () => {
    const config = await loadConfig(join(ROOT, "deploy/estuary.yaml"), { ...SECRETS, ESTUARY_XMPP_DOMAIN: "example.org" });
    expect(config.networks.irc!.domain).toBe("irc.example.org");
    expect(config.access.allow).toEqual(["example.org"]);
    const missing = await loadConfig(join(ROOT, "deploy/estuary.yaml"), { ESTUARY_STORE_KEY: SECRETS.ESTUARY_STORE_KEY }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ConfigError);
    expect((missing as ConfigError).problems.join("\n")).toMatch(/ESTUARY_IRC_SECRET/);
  });
});

describe("deploy/prosody/prosody.cfg.lua", () => {
  it("passes prosodyctl check config, and refuses to load without the component secret", async () => {
    // prosodyctl wants the file readable by the prosody user and its certs dir present.
    const dir = join(tmp, "prosody");
    await mkdir(join(dir, "certs"), { recursive: true });
    await chmod(tmp, 0o755);
    await chmod(dir, 0o755);
    const cfg = join(dir, "prosody.cfg.lua");
    await copyFile(join(ROOT, "deploy/prosody/prosody.cfg.lua"), cfg);
    await chmod(cfg, 0o644);
    const ok = await exec("prosodyctl", ["--config", cfg, "check", "config"], { ESTUARY_IRC_SECRET: SECRETS.ESTUARY_IRC_SECRET });
    expect(ok.stdout).toMatch(/All checks passed/);
    const bad = await exec("prosodyctl", ["--config", cfg, "check", "config"]);
    expect(`${bad.stdout}${bad.stderr}`).toMatch(/ESTUARY_IRC_SECRET must be set/);
  });
});

describe("Dockerfile", () => {
  it("copies what the runtime needs, from paths that exist and that .dockerignore lets through", async () => {
    const dockerfile = await readFile(join(ROOT, "Dockerfile"), "utf8");
    const ignore = (await readFile(join(ROOT, ".dockerignore"), "utf8")).split("\n");
    expect(dockerfile).toMatch(/^FROM node:24-bookworm-slim AS deps$/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n?.*\/health|ESTUARY_HEALTH_URL=.*\/health/m);
    const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(" "));
    expect(copied).toEqual(expect.arrayContaining(["bin", "core", "adapters", "config", "package.json"]));
    for (const path of copied) {
      expect(existsSync(join(ROOT, path)), path).toBe(true);
      expect(ignore.some((l) => l === `!${path}` || l === `!${path}/`), `.dockerignore lets ${path} through`).toBe(true);
    }
    // The pinned Node of npm scripts must not be a production dependency: the image has its own.
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
    expect(pkg.dependencies?.node).toBeUndefined();
  });
});

describe("systemd units", () => {
  // Tests run where systemd-analyze exists (Debian ships it with systemd); the
  // assertion below is the only one that needs it.
  const analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].find((p) => existsSync(p));

  it("have supervision and hardening settings", async () => {
    for (const name of ["estuary.service", "estuary@.service"]) {
      const unit = await readFile(join(ROOT, "deploy/systemd", name), "utf8");
      for (const line of ["Restart=always", "RestartSec=1", "NoNewPrivileges=true", "ProtectSystem=strict", "StartLimitIntervalSec=0"]) {
        expect(unit, `${name}: ${line}`).toContain(`\n${line}\n`);
      }
      expect(unit).toMatch(/^StateDirectory=estuary/m);
      expect(unit).toMatch(/^ReadWritePaths=\/var\/lib\/estuary/m);
    }
    const shard = await readFile(join(ROOT, "deploy/systemd/estuary@.service"), "utf8");
    expect(shard).toMatch(/^ExecStart=.* --config \/etc\/estuary\/shard-%i\.yaml$/m);
  });

  it("run Node with the same V8 flags as bin/estuary.js's shebang and the Dockerfile", async () => {
    // The young-generation cap is a measured memory choice (README, Benchmarks): every way of
    // starting the gateway must carry it, or RSS per user differs by deployment.
    const shebang = (await readFile(join(ROOT, "bin/estuary.js"), "utf8")).split("\n")[0]!;
    const flags = shebang.match(/--max-semi-space-size=\d+/)?.[0];
    expect(flags).toBeDefined();
    for (const name of ["estuary.service", "estuary@.service"]) {
      const unit = await readFile(join(ROOT, "deploy/systemd", name), "utf8");
      expect(unit, name).toMatch(new RegExp(`^ExecStart=\\S+/node ${flags} \\S+/bin/estuary\\.js `, "m"));
    }
    const dockerfile = await readFile(join(ROOT, "Dockerfile"), "utf8");
    expect(dockerfile).toContain(`ENTRYPOINT ["node", "${flags}", "/app/bin/estuary.js"]`);
    // The same malloc setting, from the shebang's environment assignment.
    const arenas = shebang.match(/MALLOC_ARENA_MAX=(\d+)/)?.[1];
    expect(arenas).toBeDefined();
    for (const name of ["estuary.service", "estuary@.service"]) {
      expect(await readFile(join(ROOT, "deploy/systemd", name), "utf8"), name).toContain(`\nEnvironment=MALLOC_ARENA_MAX=${arenas}\n`);
    }
    expect(dockerfile).toMatch(new RegExp(`^\\s+MALLOC_ARENA_MAX=${arenas} \\\\$`, "m"));
  });

  // Skipped only where systemd-analyze is absent (a machine without systemd): nothing to verify with.
  it.skipIf(analyze === undefined)("pass systemd-analyze verify (executables pointed at this checkout)", async () => {
    // verify also checks that ExecStart's program exists: point /opt/estuary at this checkout.
    const dir = join(tmp, "units");
    await mkdir(dir, { recursive: true });
    for (const [from, to] of [
      ["estuary.service", "estuary.service"],
      ["estuary@.service", "estuary@1.service"],
    ] as const) {
      const text = await readFile(join(ROOT, "deploy/systemd", from), "utf8");
      await writeFile(join(dir, to), text.replaceAll("/opt/estuary", ROOT));
    }
    const res = await exec(analyze!, ["verify", join(dir, "estuary.service"), join(dir, "estuary@1.service")]);
    // verify exits 0 even on unknown keys; it only warns, so the output must be empty.
    expect(res.stderr + res.stdout).toBe("");
    expect(res.code).toBe(0);
  });
});
