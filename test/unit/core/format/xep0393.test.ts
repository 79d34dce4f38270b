import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Block, Inline, RichText } from "../../../../core/format/index.ts";
import { MAX_QUOTE_DEPTH, parseStyling, plain, serializeStyling, toPlain } from "../../../../core/format/index.ts";

const text = (t: string): Inline => ({ type: "text", text: t });
const bold = (...children: Inline[]): Inline => ({ type: "bold", children });
const italic = (...children: Inline[]): Inline => ({ type: "italic", children });
const strike = (...children: Inline[]): Inline => ({ type: "strike", children });
const code = (t: string): Inline => ({ type: "code", text: t });
const line = (...children: Inline[]): Block => ({ type: "line", children });
const quote = (...children: Block[]): Block => ({ type: "quote", children });
const doc = (...blocks: Block[]): RichText => ({ blocks });
/** The inlines of a one-line body. */
const spans = (body: string): Inline[] => {
  const { blocks } = parseStyling(body);
  expect(blocks).toHaveLength(1);
  const [only] = blocks;
  if (only?.type !== "line") throw new Error(`not a line: ${JSON.stringify(only)}`);
  return only.children;
};

describe("parseStyling: the XEP's span examples ('Spans')", () => {
  it.each([
    ["*strong*", [bold(text("strong"))]],
    ["plain *strong* plain", [text("plain "), bold(text("strong")), text(" plain")]],
    ["*strong* plain *strong*", [bold(text("strong")), text(" plain "), bold(text("strong"))]],
    ["*strong*plain*", [bold(text("strong")), text("plain*")]],
    ["* plain *strong*", [text("* plain "), bold(text("strong"))]],
  ])("styles %j", (body, expected) => {
    expect(spans(body)).toEqual(expected);
  });

  it.each(["not strong*", "*not strong", "*not *strong", "**", "****", "***"])("leaves %j unstyled", (body) => {
    expect(spans(body)).toEqual([text(body)]);
  });

  it("does not let a span cross a line", () => {
    expect(parseStyling("*not \n strong*")).toEqual(doc(line(text("*not ")), line(text(" strong*"))));
  });

  it("parses the glossary's nested span", () => {
    expect(spans("_emphasized span containing *strong span*_")).toEqual([
      italic(text("emphasized span containing "), bold(text("strong span"))),
    ]);
  });

  it("parses the emphasis, strong, strike and preformatted examples", () => {
    expect(parseStyling("The full title is _Twelfth Night, or What You Will_ but\n_most_ people shorten it.")).toEqual(
      doc(
        line(text("The full title is "), italic(text("Twelfth Night, or What You Will")), text(" but")),
        line(italic(text("most")), text(" people shorten it.")),
      ),
    );
    expect(spans('*most* people shorten "it"')).toEqual([bold(text("most")), text(' people shorten "it"')]);
    expect(spans("Everyone ~dis~likes cake.")).toEqual([text("Everyone "), strike(text("dis")), text("likes cake.")]);
    expect(spans("Wow, I can write in `monospace`!")).toEqual([text("Wow, I can write in "), code("monospace"), text("!")]);
  });

  it("keeps directives inside a preformatted span as text, and lets a different directive open right after another", () => {
    expect(spans("This is `*monospace*`")).toEqual([text("This is "), code("*monospace*")]);
    expect(spans("This is *`monospace and bold`*")).toEqual([text("This is "), bold(code("monospace and bold"))]);
    expect(spans("_no pre `with *children*`_")).toEqual([italic(text("no pre "), code("with *children*"))]);
  });

  it("matches lazily: the first valid closer wins, so spans cannot overlap", () => {
    expect(spans("*this cannot _overlap*_")).toEqual([bold(text("this cannot _overlap")), text("_")]);
    expect(spans("*a `b*` c*")).toEqual([bold(text("a `b")), text("` c*")]);
  });

  it("needs whitespace or the start of the parent before an opener, and none after it", () => {
    expect(spans("foo*bar* x")).toEqual([text("foo*bar* x")]);
    expect(spans("a * b *")).toEqual([text("a * b *")]);
    expect(spans("a\t_b_")).toEqual([text("a\t"), italic(text("b"))]);
    // U+3000 IDEOGRAPHIC SPACE is whitespace (category Zs) for span rules too.
    expect(spans("a\u3000~b~")).toEqual([text("a\u3000"), strike(text("b"))]);
    expect(spans("*a *")).toEqual([text("*a *")]);
  });
});

describe("parseStyling: blocks ('Blocks')", () => {
  it("makes one line block per plain line, empty lines included", () => {
    const body = "There are three blocks in this body marked by parens,\nbut there is no *formatting\nas spans* may not escape blocks.";
    expect(parseStyling(body)).toEqual(plain(body));
    expect(parseStyling("a\n\nb")).toEqual(doc(line(text("a")), line(), line(text("b"))));
    expect(parseStyling("")).toEqual(doc(line()));
  });

  it("parses a fenced preformatted block with its tag, and styles nothing inside", () => {
    const body = '```ignored\n(println "Hello, world!")\n*not bold*\n```\n\nThis should show up as monospace, preformatted text ⤴';
    expect(parseStyling(body)).toEqual(
      doc(
        { type: "pre", lang: "ignored", text: '(println "Hello, world!")\n*not bold*' },
        line(),
        line(text("This should show up as monospace, preformatted text ⤴")),
      ),
    );
  });

  it("ends a preformatted block only at a line that is exactly the fence, or at the end of its parent", () => {
    expect(parseStyling("```\npre *fmt* ```\n```\nplain")).toEqual(doc({ type: "pre", text: "pre *fmt* ```" }, line(text("plain"))));
    expect(parseStyling("```\na```")).toEqual(doc({ type: "pre", text: "a```" }));
    expect(parseStyling("````\na\n```")).toEqual(doc({ type: "pre", lang: "`", text: "a" }));
    expect(parseStyling("```")).toEqual(doc({ type: "pre", text: "" }));
    // The XEP's "no closing sequence" example: the quote's end ends the block.
    expect(parseStyling('> ```\n> (println "Hello, world!")\n\nThe entire blockquote is a preformatted text block, but this line\nis plaintext!')).toEqual(
      doc(
        quote({ type: "pre", text: '(println "Hello, world!")' }),
        line(),
        line(text("The entire blockquote is a preformatted text block, but this line")),
        line(text("is plaintext!")),
      ),
    );
  });

  it("parses quotations, trimming one leading whitespace character", () => {
    expect(parseStyling("> That that is, is.\n\nSaid the old hermit of Prague.")).toEqual(
      doc(quote(line(text("That that is, is."))), line(), line(text("Said the old hermit of Prague."))),
    );
    expect(parseStyling(">  two spaces\n>none\n>\ttab")).toEqual(
      doc(quote(line(text(" two spaces")), line(text("none")), line(text("tab")))),
    );
  });

  it("nests quotations", () => {
    const expected = doc(quote(quote(line(text("That that is, is."))), line(text("Said the old hermit of Prague."))), line(), line(text("Who?")));
    expect(parseStyling(">> That that is, is.\n> Said the old hermit of Prague.\n\nWho?")).toEqual(expected);
    expect(parseStyling("> > That that is, is.\n> Said the old hermit of Prague.\n\nWho?")).toEqual(expected);
  });

  it("stops nesting quotes at MAX_QUOTE_DEPTH, keeping deeper markers as text, and stays fast", () => {
    const body = `${"> ".repeat(20_000)}x\n${">".repeat(50_000)}*y*`;
    const started = performance.now();
    const rich = parseStyling(body);
    expect(performance.now() - started).toBeLessThan(2_000);
    let depth = 0;
    let innermost: Block[] = rich.blocks;
    while (innermost[0]?.type === "quote") {
      expect(innermost).toHaveLength(1);
      innermost = innermost[0].children;
      depth++;
    }
    expect(depth).toBe(MAX_QUOTE_DEPTH);
    expect(innermost).toEqual([
      line(text(`${"> ".repeat(20_000 - MAX_QUOTE_DEPTH)}x`)),
      line(text(`${">".repeat(50_000 - MAX_QUOTE_DEPTH)}*y*`)),
    ]);
    expect(parseStyling(serializeStyling(rich))).toEqual(rich);
  });

  it("parses blocks and spans inside quotations", () => {
    expect(parseStyling("> ```js\n> *x*\n> ```\n> *bold*")).toEqual(
      doc(quote({ type: "pre", lang: "js", text: "*x*" }, line(bold(text("bold"))))),
    );
  });
});

describe("serializeStyling", () => {
  it("writes the canonical spelling of every construct", () => {
    const rich = doc(
      line(text("a "), bold(italic(strike(code("x"))), text(" y")), text(" z")),
      quote(quote(line(text("deep"))), line(), line(text("  indented")), { type: "pre", text: "p\n\nq", lang: "ts" }),
      { type: "pre", text: "" },
    );
    expect(serializeStyling(rich)).toBe("a *_~`x`~_ y* z\n>> deep\n>\n>   indented\n> ```ts\n> p\n>\n> q\n> ```\n```\n```");
    expect(parseStyling(serializeStyling(rich))).toEqual(rich);
  });

  it("closes an unclosed fence and writes quote lines as '> '", () => {
    expect(serializeStyling(parseStyling("```\ncode"))).toBe("```\ncode\n```");
    expect(serializeStyling(parseStyling(">quoted\n>>nested"))).toBe("> quoted\n>> nested");
  });

  it("writes links, mentions, underline and spoilers in plain forms", () => {
    const rich = doc(
      line(
        { type: "link", href: "https://a.example/", children: [text("the "), bold(text("site"))] },
        text(" "),
        { type: "link", href: "https://b.example/", children: [text("https://b.example/")] },
        text(" "),
        { type: "link", href: "https://c.example/", children: [] },
        text(" hi "),
        { type: "mention", text: "alice", id: "@alice:example.org" },
        text(" "),
        { type: "underline", children: [text("under "), italic(text("it"))] },
        text(" "),
        { type: "spoiler", children: [text("secret")] },
      ),
    );
    expect(serializeStyling(rich)).toBe(
      "the *site* <https://a.example/> https://b.example/ https://c.example/ hi alice under _it_ secret",
    );
  });

  it("moves edge whitespace out of spans, drops empty spans and flattens a span nested in itself", () => {
    expect(serializeStyling(doc(line(text("a"), bold(text(" b ")), text("c"))))).toBe("a *b* c");
    expect(serializeStyling(doc(line(code(" x"), italic(), strike(text("  ")))))).toBe(" `x`  ");
    expect(serializeStyling(doc(line(bold(text("a "), bold(text("b")), text(" c")))))).toBe("*a b c*");
    const withWhitespace = doc(line(text("x "), bold(text(" y "), italic(text("z "))), text("!")));
    expect(serializeStyling(withWhitespace)).toBe("x  *y _z_* !");
    expect(toPlain(parseStyling(serializeStyling(withWhitespace)))).toBe(toPlain(withWhitespace));
  });
});

// Bodies built mostly from what styling reacts to, so the interesting cases are common.
const styled = fc.string({
  unit: fc.constantFrom("*", "_", "~", "`", "```", ">", "> ", " ", "\t", "\n", "a", "b", "é", "\u3000", "😀"),
  maxLength: 60,
});
const anything = fc.oneof(styled, fc.string({ unit: "binary", maxLength: 40 }));

/** Every text node non-empty, no two text nodes adjacent, no empty span: what "canonical" means for the model. */
function checkCanonical(inlines: Inline[]): void {
  inlines.forEach((node, i) => {
    if (node.type === "text") {
      expect(node.text).not.toBe("");
      expect(inlines[i + 1]?.type).not.toBe("text");
    } else if (node.type === "code") {
      expect(node.text).not.toBe("");
    } else if ("children" in node) {
      expect(node.children.length).toBeGreaterThan(0);
      checkCanonical(node.children);
    }
  });
}
function checkBlocks(blocks: Block[]): void {
  for (const b of blocks) {
    if (b.type === "line") checkCanonical(b.children);
    else if (b.type === "quote") checkBlocks(b.children);
  }
}

describe("properties", () => {
  it("parse(serialize(parse(s))) equals parse(s)", () => {
    fc.assert(
      fc.property(anything, (s) => {
        const rich = parseStyling(s);
        expect(parseStyling(serializeStyling(rich))).toEqual(rich);
      }),
      { numRuns: 2000 },
    );
  });

  it("serialize(parse(s)) === s for bodies without quote or fence lines", () => {
    const blockFree = anything.map((s) =>
      s
        .split("\n")
        .map((l) => (l.startsWith(">") || l.startsWith("```") ? `x${l}` : l))
        .join("\n"),
    );
    fc.assert(
      fc.property(blockFree, (s) => {
        expect(serializeStyling(parseStyling(s))).toBe(s);
      }),
      { numRuns: 2000 },
    );
  });

  it("serialize output is a fixed point: it comes back byte for byte", () => {
    fc.assert(
      fc.property(anything, (s) => {
        const canonical = serializeStyling(parseStyling(s));
        expect(serializeStyling(parseStyling(canonical))).toBe(canonical);
      }),
      { numRuns: 2000 },
    );
  });

  it("parse yields a canonical model and loses no text outside quote prefixes and fences", () => {
    fc.assert(
      fc.property(anything, (s) => {
        const rich = parseStyling(s);
        checkBlocks(rich.blocks);
        if (!/^(>|```)/m.test(s)) {
          const stripped = toPlain(rich).replace(/[*_~`]/g, "");
          expect(stripped).toBe(s.replace(/[*_~`]/g, ""));
        }
      }),
      { numRuns: 1000 },
    );
  });
});
