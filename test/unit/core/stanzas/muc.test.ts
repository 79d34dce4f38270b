import { describe, expect, it } from "vitest";
import { occupantId, roomInfoForm } from "../../../../core/stanzas/muc.ts";

describe("roomInfoForm (XEP-0045 §6.4, XEP-0128)", () => {
  const values = (x: ReturnType<typeof roomInfoForm>) =>
    Object.fromEntries(x.getChildren("field").map((f) => [f.attrs.var, f.getChildText("value")]));

  it("is a result form of the muc#roominfo type with the fields it knows", () => {
    const x = roomInfoForm({ occupants: 3, subject: "Welcome to #verona", description: "Fair Verona", changeSubject: false });
    expect(x.attrs).toEqual({ xmlns: "jabber:x:data", type: "result" });
    expect(values(x)).toEqual({
      FORM_TYPE: "http://jabber.org/protocol/muc#roominfo",
      "muc#roominfo_description": "Fair Verona",
      "muc#roominfo_subject": "Welcome to #verona",
      "muc#roominfo_occupants": "3",
      "muc#roominfo_changesubject": "0",
    });
    expect(x.getChildren("field")[0]?.attrs.type).toBe("hidden");
  });

  it("leaves out what is not known, but keeps an empty subject and a zero count", () => {
    expect(values(roomInfoForm({}))).toEqual({ FORM_TYPE: "http://jabber.org/protocol/muc#roominfo" });
    expect(values(roomInfoForm({ subject: "", occupants: 0 }))).toMatchObject({ "muc#roominfo_subject": "", "muc#roominfo_occupants": "0" });
  });
});

describe("occupantId (XEP-0421)", () => {
  it("is stable per room and person, at most 128 characters, and tells people and rooms apart", () => {
    const a = occupantId("#a@gw", { jid: "alice@gw", nick: "alice" });
    expect(a).toBe(occupantId("#a@gw", { jid: "alice@gw", nick: "alice_away" }));
    expect(a.length).toBeLessThanOrEqual(128);
    expect(a).not.toBe(occupantId("#b@gw", { jid: "alice@gw", nick: "alice" }));
    expect(a).not.toBe(occupantId("#a@gw", { jid: "bob@gw", nick: "alice" }));
    expect(occupantId("#a@gw", { nick: "alice" })).not.toBe(a);
  });
});
