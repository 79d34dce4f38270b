import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createAddressCodec, hostAllowed, ircLower } from "../../../../adapters/irc/ids.ts";
import type { Address } from "../../../../core/model.ts";

describe("address codec (Biboumi)", () => {
  const ids = createAddressCodec();

  it("parses rooms, contacts and services, splitting at the last %", () => {
    expect(ids.parse("#chan%irc.example.net")).toEqual({ kind: "room", room: "#chan%irc.example.net" });
    expect(ids.parse("#a%b%irc.example.net")).toEqual({ kind: "room", room: "#a%b%irc.example.net" });
    expect(ids.parse("Nick%irc.example.net")).toEqual({ kind: "contact", contact: "nick%irc.example.net" });
    expect(ids.parse("irc.example.net")).toEqual({ kind: "service", service: "irc.example.net" });
    expect(ids.parse("127.0.0.1")).toEqual({ kind: "service", service: "127.0.0.1" });
    expect(ids.parse("#c%[::1]")).toEqual({ kind: "room", room: "#c%[::1]" });
    expect(ids.parse("&local%irc.example.net")?.kind).toBe("room");
  });

  it("normalises case with rfc1459 casemapping so one channel is one RoomId", () => {
    expect(ids.parse("#Chan[1]%IRC.Example.NET")).toEqual({ kind: "room", room: "#chan{1}%irc.example.net" });
    expect(ircLower("[]\\~ABC")).toBe("{}|^abc");
  });

  it("refuses invalid names", () => {
    for (const bad of ["#a b%irc.net", "#a,b%irc.net", "nick%bad host", "%irc.net", "1nick%irc.net", "ni!ck%irc.net", "", "#c%", "under_score"]) {
      expect(ids.parse(bad)).toBeUndefined();
    }
  });

  const host = fc.constantFrom("irc.example.net", "127.0.0.1", "[::1]", "chat.libera.chat", "localhost");
  const chan = fc
    .tuple(fc.constantFrom("#", "&", "+", "!"), fc.stringMatching(/^[a-z0-9_{}|^%.-]{1,20}$/))
    .map(([p, s]) => p + s);
  const nick = fc.stringMatching(/^[a-z_{}|^`][a-z0-9_{}|^`-]{0,15}$/);
  const address: fc.Arbitrary<Address> = fc.oneof(
    fc.tuple(chan, host).map(([c, h]) => ({ kind: "room" as const, room: `${c}%${h}` })),
    fc.tuple(nick, host).map(([n, h]) => ({ kind: "contact" as const, contact: `${n}%${h}` })),
    host.map((h) => ({ kind: "service" as const, service: h })),
  );

  it("property: parse(format(a)) === a", () => {
    fc.assert(
      fc.property(address, (a) => {
        expect(ids.parse(ids.format(a))).toEqual(a);
      }),
    );
  });

  it("property: format(parse(l)) is the canonical form of l, stable under a second round", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (l) => {
        const a = ids.parse(l);
        if (!a) return;
        const canon = ids.format(a);
        expect(canon.toLowerCase()).toBe(ircLower(l));
        expect(ids.parse(canon)).toEqual(a);
      }),
    );
  });

  it("fixed-server mode: #chan and nick alone", () => {
    const fixed = createAddressCodec({ fixedServer: "irc.example.net" });
    expect(fixed.parse("#chan")).toEqual({ kind: "room", room: "#chan%irc.example.net" });
    expect(fixed.parse("#a%b")).toEqual({ kind: "room", room: "#a%b%irc.example.net" });
    expect(fixed.parse("bob")).toEqual({ kind: "contact", contact: "bob%irc.example.net" });
    expect(fixed.parse("irc.example.net")).toEqual({ kind: "service", service: "irc.example.net" });
    expect(fixed.format({ kind: "room", room: "#chan%irc.example.net" })).toBe("#chan");
    fc.assert(
      fc.property(fc.oneof(chan, nick), (n) => {
        const a = fixed.parse(n);
        expect(a).toBeDefined();
        expect(fixed.format(a!)).toBe(n);
      }),
    );
  });

  it("host patterns", () => {
    expect(hostAllowed("irc.libera.chat", ["*"])).toBe(true);
    expect(hostAllowed("irc.libera.chat", ["*.libera.chat"])).toBe(true);
    expect(hostAllowed("evil.example", ["*.libera.chat", "irc.oftc.net"])).toBe(false);
    expect(hostAllowed("IRC.OFTC.NET", ["irc.oftc.net"])).toBe(true);
  });
});
