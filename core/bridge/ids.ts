/**
 * The bridge's id map, on the store's persistent id map (core/store): one
 * canonical id per bridged message, and per leg the leg's own id(s) for it.
 *
 *   scope `bridge\n<name>\n<leg>`:  link(scope, legId, [canonical])
 *     xmppFor(scope, legId)     → canonical   (an edit/reply/retraction arriving from that leg)
 *     legacyFor(scope, canonical) → legId     (where to apply it on that leg)
 *
 * The XMPP leg has two ids per message: the `id` attribute (what XEP-0308
 * corrections name) and the room's XEP-0359 stanza-id (what XEP-0461 replies,
 * XEP-0424 retractions and XEP-0444 reactions name in groupchat); the latter
 * lives in the leg `xmpp-sid`.
 *
 * The canonical id carries the original sender's name, so a reply relayed
 * long after (or after a restart) can still say whom it answers.
 */
import { randomBytes } from "node:crypto";

export function scopeFor(bridge: string, leg: string): string {
  return `bridge\n${bridge}\n${leg}`;
}

export function newCanonical(senderNick: string): string {
  return `${randomBytes(9).toString("base64url")}.${Buffer.from(senderNick, "utf8").toString("base64url")}`;
}

/** The sender name a canonical id was minted for (undefined for a malformed id). */
export function senderOf(canonical: string): string | undefined {
  const dot = canonical.indexOf(".");
  if (dot < 0) return undefined;
  return Buffer.from(canonical.slice(dot + 1), "base64url").toString("utf8");
}

/** Ids of stanzas the bridge itself sends into a MUC (XEP-0359 origin-id too): its echoes are recognised by it. */
export const OWN_ID_PREFIX = "estuary-bridge-";

export function ownStanzaId(): string {
  return `${OWN_ID_PREFIX}${randomBytes(9).toString("base64url")}`;
}
