import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { createAddressCodec, encodePart, formatMatrixId, parseMatrixLocal } from "../../../../adapters/matrix/ids.ts";

const codec = createAddressCodec();
const server = fc.constantFrom("example.org", "Matrix.Example.ORG", "hs.test:8448", "[::1]:8008", "127.0.0.1");
const local = fc.string({ minLength: 1, maxLength: 20, unit: "grapheme" }).filter((s) => !s.includes(":"));

describe("Matrix addressing", () => {
  it("formats the documented examples", () => {
    expect(codec.format({ kind: "contact", contact: "@alice:example.org" })).toBe("alice%example.org");
    expect(codec.format({ kind: "room", room: "#room:example.org" })).toBe("#room%example.org");
    expect(codec.format({ kind: "room", room: "!abc:example.org" })).toBe("!abc%example.org");
    expect(codec.format({ kind: "room", room: "!AbC:example.org" })).toBe("!^ab^c%example.org");
    expect(codec.parse("!^ab^c%example.org")).toEqual({ kind: "room", room: "!AbC:example.org" });
    expect(codec.parse("alice%example.org")).toEqual({ kind: "contact", contact: "@alice:example.org" });
  });

  it("refuses localparts that name no Matrix id", () => {
    for (const bad of ["alice", "%example.org", "alice%", "alice%exa mple.org", "#%x.org", "a%b%c", "a^(zz)%x.org", "trailing^"]) {
      expect(codec.parse(bad), bad).toBeUndefined();
    }
  });

  it("round-trips users, aliases and room ids, also after an XMPP server lowers the localpart", () => {
    fc.assert(
      fc.property(fc.constantFrom("@", "#", "!"), local, server, (sigil, l, s) => {
        const id = `${sigil}${l}:${s}`;
        const formatted = formatMatrixId(id);
        expect(formatted).toBe(formatted.toLowerCase());
        const parsed = parseMatrixLocal(formatted);
        expect(parsed?.id).toBe(id);
        expect(parseMatrixLocal(formatted.toLowerCase())?.id).toBe(id);
        expect(parsed?.kind).toBe(sigil === "@" ? "user" : sigil === "#" ? "alias" : "room");
      }),
    );
  });

  it("keeps user localparts that start with a room sigil apart from rooms", () => {
    const formatted = formatMatrixId("@#odd:example.org");
    expect(codec.parse(formatted)).toEqual({ kind: "contact", contact: "@#odd:example.org" });
  });

  it("escapes Hangul conjoining jamo, which NFKC would compose with their neighbours", () => {
    const jamo = "\u1100\u1161"; // ᄀ + ᅡ: NFKC makes them 가
    const e = encodePart(jamo);
    expect(e).toBe(e.normalize("NFKC"));
    expect(e).not.toContain("\u1100");
  });

  it("never emits characters a JID would change: upper case, spaces, compatibility forms", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), (s) => {
        const e = encodePart(s);
        expect(e).toBe(e.toLowerCase());
        expect(e).toBe(e.normalize("NFKC"));
        expect(e).not.toMatch(/\s/);
      }),
    );
  });
});
