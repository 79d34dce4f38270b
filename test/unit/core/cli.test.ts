import { execFile } from "node:child_process";
import { EventEmitter } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../../config/schema.ts";
import { main, USAGE, type GatewayModule, type MainOptions } from "../../../core/cli.ts";
import { createLogger, type Logger } from "../../../core/log.ts";
import { waitFor } from "../../support/wait.ts";

const root = new URL("../../../", import.meta.url).pathname;
const packageVersion = async (): Promise<string> =>
  (JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { version: string }).version;

/** Writers that collect output, as main takes them. */
function capture() {
  const out = { stdout: "", stderr: "" };
  return {
    out,
    io: {
      stdout: { write: (s: string) => (out.stdout += s) },
      stderr: { write: (s: string) => (out.stderr += s) },
    },
  };
}

const GOOD = `
access: { allow: [example.org] }
networks:
  test: { domain: test.example.org, secret: "\${TEST_SECRET}" }
  irc: { domain: irc.example.org, secret: x }
log: { level: info }
`;

const BAD = `
access: { allow: [example.org] }
networks:
  irc: { domain: irc.example.org, secrte: x }
xmpp: { port: 0 }
`;

let dir: string;
let good: string;
let bad: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "estuary-cli-"));
  good = join(dir, "good.yaml");
  bad = join(dir, "bad.yaml");
  await writeFile(good, GOOD);
  await writeFile(bad, BAD);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("main: informational commands", () => {
  it("--version and -v print package.json's version", async () => {
    for (const flag of ["--version", "-v"]) {
      const { out, io } = capture();
      expect(await main([flag], io)).toBe(0);
      expect(out.stdout).toBe(`${await packageVersion()}\n`);
      expect(out.stderr).toBe("");
    }
  });

  it("--help and -h print usage to stdout", async () => {
    for (const flag of ["--help", "-h"]) {
      const { out, io } = capture();
      expect(await main([flag], io)).toBe(0);
      expect(out.stdout).toBe(USAGE);
      expect(out.stdout).toContain("check-config <file>");
    }
  });

  it("unknown flags, stray arguments and no arguments exit 2 with usage on stderr", async () => {
    for (const argv of [["--bogus"], ["-x"], ["start"], ["check-config"], ["check-config", "a", "b"], ["--config"], ["-c", good, "extra"], []]) {
      const { out, io } = capture();
      expect(await main(argv, io), argv.join(" ")).toBe(2);
      expect(out.stderr).toContain(USAGE);
      expect(out.stdout).toBe("");
    }
    const { out, io } = capture();
    await main(["--bogus"], io);
    expect(out.stderr).toContain("--bogus");
  });
});

describe("main: check-config", () => {
  it("a good file: exit 0 and the enabled networks in fixed order", async () => {
    const { out, io } = capture();
    expect(await main(["check-config", good], { ...io, env: { TEST_SECRET: "t" } })).toBe(0);
    expect(out.stdout).toBe("config OK: networks irc, test\n");
    expect(out.stderr).toBe("");
  });

  it("a bad file: exit 1 and every problem line on stderr", async () => {
    const { out, io } = capture();
    expect(await main(["check-config", bad], { ...io, env: {} })).toBe(1);
    expect(out.stdout).toBe("");
    const lines = out.stderr.trimEnd().split("\n");
    expect(lines[0]).toBe(`invalid configuration in ${bad}:`);
    expect(lines.slice(1).map((l) => l.trim())).toEqual([
      expect.stringMatching(/^xmpp\.port: /),
      "networks.irc.secret: required",
      "networks.irc.secrte: unknown key (did you mean secret?)",
    ]);
  });

  it("checks each network's adapter options with the adapter's own schema, naming the key", async () => {
    const file = join(dir, "adapter-options.yaml");
    await writeFile(
      file,
      `access: { allow: [example.org] }
networks:
  irc: { domain: irc.example.org, secret: s, options: { flood: { burst: "lots" }, lingerMs: -1 } }
store: { url: "memory:" }
`,
    );
    const { out, io } = capture();
    expect(await main(["check-config", file], { ...io, env: {} })).toBe(1);
    expect(out.stderr).toMatch(/networks\.irc\.options\.flood\.burst: /);
    expect(out.stderr).toMatch(/networks\.irc\.options\.lingerMs: /);
  });

  it("a missing variable and a missing file exit 1", async () => {
    const missingVar = capture();
    expect(await main(["check-config", good], { ...missingVar.io, env: {} })).toBe(1);
    expect(missingVar.out.stderr).toContain("networks.test.secret: environment variable TEST_SECRET is not set");
    const missingFile = capture();
    expect(await main(["check-config", join(dir, "none.yaml")], { ...missingFile.io, env: {} })).toBe(1);
    expect(missingFile.out.stderr).toMatch(/config: cannot read .*none\.yaml: ENOENT/);
  });
});

/** A fake gateway module that records calls; `started` resolves once startGateway ran. */
function fakeGateway(behaviour: { start?: () => Promise<void>; stop?: () => Promise<void> } = {}) {
  const started = Promise.withResolvers<{ config: Config; logger: Logger | undefined }>();
  const calls = { stop: 0 };
  const reloaded = Promise.withResolvers<Config>();
  const module: GatewayModule = {
    async startGateway(config, options) {
      await behaviour.start?.();
      started.resolve({ config, logger: options?.logger });
      return {
        async stop() {
          calls.stop += 1;
          await behaviour.stop?.();
        },
        reload(next: Config) {
          reloaded.resolve(next);
        },
      };
    },
  };
  return { module, started: started.promise, calls, reloaded: reloaded.promise };
}

/** Runs `main -c good` with a fake gateway, an EventEmitter for signals and a captured log. */
function runGateway(gateway: ReturnType<typeof fakeGateway>, argv = ["--config", good]) {
  const signals = new EventEmitter();
  const logLines: Array<{ msg: string; level: number }> = [];
  const { out, io } = capture();
  const options: MainOptions = {
    ...io,
    env: { TEST_SECRET: "t" },
    signals,
    loadGateway: async () => gateway.module,
    createLogger: (config) =>
      createLogger({ level: config.log.level, destination: { write: (s: string) => logLines.push(JSON.parse(s)) } as unknown as NodeJS.WritableStream }),
  };
  return { exit: main(argv, options), signals, logLines, out };
}

describe("main: --config runs the gateway", () => {
  it("starts with the loaded config and a logger, reloads the file on SIGHUP, stops on SIGTERM and exits 0", async () => {
    const gateway = fakeGateway();
    const { exit, signals, logLines } = runGateway(gateway);
    const { config, logger } = await gateway.started;
    expect(config.networks.test?.secret).toBe("t");
    expect(logger).toBeDefined();

    signals.emit("SIGHUP", "SIGHUP");
    const next = await gateway.reloaded;
    expect(next.networks.test?.secret).toBe("t");
    expect(logLines.map((l) => l.msg)).not.toContain("reload failed; keeping the running configuration");
    expect(gateway.calls.stop).toBe(0);

    signals.emit("SIGTERM", "SIGTERM");
    expect(await exit).toBe(0);
    expect(gateway.calls.stop).toBe(1);
    // Handlers are removed once main returns.
    for (const s of ["SIGINT", "SIGTERM", "SIGHUP"]) expect(signals.listenerCount(s)).toBe(0);
  });

  it("-c and SIGINT work the same way", async () => {
    const gateway = fakeGateway();
    const { exit, signals } = runGateway(gateway, ["-c", good]);
    await gateway.started;
    signals.emit("SIGINT", "SIGINT");
    expect(await exit).toBe(0);
    expect(gateway.calls.stop).toBe(1);
  });

  it("a signal during a slow start stops the gateway once it has started", async () => {
    const release = Promise.withResolvers<void>();
    const gateway = fakeGateway({ start: () => release.promise });
    const { exit, signals } = runGateway(gateway);
    // Wait until main has installed its handlers (it does so before starting).
    await waitFor(() => (signals.listenerCount("SIGTERM") > 0 ? true : undefined), { what: "signal handlers installed" });
    signals.emit("SIGTERM", "SIGTERM");
    release.resolve();
    expect(await exit).toBe(0);
    expect(gateway.calls.stop).toBe(1);
  });

  it("a second signal while stop hangs forces exit 1", async () => {
    const gateway = fakeGateway({ stop: () => new Promise<void>(() => {}) });
    const { exit, signals, logLines } = runGateway(gateway);
    await gateway.started;
    signals.emit("SIGTERM", "SIGTERM");
    signals.emit("SIGINT", "SIGINT");
    expect(await exit).toBe(1);
    expect(logLines.some((l) => l.msg.includes("second stop signal"))).toBe(true);
  });

  it("a failing start or stop exits 1 and is logged", async () => {
    const failingStart = fakeGateway({ start: async () => Promise.reject(new Error("no server")) });
    const a = runGateway(failingStart);
    expect(await a.exit).toBe(1);
    expect(a.logLines.map((l) => l.msg)).toContain("gateway failed to start");
    expect(a.signals.listenerCount("SIGTERM")).toBe(0);

    const failingStop = fakeGateway({ stop: async () => Promise.reject(new Error("stuck")) });
    const b = runGateway(failingStop);
    await failingStop.started;
    b.signals.emit("SIGTERM", "SIGTERM");
    expect(await b.exit).toBe(1);
    expect(b.logLines.map((l) => l.msg)).toContain("gateway did not stop cleanly");
  });

  it("a bad config file exits 1 before loading the gateway", async () => {
    const gateway = fakeGateway();
    let loaded = false;
    const { out, io } = capture();
    const code = await main(["--config", bad], {
      ...io,
      signals: new EventEmitter(),
      loadGateway: async () => {
        loaded = true;
        return gateway.module;
      },
    });
    expect(code).toBe(1);
    expect(loaded).toBe(false);
    expect(out.stderr).toContain("networks.irc.secrte: unknown key");
  });
});

describe("bin/estuary.js", () => {
  const node = join(root, "node_modules/.bin/node");
  const run = promisify(execFile);

  it("runs as a real process: --version prints the version and exits 0", async () => {
    const { stdout } = await run(node, [join(root, "bin/estuary.js"), "--version"], { cwd: dir });
    expect(stdout).toBe(`${await packageVersion()}\n`);
  });

  it("exits with main's code: check-config on a bad file exits 1", async () => {
    const err = await run(node, [join(root, "bin/estuary.js"), "check-config", bad], { cwd: dir }).then(
      () => undefined,
      (e: unknown) => e as { code: number; stderr: string },
    );
    expect(err?.code).toBe(1);
    expect(err?.stderr).toContain("networks.irc.secrte: unknown key");
  });
});
