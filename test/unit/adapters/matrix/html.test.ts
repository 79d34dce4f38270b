import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { escapeHtml, htmlToRich, richToHtml, stripReplyFallback } from "../../../../adapters/matrix/html.ts";
import { parseHtml } from "../../../../adapters/matrix/html-parse.ts";
import { plain, toPlain, type Inline, type RichText } from "../../../../core/format/model.ts";

const line = (...children: Inline[]) => ({ type: "line" as const, children });
const t = (text: string): Inline => ({ type: "text", text });

describe("Matrix HTML → model", () => {
  it("maps formatting tags, links and mentions", () => {
    expect(htmlToRich('<b>bold</b> <em>it</em> <del>x</del> <u>u</u> <code>c</code> <a href="https://e.org">l</a> <a href="https://matrix.to/#/@bob:hs">Bob</a>')).toEqual({
      blocks: [
        line(
          { type: "bold", children: [t("bold")] },
          t(" "),
          { type: "italic", children: [t("it")] },
          t(" "),
          { type: "strike", children: [t("x")] },
          t(" "),
          { type: "underline", children: [t("u")] },
          t(" "),
          { type: "code", text: "c" },
          t(" "),
          { type: "link", href: "https://e.org", children: [t("l")] },
          t(" "),
          { type: "mention", text: "Bob", id: "@bob:hs" },
        ),
      ],
    });
  });

  it("breaks lines on <br> and block tags, keeps pre verbatim, nests quotes", () => {
    const rich = htmlToRich('<p>one<br>two</p><pre><code class="language-js">a &lt; b\n  c</code></pre><blockquote><p>quoted</p></blockquote><ul><li>x</li><li>y</li></ul>');
    expect(rich.blocks).toEqual([
      line(t("one")),
      line(t("two")),
      { type: "pre", text: "a < b\n  c", lang: "js" },
      { type: "quote", children: [line(t("quoted"))] },
      line(t("• x")),
      line(t("• y")),
    ]);
  });

  it("drops reply fallbacks, scripts and unsafe links; keeps the text of unknown tags", () => {
    expect(toPlain(htmlToRich("<mx-reply><blockquote>old</blockquote></mx-reply>new"))).toBe("new");
    expect(toPlain(htmlToRich("<script>alert(1)</script>safe<style>p{}</style>"))).toBe("safe");
    expect(htmlToRich('<a href="javascript:alert(1)">click</a>').blocks).toEqual([line(t("click"))]);
    expect(toPlain(htmlToRich('<font color="red">red</font> <marquee>m</marquee>'))).toBe("red m");
    expect(toPlain(htmlToRich("a < b & c &amp; &#x1F600; &unknown;"))).toBe("a < b & c & 😀 &unknown;");
  });

  it("never throws and never loses plain text on arbitrary input", () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const rich = htmlToRich(s);
        expect(Array.isArray(rich.blocks)).toBe(true);
        if (!/[<&]/.test(s)) expect(toPlain(rich).replace(/\s+/g, "")).toBe(s.replace(/\s+/g, ""));
      }),
    );
  });

  it("tokenizer: attributes in every quoting, void and self-closing tags, stray end tags", () => {
    const nodes = parseHtml(`<a href="x" title='y' data-z=w>t</a></b><br/><img src=a alt="b">`);
    expect(nodes[0]).toMatchObject({ kind: "element", tag: "a", attrs: { href: "x", title: "y", "data-z": "w" } });
    expect(nodes.map((n) => (n.kind === "element" ? n.tag : n.text))).toEqual(["a", "br", "img"]);
  });
});

describe("model → Matrix HTML", () => {
  it("renders formatting and escapes every text and attribute", () => {
    const rich: RichText = {
      blocks: [
        line({ type: "bold", children: [t("<b>&")] }, { type: "link", href: 'https://e.org/"><script>', children: [t("l")] }),
        line({ type: "mention", text: "Bob", id: "@bob:hs" }),
        { type: "pre", text: "x < y", lang: "js" },
        { type: "quote", children: [line(t("q"))] },
      ],
    };
    expect(richToHtml(rich)).toBe(
      '<strong>&lt;b&gt;&amp;</strong><a href="https://e.org/&quot;&gt;&lt;script&gt;">l</a><br><a href="https://matrix.to/#/@bob:hs">Bob</a><pre><code class="language-js">x &lt; y</code></pre><blockquote>q</blockquote>',
    );
  });

  it("round-trips text through HTML for any string (no injection)", () => {
    fc.assert(
      fc.property(fc.string().filter((s) => !/[\s]/.test(s)), (s) => {
        expect(toPlain(htmlToRich(richToHtml(plain(s))))).toBe(s);
        expect(parseHtml(escapeHtml(s)).every((n) => n.kind === "text")).toBe(true);
      }),
    );
  });
});

describe("reply fallbacks", () => {
  it("strips the quoted lines of a legacy plain-text reply", () => {
    expect(stripReplyFallback("> <@alice:hs> hi\n> there\n\nanswer")).toBe("answer");
    expect(stripReplyFallback("> not a fallback\n\ntext")).toBe("> not a fallback\n\ntext");
  });
});
