/**
 * JIDs: XEP-0106 JID escaping (https://xmpp.org/extensions/xep-0106.html),
 * light RFC 7622 validation, and the composition of an adapter's address codec
 * with escaping, which is how a network id becomes a JID localpart and back.
 *
 * Validation is structural (parts, separators, lengths, characters the RFC
 * forbids); it does not apply the PRECIS profiles (case mapping, width and
 * Unicode normalization). The XMPP server applies those to every stanza it
 * routes, so localparts reaching the gateway are case-folded: an address codec
 * for case-sensitive ids must encode case itself.
 */
import type { AddressCodec } from "./adapter.ts";
import { fail } from "./errors.ts";
import type { Address } from "./model.ts";

/** XEP-0106 §3.2: the nine characters nodeprep disallows, escaped as "\" + two lowercase hex digits. */
const ESCAPE: ReadonlyMap<string, string> = new Map([
  [" ", "\\20"],
  ['"', "\\22"],
  ["&", "\\26"],
  ["'", "\\27"],
  ["/", "\\2f"],
  [":", "\\3a"],
  ["<", "\\3c"],
  [">", "\\3e"],
  ["@", "\\40"],
]);
/** §3.3: the ten sequences unescaping recognises (the nine plus "\5c" for the backslash). Case is significant. */
const UNESCAPE: ReadonlyMap<string, string> = new Map([
  ...[...ESCAPE].map(([raw, escaped]) => [escaped, raw] as const),
  ["\\5c", "\\"],
]);
const SEQUENCE = /\\(?:20|22|26|27|2f|3a|3c|3e|40|5c)/g;

/**
 * Escapes a raw identifier into localpart form. A backslash becomes "\5c" only
 * when it begins one of the ten sequences (§5.1 rule 7, §5.2 step 3), so
 * "c:\net" gives "c\3a\net" — the §7.1 table's "c\3a\5cnet" escapes more than
 * its own rules ask; both unescape to "c:\net". Total and injective: every
 * string round-trips through `unescapeLocal`. §5.1 rule 6 ("\20" never first or
 * last) cannot be met for a raw value with an edge space, which has no other
 * escaped form; `localpartFor` refuses such values.
 */
export function escapeLocal(raw: string): string {
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    const escaped = ESCAPE.get(ch);
    if (escaped !== undefined) out += escaped;
    else if (ch === "\\" && UNESCAPE.has(raw.slice(i, i + 3))) out += "\\5c";
    else out += ch;
  }
  return out;
}

/** §5.1 rule 3 and §5.3: only the ten exact sequences unescape; "\2plus", "foo\bar", "\41" stay as they are. */
export function unescapeLocal(escaped: string): string {
  return escaped.replace(SEQUENCE, (seq) => UNESCAPE.get(seq)!);
}

export interface JidParts {
  local?: string;
  domain: string;
  resource?: string;
}

/** RFC 7622 §3.1: each part is 1 to 1023 octets once encoded as UTF-8. */
const MAX_PART_BYTES = 1023;
const CONTROL = /\p{Cc}/u;
const SPACE = /[\p{White_Space}\p{Z}]/u;
/** RFC 7622 §3.3.1: characters a localpart must not contain (the reason XEP-0106 exists). */
const LOCAL_FORBIDDEN = /["&'/:<>@]/;

function partOk(part: string): boolean {
  const bytes = Buffer.byteLength(part, "utf8");
  return bytes >= 1 && bytes <= MAX_PART_BYTES && !CONTROL.test(part);
}

/** Why `local` (in escaped, wire form) cannot be a localpart, or undefined when it can. */
function localProblem(local: string): string | undefined {
  if (!partOk(local)) return "empty, longer than 1023 bytes or containing control characters";
  // PRECIS IdentifierClass (RFC 7613 §3.2, used by RFC 7622 §3.3) has no space characters.
  if (SPACE.test(local) || LOCAL_FORBIDDEN.test(local)) return "containing a space or a character JIDs forbid";
  return undefined;
}

/**
 * Splits and validates a JID. RFC 7622 §3.1 order: the resource starts at the
 * first "/", the localpart ends at the first "@" before it. A trailing dot of
 * the domain is dropped (§3.2). Undefined for anything invalid: empty parts
 * where a separator is present, an empty domain, parts over 1023 bytes, control
 * characters, lone surrogates, forbidden localpart characters, spaces outside
 * the resource.
 */
export function splitJid(jid: string): JidParts | undefined {
  if (!jid.isWellFormed()) return undefined;
  const slash = jid.indexOf("/");
  const bare = slash === -1 ? jid : jid.slice(0, slash);
  const resource = slash === -1 ? undefined : jid.slice(slash + 1);
  const at = bare.indexOf("@");
  const local = at === -1 ? undefined : bare.slice(0, at);
  let domain = at === -1 ? bare : bare.slice(at + 1);
  if (domain.endsWith(".")) domain = domain.slice(0, -1);

  if (local !== undefined && localProblem(local) !== undefined) return undefined;
  if (resource !== undefined && !partOk(resource)) return undefined;
  if (!partOk(domain) || SPACE.test(domain) || domain.includes("@")) return undefined;
  // Empty labels ("a..b", ".a") are never a hostname; an IP literal "[...]" has no labels to check.
  if (!domain.startsWith("[") && domain.split(".").includes("")) return undefined;

  const parts: JidParts = { domain };
  if (local !== undefined) parts.local = local;
  if (resource !== undefined) parts.resource = resource;
  return parts;
}

/** The JID without its resource (RFC 7622 §3.1: everything before the first "/"). No validation, no case change. */
export function bareJid(jid: string): string {
  const slash = jid.indexOf("/");
  return slash === -1 ? jid : jid.slice(0, slash);
}

/**
 * The escaped localpart naming `address` under the gateway's domain. Throws
 * `not-acceptable` when the codec's string cannot be a valid localpart even
 * escaped: empty, over 1023 bytes, with control characters or spaces other than
 * U+0020 (XEP-0106 escapes none of those), or starting or ending with a space
 * (XEP-0106 §5.1 rule 6).
 */
export function localpartFor(codec: AddressCodec, address: Address): string {
  const raw = codec.format(address);
  const local = escapeLocal(raw);
  const problem = raw.startsWith(" ") || raw.endsWith(" ") ? "starting or ending with a space" : localProblem(local);
  if (problem !== undefined) throw fail("not-acceptable", `This network address cannot be a JID (${problem})`);
  return local;
}

/**
 * What an escaped localpart names, or undefined when it is no valid localpart
 * or the codec knows no such address. Accepts any escaping that unescapes to
 * the codec's form (clients following XEP-0106's table write "\5c" where
 * `escapeLocal` would not), so two spellings may name one address.
 */
export function addressFor(codec: AddressCodec, escapedLocal: string): Address | undefined {
  if (!escapedLocal.isWellFormed() || localProblem(escapedLocal) !== undefined) return undefined;
  return codec.parse(unescapeLocal(escapedLocal));
}
