/** What legs and the bridge core exchange (neutral: no stanza, no network wire format). */
import type { Attachment, RichText } from "../model.ts";
import type { LegName } from "./config.ts";

export interface Person {
  nick: string;
  /** The network's id for the person (puppet JIDs derive from it). */
  contact?: string;
}

/** Something that happened on a leg, as the leg reports it (ids are the leg's own). */
export type Inbound =
  | {
      type: "message";
      /** The leg's ids for the message (XMPP: id attribute and origin-id). */
      ids: string[];
      /** XMPP only: the room's XEP-0359 stanza-id. */
      sid?: string;
      from: Person;
      text: RichText;
      action?: boolean;
      replyTo?: string;
      attachments?: Attachment[];
    }
  | { type: "edit"; id: string; from: Person; text: RichText }
  | { type: "retract"; id: string; from: Person }
  /**
   * A moderator removed someone else's message on this leg: XEP-0425 in the
   * MUC (only as announced by the bare room JID), a Matrix redaction by
   * someone other than the sender.
   */
  | { type: "moderate"; id: string; by: Person; reason?: string }
  | { type: "reactions"; id: string; from: Person; emojis: string[] }
  | { type: "join"; who: Person }
  | { type: "part"; who: Person }
  | { type: "nick"; who: Person; old: string };

/** What the core asks a leg to do; `canon` names a message across legs (ids.ts). */
export type Delivery =
  | {
      type: "message";
      canon: string;
      origin: LegName;
      from: Person;
      text: RichText;
      action?: boolean;
      replyTo?: { canon: string; nick: string };
      attachments?: Attachment[];
    }
  | { type: "edit"; canon: string; origin: LegName; from: Person; text: RichText }
  | { type: "retract"; canon: string; origin: LegName; from: Person }
  /**
   * Remove the leg's copy (or the original) of a message a moderator removed
   * on `origin`. `author` is where the message was written and by whom, when
   * the id map still knows (a leg's original needs moderator rights there;
   * a copy the bridge posted does not).
   */
  | { type: "moderate"; canon: string; origin: LegName; by: Person; reason?: string; author?: { leg: LegName; who: Person } }
  | { type: "reactions"; canon: string; origin: LegName; from: Person; emojis: string[] }
  | { type: "join" | "part"; origin: LegName; who: Person }
  | { type: "nick"; origin: LegName; who: Person; old: string }
  /** From the bridge itself (delivery failures), to the leg a message came from. */
  | { type: "notice"; text: RichText };

/** The persistent id map as one leg sees it (ids.ts). */
export interface LegIds {
  /** The leg's id for a bridged message (XMPP: its `id` attribute). */
  idFor(canon: string): Promise<string | undefined>;
  /** XMPP: the room's stanza-id when known, else the id attribute. */
  refFor(canon: string): Promise<string | undefined>;
  link(legId: string, canon: string, kind?: "id" | "sid"): Promise<void>;
  canonFor(legId: string): Promise<string | undefined>;
}

export interface Leg {
  readonly name: LegName;
  /** Starts connecting and joining; resolves once the first attempt settled (the leg keeps retrying on its own). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves once the leg's network accepted it; rejects with an EstuaryError. */
  deliver(d: Delivery): Promise<void>;
  /** One line for admins (admin/bridges): joined, joining, stopped… */
  status?(): string;
}

export type InboundSink = (leg: LegName, event: Inbound) => void;
