/**
 * The `bridges:` section of the configuration (zod 4, strict like the rest of
 * config/schema.ts). Pure: no I/O. See index.ts for what each key does.
 */
import { z } from "zod";

const legName = z.enum(["xmpp", "irc", "matrix", "telegram"]);
export type LegName = z.infer<typeof legName>;

/** A bare MUC JID, lower-cased (RFC 7622 §3.2/§3.3: both parts are case-insensitive for MUC rooms). */
const roomJid = z
  .string()
  .regex(/^[^@/\s"&'<>:]+@[a-z0-9.-]+$/i, { error: "must be a bare room JID like room@conference.example.org" })
  .transform((s) => s.toLowerCase());

/** Per-leg relay prefix: `{nick}` is the sender's name, `{network}` the leg it came from. */
const relayFormat = z.string().refine((s) => s.includes("{nick}"), { error: "must contain {nick}" });

export const xmppLegSchema = z.strictObject({
  room: roomJid,
  /** Network whose component domain hosts the relay occupant (`bridge@<domain>`); default: the first network leg's. */
  network: z.enum(["irc", "matrix", "telegram", "test"]).optional(),
  /** Nick of the relay occupant that reads the room for the bridge. */
  relayNick: z.string().min(1).default("relay"),
  /** `speakers`: a remote person joins the MUC when first seen speaking; `present`: also when they join their room. */
  puppets: z.enum(["speakers", "present"]).default("speakers"),
  /** Room password, if the MUC has one. */
  password: z.string().optional(),
});

export const ircLegSchema = z.strictObject({
  /** The IRC server's host name, as the IRC network's options know it (`servers`, `allowedServers`). */
  server: z.string().min(1),
  channel: z.string().regex(/^[#&+!][^\s,]+$/, { error: "must be an IRC channel like #bridge" }),
  nick: z.string().min(1).default("estuary-bridge"),
  /** Inserts a zero-width space in relayed nicks so IRC clients do not highlight the people named. */
  noPing: z.boolean().default(false),
  relayFormat: relayFormat.default("<{nick}> "),
});

export const matrixLegSchema = z.strictObject({
  homeserver: z.url(),
  userId: z.string().regex(/^@[^:]+:.+$/, { error: "must be a Matrix user id like @bridge:example.org" }),
  accessToken: z.string().min(1),
  deviceId: z.string().optional(),
  /** `#alias:server` or `!id:server`. */
  room: z.string().regex(/^[#!][^:]+:.+$/, { error: "must be a Matrix room alias or id" }),
  relayFormat: relayFormat.default("{nick}: "),
});

export const telegramLegSchema = z.strictObject({
  token: z.string().min(1),
  /** The group's chat id (negative for groups and supergroups). */
  chat: z.number().int(),
  relayFormat: relayFormat.default("{nick}: "),
});

const joinPartRelay = z
  .strictObject({ xmpp: z.boolean(), irc: z.boolean(), matrix: z.boolean(), telegram: z.boolean() })
  .partial()
  .default({});

export const bridgeSchema = z
  .strictObject({
    /** Unique; part of the relay's identity and of persisted keys: renaming a bridge forgets its id map. */
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: "letters, digits, _ . - (at most 64)" }),
    paused: z.boolean().default(false),
    xmpp: xmppLegSchema.optional(),
    irc: ircLegSchema.optional(),
    matrix: matrixLegSchema.optional(),
    telegram: telegramLegSchema.optional(),
    /** Legs that get "* bob joined" / "* bob left" lines for people of the other legs (default: none). */
    joinPartRelay,
    /** Deliveries waiting per leg before new ones are refused (and reported to their origin). */
    maxQueuedPerLeg: z.number().int().min(1).default(200),
    /** Longest a delivery to a leg may take before it counts as failed (adapters retry inside it). */
    deliveryTimeoutMs: z.number().int().min(1).default(120_000),
  })
  .refine((b) => legsOf(b).length >= 2, { error: "a bridge needs at least two legs (xmpp, irc, matrix, telegram)" });

export const bridgesSchema = z
  .array(bridgeSchema)
  .refine((list) => new Set(list.map((b) => b.name)).size === list.length, { error: "bridge names must be unique" });

export type BridgeConfig = z.output<typeof bridgeSchema>;

/** The legs a bridge has, in a stable order. */
export function legsOf(b: { xmpp?: unknown; irc?: unknown; matrix?: unknown; telegram?: unknown }): LegName[] {
  return (["xmpp", "irc", "matrix", "telegram"] as const).filter((k) => b[k] !== undefined);
}
