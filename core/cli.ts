/**
 * Command line: `estuary --config FILE`, `estuary check-config FILE`,
 * `--help`, `--version`.
 *
 * `main` never exits the process: it returns the exit code and writes through
 * the given writers, so tests drive it directly; bin/estuary.js is the only
 * place that calls process.exit. Exit codes: 0 success, 1 failure (bad
 * configuration, start or stop failed), 2 usage error.
 */
import { parseAdapterOptions } from "./adapter-options.ts";
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../config/load.ts";
import { enabledNetworks, type Config } from "../config/schema.ts";
import { createLogger, type Logger } from "./log.ts";

export interface Writer {
  write(text: string): unknown;
}

/** What main needs of the gateway module (core/gateway.ts). */
export interface GatewayModule {
  startGateway(config: Config, options?: { logger?: Logger }): Promise<{ stop(): Promise<void>; reload?(config: Config): void }>;
}

type StopSignal = "SIGINT" | "SIGTERM";
type HandledSignal = StopSignal | "SIGHUP";

/** The part of `process` used for signals; tests pass an EventEmitter. */
export interface SignalSource {
  on(signal: HandledSignal, listener: (signal: HandledSignal) => void): unknown;
  off(signal: HandledSignal, listener: (signal: HandledSignal) => void): unknown;
}

export interface MainOptions {
  stdout?: Writer;
  stderr?: Writer;
  /** Environment for `${VAR}` substitution (default process.env). */
  env?: Record<string, string | undefined>;
  /** Default: `process`. */
  signals?: SignalSource;
  /** Default: `import("./gateway.ts")`, loaded only when actually starting. */
  loadGateway?: () => Promise<GatewayModule>;
  /** Default: a pino logger per `config.log`. */
  createLogger?: (config: Config) => Logger;
}

export const USAGE = `Usage:
  estuary --config <file>        start the gateway (alias: -c <file>)
  estuary check-config <file>    validate a configuration file and exit
  estuary --help                 show this help (alias: -h)
  estuary --version              show the version (alias: -v)

Signals: SIGINT/SIGTERM stop the gateway cleanly (a second one forces exit);
SIGHUP reloads the configuration file: access lists and log level apply at
once; other changes need a restart.
`;

export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;

  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
        config: { type: "string", short: "c" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    // parseArgs throws a TypeError naming the offending argument.
    stderr.write(`estuary: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;

  try {
    if (values.help) {
      stdout.write(USAGE);
      return 0;
    }
    if (values.version) {
      stdout.write(`${await version()}\n`);
      return 0;
    }
    if (positionals[0] === "check-config" && positionals.length === 2 && values.config === undefined) {
      return await checkConfig(positionals[1]!, stdout, stderr, options.env);
    }
    if (values.config !== undefined && positionals.length === 0) {
      return await run(values.config, stdout, stderr, options);
    }
  } catch (e) {
    // A bug or an unexpected I/O failure: say so plainly rather than crash with a rejection.
    stderr.write(`estuary: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
  stderr.write(`estuary: ${argv.length === 0 ? "nothing to do" : `unexpected arguments: ${argv.join(" ")}`}\n\n${USAGE}`);
  return 2;
}

async function version(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version?: unknown };
  return String(pkg.version);
}

/** Loads the config; a ConfigError is printed and becomes undefined, anything else propagates. */
async function tryLoad(file: string, stderr: Writer, env: MainOptions["env"]): Promise<Config | undefined> {
  try {
    return await loadConfig(file, env ?? process.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    stderr.write(`invalid configuration in ${file}:\n${e.problems.map((p) => `  ${p}\n`).join("")}`);
    return undefined;
  }
}

/** Each enabled network's adapter options, checked by that adapter's own schema. */
async function adapterProblems(config: Config): Promise<string[]> {
  const schemas: Record<string, () => Promise<unknown>> = {
    irc: async () => (await import("../adapters/irc/index.ts")).ircOptionsSchema,
    telegram: async () => (await import("../adapters/telegram/index.ts")).telegramOptionsSchema,
    matrix: async () => (await import("../adapters/matrix/index.ts")).matrixOptionsSchema,
  };
  const problems: string[] = [];
  for (const [key, net] of enabledNetworks(config)) {
    const load = schemas[key];
    if (!load) continue;
    try {
      parseAdapterOptions(key, (await load()) as Parameters<typeof parseAdapterOptions>[1], net.options);
    } catch (e) {
      problems.push(...(e as Error).message.split("\n").slice(1));
    }
  }
  return problems;
}

async function checkConfig(file: string, stdout: Writer, stderr: Writer, env: MainOptions["env"]): Promise<number> {
  const config = await tryLoad(file, stderr, env);
  if (!config) return 1;
  const problems = await adapterProblems(config);
  if (problems.length > 0) {
    stderr.write(`invalid configuration in ${file}:\n${problems.map((p) => `  ${p}\n`).join("")}`);
    return 1;
  }
  stdout.write(`config OK: networks ${enabledNetworks(config).map(([key]) => key).join(", ")}\n`);
  return 0;
}

async function run(file: string, _stdout: Writer, stderr: Writer, options: MainOptions): Promise<number> {
  const config = await tryLoad(file, stderr, options.env);
  if (!config) return 1;
  const logger = (options.createLogger ?? defaultLogger)(config);
  const signals: SignalSource = options.signals ?? process;

  // Handlers go in before starting, so a Ctrl-C during a slow start still
  // ends in a clean stop once start completes; a second signal gives up waiting.
  const stopRequested = Promise.withResolvers<StopSignal>();
  const forced = Promise.withResolvers<number>();
  let stopSignals = 0;
  const onStop = (signal: HandledSignal): void => {
    stopSignals += 1;
    if (stopSignals === 1) {
      stopRequested.resolve(signal as StopSignal);
    } else {
      logger.warn({ signal }, "second stop signal: exiting without waiting for a clean stop");
      forced.resolve(1);
    }
  };
  let running: { reload?(config: Config): void } | undefined;
  const onHup = (): void => {
    // SIGHUP: re-read the file; apply what is safe (access lists, log level), keep running on errors.
    void loadConfig(file, options.env ?? process.env).then(
      (next) => {
        if (running?.reload) running.reload(next);
        else logger.warn("reload not supported by this gateway");
      },
      (e: unknown) => logger.error({ problems: e instanceof ConfigError ? e.problems : String(e) }, "reload failed; keeping the running configuration"),
    );
  };
  signals.on("SIGINT", onStop);
  signals.on("SIGTERM", onStop);
  signals.on("SIGHUP", onHup);
  try {
    const started = (async () => {
      const { startGateway } = await (options.loadGateway ?? defaultLoadGateway)();
      return startGateway(config, { logger });
    })();
    // If a forced exit wins the race, a later start failure must not surface as an unhandled rejection.
    started.catch(() => undefined);
    let gateway: { stop(): Promise<void>; reload?(config: Config): void };
    try {
      const first = await Promise.race([started, forced.promise]);
      if (typeof first === "number") return first;
      gateway = first;
      running = gateway;
    } catch (e) {
      logger.fatal({ err: e }, "gateway failed to start");
      return 1;
    }
    logger.info({ networks: enabledNetworks(config).map(([key]) => key) }, "gateway started");

    const signal = await stopRequested.promise;
    logger.info({ signal }, "stopping gateway");
    const stopped = gateway.stop().then(
      () => {
        logger.info("gateway stopped");
        return 0;
      },
      (e: unknown) => {
        logger.error({ err: e }, "gateway did not stop cleanly");
        return 1;
      },
    );
    return await Promise.race([stopped, forced.promise]);
  } finally {
    signals.off("SIGINT", onStop);
    signals.off("SIGTERM", onStop);
    signals.off("SIGHUP", onHup);
  }
}

function defaultLogger(config: Config): Logger {
  return createLogger({ level: config.log.level, pretty: config.log.pretty });
}

async function defaultLoadGateway(): Promise<GatewayModule> {
  return await import("./gateway.ts");
}
