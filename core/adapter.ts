/**
 * The contract every network adapter implements.
 *
 * XMPP → network: methods of `AdapterSession` (one session per XMPP user per
 * network). An optional method is an optional capability: when it is absent
 * the core answers the XMPP side with `feature-not-implemented` or degrades
 * (e.g. a correction becomes a new message on networks without edits).
 *
 * Network → XMPP: `SessionContext.emit(event)`, one typed stream (model.ts).
 *
 * Adapters see no stanza and no JID: the user is an opaque key, rooms and
 * contacts are the network's own ids, errors are `EstuaryError`s.
 */
import type { Logger } from "pino";
import type {
  Address,
  ChatRef,
  ChatState,
  ContactId,
  LegacyEvent,
  MessageId,
  OutgoingMessage,
  RoomId,
  RoomInfo,
  RoomSnapshot,
  SendResult,
  ServiceId,
  Show,
} from "./model.ts";

/** A registration / settings form field (rendered as XEP-0004 by the core). */
export interface FormField {
  var: string;
  label: string;
  type: "text-single" | "text-private" | "boolean" | "list-single";
  required?: boolean;
  /** Secrets are stored encrypted, never logged, and never echoed back in a form. */
  secret?: boolean;
  options?: { value: string; label?: string }[];
  default?: string;
  desc?: string;
}

/** Maps the network's ids to JID localparts (before XEP-0106 escaping) and back. Must round-trip. */
export interface AddressCodec {
  /** undefined: the localpart names nothing on this network (the core answers item-not-found). */
  parse(local: string): Address | undefined;
  format(address: Address): string;
}

export interface Capabilities {
  rooms: boolean;
  /** Longest text the network takes in one message, in its own units; the adapter splits beyond it. */
  maxMessageLength?: number;
  /**
   * Room moderators can remove other people's messages on this network
   * (Matrix redactions, Telegram deletions): rooms advertise XEP-0425 and the
   * core calls `AdapterSession.moderate`.
   */
  moderation?: boolean;
}

/** A small per-user, per-network key-value store (adapters keep offsets, sync tokens, settings). */
export interface ScopedStore {
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
  delete(key: string): Promise<void>;
}

/** Makes network media reachable by XMPP clients (served by the gateway's HTTP listener). */
export interface MediaPublisher {
  /**
   * Stores the bytes and returns an unguessable https URL for them. Throws
   * EstuaryError("too-large") beyond the configured limit.
   */
  publish(data: Uint8Array, meta: { mediaType?: string; name?: string }): Promise<string>;
}

/**
 * Fetches a URL on the user's behalf (an attachment to upload to the
 * network) with SSRF protection: loopback, private, link-local and metadata
 * addresses refused after DNS resolution and on redirects, size and time capped.
 */
export type SafeFetch = (
  url: string,
  options?: { maxBytes?: number; timeoutMs?: number },
) => Promise<{ data: Uint8Array; mediaType?: string; name?: string }>;

export interface SessionContext {
  /** Opaque, stable key of the XMPP user (their bare JID; use only as an identifier or hash input). */
  user: string;
  /** The user's validated registration values (secrets decrypted), or {} when none is required. */
  registration: Record<string, string>;
  emit(event: LegacyEvent): void;
  log: Logger;
  store: ScopedStore;
  /** Aborted when the core closes the session; long-running loops stop on it. */
  signal: AbortSignal;
  /** Absent when no HTTP listener is configured: say so in the text instead of dropping media. */
  media?: MediaPublisher;
  fetch: SafeFetch;
}

export interface AdapterSession {
  close(reason?: string): Promise<void>;

  /** Resolves once the network accepted the message; rejects with an EstuaryError otherwise. */
  sendMessage(chat: ChatRef, message: OutgoingMessage): Promise<SendResult>;

  joinRoom?(room: RoomId, nick: string, options: { password?: string }): Promise<RoomSnapshot>;
  leaveRoom?(room: RoomId, reason?: string): Promise<void>;
  setSubject?(room: RoomId, subject: string): Promise<void>;
  /** Resolves with the nick the network gave. */
  changeNick?(room: RoomId, nick: string): Promise<string>;
  kick?(room: RoomId, nick: string, reason?: string): Promise<void>;
  ban?(room: RoomId, nick: string, reason?: string): Promise<void>;
  /**
   * Without `service`: the rooms the user's network account is in (Matrix
   * joined rooms), offered as bookmarks in the domain's disco#items. With
   * `service`: the public rooms that service lists (IRC LIST on that server),
   * possibly thousands: the core pages them (XEP-0059) on the service's JID.
   */
  listRooms?(service?: ServiceId): Promise<RoomInfo[]>;
  /** Invites a person into a room (IRC INVITE, Matrix invite); XEP-0045 §7.8 mediated invitations. */
  invite?(room: RoomId, contact: ContactId, reason?: string): Promise<void>;
  /**
   * Removes someone else's message as a room moderator (XEP-0425). Rejects
   * with `forbidden` when the user may not, `item-not-found` when unknown.
   */
  moderate?(room: RoomId, id: MessageId, reason?: string): Promise<void>;
  /**
   * The network's own recent history of a room (IRCv3 chathistory, Matrix
   * /messages), oldest first, at most `limit` messages: the core archives
   * those it has not seen so join history and MAM cover time the gateway
   * was away. Each message must carry its network `id` and `at`.
   */
  history?(room: RoomId, options: { limit: number }): Promise<Extract<LegacyEvent, { type: "message" }>[]>;

  /**
   * Sends a room message under another person's name where the network lets
   * a relay do so (IRCv3 draft/relaymsg: `RELAYMSG #chan alice/xmpp :text`):
   * bridges use it instead of a `<alice>` prefix. `network` names where the
   * person is (a bridge leg: `xmpp`, `matrix`…). Resolves undefined when it
   * cannot be done here right now (the server lacks the capability, refused
   * it): the caller then sends with a prefix. The adapter never emits the
   * network's copies of these messages back.
   */
  sendAs?(chat: ChatRef, sender: { nick: string; network: string }, message: OutgoingMessage): Promise<SendResult | undefined>;

  correct?(chat: ChatRef, id: MessageId, message: OutgoingMessage): Promise<SendResult>;
  retract?(chat: ChatRef, id: MessageId): Promise<void>;
  /** The user's whole reaction set on a message (XEP-0444 semantics). */
  react?(chat: ChatRef, id: MessageId, emojis: string[]): Promise<void>;
  setTyping?(chat: ChatRef, state: ChatState): Promise<void>;
  markRead?(chat: ChatRef, id: MessageId): Promise<void>;
  setPresence?(show: Show, status?: string): Promise<void>;
  /** Name/info of a contact for vCard and disco. */
  contactInfo?(contact: ContactId): Promise<{ name?: string; avatarUrl?: string; avatar?: { data: Uint8Array; mediaType: string } } | undefined>;
}

export interface Adapter {
  /** Short network key: `irc`, `telegram`, `matrix` (test: `test`). */
  readonly network: string;
  /** XEP-0100 gateway type for disco (`irc`, `telegram`, `matrix`, …). */
  readonly gatewayType: string;
  /** Human name for disco and forms. */
  readonly displayName: string;
  readonly capabilities: Capabilities;
  readonly registration: {
    /** false: the gateway is usable without registering (IRC, as Biboumi). */
    required: boolean;
    instructions: string;
    fields: FormField[];
  };
  readonly ids: AddressCodec;
  /**
   * Per-user settings of a service (an IRC server: nick, SASL, TLS…), edited
   * through the XEP-0050 command `configure` on the service's JID. The core
   * stores the validated values in the user's ScopedStore under `key(service)`,
   * where the session reads them before connecting.
   */
  readonly serviceSettings?: {
    fields: FormField[];
    key(service: ServiceId): string;
    /** Normalises the submitted values; throws EstuaryError("not-acceptable", text) when wrong. */
    validate(values: Record<string, string>): Record<string, unknown>;
  };
  /** Checks and normalises a submitted form; throws EstuaryError("not-acceptable", text) when wrong. */
  validateRegistration(values: Record<string, string>): Promise<Record<string, string>>;
  openSession(ctx: SessionContext): Promise<AdapterSession>;
  /** Called once on gateway shutdown after every session closed. */
  shutdown?(): Promise<void>;
}
