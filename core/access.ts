/**
 * Who may use the gateway: users of the allowed domains or allowed bare JIDs
 * (from config `access.allow`), and who is an admin (`access.admins`).
 * Everything is decided on the bare JID, lowercased as XMPP compares them
 * (RFC 7622: domainparts are case-insensitive; PRECIS casefolds localparts).
 */
export interface Access {
  allows(bareJid: string): boolean;
  isAdmin(bareJid: string): boolean;
  /** The text a refused user reads. */
  refusal: string;
}

export function createAccess(allow: string[], admins: string[]): Access {
  const domains = new Set<string>();
  const jids = new Set<string>();
  for (const entry of allow.map((a) => a.toLowerCase())) (entry.includes("@") ? jids : domains).add(entry);
  const adminSet = new Set(admins.map((a) => a.toLowerCase()));
  return {
    allows(bare) {
      const b = bare.toLowerCase();
      if (jids.has(b)) return true;
      const at = b.lastIndexOf("@");
      const domain = at >= 0 ? b.slice(at + 1) : b;
      // A bare domain (a server, another component) is not a user.
      return at > 0 && domains.has(domain);
    },
    isAdmin(bare) {
      return adminSet.has(bare.toLowerCase());
    },
    refusal: "This gateway serves only users of its own XMPP server",
  };
}
