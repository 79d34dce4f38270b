import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { MatrixRoom, type StateEvent } from "../../../../adapters/matrix/rooms.ts";

const member = (userId: string, membership: string, displayname?: string): StateEvent => ({
  type: "m.room.member",
  state_key: userId,
  sender: userId,
  content: { membership, ...(displayname !== undefined ? { displayname } : {}) },
});

/** The spec's rule written the obvious way: a display name shared with another joined member is disambiguated. */
function naiveNick(room: MatrixRoom, userId: string): string {
  const name = room.members.get(userId)?.displayname;
  if (!name) return userId;
  const clash = [...room.members].some(([id, m]) => id !== userId && m.membership === "join" && m.displayname === name);
  return clash ? `${name} (${userId})` : name;
}

describe("MatrixRoom.nickOf (spec: Calculating the display name for a user)", () => {
  it("disambiguates a display name two joined members share, and stops once one of them leaves", () => {
    const room = new MatrixRoom("!r:hs");
    room.apply(member("@a:hs", "join", "Alice"));
    room.apply(member("@b:hs", "join", "Alice"));
    room.apply(member("@c:hs", "invite", "Carol"));
    expect(room.nickOf("@a:hs")).toBe("Alice (@a:hs)");
    expect(room.nickOf("@b:hs")).toBe("Alice (@b:hs)");
    expect(room.nickOf("@c:hs")).toBe("Carol");

    room.apply(member("@b:hs", "leave", "Alice"));
    expect(room.nickOf("@a:hs")).toBe("Alice");
    // An invited member with the same name does not count as a clash.
    room.apply(member("@d:hs", "invite", "Alice"));
    expect(room.nickOf("@a:hs")).toBe("Alice");
    // A rename frees the old name.
    room.apply(member("@b:hs", "join", "Alice"));
    room.apply(member("@b:hs", "join", "Bob"));
    expect(room.nickOf("@a:hs")).toBe("Alice");
    expect(room.nickOf("@b:hs")).toBe("Bob");
    room.clearMembers();
    room.apply(member("@a:hs", "join", "Alice"));
    expect(room.nickOf("@a:hs")).toBe("Alice");
  });

  it("gives the same nick as the spec's rule after any sequence of membership changes", () => {
    const users = ["@a:hs", "@b:hs", "@c:hs", "@d:hs"];
    const change = fc.record({
      user: fc.constantFrom(...users),
      membership: fc.constantFrom("join", "leave", "invite", "ban"),
      name: fc.option(fc.constantFrom("Alice", "Bob", " "), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(change, { maxLength: 40 }), fc.boolean(), (changes, reload) => {
        const room = new MatrixRoom("!r:hs");
        for (const c of changes) room.apply(member(c.user, c.membership, c.name));
        if (reload) {
          // A full state reload replaces what the deltas built.
          const snapshot = [...room.members].map(([id, m]) => member(id, m.membership, m.displayname));
          room.clearMembers();
          for (const ev of snapshot) room.apply(ev);
        }
        for (const u of users) expect(room.nickOf(u)).toBe(naiveNick(room, u));
      }),
    );
  });

  it("names every member of a 30 000-member room, clashes included", () => {
    const room = new MatrixRoom("!big:hs");
    const n = 30_000;
    for (let i = 0; i < n; i++) room.apply(member(`@u${i}:hs`, "join", i % 1000 === 0 ? "Twin" : `User ${i}`));
    const nicks = room.joined().map((u) => room.nickOf(u));
    expect(nicks).toHaveLength(n);
    expect(new Set(nicks).size).toBe(n);
    expect(nicks.filter((x) => x.startsWith("Twin (")).length).toBe(n / 1000);
  });
});
