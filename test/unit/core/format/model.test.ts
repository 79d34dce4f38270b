import { describe, expect, it } from "vitest";
import { plain, toPlain } from "../../../../core/format/model.ts";

describe("rich text model", () => {
  it("round-trips plain text through line blocks", () => {
    const text = "hello\n\nworld";
    const rich = plain(text);
    expect(rich.blocks).toHaveLength(3);
    expect(toPlain(rich)).toBe(text);
  });

  it("keeps quote markers when flattening", () => {
    expect(toPlain({ blocks: [{ type: "quote", children: plain("a\nb").blocks }] })).toBe("> a\n> b");
  });
});
