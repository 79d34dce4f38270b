import type { Element } from "@xmpp/xml";
import { beforeAll, describe, expect, it } from "vitest";
import type { ArchivedMessage } from "../../../../core/history/archive.ts";
import {
  MAM_MAX,
  mamFin,
  mamFormFields,
  mamMetadata,
  mamResultMessage,
  mamWithFilter,
  historyMessage,
  parseDateTime,
  parseMamQuery,
  parseMucHistory,
} from "../../../../core/history/mam.ts";
import { EstuaryError } from "../../../../core/errors.ts";
import { occupantId } from "../../../../core/stanzas/muc.ts";

// xmpp.js' own XML parser (the one the component reads the stream with); it ships no types.
let parse: (s: string) => Element;
beforeAll(async () => {
  const specifier = "@xmpp/xml/lib/parse.js";
  parse = ((await import(specifier)) as { default: (s: string) => Element }).default;
});

const ROOM = "coven@chat.shakespeare.lit";

function iq(query: string): Element {
  return parse(`<iq type='set' id='juliet1' from='hag66@shakespeare.lit/pda' to='${ROOM}'>${query}</iq>`);
}

function form(fields: string): string {
  return `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>${fields}</x>`;
}

function kindOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof EstuaryError ? e.kind : `not an EstuaryError: ${String(e)}`;
  }
  return undefined;
}

describe("parseMamQuery", () => {
  it("reads a bare query with defaults", () => {
    expect(parseMamQuery(iq("<query xmlns='urn:xmpp:mam:2' queryid='f27'/>"))).toEqual({ queryId: "f27", max: 50, flipPage: false });
  });

  it("reads the time range, with, and RSM paging (XEP-0313 examples)", () => {
    const q = parseMamQuery(
      iq(
        `<query xmlns='urn:xmpp:mam:2' queryid='q1'>${form(
          "<field var='with'><value>juliet@capulet.lit</value></field>" +
            "<field var='start'><value>2010-06-07T00:00:00Z</value></field>" +
            "<field var='end'><value>2010-07-07T13:23:54+02:00</value></field>",
        )}<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>09af3-cc343-b409f</after></set></query>`,
      ),
    );
    expect(q).toEqual({
      queryId: "q1",
      with: "juliet@capulet.lit",
      start: new Date("2010-06-07T00:00:00Z"),
      end: new Date("2010-07-07T11:23:54Z"),
      max: 10,
      after: "09af3-cc343-b409f",
      flipPage: false,
    });
  });

  it("reads an empty <before/> as the last page and a filled one as an id", () => {
    const last = parseMamQuery(iq("<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>10</max><before/></set></query>"));
    expect(last.before).toBe(true);
    const before = parseMamQuery(iq("<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><before>abc</before></set></query>"));
    expect(before.before).toBe("abc");
  });

  it("reads the extended fields, plain and in Clark notation, and flip-page", () => {
    const q = parseMamQuery(
      iq(
        `<query xmlns='urn:xmpp:mam:2'>${form(
          "<field var='after-id'><value>28482-98726-73623</value></field>" +
            "<field var='{urn:xmpp:mam:2#extended}before-id'><value>09af3-cc343-b409f</value></field>" +
            "<field var='ids' type='list-multi'><value>a</value><value>b</value></field>",
        )}<flip-page/></query>`,
      ),
    );
    expect(q).toMatchObject({ afterId: "28482-98726-73623", beforeId: "09af3-cc343-b409f", ids: ["a", "b"], flipPage: true });
    const empty = parseMamQuery(iq(`<query xmlns='urn:xmpp:mam:2'>${form("<field var='ids' type='list-multi'/>")}</query>`));
    expect(empty.ids).toBeUndefined();
  });

  it("caps max at 250", () => {
    const q = parseMamQuery(iq("<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>100000</max></set></query>"));
    expect(q.max).toBe(MAM_MAX);
  });

  it("takes a start after the end as asked (XEP-0313 §4.1.2: an empty result, not an error)", () => {
    const q = parseMamQuery(
      iq(`<query xmlns='urn:xmpp:mam:2'>${form("<field var='start'><value>2011-01-01T00:00:00Z</value></field><field var='end'><value>2010-01-01T00:00:00Z</value></field>")}</query>`),
    );
    expect(q.start).toEqual(new Date("2011-01-01T00:00:00Z"));
    expect(q.end).toEqual(new Date("2010-01-01T00:00:00Z"));
  });

  it("rejects bad dates and bad max", () => {
    const bad = (fields: string) => kindOf(() => parseMamQuery(iq(`<query xmlns='urn:xmpp:mam:2'>${form(fields)}</query>`)));
    for (const date of ["yesterday", "2010-13-01T00:00:00Z", "2010-02-30T00:00:00Z", "2010-06-07", "2010-06-07T25:00:00Z", "2010-06-07T00:00:00"]) {
      expect(bad(`<field var='start'><value>${date}</value></field>`), date).toBe("bad-request");
    }
    expect(bad("<field var='end'><value>not a date</value></field>")).toBe("bad-request");
    for (const max of ["-1", "ten", "1.5", ""]) {
      expect(
        kindOf(() => parseMamQuery(iq(`<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>${max}</max></set></query>`))),
        max,
      ).toBe("bad-request");
    }
  });

  it("refuses unknown fields (feature-not-implemented), other form types and a missing query", () => {
    expect(kindOf(() => parseMamQuery(iq(`<query xmlns='urn:xmpp:mam:2'>${form("<field var='include-groupchat'><value>true</value></field>")}</query>`)))).toBe(
      "unsupported",
    );
    expect(
      kindOf(() =>
        parseMamQuery(
          iq("<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field></x></query>"),
        ),
      ),
    ).toBe("bad-request");
    expect(kindOf(() => parseMamQuery(iq("<query xmlns='urn:xmpp:mam:1'/>")))).toBe("bad-request");
    expect(kindOf(() => parseMamQuery(iq("<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><index>3</index></set></query>")))).toBe(
      "unsupported",
    );
  });

  it("maps `with` to a nick or a real JID", () => {
    expect(mamWithFilter(`${ROOM}/firstwitch`, ROOM)).toEqual({ with: "firstwitch" });
    expect(mamWithFilter("witch1@shakespeare.lit", ROOM)).toEqual({ withJid: "witch1@shakespeare.lit" });
  });
});

describe("parseDateTime", () => {
  it("accepts XEP-0082 date-times with fractions and offsets", () => {
    expect(parseDateTime("2002-10-13T23:58:37.123Z")?.toISOString()).toBe("2002-10-13T23:58:37.123Z");
    expect(parseDateTime("2002-10-13T23:58:37-07:00")?.toISOString()).toBe("2002-10-14T06:58:37.000Z");
    expect(parseDateTime("2024-02-29T00:00:00Z")?.toISOString()).toBe("2024-02-29T00:00:00.000Z");
    expect(parseDateTime("2023-02-29T00:00:00Z")).toBeUndefined();
  });
});

const message: ArchivedMessage = {
  archiveId: "34482-21985-73620",
  user: "hag66@shakespeare.lit",
  network: "irc",
  room: ROOM,
  from: "firstwitch",
  fromJid: "witch1@shakespeare.lit",
  at: new Date("2002-10-13T23:58:37Z"),
  body: "Thrice the brinded cat hath mew'd.",
};

describe("mamResultMessage", () => {
  it("forwards the message from the occupant JID with delay, real JID and stanza-id", () => {
    const el = mamResultMessage(message, { to: "hag66@shakespeare.lit/pda", queryId: "g27", roomJid: ROOM });
    expect(el.toString()).toBe(
      parse(
        `<message from='${ROOM}' to='hag66@shakespeare.lit/pda'>` +
          "<result xmlns='urn:xmpp:mam:2' queryid='g27' id='34482-21985-73620'>" +
          "<forwarded xmlns='urn:xmpp:forward:0'>" +
          "<delay xmlns='urn:xmpp:delay' stamp='2002-10-13T23:58:37.000Z'/>" +
          `<message xmlns='jabber:client' type='groupchat' from='${ROOM}/firstwitch' id='34482-21985-73620'>` +
          "<body>Thrice the brinded cat hath mew&apos;d.</body>" +
          "<x xmlns='http://jabber.org/protocol/muc#user'><item jid='witch1@shakespeare.lit'/></x>" +
          `<stanza-id xmlns='urn:xmpp:sid:0' id='34482-21985-73620' by='${ROOM}'/>` +
          `<occupant-id xmlns='urn:xmpp:occupant-id:0' id='${occupantId(ROOM, { jid: "witch1@shakespeare.lit", nick: "firstwitch" })}'/>` +
          "</message></forwarded></result></message>",
      ).toString(),
    );
    // XEP-0421 §4: the id is the sender's, by real JID when known, else by nick; stable and distinct.
    expect(occupantId(ROOM, { jid: "witch1@shakespeare.lit", nick: "firstwitch" })).toBe(occupantId(ROOM, { jid: "witch1@shakespeare.lit", nick: "renamed" }));
    expect(occupantId(ROOM, { nick: "firstwitch" })).not.toBe(occupantId(ROOM, { jid: "witch1@shakespeare.lit", nick: "firstwitch" }));
    expect(occupantId(`other-${ROOM}`, { jid: "witch1@shakespeare.lit", nick: "firstwitch" })).not.toBe(occupantId(ROOM, { jid: "witch1@shakespeare.lit", nick: "firstwitch" }));
    // XEP-0313 MUC archive rules: the forwarded message has no `to`.
    const inner = el.getChild("result")?.getChild("forwarded")?.getChild("message");
    expect(inner?.attrs.to).toBeUndefined();
  });

  it("uses the sender's origin id and the corrected text", () => {
    const el = mamResultMessage({ ...message, originId: "orig-1", correctedBody: "fixed" }, { to: "u@x/r", roomJid: ROOM });
    expect(el.getChild("result")?.attrs.queryid).toBeUndefined();
    const inner = el.getChild("result")?.getChild("forwarded")?.getChild("message") as Element;
    expect(inner.attrs.id).toBe("orig-1");
    expect(inner.getChildText("body")).toBe("fixed");
    expect(inner.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id).toBe("orig-1");
  });

  it("sends a retracted message as a tombstone without body", () => {
    const el = mamResultMessage(
      { ...message, body: "", retracted: true, retractedAt: new Date("2019-09-20T23:09:32Z"), originId: "o1" },
      { to: "u@x/r", roomJid: ROOM },
    );
    const inner = el.getChild("result")?.getChild("forwarded")?.getChild("message") as Element;
    expect(inner.getChild("body")).toBeUndefined();
    expect(inner.getChild("retracted", "urn:xmpp:message-retract:1")?.attrs.stamp).toBe("2019-09-20T23:09:32.000Z");
    expect(inner.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id).toBe("o1");
  });
});

describe("mamFin", () => {
  it("carries first with index, last, count and complete", () => {
    expect(mamFin({ complete: true, first: "a", last: "b", count: 16, index: 0 }).toString()).toBe(
      parse(
        "<fin xmlns='urn:xmpp:mam:2' complete='true'><set xmlns='http://jabber.org/protocol/rsm'><first index='0'>a</first><last>b</last><count>16</count></set></fin>",
      ).toString(),
    );
  });

  it("omits complete on a partial page and first/last on an empty one", () => {
    const partial = mamFin({ complete: false, first: "a", last: "b" });
    expect(partial.attrs.complete).toBeUndefined();
    expect(partial.getChild("set")?.getChild("first")?.attrs.index).toBeUndefined();
    expect(mamFin({ complete: true, count: 0 }).toString()).toBe(
      "<fin xmlns=\"urn:xmpp:mam:2\" complete=\"true\"><set xmlns=\"http://jabber.org/protocol/rsm\"><count>0</count></set></fin>",
    );
  });
});

describe("mamFormFields and mamMetadata", () => {
  it("lists the mandatory and extended fields", () => {
    const x = mamFormFields().getChild("x", "jabber:x:data") as Element;
    expect(x.attrs.type).toBe("form");
    const fields = Object.fromEntries(x.getChildren("field").map((f) => [f.attrs.var, f.attrs.type]));
    expect(fields).toEqual({
      FORM_TYPE: "hidden",
      with: "jid-single",
      start: "text-single",
      end: "text-single",
      "before-id": "text-single",
      "after-id": "text-single",
      ids: "list-multi",
    });
    expect(x.getChildByAttr("var", "ids")?.getChild("validate", "http://jabber.org/protocol/xdata-validate")?.getChild("open")).toBeDefined();
  });

  it("renders archive metadata", () => {
    const el = mamMetadata({ start: { id: "a", at: new Date("2008-08-22T21:09:04Z") }, end: { id: "b", at: new Date("2020-04-20T14:34:21Z") } });
    expect(el.getChild("start")?.attrs).toEqual({ id: "a", timestamp: "2008-08-22T21:09:04.000Z" });
    expect(el.getChild("end")?.attrs.id).toBe("b");
    expect(mamMetadata({}).children).toEqual([]);
  });
});

describe("join history", () => {
  function join(history: string): Element {
    return parse(`<presence to='${ROOM}/thirdwitch'><x xmlns='http://jabber.org/protocol/muc'>${history}</x></presence>`);
  }

  it("reads each limit of <history/> (XEP-0045 §7.2.14)", () => {
    expect(parseMucHistory(join("<history maxchars='65000'/>"))).toEqual({ maxChars: 65000 });
    expect(parseMucHistory(join("<history maxstanzas='20'/>"))).toEqual({ maxStanzas: 20 });
    expect(parseMucHistory(join("<history seconds='180'/>"))).toEqual({ seconds: 180 });
    expect(parseMucHistory(join("<history since='1970-01-01T00:00:00Z'/>"))).toEqual({ since: new Date(0) });
    expect(parseMucHistory(join("<history maxstanzas='0' maxchars='10'/>"))).toEqual({ maxStanzas: 0, maxChars: 10 });
    expect(parseMucHistory(join(""))).toEqual({});
    expect(parseMucHistory(parse(`<presence to='${ROOM}/x'/>`))).toEqual({});
  });

  it("ignores malformed limits rather than failing the join", () => {
    expect(parseMucHistory(join("<history maxstanzas='-1' maxchars='lots' seconds='1.5' since='yesterday'/>"))).toEqual({});
  });

  it("builds a history message with a delay from the room", () => {
    const el = historyMessage(message, { to: "hag66@shakespeare.lit/pda", roomJid: ROOM });
    expect(el.attrs).toMatchObject({ type: "groupchat", from: `${ROOM}/firstwitch`, to: "hag66@shakespeare.lit/pda", id: message.archiveId });
    expect(el.attrs.xmlns).toBeUndefined();
    expect(el.getChild("delay", "urn:xmpp:delay")?.attrs).toEqual({ xmlns: "urn:xmpp:delay", stamp: "2002-10-13T23:58:37.000Z", from: ROOM });
    expect(el.getChildText("body")).toBe(message.body);
    expect(el.getChild("stanza-id", "urn:xmpp:sid:0")?.attrs).toMatchObject({ id: message.archiveId, by: ROOM });
  });
});
