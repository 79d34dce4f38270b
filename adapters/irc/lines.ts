/**
 * IRC line safety and splitting (RFC 1459 §2.3 / modern.ircdocs.horse
 * "Messages"): a line is at most 512 bytes including the CRLF, and CR, LF and
 * NUL can never appear inside a parameter, or a parameter could end the line
 * and start a second, attacker-chosen command.
 */

const UNSAFE = /[\r\n\0]/g;

/** Removes every character that could end an IRC line early. Applied to every string that reaches the wire. */
export function stripUnsafe(s: string): string {
  return s.replace(UNSAFE, "");
}

/**
 * Text that must fit one line (a topic, a kick reason): line breaks become one
 * space, so "a\nb" reads "a b" rather than "ab"; then stripUnsafe.
 */
export function oneLine(s: string): string {
  return stripUnsafe(s.replace(/[ \t]*(?:\r\n|[\r\n])+[ \t]*/g, " "));
}

/** A middle (non-trailing) parameter: additionally no space, no leading ':', not empty. */
export function safeMiddle(s: string): string | undefined {
  const v = stripUnsafe(s).replace(/[\s]/g, "");
  if (v === "" || v.startsWith(":")) return undefined;
  return v;
}

export function byteLength(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** Largest index ≤ what fits in maxBytes, on a code point boundary (then a grapheme boundary when one is close). */
function cutIndex(text: string, maxBytes: number): number {
  let bytes = 0;
  let i = 0;
  for (const ch of text) {
    const b = byteLength(ch);
    if (bytes + b > maxBytes) break;
    bytes += b;
    i += ch.length;
  }
  if (i >= text.length) return i;
  // Prefer not to cut inside a grapheme cluster (emoji with modifiers, combining marks).
  let best = 0;
  for (const seg of segmenter.segment(text.slice(0, i + 32))) {
    if (seg.index > i) break;
    best = seg.index;
  }
  return best > 0 ? best : i;
}

/**
 * Splits text into pieces of at most maxBytes UTF-8 bytes, on word boundaries
 * (the one whitespace character at each cut is dropped), hard-cutting only
 * words longer than the limit, never inside a code point.
 */
export function splitByBytes(text: string, maxBytes: number): string[] {
  if (maxBytes < 4) throw new RangeError("maxBytes must leave room for one code point");
  const pieces: string[] = [];
  let rest = text;
  while (byteLength(rest) > maxBytes) {
    const cut = cutIndex(rest, maxBytes);
    const window = rest.slice(0, cut + 1);
    // A whitespace right at the cut (index `cut`) is a perfect word boundary too.
    let ws = -1;
    for (let k = window.length - 1; k > 0; k--) {
      const c = window[k];
      if (c === " " || c === "\t") {
        ws = k;
        break;
      }
    }
    if (ws > 0) {
      pieces.push(rest.slice(0, ws));
      rest = rest.slice(ws + 1);
    } else {
      pieces.push(rest.slice(0, cut));
      rest = rest.slice(cut);
    }
  }
  if (rest !== "" || pieces.length === 0) pieces.push(rest);
  return pieces;
}

/** Worst case when the server has not told us our host (RFC 1035 label limit as the common HOSTLEN). */
export const WORST_CASE_HOST = 63;

/**
 * Bytes left for the text of `COMMAND target :text` once the server relays it
 * as `:nick!user@host COMMAND target :text\r\n` within lineLen.
 */
export function maxBodyBytes(p: {
  lineLen?: number;
  nick: string;
  user?: string;
  host?: string;
  command: string;
  target: string;
}): number {
  const user = p.user ?? "~xxxxxxxxxx";
  const host = p.host ?? "x".repeat(WORST_CASE_HOST);
  const prefix = `:${p.nick}!${user}@${host} ${p.command} ${p.target} :`;
  return (p.lineLen ?? 512) - 2 - byteLength(prefix);
}
