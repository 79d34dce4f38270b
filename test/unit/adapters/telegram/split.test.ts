import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { splitFormatted } from "../../../../adapters/telegram/split.ts";

describe("splitting long Telegram messages", () => {
  it("keeps a short text whole", () => {
    const f = { text: "hello", entities: [{ type: "bold" as const, offset: 0, length: 5 }] };
    expect(splitFormatted(f, 10)).toEqual([f]);
  });

  it("cuts at the last line break, else the last space, and re-bases entities", () => {
    const text = "aaaa bbbb\ncccc dddd eeee";
    const parts = splitFormatted({ text, entities: [{ type: "bold", offset: 7, length: 6 }] }, 12);
    expect(parts.map((p) => p.text)).toEqual(["aaaa bbbb", "cccc dddd", "eeee"]);
    expect(parts[0]!.entities).toEqual([{ type: "bold", offset: 7, length: 2 }]);
    expect(parts[1]!.entities).toEqual([{ type: "bold", offset: 0, length: 3 }]);
    expect(parts[2]!.entities).toEqual([]);
  });

  it("cuts hard without breaking a surrogate pair", () => {
    const parts = splitFormatted({ text: "ab😀cd", entities: [] }, 3);
    expect(parts.map((p) => p.text)).toEqual(["ab", "😀c", "d"]);
  });

  it("a text over 4096 units becomes parts of at most 4096 units that lose only the separators", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom("word", "😀", " ", "\n", "xyzzy"), { minLength: 1800, maxLength: 4000 }), (pieces) => {
        const text = pieces.join("");
        fc.pre(text.length > 4096);
        const parts = splitFormatted({ text, entities: [{ type: "italic", offset: 0, length: text.length }] });
        let rebuilt = 0;
        for (const p of parts) {
          expect(p.text.length).toBeLessThanOrEqual(4096);
          expect(p.text.trim()).not.toBe("");
          for (const e of p.entities) expect(e.offset + e.length).toBeLessThanOrEqual(p.text.length);
          rebuilt += p.text.length;
        }
        const nonBlank = text.replace(/\s/g, "").length;
        expect(parts.map((p) => p.text).join("").replace(/\s/g, "").length).toBe(nonBlank);
        expect(rebuilt).toBeLessThanOrEqual(text.length);
      }),
      { numRuns: 50 },
    );
  });
});
