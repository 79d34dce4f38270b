import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { byteLength, maxBodyBytes, oneLine, safeMiddle, splitByBytes, stripUnsafe } from "../../../../adapters/irc/lines.ts";

describe("stripUnsafe", () => {
  it("removes CR, LF and NUL and nothing else", () => {
    expect(stripUnsafe("a\r\nQUIT :x\0b")).toBe("aQUIT :xb");
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (s) => {
        const out = stripUnsafe(s);
        expect(/[\r\n\0]/.test(out)).toBe(false);
        expect(out).toBe([...s].filter((c) => c !== "\r" && c !== "\n" && c !== "\0").join(""));
      }),
    );
  });

  it("safeMiddle refuses what would break a middle parameter", () => {
    expect(safeMiddle("#chan")).toBe("#chan");
    expect(safeMiddle("a b\r\n")).toBe("ab");
    expect(safeMiddle(":x")).toBeUndefined();
    expect(safeMiddle("\r\n")).toBeUndefined();
  });
});

describe("oneLine", () => {
  it("turns line breaks into one space, so words stay apart", () => {
    expect(oneLine("a\nb")).toBe("a b");
    expect(oneLine("first line  \r\n\r\n  second\rthird")).toBe("first line second third");
    expect(oneLine("no breaks\0here")).toBe("no breakshere");
  });

  it("property: never leaves CR, LF or NUL", () => {
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom("a", " ", "\r", "\n", "\0", "\t", "é") }), (s) => !/[\r\n\0]/.test(oneLine(s))));
  });
});

describe("splitByBytes", () => {
  it("splits on word boundaries", () => {
    expect(splitByBytes("aaa bbb ccc", 7)).toEqual(["aaa bbb", "ccc"]);
    expect(splitByBytes("short", 100)).toEqual(["short"]);
  });

  it("hard-cuts only words longer than the limit, never inside a code point or an emoji cluster", () => {
    expect(splitByBytes("abcdefghij", 4)).toEqual(["abcd", "efgh", "ij"]);
    expect(splitByBytes("ééééé", 5)).toEqual(["éé", "éé", "é"]);
    const family = "👨‍👩‍👧"; // one grapheme, 18 bytes
    expect(splitByBytes(`${family}${family}`, 20)).toEqual([family, family]);
  });

  it("property: pieces fit, are safe, and together are the input minus split whitespace", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 400 }), fc.integer({ min: 4, max: 120 }), (raw, max) => {
        const text = stripUnsafe(raw);
        const pieces = splitByBytes(text, max);
        for (const p of pieces) {
          expect(byteLength(p)).toBeLessThanOrEqual(max);
          expect(/[\r\n\0]/.test(p)).toBe(false);
          // A piece never starts or ends inside a surrogate pair.
          expect(/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(p)).toBe(false);
        }
        expect(pieces.join("").replace(/[ \t]/g, "")).toBe(text.replace(/[ \t]/g, ""));
        // In order, each piece at or after where the previous one ended.
        let at = 0;
        for (const p of pieces) {
          const i = text.indexOf(p, at);
          expect(i).toBeGreaterThanOrEqual(at);
          at = i + p.length;
        }
      }),
    );
  });
});

describe("maxBodyBytes", () => {
  it("counts the relayed prefix and CRLF, assuming a 63-byte host when unknown", () => {
    const known = maxBodyBytes({ nick: "alice", user: "abcd", host: "h.example", command: "PRIVMSG", target: "#c" });
    expect(known).toBe(512 - 2 - byteLength(":alice!abcd@h.example PRIVMSG #c :"));
    const unknown = maxBodyBytes({ nick: "alice", user: "abcd", command: "PRIVMSG", target: "#c" });
    expect(known - unknown).toBe(63 - "h.example".length);
    expect(maxBodyBytes({ lineLen: 1024, nick: "a", user: "u", host: "h", command: "PRIVMSG", target: "b" })).toBe(
      1024 - 2 - byteLength(":a!u@h PRIVMSG b :"),
    );
  });
});
