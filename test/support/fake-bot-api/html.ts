/**
 * Minimal parse_mode "HTML" for the fake Bot API, following the tag list of
 * https://core.telegram.org/bots/api#html-style. Produces plain text plus
 * MessageEntity offsets in UTF-16 code units, as Telegram does
 * (https://core.telegram.org/api/entities#entity-length). Unknown tags are
 * refused with Telegram's "can't parse entities" wording, so code that sends
 * unsupported HTML fails here the way it would in production.
 */
import type { MessageEntity } from "grammy/types";
import { badRequest } from "./protocol.ts";

/** An entity without its position (Omit<> over the MessageEntity union would drop the variant fields). */
type EntityBody = { type: MessageEntity["type"] } & Record<string, unknown>;

interface Open {
  tag: string;
  entity: EntityBody | undefined;
  offset: number;
}

const SIMPLE: Record<string, MessageEntity["type"]> = {
  b: "bold",
  strong: "bold",
  i: "italic",
  em: "italic",
  u: "underline",
  ins: "underline",
  s: "strikethrough",
  strike: "strikethrough",
  del: "strikethrough",
  "tg-spoiler": "spoiler",
  code: "code",
  pre: "pre",
  blockquote: "blockquote",
};

const NAMED: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"' };

function byteOffset(source: string, index: number): number {
  return Buffer.byteLength(source.slice(0, index), "utf8");
}

function fail(what: string): never {
  throw badRequest(`can't parse entities: ${what}`);
}

function attributes(raw: string): Map<string, string> {
  const attrs = new Map<string, string>();
  const re = /([a-zA-Z-]+)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g;
  for (const m of raw.matchAll(re)) {
    attrs.set((m[1] ?? "").toLowerCase(), decode(m[2] ?? m[3] ?? m[4] ?? ""));
  }
  return attrs;
}

function decode(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-zA-Z]+);/g, (whole, name: string) => {
    if (name.startsWith("#x")) return String.fromCodePoint(parseInt(name.slice(2), 16));
    if (name.startsWith("#")) return String.fromCodePoint(parseInt(name.slice(1), 10));
    return NAMED[name.toLowerCase()] ?? whole;
  });
}

function entityFor(tag: string, attrs: Map<string, string>, at: number, source: string): Open["entity"] {
  if (tag === "a") {
    const href = attrs.get("href");
    if (href === undefined || href === "") return undefined; // Telegram drops links without href
    const mention = /^tg:\/\/user\?id=(\d+)$/.exec(href);
    if (mention) return { type: "text_mention", user: { id: Number(mention[1]), is_bot: false, first_name: "" } };
    return { type: "text_link", url: href };
  }
  if (tag === "span") {
    if (attrs.get("class") !== "tg-spoiler") fail(`Unsupported start tag "span" at byte offset ${byteOffset(source, at)}`);
    return { type: "spoiler" };
  }
  if (tag === "tg-emoji") {
    const id = attrs.get("emoji-id");
    if (id === undefined) fail(`Unsupported start tag "tg-emoji" at byte offset ${byteOffset(source, at)}`);
    return { type: "custom_emoji", custom_emoji_id: id };
  }
  if (tag === "blockquote" && attrs.has("expandable")) return { type: "expandable_blockquote" };
  const type = SIMPLE[tag];
  if (type === undefined) fail(`Unsupported start tag "${tag}" at byte offset ${byteOffset(source, at)}`);
  return { type } as Open["entity"];
}

export function parseHtml(source: string): { text: string; entities: MessageEntity[] } {
  let text = "";
  const entities: MessageEntity[] = [];
  const stack: Open[] = [];
  let i = 0;
  while (i < source.length) {
    const ch = source[i];
    if (ch === "&") {
      const m = /^&(#x[0-9a-fA-F]+|#\d+|[a-zA-Z]+);/.exec(source.slice(i, i + 12));
      if (m) {
        text += decode(m[0]);
        i += m[0].length;
        continue;
      }
      text += ch;
      i++;
      continue;
    }
    if (ch !== "<") {
      text += ch;
      i++;
      continue;
    }
    const end = source.indexOf(">", i);
    if (end < 0) fail(`Unclosed start tag at byte offset ${byteOffset(source, i)}`);
    const inner = source.slice(i + 1, end);
    if (inner.startsWith("/")) {
      const name = inner.slice(1).trim().toLowerCase();
      const open = stack.pop();
      if (open === undefined) fail(`Unexpected end tag at byte offset ${byteOffset(source, i)}`);
      if (name !== open.tag) fail(`Unmatched end tag at byte offset ${byteOffset(source, i)}, expected "</${open.tag}>", found "</${name}>"`);
      const length = text.length - open.offset;
      if (open.entity !== undefined && length > 0) {
        const parent = stack.at(-1);
        // <pre><code class="language-x"> is one pre entity with a language.
        if (open.tag === "code" && parent?.tag === "pre" && "language" in open.entity) {
          parent.entity = { type: "pre", language: open.entity["language"] };
        } else {
          entities.push({ ...open.entity, offset: open.offset, length } as MessageEntity);
        }
      }
    } else {
      const m = /^([a-zA-Z][a-zA-Z0-9-]*)(.*)$/s.exec(inner);
      if (!m) fail(`Unsupported start tag at byte offset ${byteOffset(source, i)}`);
      const tag = (m[1] ?? "").toLowerCase();
      const attrs = attributes(m[2] ?? "");
      let entity = entityFor(tag, attrs, i, source);
      const lang = attrs.get("class");
      if (tag === "code" && lang?.startsWith("language-") && stack.at(-1)?.tag === "pre") {
        entity = { type: "code", language: lang.slice("language-".length) } as Open["entity"];
      }
      stack.push({ tag, entity, offset: text.length });
    }
    i = end + 1;
  }
  const unclosed = stack.pop();
  if (unclosed !== undefined) fail(`Can't find end tag corresponding to start tag "${unclosed.tag}"`);
  entities.sort((a, b) => a.offset - b.offset || b.length - a.length);
  return { text, entities };
}
