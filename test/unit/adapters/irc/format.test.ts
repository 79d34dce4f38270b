import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ircToRich, richToIrc } from "../../../../adapters/irc/format.ts";
import { toPlain, type Inline, type RichText } from "../../../../core/format/model.ts";

describe("ircToRich", () => {
  it("maps bold, italic, underline, strike, monospace; drops colours, reverse; reset closes all", () => {
    expect(ircToRich("\x02b\x02 \x1di\x1d \x1fu\x1f \x1es\x1e \x11m\x11").blocks[0]).toEqual({
      type: "line",
      children: [
        { type: "bold", children: [{ type: "text", text: "b" }] },
        { type: "text", text: " " },
        { type: "italic", children: [{ type: "text", text: "i" }] },
        { type: "text", text: " " },
        { type: "underline", children: [{ type: "text", text: "u" }] },
        { type: "text", text: " " },
        { type: "strike", children: [{ type: "text", text: "s" }] },
        { type: "text", text: " " },
        { type: "code", text: "m" },
      ],
    });
    expect(toPlain(ircToRich("\x0304,12red\x03 \x0399x \x04ff0000hex\x04 \x16rev\x16"))).toBe("red x hex rev");
    // Two digits at most: a third digit is text.
    expect(toPlain(ircToRich("\x03041 is red"))).toBe("1 is red");
    expect(ircToRich("\x02\x1dboth\x0fplain").blocks[0]).toEqual({
      type: "line",
      children: [
        { type: "bold", children: [{ type: "italic", children: [{ type: "text", text: "both" }] }] },
        { type: "text", text: "plain" },
      ],
    });
  });
});

describe("richToIrc", () => {
  it("renders styles, one line per line block and per pre line, quotes with '> '", () => {
    const rich: RichText = {
      blocks: [
        { type: "line", children: [{ type: "bold", children: [{ type: "text", text: "a" }, { type: "bold", children: [{ type: "text", text: "b" }] }] }] },
        { type: "pre", text: "x = 1\ny = 2" },
        { type: "quote", children: [{ type: "line", children: [{ type: "code", text: "q" }] }] },
        { type: "line", children: [{ type: "link", href: "https://e.org", children: [{ type: "text", text: "site" }] }] },
      ],
    };
    expect(richToIrc(rich)).toEqual(["\x02ab\x02", "x = 1", "y = 2", "> \x11q\x11", "site <https://e.org>"]);
  });

  it("does not let literal control characters in text act as formatting", () => {
    expect(richToIrc({ blocks: [{ type: "line", children: [{ type: "text", text: "a\x02b\x03c" }] }] })).toEqual(["abc"]);
  });
});

const safeText = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !/[\x00-\x1f]/.test(s));
const inline: fc.Memo<Inline> = fc.memo((depth) =>
  depth <= 1
    ? fc.oneof(
        safeText.map((text): Inline => ({ type: "text", text })),
        safeText.map((text): Inline => ({ type: "code", text })),
      )
    : fc.oneof(
        safeText.map((text): Inline => ({ type: "text", text })),
        safeText.map((text): Inline => ({ type: "code", text })),
        fc.record({
          type: fc.constantFrom("bold" as const, "italic" as const, "underline" as const, "strike" as const, "spoiler" as const),
          children: fc.array(inline(depth - 1), { minLength: 1, maxLength: 3 }),
        }),
      ),
);

describe("round trip", () => {
  it("property: ircToRich(richToIrc(x)) keeps the plain text of every line", () => {
    fc.assert(
      fc.property(fc.array(fc.array(inline(3), { maxLength: 4 }), { minLength: 1, maxLength: 3 }), (lines) => {
        const rich: RichText = { blocks: lines.map((children) => ({ type: "line" as const, children })) };
        const back = richToIrc(rich).map((l) => toPlain(ircToRich(l)));
        expect(back.join("\n")).toBe(toPlain(rich));
      }),
    );
  });

  it("property: styled runs keep their style through the round trip", () => {
    fc.assert(
      fc.property(safeText, fc.constantFrom("bold" as const, "italic" as const, "underline" as const, "strike" as const), (text, style) => {
        const rich: RichText = { blocks: [{ type: "line", children: [{ type: style, children: [{ type: "text", text }] }] }] };
        expect(ircToRich(richToIrc(rich)[0]!)).toEqual(rich);
      }),
    );
  });
});
