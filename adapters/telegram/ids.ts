/**
 * Telegram addressing (JID localparts under the Telegram gateway's domain):
 *
 * - a person (Telegram user) → their numeric user id in decimal: `123456`;
 * - a group or supergroup (negative chat id) → `group<abs(id)>`, Slidge's
 *   convention, because some XMPP clients reject localparts starting with
 *   `-`: chat `-1001234` is `group1001234`;
 * - a forum topic → `group<abs(id)>~<message_thread_id>` (one MUC per topic):
 *   `group1001234~42`.
 *
 * Contact and room ids in the neutral model ARE these strings, so the codec
 * is the identity on canonical forms and `parse` rejects everything else
 * (leading zeros, signs, other text) with undefined. The bot itself is not
 * a service: there are no service addresses.
 */
import type { AddressCodec } from "../../core/adapter.ts";
import type { Address, ContactId, RoomId } from "../../core/model.ts";

/** A positive decimal integer without leading zeros (Telegram ids fit in 52 bits: safe integers). */
const NUMBER = "[1-9][0-9]{0,15}";
const CONTACT = new RegExp(`^${NUMBER}$`);
const ROOM = new RegExp(`^group(${NUMBER})(?:~(${NUMBER}))?$`);

export interface ChatTarget {
  /** The Bot API chat id (negative for groups). */
  chatId: number;
  /** Forum topic (message_thread_id), when the room is one topic. */
  thread?: number;
}

function safe(digits: string): number | undefined {
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function contactOf(userId: number): ContactId {
  return String(userId);
}

export function roomOf(chatId: number, thread?: number): RoomId {
  return `group${Math.abs(chatId)}${thread === undefined ? "" : `~${thread}`}`;
}

/** The Bot API chat of a room id, or undefined if it is not one. */
export function parseRoom(room: string): ChatTarget | undefined {
  const m = ROOM.exec(room);
  if (!m) return undefined;
  const abs = safe(m[1]!);
  const thread = m[2] === undefined ? undefined : safe(m[2]);
  if (abs === undefined || (m[2] !== undefined && thread === undefined)) return undefined;
  return thread === undefined ? { chatId: -abs } : { chatId: -abs, thread };
}

/** The Bot API user id of a contact id, or undefined. */
export function parseContact(contact: string): number | undefined {
  return CONTACT.test(contact) ? safe(contact) : undefined;
}

export const telegramCodec: AddressCodec = {
  parse(local: string): Address | undefined {
    if (parseContact(local) !== undefined) return { kind: "contact", contact: local };
    if (parseRoom(local) !== undefined) return { kind: "room", room: local };
    return undefined;
  },
  format(address: Address): string {
    switch (address.kind) {
      case "contact":
        return address.contact;
      case "room":
        return address.room;
      case "service":
        // No services on Telegram; nothing parses back to one.
        return address.service;
    }
  },
};
