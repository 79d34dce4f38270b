/**
 * A small, strict HTML tokenizer and tree builder for Matrix
 * `org.matrix.custom.html` bodies. It is the one place that parses HTML:
 * swap `parseHtml` for parse5 (recommended) and nothing else changes.
 *
 * It never executes or passes on markup: callers walk the tree with an
 * allowlist (html.ts). Handles start/end/void tags, quoted and unquoted
 * attributes, comments, and character references (named subset, decimal,
 * hex); anything malformed is kept as text. Unclosed elements close at the
 * end; a stray end tag closes up to its match or is ignored (as browsers do).
 */

export type HtmlNode = { kind: "text"; text: string } | { kind: "element"; tag: string; attrs: Record<string, string>; children: HtmlNode[] };

const VOID = new Set(["br", "img", "hr", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr"]);
/** Elements whose content is raw text up to their end tag (never markup). */
const RAW_TEXT = new Set(["script", "style", "textarea", "title"]);

const NAMED: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };

export function decodeEntities(s: string): string {
  return s.replace(/&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,6});/g, (all, ref: string) => {
    if (ref[0] === "#") {
      const code = ref[1] === "x" || ref[1] === "X" ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
      if (code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return "\ufffd";
      return String.fromCodePoint(code);
    }
    return NAMED[ref] ?? all;
  });
}

const TAG_NAME = /^[a-zA-Z][a-zA-Z0-9-]*/;
const ATTR = /^\s*([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/;

export function parseHtml(html: string): HtmlNode[] {
  const root: HtmlNode & { kind: "element" } = { kind: "element", tag: "#root", attrs: {}, children: [] };
  const stack: (HtmlNode & { kind: "element" })[] = [root];
  const top = () => stack[stack.length - 1]!;
  const text = (t: string) => {
    if (t === "") return;
    const last = top().children.at(-1);
    if (last?.kind === "text") last.text += t;
    else top().children.push({ kind: "text", text: t });
  };
  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf("<", i);
    if (lt < 0) {
      text(decodeEntities(html.slice(i)));
      break;
    }
    text(decodeEntities(html.slice(i, lt)));
    i = lt;
    if (html.startsWith("<!--", i)) {
      const end = html.indexOf("-->", i + 4);
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    if (html[i + 1] === "/") {
      const name = TAG_NAME.exec(html.slice(i + 2));
      const gt = html.indexOf(">", i);
      if (!name || gt < 0) {
        text("<");
        i++;
        continue;
      }
      const tag = name[0].toLowerCase();
      const at = stack.map((e) => e.tag).lastIndexOf(tag);
      if (at > 0) stack.length = at;
      i = gt + 1;
      continue;
    }
    if (html[i + 1] === "!" || html[i + 1] === "?") {
      // Doctype or processing instruction: skipped.
      const gt = html.indexOf(">", i);
      i = gt < 0 ? html.length : gt + 1;
      continue;
    }
    const name = TAG_NAME.exec(html.slice(i + 1));
    if (!name) {
      text("<");
      i++;
      continue;
    }
    const tag = name[0].toLowerCase();
    let j = i + 1 + name[0].length;
    const attrs: Record<string, string> = {};
    for (;;) {
      const m = ATTR.exec(html.slice(j));
      if (!m) break;
      const key = m[1]!.toLowerCase();
      if (!(key in attrs)) attrs[key] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? "");
      j += m[0].length;
    }
    const rest = /^\s*(\/?)>/.exec(html.slice(j));
    if (!rest) {
      // Not a well-formed tag: show it as text rather than guess.
      text("<");
      i++;
      continue;
    }
    i = j + rest[0].length;
    const el: HtmlNode & { kind: "element" } = { kind: "element", tag, attrs, children: [] };
    top().children.push(el);
    if (RAW_TEXT.has(tag)) {
      const close = html.toLowerCase().indexOf(`</${tag}`, i);
      const end = close < 0 ? html.length : close;
      el.children.push({ kind: "text", text: html.slice(i, end) });
      const gt = close < 0 ? -1 : html.indexOf(">", close);
      i = gt < 0 ? html.length : gt + 1;
      continue;
    }
    if (!VOID.has(tag) && rest[1] !== "/") stack.push(el);
  }
  return root.children;
}
