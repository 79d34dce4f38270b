/**
 * IRC formatting codes ↔ the neutral rich-text model (core/format/model.ts).
 * Codes per modern.ircdocs.horse/formatting: bold \x02, italic \x1D,
 * underline \x1F, strikethrough \x1E, monospace \x11, colour \x03[fg[,bg]],
 * hex colour \x04, reverse \x16, reset \x0F. Colours and reverse have no place
 * in the model: they are parsed and dropped, keeping the text.
 */
import type { Block, Inline, RichText } from "../../core/format/model.ts";

const B = "\x02";
const I = "\x1d";
const U = "\x1f";
const S = "\x1e";
const M = "\x11";
const C = "\x03";
const RESET = "\x0f";

interface Style {
  bold: boolean;
  italic: boolean;
  underline: boolean;
  strike: boolean;
  mono: boolean;
}

const PLAIN: Style = { bold: false, italic: false, underline: false, strike: false, mono: false };

function wrap(style: Style, text: string): Inline {
  let node: Inline = style.mono ? { type: "code", text } : { type: "text", text };
  if (style.strike) node = { type: "strike", children: [node] };
  if (style.underline) node = { type: "underline", children: [node] };
  if (style.italic) node = { type: "italic", children: [node] };
  if (style.bold) node = { type: "bold", children: [node] };
  return node;
}

const COLOUR = /^\x03(\d{1,2}(,\d{1,2})?)?/;
const HEX_COLOUR = /^\x04([0-9a-fA-F]{6}(,[0-9a-fA-F]{6})?)?/;

/** One IRC line's inlines. */
function parseInlines(line: string): Inline[] {
  const out: Inline[] = [];
  let style: Style = { ...PLAIN };
  let run = "";
  const flush = () => {
    if (run !== "") out.push(wrap(style, run));
    run = "";
  };
  const toggle = (key: keyof Style) => {
    flush();
    style = { ...style, [key]: !style[key] };
  };
  for (let i = 0; i < line.length; ) {
    const c = line[i]!;
    switch (c) {
      case B: toggle("bold"); i++; continue;
      case I: toggle("italic"); i++; continue;
      case U: toggle("underline"); i++; continue;
      case S: toggle("strike"); i++; continue;
      case M: toggle("mono"); i++; continue;
      case "\x16": i++; continue; // reverse: no equivalent
      case RESET: flush(); style = { ...PLAIN }; i++; continue;
      case C: i += COLOUR.exec(line.slice(i, i + 6))![0].length; continue;
      case "\x04": i += HEX_COLOUR.exec(line.slice(i, i + 14))![0].length; continue;
      default: run += c; i++;
    }
  }
  flush();
  return out;
}

/** IRC text (one message; a stray newline starts a new line block) to rich text. */
export function ircToRich(text: string): RichText {
  return { blocks: text.split(/\r\n|\n|\r/).map((line) => ({ type: "line" as const, children: parseInlines(line) })) };
}

/** Formatting control characters that must not pass through as literal text. */
const CONTROL = /[\x02\x03\x04\x0f\x11\x16\x1d\x1e\x1f]/g;

function escapeText(s: string): string {
  return s.replace(CONTROL, "").replace(/[\r\n]/g, " ");
}

const CODE_OF: Record<"bold" | "italic" | "underline" | "strike", string> = { bold: B, italic: I, underline: U, strike: S };

function inlineText(n: Inline): string {
  if (n.type === "text" || n.type === "code" || n.type === "mention") return n.text;
  return n.children.map(inlineText).join("");
}

/** Renders inlines; `active` tracks open toggles so nested same styles do not close each other. */
function renderInlines(nodes: Inline[], active: Set<string>): string {
  let out = "";
  for (const n of nodes) {
    switch (n.type) {
      case "text":
      case "mention":
        out += escapeText(n.text);
        break;
      case "code":
        out += active.has(M) ? escapeText(n.text) : M + escapeText(n.text) + M;
        break;
      case "bold":
      case "italic":
      case "underline":
      case "strike": {
        const code = CODE_OF[n.type];
        if (active.has(code)) {
          out += renderInlines(n.children, active);
        } else {
          active.add(code);
          out += code + renderInlines(n.children, active) + code;
          active.delete(code);
        }
        break;
      }
      case "spoiler":
        // The IRC convention: same foreground and background colour (black on black); 2-digit codes so a following digit is text.
        out += `${C}01,01` + renderInlines(n.children, active) + C;
        break;
      case "link": {
        const label = inlineText(n);
        out += label === "" || label === n.href ? escapeText(n.href) : `${renderInlines(n.children, active)} <${escapeText(n.href)}>`;
        break;
      }
    }
  }
  return out;
}

function blockLines(block: Block): string[] {
  switch (block.type) {
    case "line":
      return [renderInlines(block.children, new Set())];
    case "pre":
      return block.text.split("\n").map(escapeText);
    case "quote":
      return block.children.flatMap(blockLines).map((l) => `> ${l}`);
  }
}

/** Rich text to IRC lines: one per line block, one per line of a `pre` block (each becomes its own PRIVMSG). */
export function richToIrc(rich: RichText): string[] {
  return rich.blocks.flatMap(blockLines);
}
