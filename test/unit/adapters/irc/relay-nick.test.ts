import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { relayNick } from "../../../../adapters/irc/relay-nick.ts";

/** What draft/relaymsg servers must reject (PR #417 "Abuse prevention") plus the line-breaking characters. */
const RESERVED = /[!+%@&#$:'"?*,.\s\r\n\0]/u;

describe("relayNick (draft/relaymsg spoofed nicks)", () => {
  it("joins the name and the network with the server's separator", () => {
    expect(relayNick("alice", "xmpp", { separators: "/" })).toBe("alice/xmpp");
    expect(relayNick("alice", "xmpp", { separators: "|" })).toBe("alice|xmpp");
    // No value: no separator required; '/' still marks the nick as relayed.
    expect(relayNick("alice", "xmpp", { separators: "" })).toBe("alice/xmpp");
  });

  it("drops what is no nick character, keeps accented letters' base letter", () => {
    expect(relayNick("Ålice Smith", "xmpp", { separators: "/" })).toBe("AliceSmith/xmpp");
    expect(relayNick("bob.the@builder!", "xmpp", { separators: "/" })).toBe("bobthebuilder/xmpp");
    expect(relayNick("a/b", "xmpp", { separators: "/" })).toBe("ab/xmpp");
    expect(relayNick("日本", "matrix", { separators: "/" })).toBe("anon/matrix");
    expect(relayNick("9lives", "xmpp", { separators: "/" })).toBe("_9lives/xmpp");
    expect(relayNick("evil\r\nQUIT", "xmpp", { separators: "/" })).toBe("evilQUIT/xmpp");
  });

  it("keeps within NICKLEN, the name shortened first but never to nothing", () => {
    expect(relayNick("averyveryverylongname", "xmpp", { separators: "/", nicklen: 12 })).toBe("averyve/xmpp");
    expect(relayNick("bob", "telegram", { separators: "/", nicklen: 9 })).toBe("bob/teleg");
    expect(relayNick("alice", "telegram", { separators: "/", nicklen: 5 })).toMatch(/^a\w*\/\w+$/);
    expect(relayNick("alice", "telegram", { separators: "/", nicklen: 5 })).toHaveLength(5);
  });

  it("property: always one separator, no reserved character, within NICKLEN, name first", () => {
    fc.assert(
      fc.property(fc.string(), fc.constantFrom("xmpp", "matrix", "telegram", "ü.x"), fc.constantFrom("/", "|", "/|", ""), fc.integer({ min: 3, max: 40 }), (nick, net, seps, nicklen) => {
        const out = relayNick(nick, net, { separators: seps, nicklen });
        const sep = seps === "" ? "/" : seps[0]!;
        expect(out.length).toBeLessThanOrEqual(nicklen);
        expect(out.split(sep)).toHaveLength(2);
        expect(RESERVED.test(out)).toBe(false);
        expect(out).toMatch(/^[A-Za-z[\]\\`_^{|}]/);
      }),
    );
  });
});
