import { describe, expect, it } from "vitest";
import { createIrcAdapter, ircOptionsSchema, serverSettingsFields, serverSettingsSchema } from "../../../../adapters/irc/index.ts";
import { rolesFromModes } from "../../../../adapters/irc/roles.ts";
import { identFor, nickFromUser } from "../../../../adapters/irc/session.ts";
import { decodeIrcLine } from "../../../../adapters/irc/transport.ts";
import { silentLogger } from "../../../../core/log.ts";

describe("roles (Biboumi's map)", () => {
  it("maps prefix modes to role/affiliation, highest wins", () => {
    expect(rolesFromModes([])).toEqual({ role: "participant", affiliation: "none" });
    expect(rolesFromModes(["v"])).toEqual({ role: "participant", affiliation: "member" });
    expect(rolesFromModes(["h"])).toEqual({ role: "moderator", affiliation: "member" });
    expect(rolesFromModes(["o", "v"])).toEqual({ role: "moderator", affiliation: "admin" });
    expect(rolesFromModes(["a"])).toEqual({ role: "moderator", affiliation: "admin" });
    expect(rolesFromModes(["v", "q"])).toEqual({ role: "moderator", affiliation: "owner" });
  });
});

describe("decoding", () => {
  it("reads UTF-8, and falls back to Latin-1 for invalid UTF-8", () => {
    expect(decodeIrcLine(Buffer.from("héllo ✓", "utf8"))).toBe("héllo ✓");
    expect(decodeIrcLine(Buffer.from([0x68, 0xe9, 0x6c, 0x6c, 0x6f]))).toBe("héllo");
  });
});

describe("identity", () => {
  it("ident is a stable 8-char base32 hash of the user", () => {
    const a = identFor("alice@example.org");
    expect(a).toMatch(/^[a-z2-7]{8}$/);
    expect(identFor("alice@example.org")).toBe(a);
    expect(identFor("bob@example.org")).not.toBe(a);
  });

  it("default nick follows IRC nick rules", () => {
    expect(nickFromUser("alice@example.org")).toBe("alice");
    expect(nickFromUser("jean.dupont@example.org")).toBe("jeandupont");
    expect(nickFromUser("42@example.org")).toBe("x42");
    expect(nickFromUser("émile@example.org")).toBe("mile");
  });
});

describe("options", () => {
  it("has the documented defaults", () => {
    const o = ircOptionsSchema.parse({});
    expect(o).toMatchObject({
      defaultPort: 6667,
      defaultTls: false,
      allowedServers: ["*"],
      flood: { burst: 5, intervalMs: 2000 },
      maxQueue: 100,
      retryWindowMs: 60_000,
      lingerMs: 30_000,
      joinTimeoutMs: 20_000,
      identFromUser: true,
      realname: "Estuary XMPP gateway user",
    });
    expect(() => createIrcAdapter({ maxQueue: -1 }, { log: silentLogger() })).toThrow(/networks\.irc\.options\.maxQueue/);
  });

  it("per-server settings: form values are coerced and raw lines sanitised; secrets are marked", () => {
    const s = serverSettingsSchema.parse({
      port: "6697",
      tls: "true",
      commandsAfterConnect: "PRIVMSG NickServ :IDENTIFY x\r\nMODE me +i\n",
      saslPassword: "",
    });
    expect(s).toMatchObject({ port: 6697, tls: true, commandsAfterConnect: ["PRIVMSG NickServ :IDENTIFY x", "MODE me +i"] });
    expect(s.saslPassword).toBeUndefined();
    expect(serverSettingsFields.filter((f) => f.secret).map((f) => f.var)).toEqual(["password", "saslPassword"]);
  });

  it("adapter metadata", async () => {
    const a = createIrcAdapter({}, { log: silentLogger() });
    expect([a.network, a.gatewayType, a.displayName, a.capabilities.rooms, a.registration.required]).toEqual(["irc", "irc", "IRC", true, false]);
    expect(await a.validateRegistration({ x: "y" })).toEqual({});
    expect(a.ids.parse("#c%irc.example.net")).toEqual({ kind: "room", room: "#c%irc.example.net" });
    expect(a.serviceSettings?.key("irc.example.net")).toBe("server:irc.example.net");
    expect(a.serviceSettings?.validate({ port: "6697", nick: "", tls: "1" })).toEqual({ port: 6697, tls: true });
    expect(() => a.serviceSettings?.validate({ port: "http" })).toThrow(/port/);
  });
});
