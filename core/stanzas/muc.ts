/**
 * MUC presence builders (XEP-0045 §7). Status codes used here:
 * 100 non-anonymous room, 110 self-presence, 210 nick changed by the room,
 * 303 nick change, 307 kicked, 301 banned, 333 removed for technical reasons
 * (XEP-0045 §7.14 / XEP-0410: used when the network connection is gone).
 */
import { createHash } from "node:crypto";
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import type { EstuaryError } from "../errors.ts";
import type { Affiliation, Occupant, Role, Show } from "../model.ts";
import { errorElement } from "./error.ts";
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

/**
 * XEP-0421 occupant-id of whoever speaks in a room: the same for their
 * presences, live messages, join history and MAM results (§4: "every message
 * and every presence"), so it is derived from what the archive keeps too:
 * `jid` is the sender's real JID (a network contact's JID, or the user's own
 * bare JID for themselves), `nick` the occupant nick when no JID is known.
 * Stable per room and person (§5.1), opaque, 22 characters. Gateway rooms are
 * non-anonymous (the real JID is in every presence), so the hash hides nothing
 * that §5.1's pseudonymity rule protects.
 */
export function occupantId(roomJid: string, who: { jid?: string; nick: string }): string {
  const key = who.jid !== undefined ? `jid:${who.jid}` : `nick:${who.nick}`;
  return createHash("sha256").update(`${roomJid}\n${key}`).digest("base64url").slice(0, 22);
}

export function occupantOptions(occupant: Occupant): Pick<OccupantPresenceOptions, "role" | "affiliation" | "show" | "status"> {
  return { role: occupant.role, affiliation: occupant.affiliation, show: occupant.show, status: occupant.status };
}

/**
 * The `<error/>` of a refused MUC join, as XEP-0045 §7.2 prescribes per case
 * (clients act on the condition: Conversations and Gajim ask for a password
 * on not-authorized, say "members only" on registration-required):
 * §7.2.6 password → not-authorized (auth); §7.2.7 members only →
 * registration-required (auth); §7.2.8 banned → forbidden (auth); §7.2.9 nick
 * → conflict (cancel); §7.2.10 room full → service-unavailable (wait).
 * `passwordRequired`: the network refused the password (or its absence).
 */
export function mucJoinError(e: EstuaryError, passwordRequired: boolean, by?: string): Element {
  const text = e.kind === "internal" ? "Internal gateway error" : e.message;
  if (passwordRequired) return errorWith("not-authorized", "auth", text, by);
  if (e.kind === "service-unavailable") return errorWith("service-unavailable", "wait", text, by);
  return errorElement(e.kind, text, by);
}

function errorWith(condition: string, type: string, text: string, by?: string): Element {
  return xml("error", { type, by }, xml(condition, { xmlns: NS.stanzas }), text ? xml("text", { xmlns: NS.stanzas, "xml:lang": "en" }, text) : undefined);
}

/** What a room's XEP-0045 §6.4 muc#roominfo form says; each field only when known. */
export interface RoomInfoFields {
  description?: string;
  subject?: string;
  /** Occupants, the user included. */
  occupants?: number;
  /** Whether occupants may change the subject (muc#roominfo_changesubject). */
  changeSubject?: boolean;
}

/**
 * The XEP-0128 extended info of a room's disco#info (XEP-0045 §6.4, the
 * muc#roominfo FORM_TYPE registered in §15.5.4): Gajim and Conversations
 * show the occupant count, subject and description from it before joining
 * and in the room's details.
 */
export function roomInfoForm(f: RoomInfoFields): Element {
  const field = (v: string, value: string | undefined, label: string) =>
    value === undefined ? undefined : xml("field", { var: v, label }, xml("value", {}, value));
  return xml(
    "x",
    { xmlns: NS.data, type: "result" },
    xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, "http://jabber.org/protocol/muc#roominfo")),
    field("muc#roominfo_description", f.description, "Description"),
    field("muc#roominfo_subject", f.subject, "Current Discussion Topic"),
    field("muc#roominfo_occupants", f.occupants?.toString(), "Number of occupants"),
    field("muc#roominfo_changesubject", f.changeSubject === undefined ? undefined : f.changeSubject ? "1" : "0", "Occupants May Change the Subject"),
  );
}
