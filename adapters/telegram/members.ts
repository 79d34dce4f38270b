/**
 * Who is in a Telegram group, as far as a bot can know, and their MUC nicks.
 *
 * The Bot API has no "list members" method: a bot only learns the
 * administrators (getChatAdministrators) and whoever it sees — people who
 * write, join or leave (messages, chat_member updates, service messages).
 * So a room's occupant list is the admins plus the members seen so far.
 *
 * Nicks are display names ("first last"); when two people of a group share
 * one, the later gets " (@username)" or " (<id>)" appended. A nick, once
 * given, stays for the session so a conversation never changes hands.
 */
import type { User } from "grammy/types";
import type { Affiliation, Occupant, Role } from "../../core/model.ts";
import { contactOf } from "./ids.ts";

export type MemberStatus = "creator" | "administrator" | "member";

interface Known {
  user: User;
  status: MemberStatus;
  nick: string;
}

export function displayName(user: Pick<User, "first_name" | "last_name" | "username" | "id">): string {
  const name = [user.first_name, user.last_name].filter((p) => p !== undefined && p.trim() !== "").join(" ").trim();
  return name !== "" ? name : (user.username ?? String(user.id));
}

/** XEP-0045 §5: creator → owner/moderator, administrator → admin/moderator, member → none/participant. */
export function roleOf(status: MemberStatus): { role: Role; affiliation: Affiliation } {
  switch (status) {
    case "creator":
      return { role: "moderator", affiliation: "owner" };
    case "administrator":
      return { role: "moderator", affiliation: "admin" };
    case "member":
      return { role: "participant", affiliation: "none" };
  }
}

export function isPresent(status: string): status is MemberStatus {
  return status === "creator" || status === "administrator" || status === "member";
}

export class ChatMembers {
  private readonly chats = new Map<number, Map<number, Known>>();
  /** The XMPP user's own nick per chat: nobody else may get it. */
  private readonly selfNicks = new Map<number, string>();

  private chat(chatId: number): Map<number, Known> {
    let chat = this.chats.get(chatId);
    if (chat === undefined) this.chats.set(chatId, (chat = new Map()));
    return chat;
  }

  setSelfNick(chatId: number, nick: string): void {
    this.selfNicks.set(chatId, nick);
  }

  has(chatId: number, userId: number): boolean {
    return this.chats.get(chatId)?.has(userId) ?? false;
  }

  /** The nick of `user` in the chat (assigned on first use, without recording them as present). */
  nickOf(chatId: number, user: User): string {
    return this.chats.get(chatId)?.get(user.id)?.nick ?? this.freeNick(chatId, user);
  }

  private freeNick(chatId: number, user: User): string {
    const taken = new Set([...this.chat(chatId).values()].filter((k) => k.user.id !== user.id).map((k) => k.nick));
    const self = this.selfNicks.get(chatId);
    if (self !== undefined) taken.add(self);
    const base = displayName(user);
    for (const candidate of [base, ...(user.username ? [`${base} (@${user.username})`] : []), `${base} (${user.id})`]) {
      if (!taken.has(candidate)) return candidate;
    }
    return `${base} (${user.id})`;
  }

  /**
   * Records `user` as present with `status` (default: keep theirs, else member).
   * Returns the occupant and whether this is news (first seen or a changed status).
   */
  see(chatId: number, user: User, status?: MemberStatus): { occupant: Occupant; change: "new" | "status" | undefined } {
    const chat = this.chat(chatId);
    const known = chat.get(user.id);
    const next = status ?? known?.status ?? "member";
    const nick = known?.nick ?? this.freeNick(chatId, user);
    chat.set(user.id, { user, status: next, nick });
    const change = known === undefined ? "new" : known.status !== next ? "status" : undefined;
    return { occupant: occupantOf({ user, status: next, nick }), change };
  }

  /** Forgets a member who left; returns their nick if they were known. */
  remove(chatId: number, userId: number): string | undefined {
    const chat = this.chats.get(chatId);
    const known = chat?.get(userId);
    chat?.delete(userId);
    return known?.nick;
  }

  occupants(chatId: number): Occupant[] {
    return [...(this.chats.get(chatId)?.values() ?? [])].map(occupantOf);
  }
}

function occupantOf(k: Known): Occupant {
  return { nick: k.nick, contact: contactOf(k.user.id), ...roleOf(k.status) };
}
