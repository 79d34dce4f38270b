import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { escapePart, key, keys, parseKey, prefix, unescapePart } from "../../../../core/store/keys.ts";

// Strings rich in the characters that could confuse a naive layout.
const part = fc.string({ unit: fc.constantFrom(":", "%", "3", "A", "2", "5", "\n", "a", "#", "@", "é") });

describe("store keys", () => {
  it("escaping round-trips and leaves no separator", () => {
    fc.assert(
      fc.property(part, (s) => {
        expect(escapePart(s)).not.toContain(":");
        expect(unescapePart(escapePart(s))).toBe(s);
      }),
    );
  });

  it("gives two distinct (user, room) pairs distinct keys", () => {
    fc.assert(
      fc.property(part, part, part, part, (u1, r1, u2, r2) => {
        fc.pre(u1 !== u2 || r1 !== r2);
        expect(keys.scoped(u1, "irc", r1)).not.toBe(keys.scoped(u2, "irc", r2));
        expect(keys.idEntry(u1, r1, "L", "m")).not.toBe(keys.idEntry(u2, r2, "L", "m"));
      }),
    );
  });

  it("is injective for any list of parts and parses back", () => {
    fc.assert(
      fc.property(fc.array(part, { maxLength: 4 }), fc.array(part, { maxLength: 4 }), (a, b) => {
        const same = a.length === b.length && a.every((x, i) => x === b[i]);
        expect(key("k", ...a) === key("k", ...b)).toBe(same);
        expect(parseKey(key("k", ...a))).toEqual({ kind: "k", parts: a });
      }),
    );
  });

  it("prefixes match exactly the keys extending the same parts", () => {
    fc.assert(
      fc.property(part, part, part, (space, other, id) => {
        fc.pre(space !== other);
        expect(keys.idEntry(space, "c", "X", id).startsWith(keys.idSpacePrefix(space))).toBe(true);
        expect(keys.idEntry(other, "c", "X", id).startsWith(keys.idSpacePrefix(space))).toBe(false);
      }),
    );
    expect(prefix("id", "a")).toBe("estuary:id:a:");
  });
});
