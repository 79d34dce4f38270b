/**
 * XEP-0313 (Message Archive Management, urn:xmpp:mam:2) and XEP-0045 §7.2.14
 * (join history) stanzas for gateway rooms: parsing requests and building
 * answers. Pure: no I/O, no clock; the room's handler calls the archive
 * (archive.ts) in between.
 *
 * A 1:1 chat archive (history.directMessages) lives at the contact's bare
 * JID: its `room` is that JID, outgoing messages have `fromJid` = the user.
 *
 * A MAM exchange on a room JID (XEP-0313 §4):
 *   iq get  <query/>                 → iq result mamFormFields()
 *   iq set  <query>form? rsm?</query> → parseMamQuery → archive.query →
 *           one mamResultMessage per message (in page order, reversed when
 *           `flipPage`), then iq result mamFin(page)
 *   iq get  <metadata/>              → archive.metadata → iq result mamMetadata()
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { fail } from "../errors.ts";
import { NS } from "../stanzas/ns.ts";
import { occupantId } from "../stanzas/muc.ts";
import type { ArchiveMetadata, ArchivedMessage, ArchivePage } from "./archive.ts";

export const MAM_NS = "urn:xmpp:mam:2";
export const MAM_EXTENDED = "urn:xmpp:mam:2#extended";
export const RSM_NS = "http://jabber.org/protocol/rsm";
export const FORWARD_NS = "urn:xmpp:forward:0";
/** Forwarded stanzas carry the client namespace explicitly (XEP-0297 §3): the outer stream is jabber:component:accept. */
export const CLIENT_NS = "jabber:client";
const XDATA_VALIDATE = "http://jabber.org/protocol/xdata-validate";

/** Disco#info features a room with an archive advertises (XEP-0313 "Determining support"; XEP-0359). */
export const MAM_FEATURES = [MAM_NS, MAM_EXTENDED, NS.sid] as const;

export const MAM_DEFAULT_MAX = 50;
export const MAM_MAX = 250;

export interface MamQuery {
  queryId?: string;
  start?: Date;
  end?: Date;
  /** The form's `with` as sent (see mamWithFilter). */
  with?: string;
  /** Extended form `after-id`/`before-id`: exclusive bounds of the result set (XEP-0313 §4.1.3). */
  afterId?: string;
  beforeId?: string;
  /** RSM <after>: page forwards from this id. */
  after?: string;
  /** RSM <before>: page backwards before this id; `true` = empty <before/>, the last page. */
  before?: string | true;
  /** RSM <max>: default 50, capped at 250. */
  max: number;
  /** Extended form `ids`. */
  ids?: string[];
  /** XEP-0313 §4.3.4 <flip-page/>: send the page newest first (the page itself is unchanged). */
  flipPage: boolean;
}

/**
 * XEP-0082 DateTime (`CCYY-MM-DDThh:mm:ss[.sss]TZD`), checked field by field:
 * Date.parse alone accepts other shapes and rolls some impossible dates over.
 * Returns undefined when the text is not one.
 */
export function parseDateTime(text: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-](\d{2}):(\d{2}))$/.exec(text.trim());
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return undefined;
  const date = new Date(text.trim());
  return Number.isFinite(date.getTime()) ? date : undefined;
}

function dateField(value: string, name: string): Date {
  const date = parseDateTime(value);
  if (date === undefined) throw fail("bad-request", `The ${name} field must be an XEP-0082 date-time, like 2010-06-07T00:00:00Z`);
  return date;
}

/** Strips Clark notation of the extended namespace: `{urn:xmpp:mam:2#extended}after-id` → `after-id`. */
function fieldName(v: string): string {
  const prefix = `{${MAM_EXTENDED}}`;
  return v.startsWith(prefix) ? v.slice(prefix.length) : v;
}

/** Reads an `<iq type="set"><query xmlns="urn:xmpp:mam:2">` (XEP-0313 §4). Errors are EstuaryErrors. */
export function parseMamQuery(iq: Element): MamQuery {
  const query = iq.getChild("query", MAM_NS);
  if (!query) throw fail("bad-request", "Expected a urn:xmpp:mam:2 query");
  const result: MamQuery = { max: MAM_DEFAULT_MAX, flipPage: query.getChild("flip-page") !== undefined };
  if (query.attrs.queryid) result.queryId = query.attrs.queryid;
  if (query.attrs.node !== undefined) throw fail("unsupported", "This archive has no pubsub nodes");

  const form = query.getChild("x", NS.data);
  if (form) {
    if (form.attrs.type !== undefined && form.attrs.type !== "submit") throw fail("bad-request", "The query form must be of type submit");
    for (const field of form.getChildren("field")) {
      const name = fieldName(field.attrs.var ?? "");
      const values = field.getChildren("value").map((v) => v.getText());
      const one = (): string | undefined => {
        if (values.length > 1) throw fail("bad-request", `The ${name} field takes one value`);
        const v = values[0]?.trim();
        return v === undefined || v === "" ? undefined : v;
      };
      switch (name) {
        case "FORM_TYPE":
          if (one() !== MAM_NS) throw fail("bad-request", `The query form must be of type ${MAM_NS}`);
          break;
        case "start": {
          const v = one();
          if (v !== undefined) result.start = dateField(v, "start");
          break;
        }
        case "end": {
          const v = one();
          if (v !== undefined) result.end = dateField(v, "end");
          break;
        }
        case "with": {
          const v = one();
          if (v !== undefined) result.with = v;
          break;
        }
        case "after-id": {
          const v = one();
          if (v !== undefined) result.afterId = v;
          break;
        }
        case "before-id": {
          const v = one();
          if (v !== undefined) result.beforeId = v;
          break;
        }
        case "ids": {
          // An empty ids field selects nothing in particular: no filter.
          const list = values.map((v) => v.trim()).filter((v) => v !== "");
          if (list.length > 0) result.ids = list;
          break;
        }
        default:
          // XEP-0313 §4.1.5: an unrecognised field is feature-not-implemented.
          throw fail("unsupported", `This archive does not support the ${name || "unnamed"} field`);
      }
    }
  }
  // A start after the end is no error (XEP-0313 §4.1.2 defines each bound alone; Prosody answers
  // such a query too): the archive finds nothing between them, an empty and complete page.

  const set = query.getChild("set", RSM_NS);
  if (set) {
    const maxText = set.getChildText("max");
    if (maxText !== null) {
      if (!/^\d+$/.test(maxText.trim())) throw fail("bad-request", "RSM max must be a non-negative integer");
      result.max = Math.min(Number(maxText.trim()), MAM_MAX);
    }
    const after = set.getChild("after");
    if (after) {
      const id = after.getText().trim();
      if (id === "") throw fail("bad-request", "RSM after needs an id");
      result.after = id;
    }
    const before = set.getChild("before");
    if (before) {
      const id = before.getText().trim();
      result.before = id === "" ? true : id;
    }
    // XEP-0059 §2.5 page jumping by index: we page by id only.
    if (set.getChild("index")) throw fail("unsupported", "RSM index is not supported: page with after/before");
  }
  return result;
}

/**
 * What the form's `with` selects in a room archive (XEP-0313 §4.1.1): an
 * occupant JID `room/nick` → that nick; any other JID → the real JID of the
 * sender (a bare JID matching its resources too).
 */
export function mamWithFilter(value: string, roomJid: string): { with: string } | { withJid: string } {
  const prefix = `${roomJid}/`;
  if (value.startsWith(prefix) && value.length > prefix.length) return { with: value.slice(prefix.length) };
  return { withJid: value };
}

/**
 * What the form's `with` selects in a 1:1 archive: every message of it is
 * with the contact, so the contact's JID (bare or full) filters nothing; any
 * other JID selects the messages from that JID (the user's own, or none).
 */
export function directWithFilter(value: string, contactJid: string): { withJid?: string } {
  const bare = value.split("/")[0] ?? value;
  return bare === contactJid ? {} : { withJid: value };
}

/** An outgoing message of a 1:1 archive: the user wrote it. */
export function isOwnDirect(m: ArchivedMessage): boolean {
  return m.fromJid === m.user;
}

/**
 * The archived 1:1 message as it went (XEP-0313 §4.2: the original stanza):
 * type chat, from the contact to the user or from the user to the contact,
 * with the stanza-id the archive at the contact's JID assigned (XEP-0359 §4:
 * `by` is the archiving entity).
 */
function archivedChatStanza(m: ArchivedMessage, contactJid: string): Element {
  const own = isOwnDirect(m);
  return xml(
    "message",
    { xmlns: CLIENT_NS, type: "chat", from: own ? m.user : contactJid, to: own ? contactJid : m.user, id: m.originId ?? m.archiveId },
    m.retracted ? xml("retracted", { xmlns: NS.retract, stamp: m.retractedAt?.toISOString() }) : xml("body", {}, m.correctedBody ?? m.body),
    m.originId !== undefined ? xml("origin-id", { xmlns: NS.sid, id: m.originId }) : undefined,
    xml("stanza-id", { xmlns: NS.sid, id: m.archiveId, by: contactJid }),
  );
}

/** The archived message as a room delivers it: type groupchat, from the occupant JID, no `to` (XEP-0313 "MUC Archives" business rules). */
function archivedStanza(m: ArchivedMessage, roomJid: string, to?: string, delayFrom?: string): Element {
  return xml(
    "message",
    { xmlns: to === undefined ? CLIENT_NS : undefined, type: "groupchat", from: `${roomJid}/${m.from}`, to, id: m.originId ?? m.archiveId },
    m.retracted
      ? // XEP-0424 §5.1 tombstone: no body, the retraction time, the origin-id for matching.
        xml("retracted", { xmlns: NS.retract, stamp: m.retractedAt?.toISOString() })
      : // XEP-0308 §5: an archive may keep the corrected text in place of the original.
        xml("body", {}, m.correctedBody ?? m.body),
    delayFrom !== undefined ? xml("delay", { xmlns: NS.delay, stamp: m.at.toISOString(), from: delayFrom }) : undefined,
    m.fromJid !== undefined ? xml("x", { xmlns: NS.mucUser }, xml("item", { jid: m.fromJid })) : undefined,
    m.originId !== undefined ? xml("origin-id", { xmlns: NS.sid, id: m.originId }) : undefined,
    xml("stanza-id", { xmlns: NS.sid, id: m.archiveId, by: roomJid }),
    // XEP-0421 §4: history and MAM results carry the sender's occupant-id, the one of their presences.
    xml("occupant-id", { xmlns: NS.occupantId, id: occupantId(roomJid, { nick: m.from, ...(m.fromJid !== undefined ? { jid: m.fromJid } : {}) }) }),
  );
}

/**
 * One XEP-0313 §4.2 result: `<message from=archive to><result queryid id><forwarded><delay/><message/></forwarded></result></message>`.
 * `roomJid` is the archive's JID: a room's, or with `direct` a contact's (a 1:1 archive).
 */
export function mamResultMessage(m: ArchivedMessage, opts: { to: string; queryId?: string; roomJid: string; direct?: boolean }): Element {
  const original = opts.direct === true ? archivedChatStanza(m, opts.roomJid) : archivedStanza(m, opts.roomJid);
  return xml(
    "message",
    { from: opts.roomJid, to: opts.to },
    xml(
      "result",
      { xmlns: MAM_NS, queryid: opts.queryId, id: m.archiveId },
      xml("forwarded", { xmlns: FORWARD_NS }, xml("delay", { xmlns: NS.delay, stamp: m.at.toISOString() }), original),
    ),
  );
}

/** The `<fin/>` that goes in the iq result after the result messages (XEP-0313 §4.3; XEP-0059 §2). */
export function mamFin(result: Pick<ArchivePage, "complete" | "first" | "last" | "count" | "index">): Element {
  return xml(
    "fin",
    // "complete" omitted when false: XEP-0313 §4.3.2 allows omitting it or "false".
    { xmlns: MAM_NS, complete: result.complete ? "true" : undefined },
    xml(
      "set",
      { xmlns: RSM_NS },
      result.first !== undefined ? xml("first", { index: result.index?.toString() }, result.first) : undefined,
      result.last !== undefined ? xml("last", {}, result.last) : undefined,
      result.count !== undefined ? xml("count", {}, String(result.count)) : undefined,
    ),
  );
}

/** Answer to `<iq type="get"><query xmlns="urn:xmpp:mam:2"/>`: the fields this archive understands (XEP-0313 §4.1.5). */
export function mamFormFields(): Element {
  return xml(
    "query",
    { xmlns: MAM_NS },
    xml(
      "x",
      { xmlns: NS.data, type: "form" },
      xml("field", { type: "hidden", var: "FORM_TYPE" }, xml("value", {}, MAM_NS)),
      xml("field", { type: "jid-single", var: "with" }),
      xml("field", { type: "text-single", var: "start" }),
      xml("field", { type: "text-single", var: "end" }),
      xml("field", { type: "text-single", var: "before-id" }),
      xml("field", { type: "text-single", var: "after-id" }),
      // The id list is open-ended: a XEP-0122 validate element instead of options.
      xml("field", { type: "list-multi", var: "ids" }, xml("validate", { xmlns: XDATA_VALIDATE, datatype: "xs:string" }, xml("open"))),
    ),
  );
}

/** Answer to `<iq type="get"><metadata xmlns="urn:xmpp:mam:2"/>` (XEP-0313 "Archive metadata"); empty when the archive is. */
export function mamMetadata(meta: ArchiveMetadata): Element {
  return xml(
    "metadata",
    { xmlns: MAM_NS },
    meta.start ? xml("start", { id: meta.start.id, timestamp: meta.start.at.toISOString() }) : undefined,
    meta.end ? xml("end", { id: meta.end.id, timestamp: meta.end.at.toISOString() }) : undefined,
  );
}

export interface MucHistoryRequest {
  maxStanzas?: number;
  maxChars?: number;
  seconds?: number;
  since?: Date;
}

/**
 * The `<history/>` of a join presence (XEP-0045 §7.2.14). Attributes that are
 * not what the XEP defines (non-negative integers, a XEP-0082 date-time) are
 * ignored rather than failing the join: the room then sends its default.
 */
export function parseMucHistory(presence: Element): MucHistoryRequest {
  const history = presence.getChild("x", NS.muc)?.getChild("history");
  const out: MucHistoryRequest = {};
  if (!history) return out;
  const count = (name: string): number | undefined => {
    const v = history.attrs[name]?.trim();
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
  };
  const maxStanzas = count("maxstanzas");
  const maxChars = count("maxchars");
  const seconds = count("seconds");
  const since = history.attrs.since !== undefined ? parseDateTime(history.attrs.since) : undefined;
  if (maxStanzas !== undefined) out.maxStanzas = maxStanzas;
  if (maxChars !== undefined) out.maxChars = maxChars;
  if (seconds !== undefined) out.seconds = seconds;
  if (since !== undefined) out.since = since;
  return out;
}

/** A join history message (XEP-0045 §7.2.14): from the occupant JID, with a XEP-0203 delay from the room. */
export function historyMessage(m: ArchivedMessage, opts: { to: string; roomJid: string }): Element {
  return archivedStanza(m, opts.roomJid, opts.to, opts.roomJid);
}
