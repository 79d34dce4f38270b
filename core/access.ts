/**
 * Who may use the gateway: users of the allowed domains or allowed bare JIDs
 * (from config `access.allow`), minus banned JIDs, and who is an admin
 * (`access.admins`). Everything is decided on the bare JID, lowercased as XMPP
 * compares them (RFC 7622: domainparts are case-insensitive; PRECIS casefolds
 * localparts). Allow/admin lists can be replaced at run time (config reload);
 * bans are set by admins and persisted by the caller.
 */
export interface Access {
  allows(bareJid: string): boolean;
  isAdmin(bareJid: string): boolean;
  isBanned(bareJid: string): boolean;
  /** Replaces the allow and admin lists (SIGHUP reload). */
  update(allow: string[], admins: string[]): void;
  ban(bareJid: string): void;
  unban(bareJid: string): void;
  banned(): string[];
  /** The text a refused user reads. */
  refusal: string;
}

export function createAccess(allow: string[], admins: string[], bannedJids: string[] = []): Access {
  let domains = new Set<string>();
  let jids = new Set<string>();
  let adminSet = new Set<string>();
  const bans = new Set(bannedJids.map((b) => b.toLowerCase()));
  const update = (allowList: string[], adminList: string[]): void => {
    domains = new Set();
    jids = new Set();
    for (const entry of allowList.map((a) => a.toLowerCase())) (entry.includes("@") ? jids : domains).add(entry);
    adminSet = new Set(adminList.map((a) => a.toLowerCase()));
  };
  update(allow, admins);
  return {
    allows(bare) {
      const b = bare.toLowerCase();
      if (bans.has(b)) return false;
      if (jids.has(b)) return true;
      const at = b.lastIndexOf("@");
      const domain = at >= 0 ? b.slice(at + 1) : b;
      // A bare domain (a server, another component) is not a user.
      return at > 0 && domains.has(domain);
    },
    isAdmin(bare) {
      return adminSet.has(bare.toLowerCase());
    },
    isBanned(bare) {
      return bans.has(bare.toLowerCase());
    },
    update,
    ban(bare) {
      bans.add(bare.toLowerCase());
    },
    unban(bare) {
      bans.delete(bare.toLowerCase());
    },
    banned() {
      return [...bans].sort();
    },
    refusal: "This gateway serves only users of its own XMPP server",
  };
}
