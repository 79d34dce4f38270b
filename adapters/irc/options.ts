/** The IRC adapter's configuration (gateway-wide) and per-user, per-server settings. */
import { readFileSync } from "node:fs";
import { z } from "zod";
import type { FormField } from "../../core/adapter.ts";
import { stripUnsafe } from "./lines.ts";

export const floodSchema = z.object({
  /** Lines sent at once before the rate applies. */
  burst: z.number().int().min(1).default(5),
  /** One more line every intervalMs after the burst; 0 lifts flood control. */
  intervalMs: z.number().int().min(0).default(2000),
});

const webircSchema = z.object({
  password: z.string().min(1),
  /** The gateway name the IRC server's WEBIRC block expects. */
  gateway: z.string().min(1),
  hostname: z.string().optional(),
  ip: z.string().optional(),
});

/**
 * CA certificates (PEM) that sign a server's TLS certificate, given as PEM
 * text or as a path to a PEM file. Read once when the options are parsed, so
 * a wrong path stops the gateway at startup instead of failing each connection.
 */
const caSchema = z.string().transform((value, ctx) => {
  let pem = value;
  if (!value.includes("-----BEGIN")) {
    try {
      pem = readFileSync(value, "utf8");
    } catch (e) {
      ctx.addIssue({ code: "custom", message: `cannot read the CA file ${value}: ${(e as Error).message}` });
      return z.NEVER;
    }
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    ctx.addIssue({ code: "custom", message: "ca must be PEM certificates (text or a file path)" });
    return z.NEVER;
  }
  return pem;
});

/** Admin-set defaults for one server (the user's own settings override them). */
const serverDefaultsSchema = z.object({
  port: z.number().int().min(1).max(65535).optional(),
  tls: z.boolean().optional(),
  /**
   * TLS certificate validation (on unless set to false). false accepts any
   * certificate, so anyone on the path can read and change the traffic:
   * prefer `ca` for a server with a private CA or a self-signed certificate.
   */
  rejectUnauthorized: z.boolean().optional(),
  /** Trust these CAs (instead of Node's bundled roots) for this server's TLS certificate. */
  ca: caSchema.optional(),
  flood: floodSchema.partial().optional(),
  webirc: webircSchema.optional(),
  realname: z.string().optional(),
});

export const ircOptionsSchema = z.object({
  fixedServer: z.string().min(1).optional(),
  defaultPort: z.number().int().min(1).max(65535).default(6667),
  defaultTls: z.boolean().default(false),
  allowedServers: z.array(z.string().min(1)).default(["*"]),
  flood: floodSchema.prefault({}),
  maxQueue: z.number().int().min(1).default(100),
  retryWindowMs: z.number().int().min(0).default(60_000),
  lingerMs: z.number().int().min(0).default(30_000),
  joinTimeoutMs: z.number().int().min(1).default(20_000),
  identFromUser: z.boolean().default(true),
  realname: z.string().default("Estuary XMPP gateway user"),
  defaultNick: z.string().optional(),
  webirc: webircSchema.optional(),
  servers: z.record(z.string(), serverDefaultsSchema).default({}),
  /** Reconnect backoff: first delay and cap (the cap is 5 minutes by default). */
  reconnect: z
    .object({ initialMs: z.number().int().min(1).default(1000), maxMs: z.number().int().min(1).default(300_000) })
    .prefault({}),
});

export type IrcOptions = z.infer<typeof ircOptionsSchema>;

const line = z.string().transform(stripUnsafe);
const optionalText = z
  .string()
  .transform((v) => stripUnsafe(v) || undefined)
  .optional();
const numberish = z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]);
const boolish = z.union([z.boolean(), z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1")]);

/** What a user may set per IRC server (stored as `server:<host>` in their ScopedStore). */
export const serverSettingsSchema = z.object({
  nick: optionalText,
  username: optionalText,
  realname: optionalText,
  password: optionalText,
  saslAccount: optionalText,
  saslPassword: optionalText,
  tls: boolish.optional(),
  port: numberish.pipe(z.number().int().min(1).max(65535)).optional(),
  /** Raw lines sent after registration (NickServ IDENTIFY, umodes); each is stripped of CR/LF/NUL. */
  commandsAfterConnect: z
    .union([z.array(line), z.string().transform((s) => s.split(/\r?\n/))])
    .transform((ls) => ls.map(stripUnsafe).filter((l) => l.trim() !== ""))
    .optional(),
  floodBurst: numberish.pipe(z.number().int().min(1)).optional(),
  floodIntervalMs: numberish.pipe(z.number().int().min(0)).optional(),
  /** How to read lines that are not valid UTF-8. */
  encodingFallback: z.enum(["latin1"]).optional(),
});

export type ServerSettings = z.infer<typeof serverSettingsSchema>;

export const serverSettingsFields: FormField[] = [
  { var: "nick", label: "Nickname", type: "text-single" },
  { var: "username", label: "Username (ident)", type: "text-single" },
  { var: "realname", label: "Real name", type: "text-single" },
  { var: "password", label: "Server password", type: "text-private", secret: true },
  { var: "saslAccount", label: "SASL account", type: "text-single" },
  { var: "saslPassword", label: "SASL password", type: "text-private", secret: true },
  { var: "tls", label: "Use TLS", type: "boolean" },
  { var: "port", label: "Port", type: "text-single", desc: "6697 means TLS, 6667 plain" },
  {
    var: "commandsAfterConnect",
    label: "Commands sent after connecting",
    type: "text-single",
    desc: "Raw IRC lines, one per line",
  },
  { var: "floodBurst", label: "Lines sent at once before throttling", type: "text-single" },
  { var: "floodIntervalMs", label: "Milliseconds between throttled lines (0: no throttling)", type: "text-single" },
  {
    var: "encodingFallback",
    label: "Encoding of non-UTF-8 text",
    type: "list-single",
    options: [{ value: "latin1", label: "Latin-1" }],
    default: "latin1",
  },
];
