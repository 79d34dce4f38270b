/**
 * The IRCv3 capabilities of one connection: what the server offers (CAP LS,
 * NEW, DEL) and what is enabled (ACK), with the shape of irc-framework's
 * `network.cap` (enabled, available, isEnabled) that the adapter reads.
 *
 * What a server offers is the same for every connection to it: the LS text is
 * kept as one shared string and its name→value Map is built once per
 * distinct text (module-level, bounded), not once per connection.
 */
import { ownString } from "./isupport.ts";

const CACHE_MAX = 64;
const parsed = new Map<string, ReadonlyMap<string, string>>();

function parse(ls: string): ReadonlyMap<string, string> {
  const hit = parsed.get(ls);
  if (hit) return hit;
  const map = new Map<string, string>();
  for (const token of ls.split(" ")) {
    if (token === "") continue;
    const eq = token.indexOf("=");
    // CAP LS 302: `name=value`; without a value, "" (as irc-framework keeps it).
    if (eq === -1) map.set(ownString(token), "");
    else map.set(ownString(token.slice(0, eq)), ownString(token.slice(eq + 1)));
  }
  if (parsed.size >= CACHE_MAX) parsed.clear();
  parsed.set(ls, map);
  return map;
}

const NONE: readonly string[] = Object.freeze([]);

export class Caps {
  /** Enabled capability names (shared strings: the constants asked for, or interned). */
  enabled: readonly string[] = NONE;
  /** What the server offers, as its LS text (`name[=value] …`). */
  ls = "";

  /** Offered capabilities, name → value ("" without one). Read-only: shared by every connection with the same offer. */
  get available(): ReadonlyMap<string, string> {
    return parse(this.ls);
  }

  isEnabled(name: string): boolean {
    return this.enabled.includes(name);
  }

  enable(name: string): void {
    if (!this.enabled.includes(name)) this.enabled = [...this.enabled, name];
  }

  disable(name: string): void {
    if (this.enabled.includes(name)) this.enabled = this.enabled.filter((n) => n !== name);
  }

  setAvailable(ls: string): void {
    this.ls = ownString(ls.trim());
  }

  /** CAP NEW. */
  addAvailable(list: string): void {
    this.setAvailable(`${this.ls} ${list}`);
  }

  /** CAP DEL. */
  removeAvailable(names: readonly string[]): void {
    this.setAvailable(
      this.ls
        .split(" ")
        .filter((t) => !names.includes(t.split("=")[0]!))
        .join(" "),
    );
  }
}
