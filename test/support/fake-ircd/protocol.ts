/**
 * Line syntax for the fake IRC server: RFC 1459 §2.3.1 messages with IRCv3
 * message tags (https://ircv3.net/specs/extensions/message-tags, "Format"
 * and "Escaping values").
 */

export interface Line {
  tags: Map<string, string>;
  /** `nick!user@host` or a server name, without the ':'. */
  prefix?: string;
  command: string;
  params: string[];
}

/** message-tags "Escaping values": `;` → `\:`, space → `\s`, `\` → `\\`, CR → `\r`, LF → `\n`. */
export function escapeTag(value: string): string {
  return value.replace(/[\\; \r\n]/g, (c) => ({ "\\": "\\\\", ";": "\\:", " ": "\\s", "\r": "\\r", "\n": "\\n" })[c]!);
}

/** The reverse; an invalid escape drops the backslash and a trailing lone backslash is dropped (same section). */
export function unescapeTag(raw: string): string {
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c !== "\\") {
      out += c;
      continue;
    }
    const next = raw[++i];
    if (next === undefined) break;
    out += ({ ":": ";", s: " ", "\\": "\\", r: "\r", n: "\n" } as Record<string, string>)[next] ?? next;
  }
  return out;
}

/** Parses one line (without CR/LF); undefined for an empty or command-less line. */
export function parseLine(raw: string): Line | undefined {
  let rest = raw;
  const tags = new Map<string, string>();
  if (rest.startsWith("@")) {
    const sp = rest.indexOf(" ");
    if (sp < 0) return undefined;
    for (const pair of rest.slice(1, sp).split(";")) {
      if (!pair) continue;
      const eq = pair.indexOf("=");
      if (eq < 0) tags.set(pair, "");
      else tags.set(pair.slice(0, eq), unescapeTag(pair.slice(eq + 1)));
    }
    rest = rest.slice(sp + 1).replace(/^ +/, "");
  }
  let prefix: string | undefined;
  if (rest.startsWith(":")) {
    const sp = rest.indexOf(" ");
    if (sp < 0) return undefined;
    prefix = rest.slice(1, sp);
    rest = rest.slice(sp + 1).replace(/^ +/, "");
  }
  const params: string[] = [];
  let command = "";
  while (rest !== "") {
    if (command !== "" && rest.startsWith(":")) {
      params.push(rest.slice(1));
      break;
    }
    const sp = rest.indexOf(" ");
    const word = sp < 0 ? rest : rest.slice(0, sp);
    rest = sp < 0 ? "" : rest.slice(sp + 1).replace(/^ +/, "");
    if (command === "") command = word.toUpperCase();
    else params.push(word);
  }
  if (command === "") return undefined;
  return prefix === undefined ? { tags, command, params } : { tags, prefix, command, params };
}

/**
 * Serialises a line. The last parameter becomes a trailing one (`:`) when it
 * needs it (empty, has a space, starts with ':'), or always when `trailing`.
 */
export function formatLine(line: { tags?: Map<string, string> | undefined; prefix?: string | undefined; command: string; params: string[] }, trailing = false): string {
  const parts: string[] = [];
  if (line.tags && line.tags.size > 0) {
    parts.push(`@${[...line.tags].map(([k, v]) => (v === "" ? k : `${k}=${escapeTag(v)}`)).join(";")}`);
  }
  if (line.prefix) parts.push(`:${line.prefix}`);
  parts.push(line.command);
  line.params.forEach((p, i) => {
    const last = i === line.params.length - 1;
    if (last && (trailing || p === "" || p.includes(" ") || p.startsWith(":"))) parts.push(`:${p}`);
    else parts.push(p);
  });
  return parts.join(" ");
}

/** RFC 1459 §2.2 casemapping (`{}|^` are the lower case of `[]\~`), which the fake advertises. */
export function ircLower(s: string): string {
  return s.toLowerCase().replace(/[[\]\\~]/g, (c) => ({ "[": "{", "]": "}", "\\": "|", "~": "^" })[c]!);
}

/** RFC 2812 §2.3.1 nickname: a letter or special first, then letters, digits, specials and '-'. */
export function validNick(nick: string, nicklen: number): boolean {
  return nick.length <= nicklen && /^[A-Za-z[\]\\`_^{|}][A-Za-z0-9[\]\\`_^{|}-]*$/.test(nick);
}

/** RFC 2812 §1.3 channel names (only '#' channels here): no space, comma, BEL or control character. */
export function validChannel(name: string): boolean {
  return /^#[^\s,\x00-\x1f\x7f]{1,49}$/.test(name);
}

/**
 * draft/relaymsg "Abuse prevention": servers MUST reject spoofed nicks with
 * the reserved characters `!+%@&#$:'"?*,.` or whitespace; with separators in
 * the capability value, one of them MUST be present.
 */
export function validSpoofedNick(nick: string, separators: string, nicklen: number): boolean {
  if (nick === "" || nick.length > nicklen) return false;
  if (/[!+%@&#$:'"?*,.\s\x00-\x1f\x7f]/u.test(nick)) return false;
  return separators === "" || [...separators].some((s) => nick.includes(s));
}
