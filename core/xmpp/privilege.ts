/**
 * XEP-0356 (Privileged Entity): what the user's server lets this component do
 * with its users' rosters, and the roster pushes that use it.
 *
 * The server advertises the permissions it grants in a `<message>` from its
 * own domain right after the component authenticates (§4.2), again after each
 * reconnection. Prosody 0.12's mod_privilege (Debian's prosody-modules
 * 0.0~hg20230223) speaks `urn:xmpp:privilege:2` (XEP-0356 0.4); earlier
 * servers speak `urn:xmpp:privilege:1`: the roster part we use is the same in
 * both, so both are read.
 *
 * Permissions are kept per granting server domain: a server can only manage
 * its own users' rosters, and a remote server sending such a message can at
 * most make us push roster items to its own users (which it controls anyway).
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { splitJid } from "../jid.ts";
import type { Network } from "../network.ts";
import { randomId } from "../ids.ts";

export const NS_PRIVILEGE = ["urn:xmpp:privilege:2", "urn:xmpp:privilege:1"] as const;
export const NS_ROSTER = "jabber:iq:roster";

/** XEP-0356 §3.1 roster access: `set`/`both` let the entity push items. */
export type RosterAccess = "none" | "get" | "set" | "both";

const ROSTER_ACCESS = new Set<string>(["none", "get", "set", "both"]);

/** The permissions of one `<privilege>` advertisement, as far as we use them. */
export interface PrivilegeGrant {
  /** The server domain that granted them (the message's `from`). */
  server: string;
  roster: RosterAccess;
}

/** Reads a privilege advertisement; undefined when the stanza is not one (or not from a bare domain). */
export function parsePrivilegeMessage(stanza: Element): PrivilegeGrant | undefined {
  if (stanza.name !== "message" || stanza.attrs.type === "error") return undefined;
  const privilege = NS_PRIVILEGE.map((ns) => stanza.getChild("privilege", ns)).find((p) => p !== undefined);
  if (!privilege) return undefined;
  const from = splitJid(stanza.attrs.from ?? "");
  // §4.2: the server itself advertises, from its bare domain.
  if (!from || from.local !== undefined || from.resource !== undefined) return undefined;
  const perm = privilege.getChildren("perm").find((p) => p.attrs.access === "roster");
  const type = perm?.attrs.type ?? "none";
  // A type we do not know grants nothing (§3.1 lists the values).
  return { server: from.domain.toLowerCase(), roster: ROSTER_ACCESS.has(type) ? (type as RosterAccess) : "none" };
}

/** The permissions granted to one component, by server domain. Forgotten when the stream drops: the server re-advertises them. */
export class Privileges {
  private readonly roster = new Map<string, RosterAccess>();

  constructor(link?: { on(event: "state", listener: (state: string) => void): unknown }) {
    // A server restarted with another configuration may grant less: only the advertisement
    // of the current stream counts (§4.2: sent at each connection).
    link?.on("state", (state) => {
      if (state !== "online") this.clear();
    });
  }

  /** A new advertisement replaces the previous one of that server. */
  apply(grant: PrivilegeGrant): void {
    if (grant.roster === "none") this.roster.delete(grant.server);
    else this.roster.set(grant.server, grant.roster);
  }

  rosterAccess(server: string): RosterAccess {
    return this.roster.get(server.toLowerCase()) ?? "none";
  }

  /** Whether we may push items into the roster of `user` (a bare JID). */
  canSetRoster(user: string): boolean {
    const domain = user.slice(user.indexOf("@") + 1);
    const access = this.rosterAccess(domain);
    return access === "set" || access === "both";
  }

  /** Revokes `set` for a server whose pushes fail (stale grant): callers fall back to subscriptions. */
  revokeSet(server: string): void {
    const access = this.rosterAccess(server);
    if (access === "both") this.roster.set(server.toLowerCase(), "get");
    else if (access === "set") this.roster.delete(server.toLowerCase());
  }

  clear(): void {
    this.roster.clear();
  }
}

/**
 * Takes the server's privilege advertisement (before access control: it comes
 * from a bare domain, which is not a user). True when the stanza was one.
 */
export function takePrivilegeMessage(net: Network, stanza: Element): boolean {
  const grant = parsePrivilegeMessage(stanza);
  if (!grant) return false;
  net.privileges.apply(grant);
  net.log.info({ server: grant.server, roster: grant.roster }, "XEP-0356 privileges advertised");
  return true;
}

export interface RosterItem {
  jid: string;
  name?: string;
  /** `remove` deletes the item (RFC 6121 §2.5). */
  subscription: "both" | "remove";
  groups?: string[];
}

/**
 * XEP-0356 §5.2 (roster set): an `<iq type="set">` to the user's bare JID with a
 * jabber:iq:roster query; the server applies it and pushes it to the user's
 * resources. Rejects (EstuaryError) on an error answer or a timeout.
 */
export async function setRosterItem(net: Network, user: string, item: RosterItem, timeoutMs = 10_000): Promise<void> {
  const iq = xml(
    "iq",
    { type: "set", id: randomId(), from: net.domain, to: user },
    xml(
      "query",
      { xmlns: NS_ROSTER },
      xml(
        "item",
        { jid: item.jid, subscription: item.subscription, ...(item.name !== undefined && item.subscription !== "remove" ? { name: item.name } : {}) },
        ...(item.subscription === "remove" ? [] : (item.groups ?? []).map((g) => xml("group", {}, g))),
      ),
    ),
  );
  await net.iq.request(iq, timeoutMs);
}
