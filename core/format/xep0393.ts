/**
 * XEP-0393 Message Styling (https://xmpp.org/extensions/xep-0393.html) to and
 * from the neutral rich-text model.
 *
 * Parsing follows the XEP's two passes ("Implementation Notes"): the body is
 * cut into blocks (quotes, preformatted blocks, one `line` block per plain
 * line), then spans are parsed inside each line.
 *
 * Round trips. The model keeps no directive characters: `*a*` is
 * `bold([text "a"])`, and a directive character that opens or closes nothing
 * stays in a text node as written. XEP-0393 has no escape mechanism, and none is
 * needed for what the parser produces: every text node is source text that did
 * not style, so writing it back verbatim cannot style either. Hence, for every
 * string `s`, `parseStyling(serializeStyling(parseStyling(s)))` deep-equals
 * `parseStyling(s)`, and `serializeStyling(parseStyling(s)) === s` except where
 * the model cannot hold the source's choice between equivalent block spellings:
 *   - a quote line is written `> text` (`>` alone for an empty line, `>>` for
 *     nesting), so `>text` or `>\ttext` come back as `> text`;
 *   - a preformatted block is always closed, so an unclosed fence (ended by the
 *     end of its parent block, "Preformatted Text") gains a closing "```" line;
 *   - a preformatted block with one empty line and one with no line at all are
 *     both `text: ""`, written back as the latter.
 * Text already in the canonical spelling (any text without `>`/"```" lines,
 * and anything `serializeStyling` wrote) comes back byte for byte.
 *
 * Serializing a model from another network is best effort: whitespace at the
 * edges of a span is moved outside its directives ("Spans" forbids it inside),
 * empty spans are dropped, a span glued to a preceding word (`foo*bar*`) cannot
 * style and shows its directives literally, and literal text that happens to
 * look like styling will be styled by the receiving client.
 */
import { toPlain, type Block, type Inline, type RichText } from "./model.ts";

/** Glossary: "any Unicode scalar value which has the property White_Space or is in category Z". */
const WHITESPACE = /[\p{White_Space}\p{Z}]/u;
const FENCE = "```";
/**
 * Quotes nest at most this deep; deeper ">" stay text. "Security Considerations" asks parsers to
 * survive hostile input, and ">>>>…" would otherwise recurse once per character.
 */
export const MAX_QUOTE_DEPTH = 32;

type Directive = "*" | "_" | "~" | "`";
const DIRECTIVES: readonly Directive[] = ["*", "_", "~", "`"];
const SPAN_OF = { "*": "bold", _: "italic", "~": "strike" } as const;
const DIRECTIVE_OF = { bold: "*", italic: "_", strike: "~" } as const;

function isWhitespace(ch: string | undefined): boolean {
  return ch !== undefined && WHITESPACE.test(ch);
}

function isDirective(ch: string | undefined): ch is Directive {
  return ch === "*" || ch === "_" || ch === "~" || ch === "`";
}

// ---------------------------------------------------------------- parsing

export function parseStyling(body: string): RichText {
  return { blocks: parseBlocks(body.split("\n")) };
}

function parseBlocks(lines: string[], depth = 0): Block[] {
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.startsWith(">") && depth < MAX_QUOTE_DEPTH) {
      // "Quotations": a quote runs until the first line not starting with ">"; the
      // first leading whitespace character of each line is trimmed before its
      // children are parsed, so ">> a" nests and "> > a" nests the same way.
      const inner: string[] = [];
      for (; i < lines.length && lines[i]!.startsWith(">"); i++) {
        const rest = lines[i]!.slice(1);
        inner.push(isWhitespace(rest[0]) ? rest.slice(1) : rest);
      }
      blocks.push({ type: "quote", children: parseBlocks(inner, depth + 1) });
    } else if (line.startsWith(FENCE)) {
      // "Preformatted Text": the rest of the opening line is a free-form tag (kept verbatim
      // as `lang`); the block ends at a line that is exactly "```" or at the
      // end of the parent block, and nothing inside it is parsed.
      const lang = line.slice(FENCE.length);
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== FENCE; i++) body.push(lines[i]!);
      i++; // the closing fence, if any
      const text = body.join("\n");
      blocks.push(lang === "" ? { type: "pre", text } : { type: "pre", text, lang });
    } else {
      blocks.push({ type: "line", children: new SpanParser(line).parse(0, line.length) });
      i++;
    }
  }
  return blocks;
}

/**
 * "Spans", inside one line (spans never cross lines). An opening directive
 * stands at the start of its parent (the line, or the inside of an enclosing
 * span, which is how "after a different opening styling directive" arises), or
 * after whitespace, and is not followed by whitespace. The closing directive is
 * the nearest later same character not preceded by whitespace ("lazily
 * matched"), with at least one character between the two. A directive doubled
 * (`**`) opens nothing: that is how the XEP's `**` and `****` stay unstyled.
 * Spans nest, but never the same kind twice (the inner closer would close the
 * outer span first), and a preformatted span holds only text.
 */
class SpanParser {
  private readonly line: string;
  /** Per directive, the ascending positions that may close a span. */
  private readonly closers = new Map<Directive, number[]>();

  constructor(line: string) {
    this.line = line;
    for (const d of DIRECTIVES) this.closers.set(d, []);
    for (let j = 1; j < line.length; j++) {
      const ch = line[j];
      if (isDirective(ch) && !isWhitespace(line[j - 1])) this.closers.get(ch)!.push(j);
    }
  }

  parse(from: number, to: number): Inline[] {
    const { line } = this;
    const out: Inline[] = [];
    let plainFrom = from;
    for (let i = from; i < to; i++) {
      const ch = line[i];
      if (!isDirective(ch) || !this.opens(i, from)) continue;
      const close = this.closerAfter(ch, i + 2, to);
      if (close === undefined) continue;
      if (i > plainFrom) out.push({ type: "text", text: line.slice(plainFrom, i) });
      out.push(
        ch === "`"
          ? { type: "code", text: line.slice(i + 1, close) }
          : { type: SPAN_OF[ch], children: this.parse(i + 1, close) },
      );
      i = close;
      plainFrom = close + 1;
    }
    if (to > plainFrom) out.push({ type: "text", text: line.slice(plainFrom, to) });
    return out;
  }

  private opens(i: number, from: number): boolean {
    const next = this.line[i + 1];
    return (i === from || isWhitespace(this.line[i - 1])) && !isWhitespace(next) && next !== this.line[i];
  }

  /** The first closing position >= `min` and < `to` (binary search keeps long lines linear-ish). */
  private closerAfter(d: Directive, min: number, to: number): number | undefined {
    const positions = this.closers.get(d)!;
    let lo = 0;
    let hi = positions.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (positions[mid]! < min) lo = mid + 1;
      else hi = mid;
    }
    const found = positions[lo];
    return found !== undefined && found < to ? found : undefined;
  }
}

// ------------------------------------------------------------ serializing

export function serializeStyling(rich: RichText): string {
  return blockLines(rich.blocks).join("\n");
}

function blockLines(blocks: Block[]): string[] {
  return blocks.flatMap((block): string[] => {
    switch (block.type) {
      case "line":
        return [inlines(block.children, new Set())];
      case "pre":
        return [FENCE + (block.lang ?? ""), ...(block.text === "" ? [] : block.text.split("\n")), FENCE];
      case "quote":
        // Inverse of the one-whitespace trim in parseBlocks; no trailing space on empty lines.
        return blockLines(block.children).map((l) => (l === "" || l.startsWith(">") ? `>${l}` : `> ${l}`));
    }
  });
}

type SpanKind = keyof typeof DIRECTIVE_OF;

/** `open`: span kinds already around this content; nesting one in itself adds nothing. */
function inlines(children: Inline[], open: ReadonlySet<SpanKind>): string {
  return children.map((child) => inline(child, open)).join("");
}

function inline(node: Inline, open: ReadonlySet<SpanKind>): string {
  switch (node.type) {
    case "text":
    case "mention":
      return node.text;
    case "code":
      return wrap("`", node.text);
    case "bold":
    case "italic":
    case "strike": {
      const inner = inlines(node.children, new Set(open).add(node.type));
      return open.has(node.type) ? inner : wrap(DIRECTIVE_OF[node.type], inner);
    }
    // No XEP-0393 form: keep the content (and any styling inside it).
    case "underline":
    case "spoiler":
      return inlines(node.children, open);
    case "link": {
      const label = toPlain({ blocks: [{ type: "line", children: node.children }] });
      return label === "" || label === node.href ? node.href : `${inlines(node.children, open)} <${node.href}>`;
    }
  }
}

/** Directives around `content`, with edge whitespace moved outside ("Spans" forbids it inside). */
function wrap(directive: string, content: string): string {
  const chars = [...content];
  let start = 0;
  let end = chars.length;
  while (start < end && isWhitespace(chars[start])) start++;
  while (end > start && isWhitespace(chars[end - 1])) end--;
  if (start === end) return content; // an empty span is no span
  const lead = chars.slice(0, start).join("");
  const trail = chars.slice(end).join("");
  return `${lead}${directive}${chars.slice(start, end).join("")}${directive}${trail}`;
}
