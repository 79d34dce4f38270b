/**
 * Biboumi's addressing, so bookmarks carry over: `#chan%irc.example.net` is a
 * channel, `nick%irc.example.net` a person, `irc.example.net` the server.
 * Ids are canonical: channel names and nicks are lowered with the rfc1459
 * casemapping (RFC 1459 §2.2: {}|^ are the lower case of []\~), hosts with
 * ASCII lowering, so one channel always yields one RoomId (XMPP localparts are
 * case-insensitive anyway, RFC 7613 UsernameCaseMapped).
 */
import type { AddressCodec } from "../../core/adapter.ts";
import type { Address, ContactId, RoomId } from "../../core/model.ts";

/** Prefixes a channel name may start with (RFC 2811 §2.1); nicks never start with one. */
export const CHANNEL_PREFIXES = "#&+!";

export function ircLower(s: string): string {
  return s.toLowerCase().replace(/[[\]\\~]/g, (c) => ({ "[": "{", "]": "}", "\\": "|", "~": "^" })[c]!);
}

const LABEL = "[a-z0-9](?:[a-z0-9-]*[a-z0-9])?";
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`, "i");
const IPV6 = /^\[[0-9a-f:.]+\]$/i;

export function isHost(s: string): boolean {
  return s.length <= 253 && (HOSTNAME.test(s) || (IPV6.test(s) && s.includes(":")));
}

/** RFC 2812 §1.3 channel names: no space, comma, BEL, control chars; at most 200 characters. */
export function isChannel(s: string): boolean {
  return s.length >= 2 && s.length <= 200 && CHANNEL_PREFIXES.includes(s[0]!) && !/[\s,\x00-\x1f\x7f]/.test(s);
}

/** Lenient nick check (networks differ): no space, no prefix/mask characters, not starting with a digit or '-'. */
export function isNick(s: string): boolean {
  return s.length >= 1 && s.length <= 64 && !/[\s!@%,*?:\x00-\x1f\x7f]/.test(s) && !/^[0-9\-#&+!$]/.test(s);
}

export interface IrcTarget {
  server: string;
  /** Channel name or nick as lowered for the id. */
  name: string;
}

/** `#chan%host` / `nick%host` → parts (split at the LAST %: hosts never contain one, channel names may). */
export function splitId(id: string): IrcTarget | undefined {
  const at = id.lastIndexOf("%");
  if (at <= 0) return undefined;
  return { server: id.slice(at + 1), name: id.slice(0, at) };
}

export function roomId(server: string, channel: string): RoomId {
  return `${ircLower(channel)}%${server.toLowerCase()}`;
}

export function contactId(server: string, nick: string): ContactId {
  return `${ircLower(nick)}%${server.toLowerCase()}`;
}

export function createAddressCodec(options: { fixedServer?: string | undefined } = {}): AddressCodec {
  const fixed = options.fixedServer?.toLowerCase();
  const classify = (name: string, server: string): Address | undefined => {
    if (!isHost(server)) return undefined;
    if (isChannel(name)) return { kind: "room", room: roomId(server, name) };
    if (isNick(name)) return { kind: "contact", contact: contactId(server, name) };
    return undefined;
  };
  return {
    parse(local) {
      if (fixed !== undefined) {
        if (local.toLowerCase() === fixed) return { kind: "service", service: fixed };
        return classify(local, fixed);
      }
      const at = local.lastIndexOf("%");
      if (at < 0) return isHost(local) ? { kind: "service", service: local.toLowerCase() } : undefined;
      return classify(local.slice(0, at), local.slice(at + 1));
    },
    format(address) {
      const id = address.kind === "room" ? address.room : address.kind === "contact" ? address.contact : undefined;
      if (id === undefined) return address.kind === "service" ? address.service : "";
      if (fixed !== undefined) {
        const parts = splitId(id);
        if (parts && parts.server === fixed) return parts.name;
      }
      return id;
    },
  };
}

/** Glob-ish host patterns from the config (`*` any run of characters, case-insensitive). */
export function hostAllowed(host: string, patterns: string[]): boolean {
  return patterns.some((p) => {
    const re = new RegExp(`^${p.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`, "i");
    return re.test(host);
  });
}
