/**
 * How a message from one leg reads on another: the sender's name as a
 * prefix (per-leg `relayFormat`, bold where the leg has styling), and the
 * readable fallbacks for what a leg cannot express (IRC has no edits,
 * replies, retractions or reactions). Pure functions over the rich-text
 * model (core/format/model.ts); adapters render the result.
 */
import type { Block, Inline, RichText } from "../format/model.ts";
import { toPlain } from "../format/model.ts";

/** U+200B ZERO WIDTH SPACE: splits a nick so IRC clients do not highlight its owner. */
export const ZWSP = "\u200b";

export interface PrefixStyle {
  /** `<{nick}> `, `{nick}: `… (`{network}`: the origin leg). */
  format: string;
  /** The name in bold (Matrix, Telegram); plain on IRC. */
  bold: boolean;
  /** IRC: a zero-width space after the first character of the name. */
  noPing?: boolean;
}

/** Breaks highlighting without changing what people read. */
export function unpingable(nick: string): string {
  const chars = Array.from(nick);
  if (chars.length < 2) return nick;
  return chars[0] + ZWSP + chars.slice(1).join("");
}

/** The prefix as inline nodes: text before the name, the (possibly bold) name, text after. */
export function prefixInlines(style: PrefixStyle, nick: string, network: string): Inline[] {
  const fmt = style.format.replaceAll("{network}", network);
  const at = fmt.indexOf("{nick}");
  const before = fmt.slice(0, at);
  const after = fmt.slice(at + "{nick}".length).replaceAll("{nick}", nick);
  const name = style.noPing ? unpingable(nick) : nick;
  const out: Inline[] = [];
  if (before) out.push({ type: "text", text: before });
  out.push(style.bold ? { type: "bold", children: [{ type: "text", text: name }] } : { type: "text", text: name });
  if (after) out.push({ type: "text", text: after });
  return out;
}

/**
 * The message with the prefix in front of its first line. A message that
 * starts with a block other than a line (code block, quote) gets the prefix
 * on a line of its own, so the block keeps its shape.
 */
export function withPrefix(text: RichText, prefix: Inline[]): RichText {
  const [first, ...rest] = text.blocks;
  if (first === undefined) return { blocks: [{ type: "line", children: prefix }] };
  if (first.type === "line") return { blocks: [{ type: "line", children: [...prefix, ...first.children] }, ...rest] };
  return { blocks: [{ type: "line", children: trimEnd(prefix) }, first, ...rest] };
}

function trimEnd(inlines: Inline[]): Inline[] {
  const last = inlines.at(-1);
  if (last?.type !== "text") return inlines;
  const text = last.text.trimEnd();
  return text ? [...inlines.slice(0, -1), { type: "text", text }] : inlines.slice(0, -1);
}

function line(...children: Inline[]): Block {
  return { type: "line", children };
}

function text(t: string): Inline {
  return { type: "text", text: t };
}

/** Shortened one-line preview of a message (for fallbacks that quote it). */
export function preview(rich: RichText, max = 60): string {
  const flat = toPlain(rich).replace(/\s+/g, " ").trim();
  const chars = Array.from(flat);
  return chars.length <= max ? flat : `${chars.slice(0, max - 1).join("")}…`;
}

/** IRC has no edits (XEP-0308 §5 fallback): the new text, marked as a correction. */
export function correctionFallback(prefix: Inline[], rich: RichText): RichText {
  return withPrefix(rich, [text("* correction: "), ...prefix]);
}

/** A reply on a leg without replies: addressed to the original sender, IRC style (`bob: …`). */
export function replyFallback(rich: RichText, toNick: string, noPing = false): RichText {
  return withPrefix(rich, [text(`${noPing ? unpingable(toNick) : toNick}: `)]);
}

/** A retraction on a leg that cannot retract a relayed message. */
export function retractionFallback(prefix: Inline[]): RichText {
  return { blocks: [line(text("* "), ...trimEnd(prefix), text(" deleted a message"))] };
}

/** A reaction set on a leg without reactions; undefined when the set is empty (nothing to say). */
export function reactionFallback(nick: string, emojis: string[], about: string | undefined, noPing = false): RichText | undefined {
  if (emojis.length === 0) return undefined;
  const name = noPing ? unpingable(nick) : nick;
  return { blocks: [line(text(`* ${name} reacted ${emojis.join(" ")}${about ? ` to “${about}”` : ""}`))] };
}

/** A person of another leg joined or left (only on legs configured for it). */
export function joinPartLine(nick: string, network: string, what: "joined" | "left", noPing = false): RichText {
  return { blocks: [line(text(`* ${noPing ? unpingable(nick) : nick} ${what} on ${network}`))] };
}

/** Told to the origin leg when a message could not reach another one. */
export function undeliveredNotice(target: string, count: number, reason: string): RichText {
  const what = count === 1 ? "A message" : `${count} messages`;
  return { blocks: [line(text(`[bridge] ${what} could not be delivered to ${target}: ${reason}`))] };
}

/**
 * The reason a relay gives when it removes a message for a moderator of
 * another leg (XEP-0425 `<reason/>`, a Matrix redaction's `reason`): the
 * relay is the one acting there, so the reason says who decided, and where.
 */
export function moderationReason(byNick: string, network: string, reason?: string): string {
  return `Removed by ${byNick} (${network})${reason ? `: ${reason}` : ""}`;
}
