/**
 * Addressing: Matrix ids ↔ JID localparts (before the core's XEP-0106 escaping).
 *
 *   user   `@alice:example.org`  ↔ `alice%example.org`   (no sigil: people are the default)
 *   alias  `#room:example.org`   ↔ `#room%example.org`
 *   room   `!abc:example.org`    ↔ `!abc%example.org`
 *
 * The first `:` of an id (localparts hold none; the server part may carry a
 * `:port`) becomes `%`. XMPP servers case-fold localparts (RFC 7613
 * UsernameCaseMapped) while Matrix room ids are case-sensitive (`!AbC:…`), so
 * the encoding never emits an upper-case letter and survives lowering:
 *
 *   `^` + a-z     an upper-case ASCII letter (`^a` is `A`)
 *   `^^`, `^%`    a literal `^` or `%`
 *   `^#`, `^!`    a literal `#`/`!` opening a user localpart (historical ids)
 *   `^(hex)`      any other character a JID would alter or refuse: other
 *                 upper-case or compatibility characters, spaces, controls
 *
 * Everything else (lower-case letters, digits, other ASCII punctuation,
 * case-stable non-ASCII letters and digits) is kept as is.
 */
import type { AddressCodec } from "../../core/adapter.ts";
import type { Address } from "../../core/model.ts";

const ASCII_KEPT = /^[a-z0-9!-$&-/:-@[-\]_-~]$/; // printable ASCII except space, %, ^ and A-Z

function isStable(ch: string): boolean {
  if (ch.length === 1 && ch.charCodeAt(0) < 0x80) return ASCII_KEPT.test(ch);
  // Hangul conjoining jamo are stable alone but compose with their neighbours under NFKC
  // (U+1100 U+1161 → 가), so they are escaped like everything a JID could change.
  if (/^[\u1100-\u11ff\ua960-\ua97f\ud7b0-\ud7ff]$/u.test(ch)) return false;
  return /^[\p{L}\p{N}]$/u.test(ch) && ch === ch.toLowerCase() && ch === ch.toUpperCase().toLowerCase() && ch === ch.normalize("NFKC");
}

export function encodePart(s: string): string {
  let out = "";
  for (const ch of s) {
    if (ch === "^" || ch === "%") out += `^${ch}`;
    else if (ch >= "A" && ch <= "Z") out += `^${ch.toLowerCase()}`;
    else if (isStable(ch)) out += ch;
    else out += `^(${ch.codePointAt(0)!.toString(16)})`;
  }
  return out;
}

/** Decodes one part up to the first unescaped `%` (or the end); undefined when malformed. */
function decodeUntilSeparator(s: string, from: number): { text: string; end: number } | undefined {
  let text = "";
  let i = from;
  while (i < s.length) {
    const ch = s[i]!;
    if (ch === "%") break;
    if (ch !== "^") {
      text += ch;
      i++;
      continue;
    }
    const next = s[i + 1];
    if (next === undefined) return undefined;
    if (next >= "a" && next <= "z") {
      text += next.toUpperCase();
      i += 2;
    } else if (next === "(") {
      const close = s.indexOf(")", i + 2);
      const hex = close < 0 ? "" : s.slice(i + 2, close);
      if (!/^[0-9a-f]{1,6}$/.test(hex) || Number.parseInt(hex, 16) > 0x10ffff) return undefined;
      text += String.fromCodePoint(Number.parseInt(hex, 16));
      i = close + 1;
    } else {
      text += next;
      i += 2;
    }
  }
  return { text, end: i };
}

/** Matrix server name (spec appendix "Server name"): hostname, IPv4 or [IPv6], optional port. */
export function isServerName(s: string): boolean {
  return /^(?:[A-Za-z0-9.-]{1,255}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/.test(s);
}

export type MatrixIdKind = "user" | "alias" | "room";

export function splitMatrixId(id: string): { sigil: "@" | "#" | "!"; local: string; server: string } | undefined {
  const sigil = id[0];
  if (sigil !== "@" && sigil !== "#" && sigil !== "!") return undefined;
  const colon = id.indexOf(":");
  if (colon < 2) return undefined;
  const server = id.slice(colon + 1);
  if (!isServerName(server)) return undefined;
  return { sigil, local: id.slice(1, colon), server };
}

export function formatMatrixId(id: string): string {
  const parts = splitMatrixId(id);
  if (!parts) return encodePart(id);
  let local = encodePart(parts.local);
  // A user localpart opening with a room sigil would read as a room.
  if (parts.sigil === "@" && (local.startsWith("#") || local.startsWith("!"))) local = `^${local}`;
  return `${parts.sigil === "@" ? "" : parts.sigil}${local}%${encodePart(parts.server)}`;
}

export function parseMatrixLocal(local: string): { kind: MatrixIdKind; id: string } | undefined {
  const sigil = local[0] === "#" || local[0] === "!" ? local[0] : "@";
  const first = decodeUntilSeparator(local, sigil === "@" ? 0 : 1);
  if (!first || local[first.end] !== "%") return undefined;
  const second = decodeUntilSeparator(local, first.end + 1);
  if (!second || second.end !== local.length) return undefined;
  const id = `${sigil}${first.text}:${second.text}`;
  const parts = splitMatrixId(id);
  if (!parts || parts.local !== first.text || first.text.length === 0) return undefined;
  return { kind: sigil === "@" ? "user" : sigil === "#" ? "alias" : "room", id };
}

export function createAddressCodec(): AddressCodec {
  return {
    parse(local): Address | undefined {
      const parsed = parseMatrixLocal(local);
      if (!parsed) return undefined;
      return parsed.kind === "user" ? { kind: "contact", contact: parsed.id } : { kind: "room", room: parsed.id };
    },
    format(address): string {
      if (address.kind === "room") return formatMatrixId(address.room);
      if (address.kind === "contact") return formatMatrixId(address.contact);
      return encodePart(address.service);
    },
  };
}
