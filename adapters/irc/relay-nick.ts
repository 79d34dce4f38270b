/**
 * The spoofed nick a bridge relays a person's message under with IRCv3
 * draft/relaymsg (ircv3-specifications PR #417): `<nick><separator><network>`,
 * e.g. `alice/xmpp`.
 *
 * The spec makes servers reject reserved characters (`!+%@&#$:'"?*,.`,
 * whitespace) and, when the capability has a value, require one of its
 * characters (the "nickname separators"). Servers may accept more, but the
 * safe choice is an RFC 2812 §2.3.1 nickname on each side of the separator:
 * letters, digits and `[]\`_^{|}-`, not starting with a digit or '-', the
 * whole within the server's NICKLEN. Accents are dropped (NFKD, combining
 * marks removed) rather than the letters; what is left empty becomes `anon`.
 */

/** Used when the capability has no value (no separator required): '/' is what Ergo advertises. */
const DEFAULT_SEPARATOR = "/";
/** NICKLEN when the server does not say (RFC 2812 says 9, every current server advertises more). */
export const DEFAULT_NICKLEN = 30;

const NOT_NICK = /[^A-Za-z0-9[\]\\`_^{|}-]/g;
const RESERVED = /[!+%@&#$:'"?*,.\s\x00-\x1f\x7f]/u;

function clean(s: string, separators: string): string {
  let out = s.normalize("NFKD").replace(/\p{M}/gu, "").replace(NOT_NICK, "");
  for (const sep of separators) out = out.replaceAll(sep, "");
  return out;
}

/**
 * `separators`: the draft/relaymsg capability value; `nicklen`: ISUPPORT
 * NICKLEN. The result always holds exactly one separator and at least one
 * character of the person's name.
 */
export function relayNick(nick: string, network: string, options: { separators: string; nicklen?: number }): string {
  const sep = [...options.separators].find((c) => !RESERVED.test(c)) ?? DEFAULT_SEPARATOR;
  const nicklen = Math.max(options.nicklen ?? DEFAULT_NICKLEN, 3);
  let name = clean(nick, options.separators + sep) || "anon";
  if (/^[0-9-]/.test(name)) name = `_${name}`;
  let net = clean(network, options.separators + sep) || "net";
  const room = nicklen - sep.length;
  // The network keeps what the name leaves, but never crowds the name out entirely.
  net = net.slice(0, Math.max(1, Math.min(net.length, room - Math.min(name.length, 4))));
  name = name.slice(0, Math.max(1, room - net.length));
  return `${name}${sep}${net}`;
}
