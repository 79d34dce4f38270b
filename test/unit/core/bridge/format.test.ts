import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { plain, toPlain, type RichText } from "../../../../core/format/model.ts";
import {
  correctionFallback,
  prefixInlines,
  reactionFallback,
  replyFallback,
  retractionFallback,
  undeliveredNotice,
  unpingable,
  withPrefix,
  ZWSP,
} from "../../../../core/bridge/format.ts";

const irc = { format: "<{nick}> ", bold: false };

describe("relay prefixes", () => {
  it("puts the IRC-style prefix in front of the first line only", () => {
    const out = withPrefix(plain("hello\nworld"), prefixInlines(irc, "alice", "xmpp"));
    expect(toPlain(out)).toBe("<alice> hello\nworld");
  });

  it("makes the name bold where the leg has styling, and fills {network}", () => {
    const p = prefixInlines({ format: "[{network}] {nick}: ", bold: true }, "bob", "irc");
    expect(p).toEqual([
      { type: "text", text: "[irc] " },
      { type: "bold", children: [{ type: "text", text: "bob" }] },
      { type: "text", text: ": " },
    ]);
  });

  it("keeps a leading code block intact: the prefix goes on its own line", () => {
    const rich: RichText = { blocks: [{ type: "pre", text: "x = 1" }] };
    const out = withPrefix(rich, prefixInlines(irc, "alice", "xmpp"));
    expect(toPlain({ blocks: [out.blocks[0]!] })).toBe("<alice>");
    expect(out.blocks[0]?.type).toBe("line");
    expect(out.blocks[1]).toEqual({ type: "pre", text: "x = 1" });
  });

  it("noPing splits the nick with a zero-width space but reads the same", () => {
    expect(unpingable("alice")).toBe(`a${ZWSP}lice`);
    expect(unpingable("a")).toBe("a");
    // Astral characters are not cut in half.
    expect(unpingable("😀bob")).toBe(`😀${ZWSP}bob`);
    const out = toPlain(withPrefix(plain("hi"), prefixInlines({ ...irc, noPing: true }, "alice", "xmpp")));
    expect(out.replaceAll(ZWSP, "")).toBe("<alice> hi");
    expect(out).not.toContain("alice");
  });

  it("any text keeps its content after the prefix (property)", () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 1 }).filter((n) => !n.includes("{")), (body, nick) => {
        const out = toPlain(withPrefix(plain(body), prefixInlines(irc, nick, "x")));
        expect(out).toBe(`<${nick}> ${body}`);
      }),
    );
  });
});

describe("fallbacks for legs without edits, replies, retractions, reactions", () => {
  const prefix = prefixInlines(irc, "carol", "matrix");
  it("a correction is marked, not a bare second copy", () => {
    expect(toPlain(correctionFallback(prefix, plain("fixed")))).toBe("* correction: <carol> fixed");
  });
  it("a reply is addressed to the original sender", () => {
    expect(toPlain(withPrefix(replyFallback(plain("sure"), "bob"), prefix))).toBe("<carol> bob: sure");
  });
  it("a retraction and reactions are one short line", () => {
    expect(toPlain(retractionFallback(prefix))).toBe("* <carol> deleted a message");
    expect(toPlain(reactionFallback("carol", ["👍", "🎉"], "bob's message")!)).toBe("* carol reacted 👍 🎉 to “bob's message”");
    expect(reactionFallback("carol", [], "x")).toBeUndefined();
  });
  it("undelivered notices say how many and why", () => {
    expect(toPlain(undeliveredNotice("irc", 1, "timeout"))).toBe("[bridge] A message could not be delivered to irc: timeout");
    expect(toPlain(undeliveredNotice("irc", 3, "down"))).toContain("3 messages");
  });
});
