/**
 * Matrix `org.matrix.custom.html` ↔ the neutral rich-text model.
 *
 * Incoming HTML is walked with an allowlist (spec: "m.room.message msgtypes",
 * the tags clients should allow): formatting tags become model nodes, block
 * tags break lines, `<mx-reply>` (the legacy reply fallback) and script-like
 * content are dropped, unknown tags keep only their text. Outgoing HTML
 * escapes every text and attribute: the model cannot inject markup.
 */
import type { Block, Inline, RichText } from "../../core/format/model.ts";
import { parseHtml, type HtmlNode } from "./html-parse.ts";

type Item = { t: "inline"; v: Inline } | { t: "br" } | { t: "soft" } | { t: "block"; v: Block };

const DROP = new Set(["mx-reply", "script", "style", "head", "title", "textarea", "select", "button", "iframe", "object", "svg", "math"]);
const BLOCKISH = new Set(["p", "div", "li", "ul", "ol", "dl", "dt", "dd", "table", "thead", "tbody", "tr", "details", "summary", "section", "article", "header", "footer", "caption", "figure", "hr"]);
const HEADINGS = new Set(["h1", "h2", "h3", "h4", "h5", "h6"]);
const MARKS: Record<string, "bold" | "italic" | "underline" | "strike"> = {
  b: "bold",
  strong: "bold",
  i: "italic",
  em: "italic",
  cite: "italic",
  u: "underline",
  ins: "underline",
  s: "strike",
  del: "strike",
  strike: "strike",
};
const SAFE_SCHEMES = /^(?:https?|ftp|mailto|magnet|matrix|xmpp|geo|tel):/i;
const MATRIX_TO_USER = /^https:\/\/matrix\.to\/#\/(@[^/?#]+:[^/?#]+)/;

function textContent(node: HtmlNode): string {
  if (node.kind === "text") return node.text;
  if (DROP.has(node.tag)) return "";
  if (node.tag === "br") return "\n";
  return node.children.map(textContent).join("");
}

/** Wraps runs of inline items in a mark; breaks and blocks pass through. */
function wrap(items: Item[], make: (children: Inline[]) => Inline): Item[] {
  const out: Item[] = [];
  let run: Inline[] = [];
  const flush = () => {
    if (run.length > 0) out.push({ t: "inline", v: make(run) });
    run = [];
  };
  for (const item of items) {
    if (item.t === "inline") run.push(item.v);
    else {
      flush();
      out.push(item);
    }
  }
  flush();
  return out;
}

function itemsOf(nodes: HtmlNode[], ctx: { list?: { ordered: boolean; n: number } }): Item[] {
  return nodes.flatMap((n) => itemOf(n, ctx));
}

function itemOf(node: HtmlNode, ctx: { list?: { ordered: boolean; n: number } }): Item[] {
  if (node.kind === "text") {
    // HTML collapses white space; line breaks come from <br> and block tags.
    const text = node.text.replace(/[ \t\n\r\f]+/g, " ");
    return text === "" ? [] : [{ t: "inline", v: { type: "text", text } }];
  }
  const { tag, attrs, children } = node;
  if (DROP.has(tag)) return [];
  if (tag === "br") return [{ t: "br" }];
  if (tag === "pre") {
    const code = children.find((c): c is HtmlNode & { kind: "element" } => c.kind === "element" && c.tag === "code");
    const lang = /(?:^|\s)language-([\w+#.-]+)/.exec(code?.attrs.class ?? "")?.[1];
    const text = children.map(textContent).join("").replace(/\n$/, "");
    return [{ t: "block", v: lang ? { type: "pre", text, lang } : { type: "pre", text } }];
  }
  if (tag === "blockquote") return [{ t: "block", v: { type: "quote", children: toBlocks(itemsOf(children, {})) } }];
  if (tag === "code") return [{ t: "inline", v: { type: "code", text: children.map(textContent).join("") } }];
  if (tag === "img") {
    const alt = attrs.alt ?? attrs.title;
    return alt ? [{ t: "inline", v: { type: "text", text: alt } }] : [];
  }
  if (tag === "a") {
    const href = attrs.href ?? "";
    const inner = itemsOf(children, ctx);
    const user = MATRIX_TO_USER.exec(href)?.[1];
    if (user) {
      const text = children.map(textContent).join("").trim() || decodeURIComponent(user);
      return [{ t: "inline", v: { type: "mention", text, id: safeDecode(user) } }];
    }
    if (!SAFE_SCHEMES.test(href)) return inner;
    return wrap(inner, (c) => ({ type: "link", href, children: c }));
  }
  const mark = MARKS[tag];
  if (mark) return wrap(itemsOf(children, ctx), (c) => ({ type: mark, children: c }));
  if (tag === "span" && "data-mx-spoiler" in attrs) return wrap(itemsOf(children, ctx), (c) => ({ type: "spoiler", children: c }));
  if (HEADINGS.has(tag)) return [{ t: "soft" }, ...wrap(itemsOf(children, ctx), (c) => ({ type: "bold", children: c })), { t: "soft" }];
  if (tag === "ul" || tag === "ol") {
    const start = Number.parseInt(attrs.start ?? "1", 10);
    const list = { ordered: tag === "ol", n: Number.isFinite(start) ? start : 1 };
    return [{ t: "soft" }, ...itemsOf(children, { list }), { t: "soft" }];
  }
  if (tag === "li") {
    const bullet = ctx.list?.ordered ? `${ctx.list.n++}. ` : "• ";
    return [{ t: "soft" }, { t: "inline", v: { type: "text", text: bullet } }, ...itemsOf(children, {}), { t: "soft" }];
  }
  if (tag === "hr") return [{ t: "soft" }, { t: "inline", v: { type: "text", text: "———" } }, { t: "soft" }];
  if (BLOCKISH.has(tag)) return [{ t: "soft" }, ...itemsOf(children, ctx), { t: "soft" }];
  // Any other tag (font, span, sup, sub, …): its text only.
  return itemsOf(children, ctx);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function trimLine(line: Inline[]): Inline[] {
  // Adjacent texts (a list bullet and its item) become one.
  const out: Inline[] = [];
  for (const i of line) {
    const prev = out.at(-1);
    if (i.type === "text" && prev?.type === "text") out[out.length - 1] = { type: "text", text: prev.text + i.text };
    else out.push(i);
  }
  const first = out[0];
  if (first?.type === "text") {
    const t = first.text.replace(/^ +/, "");
    if (t === "") out.shift();
    else out[0] = { type: "text", text: t };
  }
  const last = out.at(-1);
  if (last?.type === "text") {
    const t = last.text.replace(/ +$/, "");
    if (t === "") out.pop();
    else out[out.length - 1] = { type: "text", text: t };
  }
  return out;
}

function toBlocks(items: Item[]): Block[] {
  const blocks: Block[] = [];
  let line: Inline[] = [];
  let open = false; // a line has started (possibly empty after a <br>)
  const flush = (force: boolean) => {
    if (open || line.length > 0 || force) blocks.push({ type: "line", children: trimLine(line) });
    line = [];
    open = false;
  };
  for (const item of items) {
    if (item.t === "inline") {
      line.push(item.v);
      open = true;
    } else if (item.t === "br") flush(true);
    else if (item.t === "soft") {
      if (line.length > 0 || open) flush(false);
    } else {
      if (line.length > 0 || open) flush(false);
      blocks.push(item.v);
    }
  }
  if (line.length > 0) flush(false);
  // Leading and trailing empty lines carry nothing.
  const empty = (b: Block | undefined) => b?.type === "line" && b.children.length === 0;
  while (empty(blocks[0])) blocks.shift();
  while (empty(blocks.at(-1))) blocks.pop();
  return blocks;
}

/** Matrix HTML → model. */
export function htmlToRich(html: string): RichText {
  return { blocks: toBlocks(itemsOf(parseHtml(html), {})) };
}

// ---- model → HTML ----

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

const TAGS = { bold: "strong", italic: "em", underline: "u", strike: "del" } as const;

function inlineHtml(inline: Inline): string {
  switch (inline.type) {
    case "text":
      return escapeHtml(inline.text);
    case "code":
      return `<code>${escapeHtml(inline.text)}</code>`;
    case "mention":
      return inline.id ? `<a href="https://matrix.to/#/${escapeHtml(encodeURI(inline.id))}">${escapeHtml(inline.text)}</a>` : escapeHtml(inline.text);
    case "link": {
      const inner = inline.children.map(inlineHtml).join("");
      return SAFE_SCHEMES.test(inline.href) ? `<a href="${escapeHtml(inline.href)}">${inner}</a>` : inner;
    }
    case "spoiler":
      return `<span data-mx-spoiler>${inline.children.map(inlineHtml).join("")}</span>`;
    default:
      return `<${TAGS[inline.type]}>${inline.children.map(inlineHtml).join("")}</${TAGS[inline.type]}>`;
  }
}

function blocksHtml(blocks: Block[]): string {
  let out = "";
  let prevLine = false;
  for (const b of blocks) {
    if (b.type === "line") {
      if (prevLine) out += "<br>";
      out += b.children.map(inlineHtml).join("");
      prevLine = true;
    } else if (b.type === "pre") {
      const cls = b.lang ? ` class="language-${escapeHtml(b.lang)}"` : "";
      out += `<pre><code${cls}>${escapeHtml(b.text)}</code></pre>`;
      prevLine = false;
    } else {
      out += `<blockquote>${blocksHtml(b.children)}</blockquote>`;
      prevLine = false;
    }
  }
  return out;
}

/** Model → Matrix HTML (every text escaped). */
export function richToHtml(rich: RichText): string {
  return blocksHtml(rich.blocks);
}

/** True when the model carries anything plain text loses (then `formatted_body` is worth sending). */
export function hasFormatting(rich: RichText): boolean {
  const inl = (i: Inline): boolean => i.type !== "text";
  const blk = (b: Block): boolean => b.type !== "line" || b.children.some(inl);
  return rich.blocks.some(blk);
}

/**
 * Strips a legacy plain-text reply fallback (spec: "Fallbacks for rich
 * replies", removed in v1.13 but still sent): leading `> ` lines, the first
 * being `> <@user:server> …`, then one empty line.
 */
export function stripReplyFallback(body: string): string {
  const lines = body.split("\n");
  if (!lines[0]?.startsWith("> <")) return body;
  let i = 0;
  while (i < lines.length && lines[i]!.startsWith(">")) i++;
  if (lines[i] === "") i++;
  return lines.slice(i).join("\n");
}
