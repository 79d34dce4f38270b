import { describe, expect, it } from "vitest";
import { withMode } from "../../../../adapters/irc/channels.ts";
import { rolesFromModes } from "../../../../adapters/irc/roles.ts";

describe("occupant prefix modes as a string of letters", () => {
  it("adds a letter once and removes it", () => {
    let modes = "";
    modes = withMode(modes, "o", true);
    modes = withMode(modes, "v", true);
    modes = withMode(modes, "o", true);
    expect(modes).toBe("ov");
    expect(withMode(modes, "o", false)).toBe("v");
    expect(withMode(modes, "h", false)).toBe("ov");
  });

  it("gives the highest role and affiliation of its letters", () => {
    expect(rolesFromModes("vo")).toEqual({ role: "moderator", affiliation: "admin" });
    expect(rolesFromModes("v")).toEqual({ role: "participant", affiliation: "member" });
    expect(rolesFromModes("")).toEqual({ role: "participant", affiliation: "none" });
  });
});
