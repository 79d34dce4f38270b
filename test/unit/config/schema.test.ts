import { describe, expect, it } from "vitest";
import { enabledNetworks, isBareJid, isDnsName } from "../../../config/schema.ts";
import { parseConfig } from "../../../config/load.ts";

describe("isDnsName", () => {
  it("accepts host names, single labels and A-labels", () => {
    for (const name of ["example.org", "irc.example.org", "localhost", "a1-b2.example", "xn--bcher-kva.example", "1.example.org"]) {
      expect(isDnsName(name), name).toBe(true);
    }
  });

  it("rejects bad labels, empty names, trailing dots and overlong names", () => {
    const long = `${"a".repeat(63)}.`.repeat(4) + "org"; // 259 characters
    for (const name of ["", "under_score.org", "-lead.org", "trail-.org", "a..b", "example.org.", "sp ace.org", "bücher.example", `${"a".repeat(64)}.org`, long]) {
      expect(isDnsName(name), name).toBe(false);
    }
  });
});

describe("isBareJid", () => {
  it("accepts local@domain", () => {
    expect(isBareJid("alice@example.org")).toBe(true);
    expect(isBareJid("al.ice+tag@example.org")).toBe(true);
  });

  it("rejects resources, missing parts and RFC 7622 forbidden localpart characters", () => {
    for (const jid of ["alice@example.org/phone", "@example.org", "alice@", "example.org", "a:b@example.org", "a<b@example.org", "a@b@example.org", "a'b@example.org"]) {
      expect(isBareJid(jid), jid).toBe(false);
    }
  });
});

describe("enabledNetworks", () => {
  it("lists networks in the fixed order irc, telegram, matrix, test whatever the file order", () => {
    const config = parseConfig(
      `access: { allow: [example.org] }
networks:
  test: { domain: t.example.org, secret: x }
  matrix: { domain: m.example.org, secret: x }
  irc: { domain: i.example.org, secret: x }
`,
      {},
    );
    expect(enabledNetworks(config).map(([key, net]) => `${key}=${net.domain}`)).toEqual(["irc=i.example.org", "matrix=m.example.org", "test=t.example.org"]);
  });
});
