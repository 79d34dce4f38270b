import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { MessageEntity } from "grammy/types";
import { fromEntities, toEntities } from "../../../../adapters/telegram/entities.ts";
import { toPlain, type Block, type Inline, type RichText } from "../../../../core/format/model.ts";
import { serializeStyling } from "../../../../core/format/xep0393.ts";

const t = (text: string): Inline => ({ type: "text", text });
const line = (...children: Inline[]): Block => ({ type: "line", children });

describe("Telegram entities → rich text", () => {
  it("reads offsets in UTF-16 code units around astral characters", () => {
    // "😀" is two UTF-16 units: bold covers "bold" at 3..7, not 2..6.
    const rich = fromEntities("😀 bold!", [{ type: "bold", offset: 3, length: 4 }]);
    expect(rich.blocks).toEqual([line(t("😀 "), { type: "bold", children: [t("bold")] }, t("!"))]);
    expect(serializeStyling(rich)).toBe("😀 *bold*!");
  });

  it("nests entities and splits overlapping ones", () => {
    const nested = fromEntities("abcdef", [
      { type: "bold", offset: 0, length: 6 },
      { type: "italic", offset: 2, length: 2 },
    ]);
    expect(nested.blocks).toEqual([line({ type: "bold", children: [t("ab"), { type: "italic", children: [t("cd")] }, t("ef")] })]);
    const overlapping = fromEntities("abcdefgh", [
      { type: "bold", offset: 0, length: 5 },
      { type: "italic", offset: 3, length: 5 },
    ]);
    expect(overlapping.blocks).toEqual([
      line({ type: "bold", children: [t("abc"), { type: "italic", children: [t("de")] }] }, { type: "italic", children: [t("fgh")] }),
    ]);
  });

  it("maps every supported entity type", () => {
    const text = "b i u s sp code link https://x.org @al Bob";
    const at = (s: string) => text.indexOf(s);
    const entities: MessageEntity[] = [
      { type: "bold", offset: at("b "), length: 1 },
      { type: "italic", offset: at("i "), length: 1 },
      { type: "underline", offset: at("u "), length: 1 },
      { type: "strikethrough", offset: at("s sp"), length: 1 },
      { type: "spoiler", offset: at("sp"), length: 2 },
      { type: "code", offset: at("code"), length: 4 },
      { type: "text_link", offset: at("link"), length: 4, url: "https://example.org/" },
      { type: "url", offset: at("https"), length: 13 },
      { type: "mention", offset: at("@al"), length: 3 },
      { type: "text_mention", offset: at("Bob"), length: 3, user: { id: 42, is_bot: false, first_name: "Bob" } },
      { type: "hashtag", offset: 0, length: 1 }, // ignored types leave the text alone
    ];
    const children = (fromEntities(text, entities).blocks[0] as Extract<Block, { type: "line" }>).children;
    expect(children.filter((c) => c.type !== "text")).toEqual([
      { type: "bold", children: [t("b")] },
      { type: "italic", children: [t("i")] },
      { type: "underline", children: [t("u")] },
      { type: "strike", children: [t("s")] },
      { type: "spoiler", children: [t("sp")] },
      { type: "code", text: "code" },
      { type: "link", href: "https://example.org/", children: [t("link")] },
      { type: "link", href: "https://x.org", children: [t("https://x.org")] },
      { type: "mention", text: "@al" },
      { type: "mention", text: "Bob", id: "42" },
    ]);
  });

  it("turns pre (with language) and blockquote into blocks; inline entities split per line", () => {
    const text = "intro *\nx = 1\ny = 2\nquoted\nsecond\nend";
    const rich = fromEntities(text, [
      { type: "bold", offset: 6, length: 1 },
      { type: "pre", offset: 8, length: 11, language: "python" },
      { type: "blockquote", offset: 20, length: 13 },
      { type: "italic", offset: 20, length: 10 }, // crosses the line break inside the quote
    ]);
    expect(rich.blocks).toEqual([
      line(t("intro "), { type: "bold", children: [t("*")] }),
      { type: "pre", text: "x = 1\ny = 2", lang: "python" },
      { type: "quote", children: [line({ type: "italic", children: [t("quoted")] }), line({ type: "italic", children: [t("sec")] }, t("ond"))] },
      line(t("end")),
    ]);
    expect(toPlain(rich)).toBe("intro *\nx = 1\ny = 2\n> quoted\n> second\nend");
  });

  it("ignores entities out of bounds or empty", () => {
    expect(fromEntities("abc", [{ type: "bold", offset: 2, length: 5 }, { type: "italic", offset: 1, length: 0 }]).blocks).toEqual([line(t("abc"))]);
  });
});

describe("rich text → Telegram entities", () => {
  it("writes styling as entities over UTF-16 offsets, never markup", () => {
    const rich: RichText = {
      blocks: [
        line(t("🎉 "), { type: "bold", children: [t("hi "), { type: "italic", children: [t("<b>you</b>")] }] }, t(" "), { type: "link", href: "https://e.org", children: [t("site")] }),
        { type: "pre", text: "code()", lang: "js" },
        { type: "quote", children: [line({ type: "mention", text: "Ann", id: "7" })] },
      ],
    };
    const f = toEntities(rich);
    expect(f.text).toBe("🎉 hi <b>you</b> site\ncode()\nAnn");
    expect(f.entities).toEqual([
      { type: "bold", offset: 3, length: 13 },
      { type: "italic", offset: 6, length: 10 },
      { type: "text_link", offset: 17, length: 4, url: "https://e.org" },
      { type: "pre", offset: 22, length: 6, language: "js" },
      { type: "blockquote", offset: 29, length: 3 },
      { type: "text_mention", offset: 29, length: 3, user: { id: 7, is_bot: false, first_name: "Ann" } },
    ]);
  });

  it("does not link schemes Telegram would refuse", () => {
    expect(toEntities({ blocks: [line({ type: "link", href: "javascript:alert(1)", children: [t("x")] })] }).entities).toEqual([]);
  });
});

// ── property: model → (text, entities) → model keeps the plain text ─────

const chars = fc.constantFrom("a", "b", " ", "é", "😀", "👨‍💻", "*", "_", "`", "~", ">", "中");
const word = fc.array(chars, { minLength: 1, maxLength: 6 }).map((cs) => cs.join(""));
const inline: fc.Arbitrary<Inline> = fc.letrec<{ inline: Inline }>((tie) => ({
  inline: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    word.map((text): Inline => ({ type: "text", text })),
    word.map((text): Inline => ({ type: "code", text })),
    fc.record({ text: word, id: fc.option(fc.integer({ min: 1, max: 1e9 }).map(String), { nil: undefined }) }).map(({ text, id }): Inline => (id ? { type: "mention", text, id } : { type: "mention", text })),
    fc
      .record({ type: fc.constantFrom("bold", "italic", "underline", "strike", "spoiler"), children: fc.array(tie("inline"), { maxLength: 3 }) })
      .map((n) => n as Inline),
    fc.record({ href: fc.constantFrom("https://a.example/", "tg://user?id=1"), children: fc.array(tie("inline"), { maxLength: 3 }) }).map((n): Inline => ({ type: "link", ...n })),
  ),
})).inline;
const lineBlock = fc.array(inline, { maxLength: 4 }).map((children): Block => ({ type: "line", children }));
const preBlock = fc
  .record({ lines: fc.array(fc.array(chars, { maxLength: 5 }).map((c) => c.join("")), { minLength: 1, maxLength: 3 }), lang: fc.option(fc.constantFrom("js", "py"), { nil: undefined }) })
  .map(({ lines, lang }): Block => (lang ? { type: "pre", text: lines.join("\n"), lang } : { type: "pre", text: lines.join("\n") }));
const innerBlock = fc.oneof(lineBlock, preBlock);
const quoteBlock = fc
  .array(fc.oneof(innerBlock, fc.array(innerBlock, { maxLength: 2 }).map((children): Block => ({ type: "quote", children }))), { maxLength: 3 })
  .map((children): Block => ({ type: "quote", children }));
const richText = fc.array(fc.oneof(lineBlock, preBlock, quoteBlock), { maxLength: 5 }).map((blocks): RichText => ({ blocks }));

describe("entities round trip (fast-check)", () => {
  it("model → (text, entities) → model preserves the plain text; entities stay within bounds", () => {
    fc.assert(
      fc.property(richText, (rich) => {
        const f = toEntities(rich);
        for (const e of f.entities) {
          expect(e.offset).toBeGreaterThanOrEqual(0);
          expect(e.length).toBeGreaterThan(0);
          expect(e.offset + e.length).toBeLessThanOrEqual(f.text.length);
        }
        expect(toPlain(fromEntities(f.text, f.entities))).toBe(toPlain(rich));
      }),
      { numRuns: 500 },
    );
  });

  it("Telegram → model → Telegram keeps text and inline styling of single-line texts", () => {
    const types = ["bold", "italic", "underline", "strikethrough", "spoiler"] as const;
    fc.assert(
      fc.property(
        fc.array(chars, { minLength: 1, maxLength: 20 }).map((c) => c.join("")),
        fc.array(fc.record({ type: fc.constantFrom(...types), a: fc.nat(), b: fc.nat() }), { maxLength: 4 }),
        (text, raw) => {
          const entities = raw
            .map(({ type, a, b }) => {
              const s = a % text.length;
              return { type, offset: s, length: 1 + (b % (text.length - s)) } as MessageEntity;
            });
          const back = toEntities(fromEntities(text, entities));
          expect(back.text).toBe(text);
          // Each code unit carries the same set of styles before and after.
          const perUnit = (es: MessageEntity[]) => Array.from({ length: text.length }, (_, i) => [...new Set(es.filter((e) => e.offset <= i && i < e.offset + e.length).map((e) => e.type))].sort().join());
          expect(perUnit(back.entities)).toEqual(perUnit(entities));
        },
      ),
      { numRuns: 300 },
    );
  });
});
