/**
 * Splits a formatted text longer than Telegram's limit (4096 UTF-16 code
 * units for sendMessage, https://core.telegram.org/bots/api#sendmessage)
 * into several, cutting at the last line break, else the last space, else
 * hard (never inside a surrogate pair). Entities are clipped to each part
 * and re-based; the separator at a cut is dropped.
 */
import type { MessageEntity } from "grammy/types";
import type { Formatted } from "./entities.ts";

export const TEXT_LIMIT = 4096;
export const CAPTION_LIMIT = 1024;

function cutPoint(text: string, from: number, max: number): { cut: number; skip: number } {
  const limit = from + max;
  const window = text.slice(from, limit + 1); // a separator right at the limit counts
  for (const sep of ["\n", " "]) {
    const at = window.lastIndexOf(sep);
    if (at > 0 && at <= max) return { cut: from + at, skip: 1 };
  }
  const code = text.charCodeAt(limit - 1);
  const highSurrogate = code >= 0xd800 && code <= 0xdbff;
  return { cut: highSurrogate && limit - 1 > from ? limit - 1 : limit, skip: 0 };
}

function clip(entities: readonly MessageEntity[], start: number, end: number): MessageEntity[] {
  const out: MessageEntity[] = [];
  for (const e of entities) {
    const s = Math.max(e.offset, start);
    const t = Math.min(e.offset + e.length, end);
    if (t > s) out.push({ ...e, offset: s - start, length: t - s });
  }
  return out;
}

export function splitFormatted(f: Formatted, max = TEXT_LIMIT): Formatted[] {
  if (f.text.length <= max) return [f];
  const parts: Formatted[] = [];
  let pos = 0;
  while (pos < f.text.length) {
    const rest = f.text.length - pos;
    const { cut, skip } = rest <= max ? { cut: f.text.length, skip: 0 } : cutPoint(f.text, pos, max);
    const text = f.text.slice(pos, cut);
    // Telegram refuses blank messages ("message text is empty").
    if (text.trim() !== "") parts.push({ text, entities: clip(f.entities, pos, cut) });
    pos = cut + skip;
  }
  return parts;
}
