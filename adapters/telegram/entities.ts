/**
 * Telegram message entities ↔ the neutral rich-text model.
 *
 * Telegram sends a plain text plus a flat list of entities, each an `offset`
 * and `length` in UTF-16 code units (https://core.telegram.org/bots/api#messageentity);
 * JavaScript string indices are UTF-16 code units too, so `text.slice` and
 * `.length` are exact even around emoji. Entities may nest and, in what
 * clients send, overlap; `pre` and `blockquote` span whole lines.
 *
 * Outgoing text is always sent as `entities`, never with `parse_mode`, so no
 * text the XMPP user types can inject markup.
 */
import type { MessageEntity } from "grammy/types";
import { toPlain, type Block, type Inline, type RichText } from "../../core/format/model.ts";

export interface Formatted {
  text: string;
  entities: MessageEntity[];
}

/** Schemes Telegram opens from a text_link; anything else is sent as plain text. */
const LINK_SCHEME = /^(?:https?:\/\/|tg:\/\/|mailto:)/i;

// ───────────────────────────── model → Telegram ─────────────────────────────

interface Writer {
  text: string;
  entities: MessageEntity[];
}

export function toEntities(rich: RichText): Formatted {
  const w: Writer = { text: "", entities: [] };
  writeBlocks(rich.blocks, w, 0);
  // Outer first: by offset, longer first, block entities before inline ones over the same range.
  const rank = (e: MessageEntity): number => (e.type === "blockquote" ? 0 : e.type === "pre" ? 1 : 2);
  const entities = w.entities.filter((e) => e.length > 0).sort((a, b) => a.offset - b.offset || b.length - a.length || rank(a) - rank(b));
  return { text: w.text, entities };
}

/** A quote with nothing in it has no line in the plain text either: it is left out. */
function hasLines(block: Block): boolean {
  return block.type !== "quote" || block.children.some(hasLines);
}

function writeBlocks(blocks: Block[], w: Writer, quoteDepth: number): void {
  blocks.filter(hasLines).forEach((block, i) => {
    if (i > 0) w.text += "\n";
    const start = w.text.length;
    switch (block.type) {
      case "line":
        for (const child of block.children) writeInline(child, w);
        return;
      case "pre":
        w.text += block.text;
        w.entities.push({ type: "pre", offset: start, length: block.text.length, ...(block.lang ? { language: block.lang } : {}) });
        return;
      case "quote":
        if (quoteDepth > 0) {
          // Telegram blockquotes do not nest: an inner quote keeps its "> " lines as text.
          w.text += toPlain({ blocks: [block] });
          return;
        }
        writeBlocks(block.children, w, quoteDepth + 1);
        // A quote of nothing but empty text cannot be an entity (length 0): keep its "> " as text.
        if (w.text.length === start) w.text += toPlain({ blocks: [block] });
        else w.entities.push({ type: "blockquote", offset: start, length: w.text.length - start });
        return;
    }
  });
}

const SPAN_TYPE = {
  bold: "bold",
  italic: "italic",
  underline: "underline",
  strike: "strikethrough",
  spoiler: "spoiler",
} as const;

function writeInline(node: Inline, w: Writer): void {
  const offset = w.text.length;
  switch (node.type) {
    case "text":
      w.text += node.text;
      return;
    case "code":
      w.text += node.text;
      w.entities.push({ type: "code", offset, length: node.text.length });
      return;
    case "mention":
      w.text += node.text;
      // A mention by id reaches people without a username (text_mention); "@name" Telegram detects itself.
      if (node.id !== undefined && /^[1-9][0-9]*$/.test(node.id)) {
        w.entities.push({ type: "text_mention", offset, length: node.text.length, user: { id: Number(node.id), is_bot: false, first_name: node.text } });
      }
      return;
    case "link":
      for (const child of node.children) writeInline(child, w);
      if (LINK_SCHEME.test(node.href)) w.entities.push({ type: "text_link", offset, length: w.text.length - offset, url: node.href });
      return;
    default:
      for (const child of node.children) writeInline(child, w);
      w.entities.push({ type: SPAN_TYPE[node.type], offset, length: w.text.length - offset });
  }
}

// ───────────────────────────── Telegram → model ─────────────────────────────

const BLOCK_TYPES: ReadonlySet<string> = new Set(["pre", "blockquote", "expandable_blockquote"]);
/** Entities that become an inline node; the rest (hashtag, bot_command, custom_emoji…) stay plain text. */
const INLINE_TYPES: ReadonlySet<string> = new Set([
  "bold",
  "italic",
  "underline",
  "strikethrough",
  "spoiler",
  "code",
  "text_link",
  "url",
  "mention",
  "text_mention",
]);

interface Span {
  entity: MessageEntity;
  start: number;
  end: number;
  order: number;
}

export function fromEntities(text: string, entities: readonly MessageEntity[] = []): RichText {
  const valid = entities
    .map((entity, order): Span => ({ entity, start: entity.offset, end: entity.offset + entity.length, order }))
    .filter((s) => Number.isInteger(s.start) && Number.isInteger(s.end) && s.start >= 0 && s.end > s.start && s.end <= text.length);
  return { blocks: parseBlocks(text, 0, text.length, valid, false) };
}

/**
 * Splits [start, end) into blocks: pre and blockquote entities are blocks,
 * the text between them lines. The "\n" that separates a block from its
 * neighbours belongs to neither (the inverse of `writeBlocks`).
 */
function parseBlocks(text: string, start: number, end: number, spans: Span[], inQuote: boolean): Block[] {
  const candidates = spans
    .filter((s) => BLOCK_TYPES.has(s.entity.type) && s.start >= start && s.start < end && !(inQuote && s.entity.type !== "pre"))
    .sort((a, b) => a.start - b.start || b.end - a.end || a.order - b.order);
  const blocks: Block[] = [];
  let pos = start;
  let afterBlock = false;
  for (const span of candidates) {
    if (span.start < pos) continue; // inside or overlapping the previous block
    const spanEnd = Math.min(span.end, end);
    blocks.push(...lineBlocks(text, pos, span.start, spans, afterBlock, true));
    if (span.entity.type === "pre") {
      const lang = span.entity.type === "pre" ? span.entity.language : undefined;
      blocks.push({ type: "pre", text: text.slice(span.start, spanEnd), ...(lang ? { lang } : {}) });
    } else {
      blocks.push({ type: "quote", children: parseBlocks(text, span.start, spanEnd, spans, true) });
    }
    pos = spanEnd;
    afterBlock = true;
  }
  blocks.push(...lineBlocks(text, pos, end, spans, afterBlock, false));
  return blocks;
}

function lineBlocks(text: string, start: number, end: number, spans: Span[], afterBlock: boolean, beforeBlock: boolean): Block[] {
  let s = start;
  let e = end;
  if (afterBlock || beforeBlock) {
    const segment = text.slice(start, end);
    // Between two blocks, "" or a lone separator holds no line.
    if (segment === "" || (afterBlock && beforeBlock && segment === "\n")) return [];
    if (afterBlock && text[s] === "\n") s++;
    if (beforeBlock && e > s && text[e - 1] === "\n") e--;
  }
  const blocks: Block[] = [];
  let lineStart = s;
  for (let i = s; i <= e; i++) {
    if (i === e || text[i] === "\n") {
      blocks.push({ type: "line", children: inlines(text, lineStart, i, spans) });
      lineStart = i + 1;
    }
  }
  return blocks;
}

interface Open {
  span: Span;
  children: Inline[];
}

/** Inline nodes of [start, end): entities nest by start (outer first); overlapping ones are split. */
function inlines(text: string, start: number, end: number, spans: Span[]): Inline[] {
  const active = spans.filter((s) => INLINE_TYPES.has(s.entity.type) && s.start < end && s.end > start);
  const cuts = new Set([start, end]);
  for (const s of active) {
    cuts.add(Math.max(s.start, start));
    cuts.add(Math.min(s.end, end));
  }
  const points = [...cuts].sort((a, b) => a - b);
  const root: Inline[] = [];
  const stack: Open[] = [];
  const top = (): Inline[] => stack.at(-1)?.children ?? root;
  const close = (): void => {
    const open = stack.pop()!;
    const node = nodeOf(open.span.entity, open.children, text.slice(open.span.start, open.span.end));
    top().push(...node);
  };
  for (let i = 0; i + 1 < points.length; i++) {
    const a = points[i]!;
    const b = points[i + 1]!;
    const covering = active
      .filter((s) => s.start <= a && s.end >= b)
      .sort((x, y) => x.start - y.start || y.end - x.end || x.order - y.order);
    let keep = 0;
    while (keep < stack.length && keep < covering.length && stack[keep]!.span === covering[keep]) keep++;
    while (stack.length > keep) close();
    for (const span of covering.slice(keep)) stack.push({ span, children: [] });
    pushText(top(), text.slice(a, b));
  }
  while (stack.length > 0) close();
  return root;
}

function pushText(into: Inline[], text: string): void {
  if (text === "") return;
  const last = into.at(-1);
  if (last?.type === "text") last.text += text;
  else into.push({ type: "text", text });
}

function plainOf(children: Inline[]): string {
  return toPlain({ blocks: [{ type: "line", children }] });
}

function nodeOf(entity: MessageEntity, children: Inline[], whole: string): Inline[] {
  switch (entity.type) {
    case "bold":
    case "italic":
    case "underline":
    case "spoiler":
      return [{ type: entity.type, children }];
    case "strikethrough":
      return [{ type: "strike", children }];
    case "code":
      return [{ type: "code", text: plainOf(children) }];
    case "text_link":
      return [{ type: "link", href: entity.url, children }];
    case "url":
      // The entity's own text is the address (an overlapping entity may have split it).
      return [{ type: "link", href: whole, children }];
    case "mention":
      return [{ type: "mention", text: plainOf(children) }];
    case "text_mention":
      return [{ type: "mention", text: plainOf(children), id: String(entity.user.id) }];
    default:
      return children;
  }
}
