/**
 * Channel prefix modes → XEP-0045 role/affiliation, Biboumi's map:
 * +q (~) owner/moderator, +a (&) admin/moderator, +o (@) admin/moderator,
 * +h (%) member/moderator, +v (+) member/participant, none → none/participant.
 */
import type { Affiliation, Role } from "../../core/model.ts";

const BY_MODE: Record<string, { role: Role; affiliation: Affiliation }> = {
  q: { role: "moderator", affiliation: "owner" },
  a: { role: "moderator", affiliation: "admin" },
  o: { role: "moderator", affiliation: "admin" },
  h: { role: "moderator", affiliation: "member" },
  v: { role: "participant", affiliation: "member" },
};
/** The same by prefix symbol, for servers whose PREFIX we have not seen. */
const MODE_OF_SYMBOL: Record<string, string> = { "~": "q", "&": "a", "@": "o", "%": "h", "+": "v" };

const ROLE_RANK: Role[] = ["none", "visitor", "participant", "moderator"];
const AFF_RANK: Affiliation[] = ["outcast", "none", "member", "admin", "owner"];

export function modeForSymbol(symbol: string): string | undefined {
  return MODE_OF_SYMBOL[symbol];
}

/** The highest role and affiliation any of the prefix modes gives. */
export function rolesFromModes(modes: Iterable<string>): { role: Role; affiliation: Affiliation } {
  let role: Role = "participant";
  let affiliation: Affiliation = "none";
  for (const m of modes) {
    const r = BY_MODE[m];
    if (!r) continue;
    if (ROLE_RANK.indexOf(r.role) > ROLE_RANK.indexOf(role)) role = r.role;
    if (AFF_RANK.indexOf(r.affiliation) > AFF_RANK.indexOf(affiliation)) affiliation = r.affiliation;
  }
  return { role, affiliation };
}
