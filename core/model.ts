/**
 * The neutral model: what the core and every adapter agree on. Nothing here
 * knows XMPP stanzas or a network's wire format. Ids are the network's own
 * (an IRC channel name with its server, a Telegram chat id, a Matrix room id);
 * the adapter's address codec maps them to and from JID localparts.
 */
import type { RichText } from "./format/model.ts";

export type { RichText } from "./format/model.ts";

/** A room on the network (IRC channel on a server, Telegram group, Matrix room). */
export type RoomId = string;
/** A person on the network (IRC nick on a server, Telegram user id, Matrix user id). */
export type ContactId = string;
/** A network entity that is neither (an IRC server: its notices, its settings). */
export type ServiceId = string;
/** The network's id for a message, when it has one. */
export type MessageId = string;

/** Where a message goes or comes from. */
export type ChatRef =
  | { kind: "room"; room: RoomId }
  /** `viaRoom`: a private message reached through a room (XEP-0045 in-room PM). */
  | { kind: "direct"; contact: ContactId; viaRoom?: RoomId };

/** What a JID localpart under a network's domain names. */
export type Address =
  | { kind: "room"; room: RoomId }
  | { kind: "contact"; contact: ContactId }
  | { kind: "service"; service: ServiceId };

/** XEP-0045 §5: roles and affiliations, as networks' op/voice/power levels map to them. */
export type Role = "moderator" | "participant" | "visitor" | "none";
export type Affiliation = "owner" | "admin" | "member" | "outcast" | "none";

/** XMPP presence `show` plus `offline`; adapters map their away states to it. */
export type Show = "available" | "chat" | "away" | "xa" | "dnd" | "offline";

export interface Occupant {
  nick: string;
  /** The person behind the nick, when the network tells (lets clients open a 1:1 chat). */
  contact?: ContactId;
  role: Role;
  affiliation: Affiliation;
  show?: Show;
  status?: string;
}

/** Who sent something in a chat. In a room `nick` is the occupant nick. */
export interface Sender {
  nick: string;
  contact?: ContactId;
}

export interface Attachment {
  /** A URL the XMPP client can open (the adapter or core makes it reachable). */
  url: string;
  name?: string;
  mediaType?: string;
  size?: number;
  caption?: RichText;
}

/** What the XMPP user asks a network to send. */
export interface OutgoingMessage {
  text: RichText;
  /** `/me` (IRC CTCP ACTION, Matrix m.emote). */
  action?: boolean;
  /** XEP-0461: the network id of the message this answers. */
  replyTo?: MessageId;
  attachments?: Attachment[];
}

/** What the network assigned to a sent message (absent when it assigns nothing, as plain IRC). */
export interface SendResult {
  id?: MessageId;
}

/** XEP-0085 chat states. */
export type ChatState = "active" | "composing" | "paused" | "inactive" | "gone";

export interface RoomSnapshot {
  /** The nick the network actually gave the user (may differ from the one asked: XEP-0045 status 210). */
  nick: string;
  /** The user's own role and affiliation in the room. */
  self: Pick<Occupant, "role" | "affiliation">;
  /** Everyone else present. */
  occupants: Occupant[];
  subject?: { text: string; by?: string; at?: Date };
  /** The room's human name, if the network has one distinct from its id. */
  name?: string;
  /** Recent messages the network replayed on join (oldest first): kept as join history, not shown as live. */
  history?: Extract<LegacyEvent, { type: "message" }>[];
}

export interface RoomInfo {
  room: RoomId;
  name?: string;
  members?: number;
  /** The room's topic, when the listing carries it (IRC LIST). */
  topic?: string;
}

export type SessionState = "connecting" | "online" | "degraded" | "error" | "offline";

/**
 * Network → XMPP: the one typed event stream every adapter emits through
 * `SessionContext.emit`. An adapter never emits an event for a message the
 * user sent through `sendMessage` (the core reflects that one); it does emit
 * `self: true` messages the user sent from another client of the network.
 */
export type LegacyEvent =
  | {
      type: "message";
      chat: ChatRef;
      from: Sender;
      id?: MessageId;
      text: RichText;
      action?: boolean;
      notice?: boolean;
      replyTo?: MessageId;
      attachments?: Attachment[];
      /** When the network says it was sent (IRCv3 server-time, history). Absent: now. */
      at?: Date;
      /** Sent by the user from another client of theirs on the network. */
      self?: boolean;
      /**
       * Replayed from the network's own history (a server's join replay, a
       * backfill): delivered as history (XEP-0203 delay), and only if its `id`
       * was not delivered before.
       */
      history?: boolean;
    }
  | { type: "edit"; chat: ChatRef; from: Sender; id: MessageId; newId?: MessageId; text: RichText; at?: Date }
  /**
   * A message was removed. `by` present: removed by someone other than its
   * author `from` (a moderator: Matrix redaction, Telegram deletion), which
   * the core shows as XEP-0425 moderation in rooms.
   */
  | { type: "retract"; chat: ChatRef; from: Sender; id: MessageId; by?: Sender; reason?: string }
  /** The sender's whole reaction set on a message (XEP-0444 semantics; adapters keep per-user state). */
  | { type: "reactions"; chat: ChatRef; from: Sender; id: MessageId; emojis: string[] }
  | { type: "typing"; chat: ChatRef; from: Sender; state: ChatState }
  | { type: "join"; room: RoomId; occupant: Occupant }
  | {
      type: "part";
      room: RoomId;
      nick: string;
      reason?: string;
      /** leave: parted; quit: left the network; kick/ban: removed by `by`. */
      how: "leave" | "quit" | "kick" | "ban";
      by?: string;
    }
  /** `contact`: the person's id after the change, when it depends on the nick (IRC). */
  | { type: "nick"; room: RoomId; old: string; new: string; contact?: ContactId }
  | { type: "occupant"; room: RoomId; occupant: Occupant }
  | { type: "topic"; room: RoomId; text: string; by?: string }
  /** Someone on the network invites the user into a room (IRC INVITE, Matrix invite). */
  | { type: "invite"; room: RoomId; from: Sender; reason?: string }
  /** The user was removed from the room by the network (kick, ban, channel closed). */
  | { type: "room-closed"; room: RoomId; reason?: string; how: "kick" | "ban" | "error"; by?: string }
  | { type: "presence"; contact: ContactId; show: Show; status?: string; name?: string }
  | { type: "service-message"; service: ServiceId; text: RichText; notice?: boolean }
  | { type: "status"; state: SessionState; text?: string };

export type LegacyEventType = LegacyEvent["type"];
