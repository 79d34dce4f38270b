/**
 * The shape of Estuary's one YAML configuration file, as a zod 4 schema.
 *
 * Every object is strict: an unknown key is an error, so a typo such as
 * `secrte` can never silently turn into "no secret". Defaults are filled in
 * here, so the rest of the gateway reads a complete `Config` and never
 * repeats a default. Reading the file, `${VAR}` substitution and `keyFile`
 * live in load.ts; this module is pure.
 */
import { isIP } from "node:net";
import { z } from "zod";
import { bridgesSchema } from "../core/bridge/config.ts";

/** Network keys the gateway knows; `test` is the in-process test adapter. */
export const NETWORK_KEYS = ["irc", "telegram", "matrix", "test"] as const;
export type NetworkKey = (typeof NETWORK_KEYS)[number];

/** Store back ends by URL scheme (the store module picks the driver). */
export const STORE_SCHEMES = ["memory:", "sqlite:", "redis:", "rediss:", "postgres:", "postgresql:"] as const;

/** pino's levels plus `silent`. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** Shortest accepted store encryption key (characters); the store derives the real key from it. */
export const MIN_ENCRYPTION_KEY_LENGTH = 16;

/**
 * A DNS name in ASCII (RFC 1035 §2.3.1 as relaxed by RFC 1123 §2.1: labels
 * may start with a digit). Internationalised names must be given as A-labels
 * (`xn--…`). No trailing dot: XMPP domainparts never carry one (RFC 7622 §3.2).
 */
export function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split(".").every((label) => label.length <= 63 && /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i.test(label));
}

/**
 * A bare JID `local@domain` (RFC 7622 §3.3: the localpart excludes
 * `" & ' / : < > @` and whitespace; no `/resource`).
 */
export function isBareJid(jid: string): boolean {
  const at = jid.indexOf("@");
  if (at <= 0) return false;
  const local = jid.slice(0, at);
  const domain = jid.slice(at + 1);
  return Buffer.byteLength(local) <= 1023 && !/["&'/:<>@\s]/.test(local) && isDnsName(domain);
}

/**
 * Strings coming from `${VAR}` substitution are always strings, so numeric
 * and boolean fields also accept their plain textual form ("5347", "true").
 */
function fromText(kind: "int" | "bool") {
  return (value: unknown): unknown => {
    if (typeof value !== "string") return value;
    const text = value.trim();
    if (kind === "int" && /^-?\d+$/.test(text)) return Number(text);
    if (kind === "bool" && (text === "true" || text === "false")) return text === "true";
    return value;
  };
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.preprocess(fromText("int"), z.number().int().min(min).max(max));

const port = int(1, 65535);

const bool = z.preprocess(fromText("bool"), z.boolean());

/** DNS names are case-insensitive; lower-casing here makes comparisons exact everywhere else. */
const dnsName = z
  .string()
  .refine(isDnsName, { error: (iss) => `not a valid DNS name: ${JSON.stringify(iss.input)} (ASCII letters, digits, '-' and '.'; IDNs as xn--)` })
  .transform((s) => s.toLowerCase());

const host = z
  .string()
  .refine((s) => isIP(s) !== 0 || isDnsName(s), { error: (iss) => `not an IP address or host name: ${JSON.stringify(iss.input)}` });

/**
 * `example.org` admits everyone on that server, `alice@example.org` one
 * account. Lower-cased: domainparts are case-insensitive (RFC 7622 §3.2) and
 * localparts are case-mapped by the UsernameCaseMapped profile (§3.3).
 */
const domainOrBareJid = z
  .string()
  .refine((s) => isDnsName(s) || isBareJid(s), {
    error: (iss) => `must be a domain or a bare JID (no /resource): ${JSON.stringify(iss.input)}`,
  })
  .transform((s) => s.toLowerCase());

const network = z.strictObject({
  /** The component's own domain (the XEP-0114 component JID). */
  domain: dnsName,
  /** XEP-0114 §3 shared secret for the component handshake. */
  secret: z.string().min(1, { error: "must not be empty" }),
  /** Adapter-specific; each adapter validates its own options. */
  options: z.record(z.string(), z.unknown()).prefault({}),
});

const storeUrl = z.string().refine(
  (s) => {
    try {
      return (STORE_SCHEMES as readonly string[]).includes(new URL(s).protocol);
    } catch {
      return false;
    }
  },
  // The URL may hold a database password, so it is not echoed.
  { error: `must be a URL with one of the schemes ${STORE_SCHEMES.join(" ")}` },
);

/** Public base URL; always ends in `/` so relative media paths resolve under it. */
const publicUrl = z
  .string()
  .refine(
    (s) => {
      try {
        const u = new URL(s);
        return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
      } catch {
        return false;
      }
    },
    { error: (iss) => `must be an absolute http(s) URL: ${JSON.stringify(iss.input)}` },
  )
  .transform((s) => {
    const u = new URL(s);
    if (!u.pathname.endsWith("/")) u.pathname += "/";
    return u.href;
  });

/** `host:port` (an IPv6 address in brackets), as `{ host, port }`. */
const hostPort = z
  .string()
  .transform((s, ctx) => {
    const m = /^\[?([^\[\]]+?)\]?:(\d{1,5})$/.exec(s.trim());
    const p = m ? Number(m[2]) : 0;
    if (!m || p < 1 || p > 65535 || (isIP(m[1]!) === 0 && !isDnsName(m[1]!))) {
      ctx.issues.push({ code: "custom", input: s, message: `not host:port: ${JSON.stringify(s)}` });
      return z.NEVER;
    }
    return { host: m[1]!, port: p };
  });

const xmpp = z
  .strictObject({
    /** The XMPP server's component listener. */
    host: host.default("127.0.0.1"),
    port: port.default(5347),
    reconnect: z
      .strictObject({
        initialDelayMs: int(1).default(1000),
        maxDelayMs: int(1).default(60_000),
      })
      .prefault({})
      .refine((r) => r.initialDelayMs <= r.maxDelayMs, {
        error: "initialDelayMs must not exceed maxDelayMs",
        path: ["initialDelayMs"],
      }),
    /** Stanzas kept while a component stream is down; bounded so memory is too. */
    outboundBuffer: int(0).default(1000),
    /**
     * Shards on ejabberd's domain_balancing (core/failover.ts): this process
     * listens on `listen` and watches the other shards at `peers`; when one
     * dies, the others take over its connection slots at once.
     */
    failover: z
      .strictObject({
        listen: hostPort,
        peers: z.array(hostPort).min(1, { error: "list the other shards' listen addresses" }),
      })
      .optional(),
  })
  .prefault({});

const access = z.strictObject({
  allow: z.array(domainOrBareJid).min(1, { error: "list at least one domain or bare JID" }),
  admins: z.array(domainOrBareJid).default([]),
});

const networks = z
  .strictObject({
    irc: network.optional(),
    telegram: network.optional(),
    matrix: network.optional(),
    test: network.optional(),
  })
  .superRefine(
    (nets, ctx) => {
      // Runs even when some network has other errors (see `when`), so the
      // value may be malformed here: read it defensively.
      const loose = nets as Partial<Record<NetworkKey, unknown>>;
      const present = NETWORK_KEYS.filter((k) => loose[k] !== undefined);
      if (present.length === 0) {
        ctx.addIssue({ code: "custom", message: `enable at least one network (${NETWORK_KEYS.join(", ")})`, path: [] });
      }
      // Each network is its own component with its own JID; two sharing a
      // domain would fight over one XEP-0114 stream.
      const seen = new Map<string, NetworkKey>();
      for (const key of present) {
        const net = loose[key];
        const domain = typeof net === "object" && net !== null ? (net as { domain?: unknown }).domain : undefined;
        if (typeof domain !== "string") continue;
        const normal = domain.toLowerCase();
        const other = seen.get(normal);
        if (other) {
          ctx.addIssue({ code: "custom", message: `domain ${normal} is already used by networks.${other}`, path: [key, "domain"] });
        } else {
          seen.set(normal, key);
        }
      }
    },
    // Report duplicates alongside every other problem, not in a second round.
    { when: (payload) => typeof payload.value === "object" && payload.value !== null },
  );

const store = z
  .strictObject({
    url: storeUrl.default("sqlite:./estuary.sqlite"),
    /** Key for encrypting stored credentials; or read from keyFile by load.ts. */
    encryptionKey: z
      .string()
      .min(MIN_ENCRYPTION_KEY_LENGTH, { error: `must be at least ${MIN_ENCRYPTION_KEY_LENGTH} characters` })
      .optional(),
    keyFile: z.string().min(1, { error: "must not be empty" }).optional(),
  })
  .prefault({})
  .refine((s) => s.encryptionKey === undefined || s.keyFile === undefined, {
    error: "set either encryptionKey or keyFile, not both",
    path: ["keyFile"],
  });

const limits = z
  .strictObject({
    maxBodyBytes: int(1).default(65_536),
    maxRoomsPerUser: int(1).default(100),
    maxQueuedPerChat: int(1).default(100),
    maxUsers: int(1).default(10_000),
  })
  .prefault({});

/**
 * Fetching attachments on users' behalf (XMPP file URLs to upload to a network).
 * Private, loopback, link-local and metadata addresses are refused unless listed
 * here (host names, or CIDRs such as 10.1.0.0/16 for an internal upload service).
 */
const fetchSection = z
  .strictObject({
    allowHosts: z.array(z.string().min(1)).default([]),
    timeoutSeconds: int(1).default(30),
  })
  .prefault({});

/** The message archive of gateway rooms, and of 1:1 chats when enabled (XEP-0313, join history); see core/history/archive.ts. */
const history = z
  .strictObject({
    enabled: bool.default(true),
    /** Messages older than this are deleted (0: kept until maxPerRoom). */
    maxAgeDays: int(0).default(365),
    /** Newest messages kept per user and room (a 1:1 chat counts as a room). */
    maxPerRoom: int(1).default(100_000),
    /**
     * Archive 1:1 chats with network contacts too (MAM on the contact's JID).
     * Off by default: they pass through the user's own server, whose archive
     * usually has them already.
     */
    directMessages: bool.default(false),
  })
  .prefault({});

const log = z
  .strictObject({
    level: z.enum(LOG_LEVELS).default("info"),
    pretty: bool.default(false),
  })
  .prefault({});

const http = z.strictObject({
  host: host.default("127.0.0.1"),
  /** 0 picks a free port (tests). */
  port: int(0, 65535).default(8080),
  publicUrl: publicUrl.optional(),
  /** Where media from the networks is kept while XMPP clients fetch it (0700). */
  mediaDir: z.string().min(1).default("./estuary-media"),
  /** Largest file served (and fetched on a user's behalf), in bytes. */
  maxMediaBytes: int(1).default(50 * 1024 * 1024),
  /** How long a published media URL keeps working. */
  mediaTtlDays: int(1).default(7),
});

/**
 * XEP-0363: network media uploaded to the XMPP server's own upload service
 * (its JID, e.g. `upload.example.org`), which must let the component domains
 * upload. When it fails, the HTTP listener's media store (if any) serves the file.
 */
const media = z.strictObject({
  uploadService: dnsName,
  /** Deadline for the slot request and for the upload. */
  timeoutSeconds: int(1).default(30),
});

export const configSchema = z.strictObject({
  xmpp,
  access,
  networks,
  store,
  limits,
  fetch: fetchSection,
  history,
  log,
  /** Optional listener for metrics, health and media; absent means no listener. */
  http: http.optional(),
  /** Optional XEP-0363 upload service for network media; absent means the HTTP listener serves it. */
  media: media.optional(),
  /** Optional room bridges (core/bridge): one conversation across a MUC and network rooms. */
  bridges: bridgesSchema.optional(),
});

export type Config = z.output<typeof configSchema>;
export type NetworkConfig = z.output<typeof network>;

/** The enabled networks in a stable order (irc, telegram, matrix, test). */
export function enabledNetworks(config: Config): Array<[NetworkKey, NetworkConfig]> {
  const out: Array<[NetworkKey, NetworkConfig]> = [];
  for (const key of NETWORK_KEYS) {
    const net = config.networks[key];
    if (net) out.push([key, net]);
  }
  return out;
}
