/**
 * The one place that parses Matrix `org.matrix.custom.html` bodies: parse5
 * (a WHATWG-conformant parser, so malformed markup is read exactly as a
 * browser would) as a fragment, turned into a plain tree that html.ts walks
 * with an allowlist. Nothing here executes or passes on markup; script and
 * style contents, comments and doctypes are dropped.
 */
import { parseFragment, type DefaultTreeAdapterMap } from "parse5";

export type HtmlNode = { kind: "text"; text: string } | { kind: "element"; tag: string; attrs: Record<string, string>; children: HtmlNode[] };

type P5Node = DefaultTreeAdapterMap["childNode"];

const DROPPED = new Set(["script", "style", "template", "noscript", "iframe", "object"]);

function convert(nodes: P5Node[]): HtmlNode[] {
  const out: HtmlNode[] = [];
  for (const n of nodes) {
    if (n.nodeName === "#text" && "value" in n) {
      out.push({ kind: "text", text: n.value });
    } else if ("tagName" in n) {
      if (DROPPED.has(n.tagName)) continue;
      const attrs: Record<string, string> = {};
      for (const a of n.attrs) attrs[a.name] = a.value;
      const children = "content" in n && n.content ? n.content.childNodes : n.childNodes;
      out.push({ kind: "element", tag: n.tagName, attrs, children: convert(children) });
    }
    // Comments and doctypes carry nothing a reader sees.
  }
  return out;
}

export function parseHtml(html: string): HtmlNode[] {
  return convert(parseFragment(html).childNodes);
}
