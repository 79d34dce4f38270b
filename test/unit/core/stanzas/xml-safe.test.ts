import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { xml } from "@xmpp/component";
import { makeXmlSafe, resourceSafe, xmlSafeText } from "../../../../core/stanzas/xml-safe.ts";

// XML 1.0 §2.2 Char production.
const XML_CHAR = /^[\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;

describe("text XML can carry", () => {
  it("keeps clean text as it is, astral characters included", () => {
    expect(xmlSafeText("héllo 😀\ttab\nline")).toBe("héllo 😀\ttab\nline");
  });

  it("replaces controls, lone surrogates and U+FFFE/FFFF", () => {
    expect(xmlSafeText("a\u0007b\u001bc\ud800d\udc00e\uffff")).toBe("a\ufffdb\ufffdc\ufffdd\ufffde\ufffd");
  });

  it("always yields XML characters only (any UTF-16 string)", () => {
    fc.assert(fc.property(fc.string({ unit: "binary" }), (s) => XML_CHAR.test(xmlSafeText(s))));
  });

  it("makes a whole stanza safe: text with U+FFFD, attributes (JIDs) with ?", () => {
    const el = makeXmlSafe(xml("message", { from: "room@gw/ni\u0001ck" }, xml("body", {}, "bell\u0007")));
    expect(el.attrs.from).toBe("room@gw/ni?ck");
    expect(el.getChildText("body")).toBe("bell\ufffd");
  });

  it("makes nicks acceptable as resourceparts", () => {
    expect(resourceSafe("mallory\u0001")).toBe("mallory?");
    expect(resourceSafe("x\ufffd\u0085")).toBe("x??");
    expect(resourceSafe("\u0000")).toBe("?");
    expect(resourceSafe("Zoë 😀")).toBe("Zoë 😀");
  });
});
