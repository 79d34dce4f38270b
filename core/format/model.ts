/**
 * The neutral rich-text model every adapter converts to and from.
 *
 * It is deliberately small: what XEP-0393 (message styling), IRC formatting
 * codes, Telegram entities and Matrix HTML have in common. A message is a list
 * of blocks; a `line` block is one line of text (IRC sends one line per line
 * block), `pre` is a preformatted block kept verbatim, `quote` nests blocks.
 */

export type Inline =
  | { type: "text"; text: string }
  | { type: "bold" | "italic" | "underline" | "strike" | "spoiler"; children: Inline[] }
  | { type: "code"; text: string }
  | { type: "link"; href: string; children: Inline[] }
  /** A mention of a remote person; `id` is the network's user id when known. */
  | { type: "mention"; text: string; id?: string };

export type Block =
  | { type: "line"; children: Inline[] }
  | { type: "pre"; text: string; lang?: string }
  | { type: "quote"; children: Block[] };

export interface RichText {
  blocks: Block[];
}

/** Plain text to the model: one line block per line, no styling. */
export function plain(text: string): RichText {
  return {
    blocks: text.split("\n").map((line) => ({
      type: "line" as const,
      children: line === "" ? [] : [{ type: "text" as const, text: line }],
    })),
  };
}

function inlineText(inline: Inline): string {
  switch (inline.type) {
    case "text":
    case "code":
    case "mention":
      return inline.text;
    default:
      return inline.children.map(inlineText).join("");
  }
}

function blockLines(block: Block): string[] {
  switch (block.type) {
    case "line":
      return [block.children.map(inlineText).join("")];
    case "pre":
      return block.text.split("\n");
    case "quote":
      return block.children.flatMap(blockLines).map((l) => `> ${l}`);
  }
}

/** The text without any styling (quotes keep their "> " prefix so meaning survives). */
export function toPlain(rich: RichText): string {
  return rich.blocks.flatMap(blockLines).join("\n");
}
