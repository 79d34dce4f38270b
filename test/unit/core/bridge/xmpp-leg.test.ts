import { describe, expect, it } from "vitest";
import { xml } from "@xmpp/component";
import { parseModeration } from "../../../../core/bridge/xmpp-leg.ts";

const ROOM = "room@conference.example.org";

describe("parseModeration (XEP-0425 announcements from the room)", () => {
  it("reads v0.3: <retract id><moderated by/><reason/></retract>", () => {
    const m = xml(
      "message",
      { from: ROOM, type: "groupchat" },
      xml(
        "retract",
        { xmlns: "urn:xmpp:message-retract:1", id: "sid-1" },
        xml("moderated", { xmlns: "urn:xmpp:message-moderate:1", by: `${ROOM}/macbeth` }, xml("occupant-id", { xmlns: "urn:xmpp:occupant-id:0", id: "x" })),
        xml("reason", {}, " inappropriate "),
      ),
    );
    expect(parseModeration(m)).toEqual({ id: "sid-1", by: "macbeth", reason: "inappropriate" });
  });

  it("reads v0.2 (Prosody's mod_muc_moderation): <apply-to id><moderated by><retract/><reason/></moderated></apply-to>", () => {
    const m = xml(
      "message",
      { from: ROOM, type: "groupchat" },
      xml(
        "apply-to",
        { xmlns: "urn:xmpp:fasten:0", id: "sid-2" },
        xml("moderated", { xmlns: "urn:xmpp:message-moderate:0", by: `${ROOM}/a/b` }, xml("retract", { xmlns: "urn:xmpp:message-retract:0" }), xml("reason", {}, "spam")),
      ),
    );
    expect(parseModeration(m)).toEqual({ id: "sid-2", by: "a/b", reason: "spam" });
  });

  it("prefers v0.3 when a room sends both, and leaves out what is missing", () => {
    const m = xml(
      "message",
      { from: ROOM, type: "groupchat" },
      xml("retract", { xmlns: "urn:xmpp:message-retract:1", id: "new" }, xml("moderated", { xmlns: "urn:xmpp:message-moderate:1" })),
      xml("apply-to", { xmlns: "urn:xmpp:fasten:0", id: "old" }, xml("moderated", { xmlns: "urn:xmpp:message-moderate:0" }, xml("retract", { xmlns: "urn:xmpp:message-retract:0" }))),
    );
    expect(parseModeration(m)).toEqual({ id: "new" });
  });

  it("ignores a plain retraction, a v0.2 fastening without <retract/>, and anything without an id", () => {
    expect(parseModeration(xml("message", {}, xml("retract", { xmlns: "urn:xmpp:message-retract:1", id: "s" })))).toBeUndefined();
    expect(
      parseModeration(xml("message", {}, xml("apply-to", { xmlns: "urn:xmpp:fasten:0", id: "s" }, xml("moderated", { xmlns: "urn:xmpp:message-moderate:0" })))),
    ).toBeUndefined();
    expect(parseModeration(xml("message", {}, xml("retract", { xmlns: "urn:xmpp:message-retract:1" }, xml("moderated", { xmlns: "urn:xmpp:message-moderate:1" }))))).toBeUndefined();
  });
});
