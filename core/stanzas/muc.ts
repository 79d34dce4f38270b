/**
 * MUC presence builders (XEP-0045 §7). Status codes used here:
 * 100 non-anonymous room, 110 self-presence, 210 nick changed by the room,
 * 303 nick change, 307 kicked, 301 banned, 333 removed for technical reasons
 * (XEP-0045 §7.14 / XEP-0410: used when the network connection is gone).
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import type { Affiliation, Occupant, Role, Show } from "../model.ts";
import { NS } from "./ns.ts";

export interface OccupantPresenceOptions {
  from: string; // room@domain/nick
  to: string;
  role: Role;
  affiliation: Affiliation;
  /** Real JID shown to others (the remote person's contact JID); rooms are non-anonymous. */
  jid?: string;
  show?: Show;
  status?: string;
  unavailable?: boolean;
  statuses?: number[];
  /** 303: the new nick. */
  newNick?: string;
  reason?: string;
  actor?: string;
  /** XEP-0421: a stable opaque id per occupant. */
  occupantId?: string;
  extra?: Element[];
}

export function occupantPresence(o: OccupantPresenceOptions): Element {
  const showEl = o.show && o.show !== "available" && o.show !== "offline" ? xml("show", {}, o.show) : undefined;
  return xml(
    "presence",
    { from: o.from, to: o.to, type: o.unavailable ? "unavailable" : undefined },
    showEl,
    o.status ? xml("status", {}, o.status) : undefined,
    xml(
      "x",
      { xmlns: NS.mucUser },
      xml(
        "item",
        { affiliation: o.affiliation, role: o.unavailable ? "none" : o.role, jid: o.jid, nick: o.newNick },
        o.actor ? xml("actor", { nick: o.actor }) : undefined,
        o.reason ? xml("reason", {}, o.reason) : undefined,
      ),
      ...(o.statuses ?? []).map((code) => xml("status", { code: String(code) })),
    ),
    o.occupantId ? xml("occupant-id", { xmlns: NS.occupantId, id: o.occupantId }) : undefined,
    ...(o.extra ?? []),
  );
}

export function occupantOptions(occupant: Occupant): Pick<OccupantPresenceOptions, "role" | "affiliation" | "show" | "status"> {
  return { role: occupant.role, affiliation: occupant.affiliation, show: occupant.show, status: occupant.status };
}
