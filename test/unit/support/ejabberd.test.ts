/**
 * The generated ejabberd.yml, without starting ejabberd: loopback-only
 * listeners, one ejabberd_service entry per component, no federation, MUC and
 * domain balancing only when asked. Read back through the YAML parser so a
 * secret with YAML syntax in it cannot change the document.
 */
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { ejabberdConfig } from "../../support/ejabberd.ts";

const ports = { c2s: 15222, component: 15347, dist: 15400 };

type Listener = { port: number; ip: string; module: string; hosts?: Record<string, { password: string }> };

function roundTrip(config: Record<string, unknown>): Record<string, unknown> {
  return parse(stringify(config)) as Record<string, unknown>;
}

describe("ejabberdConfig", () => {
  it("listens on loopback only, for c2s and the components, with each component's secret", () => {
    const secret = "a: b # not a comment\n- nor a list";
    const cfg = roundTrip(
      ejabberdConfig(ports, {
        components: [
          { domain: "irc.localhost", secret },
          { domain: "test.localhost", secret: "s3cret" },
        ],
      }),
    );
    const listen = cfg.listen as Listener[];
    expect(listen.map((l) => [l.module, l.ip, l.port])).toEqual([
      ["ejabberd_c2s", "127.0.0.1", ports.c2s],
      ["ejabberd_service", "127.0.0.1", ports.component],
    ]);
    expect(listen[1]?.hosts).toEqual({ "irc.localhost": { password: secret }, "test.localhost": { password: "s3cret" } });
    // No federation and PLAIN-capable stored passwords.
    expect(cfg.s2s_access).toBe("none");
    expect(cfg.auth_password_format).toBe("plain");
    expect(cfg.hosts).toEqual(["localhost"]);
  });

  it("omits the component listener when there is no component, and MUC unless asked", () => {
    const cfg = ejabberdConfig(ports, { components: [] });
    expect((cfg.listen as Listener[]).map((l) => l.module)).toEqual(["ejabberd_c2s"]);
    expect(Object.keys(cfg.modules as object)).not.toContain("mod_muc");
    expect(cfg.domain_balancing).toBeUndefined();
  });

  it("serves MUC at conference.localhost when asked", () => {
    const cfg = ejabberdConfig(ports, { components: [], muc: true });
    const muc = (cfg.modules as Record<string, { hosts: string[] }>).mod_muc;
    expect(muc?.hosts).toEqual(["conference.localhost"]);
  });

  it("balances a component domain per user by default, or as asked", () => {
    const cfg = ejabberdConfig(ports, {
      components: [{ domain: "test.localhost", secret: "s" }, { domain: "irc.localhost", secret: "s" }],
      domainBalancing: { "test.localhost": 3, "irc.localhost": { components: 2, type: "random" } },
    });
    expect(cfg.domain_balancing).toEqual({
      "test.localhost": { type: "bare_source", component_number: 3 },
      "irc.localhost": { type: "random", component_number: 2 },
    });
  });
});
