import { describe, expect, it } from "vitest";
import { xml } from "@xmpp/component";
import { isOwnXmpp, nickCandidates, Recent } from "../../../../core/bridge/loop.ts";
import { newCanonical, ownStanzaId, scopeFor, senderOf } from "../../../../core/bridge/ids.ts";
import { parseInbound, stripFallback } from "../../../../core/bridge/xmpp-leg.ts";
import { toPlain } from "../../../../core/format/model.ts";

describe("echo recognition in the MUC", () => {
  const puppetNicks = new Set(["bob", "Carol"]);
  it("a message from a puppet or the relay is ours", () => {
    expect(isOwnXmpp({ nick: "bob", ids: ["x"], relayNick: "relay", puppetNicks })).toBe(true);
    expect(isOwnXmpp({ nick: "relay", ids: [], relayNick: "relay", puppetNicks })).toBe(true);
  });
  it("so is one carrying an origin-id the bridge minted, whatever the nick (e.g. after a rename)", () => {
    expect(isOwnXmpp({ nick: "someone", ids: ["abc", ownStanzaId()], relayNick: "relay", puppetNicks })).toBe(true);
  });
  it("a real occupant's message is not", () => {
    expect(isOwnXmpp({ nick: "alice", ids: ["a-1"], relayNick: "relay", puppetNicks })).toBe(false);
    // Nicks are case-sensitive in MUC: "carol" is not the puppet "Carol".
    expect(isOwnXmpp({ nick: "carol", ids: [], relayNick: "relay", puppetNicks })).toBe(false);
  });
});

describe("duplicate memory", () => {
  it("says seen on the second time, and forgets the oldest beyond its bound", () => {
    const r = new Recent(3);
    expect(r.seen("a")).toBe(false);
    expect(r.seen("a")).toBe(true);
    r.seen("b");
    r.seen("c");
    r.seen("d");
    expect(r.has("a")).toBe(false);
    expect(r.has("d")).toBe(true);
  });
});

describe("puppet nicks", () => {
  it("the person's nick first, then with the network, then numbered", () => {
    const it = nickCandidates("bob", "irc");
    expect([it.next().value, it.next().value, it.next().value]).toEqual(["bob", "bob [irc]", "bob [irc] 2"]);
  });
});

describe("canonical ids", () => {
  it("carry the original sender's name (replies after a restart can still say whom they answer)", () => {
    const c = newCanonical("Zoë the 🦊");
    expect(senderOf(c)).toBe("Zoë the 🦊");
    expect(newCanonical("x")).not.toBe(newCanonical("x"));
    expect(senderOf("nodot")).toBeUndefined();
  });
  it("scopes are per bridge and leg", () => {
    expect(scopeFor("lobby", "irc")).toBe("bridge\nlobby\nirc");
  });
});

describe("MUC messages from real occupants", () => {
  const from = { nick: "alice" };
  it("a plain message, an action, a correction", () => {
    const msg = xml("message", { id: "m1" }, xml("body", {}, "hi *there*"));
    const ev = parseInbound(msg, "hi *there*", from, ["m1"], "s1");
    expect(ev).toMatchObject({ type: "message", ids: ["m1"], sid: "s1" });
    expect(ev?.type === "message" && toPlain(ev.text)).toBe("hi there");
    const me = parseInbound(xml("message", {}, xml("body", {}, "/me waves")), "/me waves", from, [], undefined);
    expect(me).toMatchObject({ type: "message", action: true });
    const fix = parseInbound(
      xml("message", {}, xml("body", {}, "fixed"), xml("replace", { xmlns: "urn:xmpp:message-correct:0", id: "m1" })),
      "fixed",
      from,
      ["m2"],
      undefined,
    );
    expect(fix).toMatchObject({ type: "edit", id: "m1" });
  });
  it("retractions and reactions need no body; chat states are not relayed", () => {
    expect(parseInbound(xml("message", {}, xml("retract", { xmlns: "urn:xmpp:message-retract:1", id: "m1" })), null, from, [], undefined)).toEqual({
      type: "retract",
      id: "m1",
      from,
    });
    const r = xml("message", {}, xml("reactions", { xmlns: "urn:xmpp:reactions:0", id: "m1" }, xml("reaction", {}, "👍")));
    expect(parseInbound(r, null, from, [], undefined)).toEqual({ type: "reactions", id: "m1", from, emojis: ["👍"] });
    expect(parseInbound(xml("message", {}, xml("composing", { xmlns: "http://jabber.org/protocol/chatstates" })), null, from, [], undefined)).toBeUndefined();
  });
  it("a reply loses its quoted fallback (XEP-0428 ranges in code points)", () => {
    const body = "> 😀 bob said\nsure";
    const stanza = xml(
      "message",
      {},
      xml("body", {}, body),
      xml("reply", { xmlns: "urn:xmpp:reply:0", id: "b1" }),
      xml("fallback", { xmlns: "urn:xmpp:fallback:0", for: "urn:xmpp:reply:0" }, xml("body", { start: "0", end: String(Array.from("> 😀 bob said\n").length) })),
    );
    expect(stripFallback(stanza, body, "urn:xmpp:reply:0")).toBe("sure");
    const ev = parseInbound(stanza, body, from, ["r1"], undefined);
    expect(ev).toMatchObject({ type: "message", replyTo: "b1" });
    expect(ev?.type === "message" && toPlain(ev.text)).toBe("sure");
  });
  it("ignores fallback ranges that are out of bounds", () => {
    const stanza = xml("message", {}, xml("fallback", { xmlns: "urn:xmpp:fallback:0", for: "urn:xmpp:reply:0" }, xml("body", { start: "0", end: "999" })));
    expect(stripFallback(stanza, "short", "urn:xmpp:reply:0")).toBe("short");
  });
});
