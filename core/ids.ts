/** Ids the core makes: stanza ids, and the id map scope of a conversation. */
import type { ChatRef } from "./model.ts";

export function randomId(): string {
  return crypto.randomUUID();
}

/** The id map scope of one user's conversation on one network (store.idmap). */
export function scopeOf(user: string, network: string, chat: ChatRef): string {
  return `${user}\n${network}\n${chat.kind === "room" ? `r:${chat.room}` : `c:${chat.contact}`}`;
}
