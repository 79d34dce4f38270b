/**
 * Key names of the store (layout documented in index.ts).
 *
 * A key is `estuary:<kind>:<part>:<part>…`. Parts are arbitrary strings (JIDs,
 * IRC channels, Matrix room ids, message ids), so each is escaped: `%` → `%25`
 * and `:` → `%3A`. An escaped part holds no `:`, so splitting a key on `:`
 * gives back exactly the parts: two different part lists never share a key,
 * and a key built from a list is never a prefix-match of another list's key
 * except when that list extends it (which is what prefix deletion wants).
 */

export const ROOT = "estuary";

export function escapePart(part: string): string {
  return part.replaceAll("%", "%25").replaceAll(":", "%3A");
}

export function unescapePart(part: string): string {
  return part.replace(/%(25|3A)/g, (_, code: string) => (code === "25" ? "%" : ":"));
}

export function key(kind: string, ...parts: string[]): string {
  return [ROOT, kind, ...parts.map(escapePart)].join(":");
}

/** The prefix shared by every key `key(kind, ...parts, …more)`. */
export function prefix(kind: string, ...parts: string[]): string {
  return `${key(kind, ...parts)}:`;
}

/** The parts back from a key (inverse of `key`). */
export function parseKey(k: string): { kind: string; parts: string[] } | undefined {
  const [root, kind, ...rest] = k.split(":");
  if (root !== ROOT || kind === undefined) return undefined;
  return { kind, parts: rest.map(unescapePart) };
}

export const keys = {
  salt: () => key("meta", "salt"),
  keyCheck: () => key("meta", "keycheck"),
  networks: () => key("nets"),
  registration: (user: string, network: string) => key("reg", network, user),
  registrationIndex: (network: string) => key("regidx", network),
  rooms: (user: string, network: string) => key("rooms", user, network),
  scoped: (user: string, network: string, name: string) => key("kv", user, network, name),
  scopedIndex: (user: string, network: string) => key("kvidx", user, network),
  idEpoch: (user: string, network: string) => key("idgen", user, network),
  /** `side`: `L` legacy id → first XMPP id, `X` XMPP id → legacy id. */
  idEntry: (space: string, chat: string, side: "L" | "X", id: string) => key("id", space, chat, side, id),
  idSpacePrefix: (space: string) => prefix("id", space),
};
