import { describe, expect, it } from "vitest";
import { EstuaryError } from "../../../../core/errors.ts";
import type { Network } from "../../../../core/network.ts";
import { vcardGet } from "../../../../core/xmpp/vcard.ts";

const USER = "romeo@localhost";

/** A Network with just what core/xmpp/vcard.ts reads: addresses, the user's view of #verona, contactInfo. */
function fakeNet(): Network {
  const state = {
    nick: "romeo",
    occupants: new Map([
      ["alice", { nick: "alice", contact: "alice-id", role: "moderator", affiliation: "admin" }],
      ["ghost", { nick: "ghost", role: "participant", affiliation: "none" }],
    ]),
  };
  return {
    addressOf: (local: string) => (local.startsWith("#") ? { kind: "room", room: local } : { kind: "contact", contact: local }),
    rooms: { get: (user: string, room: string) => (user === USER && room === "#verona" ? state : undefined) },
    sessions: { peek: () => ({ contactInfo: async (c: string) => (c === "alice-id" ? { name: "Alice Capulet" } : c === "nurse" ? { name: "The Nurse" } : undefined) }) },
  } as unknown as Network;
}

const kindOf = (p: Promise<unknown>) => p.then(() => "resolved", (e: unknown) => (e instanceof EstuaryError ? e.kind : String(e)));

describe("vcardGet", () => {
  it("gives a contact's name", async () => {
    expect((await vcardGet(fakeNet(), USER, "nurse")).getChildText("FN")).toBe("The Nurse");
  });

  it("answers for a room occupant with the vCard of the contact behind the nick (XEP-0045 §6.7, XEP-0153 avatars in rooms)", async () => {
    const v = await vcardGet(fakeNet(), USER, "#verona", "alice");
    expect(v.getChildText("FN")).toBe("Alice Capulet");
    expect(v.getChildText("NICKNAME")).toBe("Alice Capulet");
  });

  it("refuses an unknown occupant (item-not-found), one without a contact, the room itself and a room the user is not in", async () => {
    expect(await kindOf(vcardGet(fakeNet(), USER, "#verona", "nobody"))).toBe("not-found");
    expect(await kindOf(vcardGet(fakeNet(), USER, "#verona", "ghost"))).toBe("service-unavailable");
    expect(await kindOf(vcardGet(fakeNet(), USER, "#verona"))).toBe("service-unavailable");
    expect(await kindOf(vcardGet(fakeNet(), USER, "#elsewhere", "alice"))).toBe("not-found");
    expect(await kindOf(vcardGet(fakeNet(), "juliet@localhost", "#verona", "alice"))).toBe("not-found");
  });
});
