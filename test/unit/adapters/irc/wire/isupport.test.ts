import { describe, expect, it } from "vitest";
import { applyIsupport, caseLower, defaultOptions, parseModes } from "../../../../../adapters/irc/wire/isupport.ts";

const TRAILER = "are supported by this server";

describe("applyIsupport", () => {
  it("keeps the tokens the adapter reads, in irc-framework's shapes", () => {
    const o = defaultOptions();
    applyIsupport(o, ["me", "PREFIX=(Yqaohv)!~&@%+", "CHANTYPES=#&", "CHANMODES=IXbeg,k,Hfjl,ACKMNOPQRSTcimnprstz", "LINELEN=1024", "NICKLEN=30", TRAILER]);
    applyIsupport(o, ["me", "CHATHISTORY=100", "CASEMAPPING=ascii", "AWAYLEN=200", "EXTBAN=,ACNOQRSTUacjmnprswz", "WHOX", TRAILER]);
    expect(o.PREFIX).toEqual([
      { symbol: "!", mode: "Y" },
      { symbol: "~", mode: "q" },
      { symbol: "&", mode: "a" },
      { symbol: "@", mode: "o" },
      { symbol: "%", mode: "h" },
      { symbol: "+", mode: "v" },
    ]);
    expect(o.CHANTYPES).toEqual(["#", "&"]);
    expect(o.CHANMODES).toEqual(["IXbeg", "k", "Hfjl", "ACKMNOPQRSTcimnprstz"]);
    expect(o).toMatchObject({ LINELEN: "1024", NICKLEN: "30", CHATHISTORY: "100", CASEMAPPING: "ascii" });
    // Tokens nothing reads are not kept.
    expect(Object.keys(o).sort()).toEqual(["CASEMAPPING", "CHANMODES", "CHANTYPES", "CHATHISTORY", "LINELEN", "NICKLEN", "PREFIX"]);
  });

  it("shares one parsed value between connections to the same network", () => {
    const a = defaultOptions();
    const b = defaultOptions();
    applyIsupport(a, ["me", "PREFIX=(ov)@+", "CHANTYPES=#", TRAILER]);
    applyIsupport(b, ["me", "PREFIX=(ov)@+", "CHANTYPES=#", TRAILER]);
    expect(b.PREFIX).toBe(a.PREFIX);
    expect(b.CHANTYPES).toBe(a.CHANTYPES);
    expect(Object.isFrozen(a.PREFIX)).toBe(true);
  });

  it("reads \\xHH escapes, empty PREFIX and withdrawn tokens", () => {
    const o = defaultOptions();
    applyIsupport(o, ["me", "NETWORK=Foo\\x20Net", "PREFIX=", "NICKLEN=9", TRAILER]);
    expect(o.NETWORK).toBe("Foo Net");
    expect(o.PREFIX).toEqual([]);
    applyIsupport(o, ["me", "-NICKLEN", "-PREFIX", TRAILER]);
    expect(o.NICKLEN).toBeUndefined();
    expect(o.PREFIX?.map((p) => p.mode).join("")).toBe("qaohv");
  });
});

describe("parseModes", () => {
  it("gives a parameter to list, key and prefix modes always, to C modes only when set", () => {
    const o = defaultOptions();
    applyIsupport(o, ["me", "PREFIX=(ov)@+", "CHANMODES=beI,k,l,imnpst", TRAILER]);
    expect(parseModes(o, "+ovl-k+b-lm", ["alice", "bob", "10", "key", "x!*@*"])).toEqual([
      { mode: "+o", param: "alice" },
      { mode: "+v", param: "bob" },
      { mode: "+l", param: "10" },
      { mode: "-k", param: "key" },
      { mode: "+b", param: "x!*@*" },
      { mode: "-l", param: null },
      { mode: "-m", param: null },
    ]);
  });

  it("knows prefix modes the server announced (+Y takes a nick)", () => {
    const o = defaultOptions();
    applyIsupport(o, ["me", "PREFIX=(Yov)!@+", TRAILER]);
    expect(parseModes(o, "+Yn", ["carol"])).toEqual([
      { mode: "+Y", param: "carol" },
      { mode: "+n", param: null },
    ]);
    expect(parseModes(o, undefined, [])).toEqual([]);
  });
});

describe("caseLower", () => {
  it("follows CASEMAPPING", () => {
    // RFC 1459 §2.2: {}|~ are the lower case of []\^.
    expect(caseLower("rfc1459", "Nick[A]\\^")).toBe("nick{a}|~");
    expect(caseLower("strict-rfc1459", "Nick[A]\\^")).toBe("nick{a}|^");
    expect(caseLower("ascii", "Nick[A]\\^")).toBe("nick[a]\\^");
    expect(caseLower(undefined, "plain")).toBe("plain");
  });
});
