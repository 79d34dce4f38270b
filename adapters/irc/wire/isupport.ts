/**
 * RPL_ISUPPORT (005) tokens the IRC adapter reads, MODE parameter parsing
 * with them, and casemapping.
 *
 * Only the tokens something here reads are kept (a server sends ~40; keeping
 * them all cost ~2 KB per connection). Parsed values (PREFIX, CHANTYPES,
 * CHANMODES, STATUSMSG) are interned in a small module-level cache: every
 * connection to one network shares one frozen array instead of holding its
 * own copy. https://modern.ircdocs.horse/#rplisupport-005
 */

export interface PrefixEntry {
  readonly symbol: string;
  readonly mode: string;
}

/** The shape irc-framework's NetworkInfo.options has for the tokens below (adapters/irc/connection.ts reads it). */
export interface IsupportOptions {
  [token: string]: unknown;
  PREFIX?: readonly PrefixEntry[];
  CHANTYPES?: readonly string[];
  CHANMODES?: readonly string[];
  STATUSMSG?: readonly string[];
  CASEMAPPING?: string;
  LINELEN?: string;
  NICKLEN?: string;
  CHATHISTORY?: string;
}

/** Tokens kept; the others are dropped on arrival. */
const KEPT = new Set(["PREFIX", "CHANTYPES", "CHANMODES", "STATUSMSG", "CASEMAPPING", "LINELEN", "NICKLEN", "CHATHISTORY", "NETWORK"]);

/** RFC 2812 §5.1 PREFIX default (and irc-framework's), until the server says otherwise. */
export const DEFAULT_PREFIX: readonly PrefixEntry[] = Object.freeze(
  [
    { symbol: "~", mode: "q" },
    { symbol: "&", mode: "a" },
    { symbol: "@", mode: "o" },
    { symbol: "%", mode: "h" },
    { symbol: "+", mode: "v" },
  ].map((p) => Object.freeze(p)),
);

/** Options before any 005: what irc-framework's NetworkInfo starts with. */
export function defaultOptions(): IsupportOptions {
  return { CASEMAPPING: "rfc1459", PREFIX: DEFAULT_PREFIX };
}

const INTERN_MAX = 256;
const interned = new Map<string, unknown>();

/** One shared value per distinct `TOKEN=value` (bounded: a hostile server cannot grow it without end). */
function intern<T>(key: string, make: () => T): T {
  const hit = interned.get(key);
  if (hit !== undefined) return hit as T;
  if (interned.size >= INTERN_MAX) interned.clear();
  const value = make();
  interned.set(copy(key), value);
  return value;
}

/** A flat copy: V8 keeps the line a substring (or concatenation) was made from alive as long as the substring. */
function copy(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, "utf8").toString("utf8");
}

/** A string shared by every connection that has it, holding no reference to the line it was cut from. */
export function ownString(s: string): string {
  return intern(`s\n${s}`, () => copy(s));
}

/** draft-brocklesby-irc-isupport-03 §2: `\xHH` escapes in values. */
function unescapeValue(v: string): string {
  return v.includes("\\x") ? v.replace(/\\x([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))) : v;
}

/** Applies one 005 line (`<nick> TOKEN[=value]… :are supported`) to `options`. */
export function applyIsupport(options: IsupportOptions, params: readonly string[]): void {
  for (let i = 1; i < params.length - 1; i++) {
    const token = params[i]!;
    const negated = token.startsWith("-");
    const eq = token.indexOf("=");
    const key = (eq === -1 ? token.slice(negated ? 1 : 0) : token.slice(0, eq)).toUpperCase();
    if (!KEPT.has(key)) continue;
    if (negated) {
      // "-TOKEN": the server withdraws it (isupport-03 §2); back to the default where there is one.
      if (key === "PREFIX") options.PREFIX = DEFAULT_PREFIX;
      else if (key === "CASEMAPPING") options.CASEMAPPING = "rfc1459";
      else delete options[key];
      continue;
    }
    const value = eq === -1 ? undefined : unescapeValue(token.slice(eq + 1));
    const k = ownString(key);
    switch (key) {
      case "PREFIX":
        options.PREFIX = intern(`PREFIX=${value ?? ""}`, () => parsePrefix(value ?? ""));
        break;
      case "CHANTYPES":
      case "STATUSMSG":
        options[k] = intern(`${key}=${value ?? ""}`, () => Object.freeze((value ?? "").split("")));
        break;
      case "CHANMODES":
        options.CHANMODES = intern(`CHANMODES=${value ?? ""}`, () => Object.freeze((value ?? "").split(",")));
        break;
      default:
        options[k] = value === undefined ? true : ownString(value);
    }
  }
}

/** `(qaohv)~&@%+` → [{symbol, mode}…]; an empty value means no prefixes (isupport PREFIX). */
function parsePrefix(value: string): readonly PrefixEntry[] {
  const m = /^\(([^)]*)\)(.*)$/.exec(value);
  if (!m) return value === "" ? Object.freeze([]) : DEFAULT_PREFIX;
  const modes = m[1]!;
  const symbols = m[2]!;
  const out: PrefixEntry[] = [];
  for (let j = 0; j < modes.length && j < symbols.length; j++) out.push(Object.freeze({ symbol: symbols[j]!, mode: modes[j]! }));
  return Object.freeze(out);
}

export interface ModeChange {
  /** `+o`, `-k`… */
  mode: string;
  param: string | null;
}

/**
 * `+ov-k alice bob key` → [{mode:"+o",param:"alice"},…]. Which letters take a
 * parameter follows CHANMODES (RFC 2811 §4 groups A,B,C,D: A and B always, C
 * only when set) and PREFIX (always), as irc-framework's parseModeList does.
 * Without CHANMODES, RFC 2811's own `beI,k,l,imnpst` is assumed.
 */
export function parseModes(options: IsupportOptions, modeString: string | undefined, params: readonly string[]): ModeChange[] {
  const out: ModeChange[] = [];
  if (!modeString) return out;
  const groups = options.CHANMODES ?? RFC2811_CHANMODES;
  const always = (groups[0] ?? "") + (groups[1] ?? "");
  const whenSet = groups[2] ?? "";
  const prefix = options.PREFIX ?? DEFAULT_PREFIX;
  let adding = true;
  let j = 0;
  for (const c of modeString) {
    if (c === "+") adding = true;
    else if (c === "-") adding = false;
    else {
      const takes = always.includes(c) || prefix.some((p) => p.mode === c) || (adding && whenSet.includes(c));
      out.push({ mode: (adding ? "+" : "-") + c, param: takes ? (params[j++] ?? null) : null });
    }
  }
  return out;
}

const RFC2811_CHANMODES: readonly string[] = Object.freeze(["beI", "k", "l", "imnpst"]);

/**
 * Lower case under the server's CASEMAPPING: `ascii` lowers A–Z only,
 * `strict-rfc1459` also []\ → {}|, `rfc1459` (the default) also ~ → ^
 * (RFC 1459 §2.2; https://modern.ircdocs.horse/#casemapping-parameter).
 */
export function caseLower(casemapping: string | undefined, s: string): string {
  const upper = casemapping === "ascii" ? 90 : casemapping === "strict-rfc1459" ? 93 : 94;
  let out = "";
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= upper) {
      out += s.slice(start, i) + String.fromCharCode(c + 32);
      start = i + 1;
    }
  }
  return start === 0 ? s : out + s.slice(start);
}
