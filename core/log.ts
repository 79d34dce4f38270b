/**
 * Structured logs (pino). Secrets are redacted by key wherever they appear in
 * a logged object; code must still never put a secret in a message string.
 */
import { pino, type Logger, type LoggerOptions } from "pino";

export type { Logger } from "pino";

/** Keys whose values never reach a log line, at any depth pino can address. */
export const REDACTED_KEYS = [
  "password",
  "secret",
  "token",
  "accessToken",
  "access_token",
  "botToken",
  "bot_token",
  "saslPassword",
  "serverPassword",
  "credentials",
  "registration",
];

const paths = REDACTED_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

export interface LogOptions {
  level?: string;
  pretty?: boolean;
  /** Where to write; defaults to stdout. Tests pass a stream to inspect lines. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LogOptions = {}): Logger {
  const config: LoggerOptions = {
    level: options.level ?? process.env.ESTUARY_LOG_LEVEL ?? "info",
    redact: { paths, censor: "[redacted]" },
    base: { name: "estuary" },
  };
  if (options.pretty) {
    config.transport = { target: "pino-pretty", options: { colorize: true, translateTime: "SYS:standard" } };
    return pino(config);
  }
  return options.destination ? pino(config, options.destination as pino.DestinationStream) : pino(config);
}

/** A logger that drops everything (unit tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
