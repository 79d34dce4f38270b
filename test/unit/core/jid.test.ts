import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AddressCodec } from "../../../core/adapter.ts";
import { EstuaryError } from "../../../core/errors.ts";
import { addressFor, bareJid, escapeLocal, localpartFor, splitJid, unescapeLocal } from "../../../core/jid.ts";
import type { Address } from "../../../core/model.ts";

describe("XEP-0106 escaping", () => {
  // §7.1 table, rows 1-8: user input and the escaped localpart.
  it.each([
    ["space cadet", "space\\20cadet"],
    ['call me "ishmael"', "call\\20me\\20\\22ishmael\\22"],
    ["at&t guy", "at\\26t\\20guy"],
    ["d'artagnan", "d\\27artagnan"],
    ["/.fanboy", "\\2f.fanboy"],
    ["::foo::", "\\3a\\3afoo\\3a\\3a"],
    ["<foo>", "\\3cfoo\\3e"],
    ["user@host", "user\\40host"],
  ])("escapes %j as %j and back", (raw, escaped) => {
    expect(escapeLocal(raw)).toBe(escaped);
    expect(unescapeLocal(escaped)).toBe(raw);
  });

  it("escapes a backslash only where it begins one of the ten sequences (§5.1 rule 7)", () => {
    expect(escapeLocal("c:\\5commas")).toBe("c\\3a\\5c5commas"); // table row 12
    expect(escapeLocal("c:\\net")).toBe("c\\3a\\net");
    expect(escapeLocal("c:\\\\net")).toBe("c\\3a\\\\net");
    expect(escapeLocal("\\3and\\2is\\5cool")).toBe("\\5c3and\\2is\\5c5cool"); // §5.2's Wireless Village example
    expect(escapeLocal("\\20\\5c\\2F")).toBe("\\5c20\\5c5c\\2F"); // upper-case hex is no sequence
  });

  it("unescapes the table's over-escaped forms too (rows 9-11)", () => {
    expect(unescapeLocal("c\\3a\\5cnet")).toBe("c:\\net");
    expect(unescapeLocal("c\\3a\\5c\\5cnet")).toBe("c:\\\\net");
    expect(unescapeLocal("c\\3a\\5ccool\\20stuff")).toBe("c:\\cool stuff");
  });

  it("leaves partial and unknown sequences alone (§5.3)", () => {
    for (const s of ["\\2plus\\2is\\4", "foo\\bar", "foob\\41r", "\\2F", "\\"]) expect(unescapeLocal(s)).toBe(s);
    expect(unescapeLocal("\\5c20")).toBe("\\20"); // one pass, no double unescaping
  });

  it("round-trips any string and never leaves a forbidden character", () => {
    const tricky = fc.string({ unit: fc.constantFrom("\\", "2", "0", "5", "c", "f", "3", "a", " ", '"', "&", "'", "/", ":", "<", ">", "@", "x") });
    fc.assert(
      fc.property(fc.oneof(tricky, fc.string({ unit: "binary" })), (s) => {
        const escaped = escapeLocal(s);
        expect(unescapeLocal(escaped)).toBe(s);
        expect(escaped).not.toMatch(/[ "&'/:<>@]/);
      }),
      { numRuns: 3000 },
    );
  });
});

describe("splitJid", () => {
  it.each([
    ["example.com", { domain: "example.com" }],
    ["juliet@example.com", { local: "juliet", domain: "example.com" }],
    ["juliet@example.com/foo bar@baz/x", { local: "juliet", domain: "example.com", resource: "foo bar@baz/x" }],
    ["example.com/a@b", { domain: "example.com", resource: "a@b" }],
    ["d\\27artagnan@example.com.", { local: "d\\27artagnan", domain: "example.com" }],
    ["fußball@例子.测试", { local: "fußball", domain: "例子.测试" }],
    ["x@[::1]/r", { local: "x", domain: "[::1]", resource: "r" }],
  ])("splits %j", (jid, parts) => {
    expect(splitJid(jid)).toEqual(parts);
  });

  it.each([
    "",
    "@example.com",
    "juliet@",
    "juliet@/r",
    "example.com/",
    "juliet@example.com/",
    "a@b@example.com",
    "d'artagnan@example.com",
    "space cadet@example.com",
    "a:b@example.com",
    "juliet@exa mple.com",
    "juliet@example..com",
    ".",
    "x@example.com/tab\there",
    `${"a".repeat(1024)}@example.com`,
    `${"é".repeat(512)}@example.com`, // 1024 bytes in UTF-8
    `example.com/${"r".repeat(1024)}`,
    "x@example.com/\ud800",
  ])("rejects %j", (jid) => {
    expect(splitJid(jid)).toBeUndefined();
  });

  it("takes parts of exactly 1023 bytes", () => {
    const local = "a".repeat(1023);
    expect(splitJid(`${local}@example.com`)?.local).toBe(local);
  });

  it("accepts every escaped localpart of a string with no edge or non-ASCII spaces and no controls", () => {
    const raw = fc.string({ unit: "grapheme", minLength: 1, maxLength: 30 }).filter((s) => !/[\p{White_Space}\p{Z}\p{Cc}]/u.test(s.replaceAll(" ", "")) && s.trim() === s);
    fc.assert(
      fc.property(raw, (s) => {
        expect(splitJid(`${escapeLocal(s)}@gw.example/r`)).toEqual({ local: escapeLocal(s), domain: "gw.example", resource: "r" });
      }),
    );
  });
});

describe("bareJid", () => {
  it("cuts at the first slash only", () => {
    expect(bareJid("a@b.example/c/d@e")).toBe("a@b.example");
    expect(bareJid("b.example/r@x")).toBe("b.example");
    expect(bareJid("a@b.example")).toBe("a@b.example");
  });
});

/**
 * An IRC-like codec: ids are `#chan@server` (room), `nick@server` (contact) and
 * `server` (service); localparts `#chan%server`, `nick%server`, `server`, split at the last "%".
 */
const ircCodec: AddressCodec = {
  format(address) {
    const id = address.kind === "room" ? address.room : address.kind === "contact" ? address.contact : address.service;
    if (address.kind === "service") return id;
    const at = id.lastIndexOf("@");
    return `${id.slice(0, at)}%${id.slice(at + 1)}`;
  },
  parse(local) {
    const pct = local.lastIndexOf("%");
    if (pct === -1) return local === "" || local.startsWith("#") ? undefined : { kind: "service", service: local };
    const id = `${local.slice(0, pct)}@${local.slice(pct + 1)}`;
    return local.startsWith("#") ? { kind: "room", room: id } : { kind: "contact", contact: id };
  },
};

function addresses(name: fc.Arbitrary<string>): fc.Arbitrary<Address> {
  const server = fc.stringMatching(/^[a-z0-9.-]{1,20}$/);
  return fc.oneof(
    fc.tuple(name, server).map(([chan, s]): Address => ({ kind: "room", room: `#${chan}@${s}` })),
    fc.tuple(name.filter((n) => !n.startsWith("#")), server).map(([nick, s]): Address => ({ kind: "contact", contact: `${nick}@${s}` })),
    server.map((s): Address => ({ kind: "service", service: s })),
  );
}

describe("localpartFor / addressFor", () => {
  it("escapes the codec's localpart and maps it back", () => {
    const room: Address = { kind: "room", room: "#c++ & 'friends'@irc.example" };
    expect(localpartFor(ircCodec, room)).toBe("#c++\\20\\26\\20\\27friends\\27%irc.example");
    expect(addressFor(ircCodec, "#c++\\20\\26\\20\\27friends\\27%irc.example")).toEqual(room);
    expect(localpartFor(ircCodec, { kind: "contact", contact: "al\\ice@irc.example" })).toBe("al\\ice%irc.example");
    expect(addressFor(ircCodec, "al\\5cice%irc.example")).toEqual({ kind: "contact", contact: "al\\ice@irc.example" });
  });

  it("answers undefined for a localpart that is invalid or names nothing", () => {
    expect(addressFor(ircCodec, "#chan")).toBeUndefined();
    expect(addressFor(ircCodec, "")).toBeUndefined();
    expect(addressFor(ircCodec, "a b%irc.example")).toBeUndefined();
    expect(addressFor(ircCodec, "a@b%irc.example")).toBeUndefined();
  });

  it("refuses ids no localpart can carry", () => {
    for (const contact of [" alice@s", "tab\there@s", "nb\u00a0sp@s", "bell\u0007@s"]) {
      expect(() => localpartFor(ircCodec, { kind: "contact", contact })).toThrow(EstuaryError);
    }
    expect(() => localpartFor(ircCodec, { kind: "service", service: "irc.example " })).toThrow(/starting or ending with a space/);
    expect(() => localpartFor(ircCodec, { kind: "service", service: "" })).toThrow(/cannot be a JID/);
    expect(() => localpartFor(ircCodec, { kind: "service", service: "x".repeat(1024) })).toThrow(EstuaryError);
  });

  it("round-trips every addressable id, IRC-ish names and arbitrary ones", () => {
    const ircish = fc.string({ unit: fc.constantFrom("a", "Z", "#", "%", "@", "\\", "2", "0", "5", "c", "[", "]", "'", ":", "/", " ", "|", "^", "-"), minLength: 1, maxLength: 24 });
    fc.assert(
      fc.property(addresses(fc.oneof(ircish, fc.string({ unit: "binary", maxLength: 24 }))), (address) => {
        let local: string;
        try {
          local = localpartFor(ircCodec, address);
        } catch (e) {
          // Only ids with edge spaces, unescapable whitespace or controls are refused.
          expect(e).toBeInstanceOf(EstuaryError);
          expect(ircCodec.format(address)).toMatch(/^ | $|\p{Cc}|[^\S ]|[^\P{Z} ]/u);
          return;
        }
        expect(splitJid(`${local}@gw.example`)?.local).toBe(local);
        expect(addressFor(ircCodec, local)).toEqual(address);
      }),
      { numRuns: 3000 },
    );
  });
});
