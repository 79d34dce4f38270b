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

interface RenderState {
  out: string;
  /** Open toggles, so nested same styles do not close each other. */
  active: Set<string>;
  /** The last thing written closed a colour: a digit or comma next would be read as a colour code. */
  afterColour: boolean;
}

function put(st: RenderState, s: string): void {
  if (s === "") return;
  // An empty bold toggle pair separates "\x03" from a following digit (modern.ircdocs.horse/formatting#color).
  if (st.afterColour && /^[\d,]/.test(s)) st.out += B + B;
  st.out += s;
  st.afterColour = false;
}

function renderInlines(nodes: Inline[], st: RenderState): void {
  for (const n of nodes) {
    switch (n.type) {
      case "text":
      case "mention":
        put(st, escapeText(n.text));
        break;
      case "code":
        if (st.active.has(M)) put(st, escapeText(n.text));
        else put(st, M + escapeText(n.text) + M);
        break;
      case "bold":
      case "italic":
      case "underline":
      case "strike": {
        const code = CODE_OF[n.type];
        if (st.active.has(code)) {
          renderInlines(n.children, st);
        } else {
          st.active.add(code);
          put(st, code);
          renderInlines(n.children, st);
          put(st, code);
          st.active.delete(code);
        }
        break;
      }
      case "spoiler":
        // The IRC convention: same foreground and background colour (black on black).
        put(st, `${C}01,01`);
        renderInlines(n.children, st);
        put(st, C);
        st.afterColour = true;
        break;
      case "link": {
        const label = inlineText(n);
        if (label === "" || label === n.href) put(st, escapeText(n.href));
        else {
          renderInlines(n.children, st);
          put(st, ` <${escapeText(n.href)}>`);
        }
        break;
      }
    }
  }
}

function renderLine(nodes: Inline[]): string {
  const st: RenderState = { out: "", active: new Set(), afterColour: false };
  renderInlines(nodes, st);
  return st.out;
}

function blockLines(block: Block): string[] {
  switch (block.type) {
    case "line":
      return [renderLine(block.children)];
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
