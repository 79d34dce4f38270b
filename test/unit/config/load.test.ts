import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseConfig, substituteString } from "../../../config/load.ts";

/** The smallest valid file: one network, one allowed domain. */
const MINIMAL = `
access:
  allow: [example.org]
networks:
  irc:
    domain: irc.example.org
    secret: s3cret
`;

/** Parses and returns the ConfigError's lines; fails the test if parsing succeeds. */
function problemsOf(yaml: string, env: Record<string, string | undefined> = {}): string[] {
  try {
    parseConfig(yaml, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    const err = e as ConfigError;
    // The message is exactly the problem lines, one per line.
    expect(err.message).toBe(err.problems.join("\n"));
    return err.problems;
  }
  throw new Error("expected a ConfigError");
}

/** Builds a config from MINIMAL with the given YAML lines appended. */
const withExtra = (extra: string): string => `${MINIMAL}${extra}\n`;

describe("parseConfig: valid files", () => {
  it("fills every default", () => {
    const config = parseConfig(MINIMAL, {});
    expect(config).toEqual({
      xmpp: { host: "127.0.0.1", port: 5347, reconnect: { initialDelayMs: 1000, maxDelayMs: 60000 }, outboundBuffer: 1000 },
      access: { allow: ["example.org"], admins: [] },
      networks: { irc: { domain: "irc.example.org", secret: "s3cret", options: {} } },
      store: { url: "sqlite:./estuary.sqlite" },
      limits: { maxBodyBytes: 65536, maxRoomsPerUser: 100, maxQueuedPerChat: 100, maxUsers: 10000 },
      fetch: { allowHosts: [], timeoutSeconds: 30 },
      history: { enabled: true, maxAgeDays: 365, maxPerRoom: 100000, directMessages: false },
      log: { level: "info", pretty: false },
    });
    expect(config.http).toBeUndefined();
  });

  it("keeps given values and normalises case, http defaults and publicUrl", () => {
    const config = parseConfig(
      `
xmpp: { host: xmpp.internal, port: 5348, outboundBuffer: 5 }
access: { allow: [Example.ORG, Alice@Example.org], admins: [Admin@example.org] }
networks:
  telegram: { domain: TG.example.org, secret: x, options: { apiRoot: "http://127.0.0.1:1" } }
  test: { domain: test.example.org, secret: y }
store: { url: "memory:" }
log: { level: debug, pretty: true }
http: { publicUrl: "https://gw.example.org/estuary" }
`,
      {},
    );
    expect(config.xmpp).toMatchObject({ host: "xmpp.internal", port: 5348, outboundBuffer: 5 });
    expect(config.access).toEqual({ allow: ["example.org", "alice@example.org"], admins: ["admin@example.org"] });
    expect(config.networks.telegram).toEqual({ domain: "tg.example.org", secret: "x", options: { apiRoot: "http://127.0.0.1:1" } });
    expect(config.networks.test?.domain).toBe("test.example.org");
    expect(config.networks.irc).toBeUndefined();
    expect(config.store.url).toBe("memory:");
    expect(config.log).toEqual({ level: "debug", pretty: true });
    expect(config.http).toEqual({
      host: "127.0.0.1",
      port: 8080,
      publicUrl: "https://gw.example.org/estuary/",
      mediaDir: "./estuary-media",
      maxMediaBytes: 50 * 1024 * 1024,
      mediaTtlDays: 7,
    });
  });

  it("accepts IPv6 hosts and every store scheme", () => {
    for (const url of ["memory:", "sqlite:/var/lib/estuary.db", "redis://127.0.0.1:6379", "rediss://r.example.org", "postgres://u:p@db/estuary", "postgresql://db/e"]) {
      const config = parseConfig(withExtra(`xmpp: { host: "::1" }\nstore: { url: "${url}" }`), {});
      expect(config.store.url).toBe(url);
      expect(config.xmpp.host).toBe("::1");
    }
  });
});

describe("parseConfig: errors name their key path", () => {
  it("missing domain", () => {
    expect(problemsOf(`access: { allow: [example.org] }\nnetworks: { irc: { secret: x } }`)).toEqual(["networks.irc.domain: required"]);
  });

  it("bad ports", () => {
    const problems = problemsOf(withExtra(`xmpp: { port: 70000 }\nhttp: { port: -1 }`));
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^xmpp\.port: .*65535/);
    // http.port 0 is allowed (any free port), negative is not.
    expect(problems[1]).toMatch(/^http\.port: .*0/);
    expect(problemsOf(withExtra(`xmpp: { port: "http" }`))[0]).toMatch(/^xmpp\.port: .*number/);
  });

  it("unknown keys, with a spelling hint when one is close", () => {
    const problems = problemsOf(`
access: { allow: [example.org] }
networks:
  irc: { domain: irc.example.org, secret: x, secrte: y }
logging: { level: info }
limits: { maxBodyByte: 1 }
`);
    expect(problems).toContain("networks.irc.secrte: unknown key (did you mean secret?)");
    expect(problems).toContain("logging: unknown key");
    expect(problems).toContain("limits.maxBodyByte: unknown key (did you mean maxBodyBytes?)");
    expect(problemsOf(withExtra("networks2: {}"))).toEqual(["networks2: unknown key (did you mean networks?)"]);
    expect(problemsOf(`access: { allow: [example.org] }\nnetworks: { irc: { domain: irc.example.org, secret: x }, slack: { domain: s.example.org, secret: x } }`)).toEqual([
      "networks.slack: unknown key",
    ]);
  });

  it("duplicate domains across networks, case-insensitively, even alongside other errors", () => {
    const problems = problemsOf(`
access: { allow: [example.org] }
networks:
  irc: { domain: gw.example.org, secret: x }
  matrix: { domain: GW.example.org, secret: "" }
`);
    expect(problems).toContain("networks.matrix.domain: domain gw.example.org is already used by networks.irc");
    expect(problems).toContain("networks.matrix.secret: must not be empty");
  });

  it("a missing environment variable names the variable and the key, once", () => {
    const problems = problemsOf(`access: { allow: [example.org] }\nnetworks: { irc: { domain: irc.example.org, secret: "\${ESTUARY_IRC_SECRET}" } }`, {});
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^networks\.irc\.secret: environment variable ESTUARY_IRC_SECRET is not set/);
  });

  it("invalid domains, JIDs with resources and empty lists", () => {
    const problems = problemsOf(`
access: { allow: [], admins: ["admin@example.org/phone", "a b@example.org"] }
networks: { irc: { domain: "irc_example.org", secret: x }, test: { domain: "-bad.example.org", secret: y } }
`);
    expect(problems).toEqual([
      "access.allow: list at least one domain or bare JID",
      `access.admins[0]: must be a domain or a bare JID (no /resource): "admin@example.org/phone"`,
      `access.admins[1]: must be a domain or a bare JID (no /resource): "a b@example.org"`,
      expect.stringMatching(/^networks\.irc\.domain: not a valid DNS name: "irc_example\.org"/),
      expect.stringMatching(/^networks\.test\.domain: not a valid DNS name: "-bad\.example\.org"/),
    ]);
  });

  it("no network, no access section", () => {
    expect(problemsOf("networks: {}")).toEqual(["access: required", expect.stringMatching(/^networks: enable at least one network/)]);
  });

  it("store URL scheme, without echoing the URL (it may hold a password)", () => {
    const problems = problemsOf(withExtra(`store: { url: "mysql://root:hunter2@db/estuary" }`));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^store\.url: must be a URL with one of the schemes/);
    expect(problems[0]).not.toContain("hunter2");
    expect(problemsOf(withExtra(`store: { url: "not a url" }`))[0]).toMatch(/^store\.url:/);
  });

  it("encryptionKey and keyFile are mutually exclusive; a short key is refused", () => {
    expect(problemsOf(withExtra(`store: { encryptionKey: "0123456789abcdef", keyFile: /etc/k }`))).toEqual([
      "store.keyFile: set either encryptionKey or keyFile, not both",
    ]);
    expect(problemsOf(withExtra(`store: { encryptionKey: short }`))).toEqual(["store.encryptionKey: must be at least 16 characters"]);
  });

  it("publicUrl must be absolute http(s); reconnect delays must be ordered; log level known", () => {
    const problems = problemsOf(
      withExtra(`http: { publicUrl: "ftp://x.example.org/" }\nxmpp: { reconnect: { initialDelayMs: 5000, maxDelayMs: 10 } }\nlog: { level: loud }`),
    );
    expect(problems).toEqual([
      "xmpp.reconnect.initialDelayMs: initialDelayMs must not exceed maxDelayMs",
      expect.stringMatching(/^log\.level: .*"info"/),
      expect.stringMatching(/^http\.publicUrl: must be an absolute http\(s\) URL/),
    ]);
  });

  it("lists every problem at once", () => {
    const problems = problemsOf(`
xmpp: { port: -1, outboundBuffer: -5 }
access: { allow: [example.org], admin: [] }
networks: { irc: { domain: "", secret: "\${NOPE}" } }
limits: { maxUsers: 0 }
`);
    expect(problems.map((p) => p.slice(0, p.indexOf(":")))).toEqual(
      expect.arrayContaining(["networks.irc.secret", "xmpp.port", "xmpp.outboundBuffer", "access.admin", "networks.irc.domain", "limits.maxUsers"]),
    );
    expect(problems).toHaveLength(6);
  });

  it("YAML syntax errors and duplicate keys report line and column", () => {
    expect(problemsOf("access: [\n")[0]).toMatch(/^yaml \(line \d+, column \d+\): /);
    expect(problemsOf("log: { level: info }\nlog: { level: warn }\n")).toEqual([expect.stringMatching(/^yaml \(line 2, column 1\): .*unique/i)]);
  });

  it("an empty file or a non-mapping top level", () => {
    expect(problemsOf("")).toEqual(["config: the file is empty"]);
    expect(problemsOf("# only a comment\n")).toEqual(["config: the file is empty"]);
    expect(problemsOf("- a\n- b\n")).toEqual(["config: expected a mapping of keys at the top level"]);
  });
});

describe("environment substitution", () => {
  const yaml = (secret: string, port = "5347") =>
    `xmpp: { port: "${port}" }\naccess: { allow: [example.org] }\nnetworks: { irc: { domain: irc.example.org, secret: "${secret}" } }`;

  it("substitutes ${VAR} and ${VAR:-default} with sh semantics", () => {
    expect(parseConfig(yaml("${S}"), { S: "from-env" }).networks.irc?.secret).toBe("from-env");
    expect(parseConfig(yaml("${S:-fallback}"), {}).networks.irc?.secret).toBe("fallback");
    expect(parseConfig(yaml("${S:-fallback}"), { S: "" }).networks.irc?.secret).toBe("fallback");
    expect(parseConfig(yaml("${S:-fallback}"), { S: "set" }).networks.irc?.secret).toBe("set");
    expect(parseConfig(yaml("pre-${A}-${B:-b}-post"), { A: "a" }).networks.irc?.secret).toBe("pre-a-b-post");
  });

  it("turns substituted numbers into numbers", () => {
    expect(parseConfig(yaml("x", "${PORT:-5400}"), {}).xmpp.port).toBe(5400);
    expect(parseConfig(yaml("x", "${PORT}"), { PORT: "5401" }).xmpp.port).toBe(5401);
  });

  it("does not re-substitute values, and $${ is a literal ${", () => {
    expect(parseConfig(yaml("${S}"), { S: "${OTHER}" }).networks.irc?.secret).toBe("${OTHER}");
    expect(parseConfig(yaml("$${S}"), { S: "no" }).networks.irc?.secret).toBe("${S}");
    expect(parseConfig(yaml("pa$$word"), {}).networks.irc?.secret).toBe("pa$$word");
  });

  it("reports unterminated and malformed references", () => {
    expect(problemsOf(yaml("${S"))).toEqual([expect.stringMatching(/^networks\.irc\.secret: unterminated \$\{/)]);
    expect(problemsOf(yaml("${1BAD}"))).toEqual([expect.stringMatching(/^networks\.irc\.secret: invalid variable reference \$\{1BAD\}/)]);
  });

  it("substitutes inside lists and adapter options", () => {
    const config = parseConfig(
      `access: { allow: ["\${DOMAIN}"] }\nnetworks: { irc: { domain: irc.example.org, secret: x, options: { servers: [{ password: "\${P}" }] } } }`,
      { DOMAIN: "example.net", P: "pw" },
    );
    expect(config.access.allow).toEqual(["example.net"]);
    expect(config.networks.irc?.options).toEqual({ servers: [{ password: "pw" }] });
  });

  it("property: text without ${ is unchanged; a variable's value is inserted verbatim", () => {
    fc.assert(
      fc.property(fc.string().filter((s) => !s.includes("${")), (s) => {
        expect(substituteString(s, {})).toEqual({ value: s, errors: [] });
      }),
    );
    fc.assert(
      // A text ending in `$` would turn the reference into the `$${` escape.
      fc.property(fc.string(), fc.string().filter((s) => !s.includes("${") && !s.endsWith("$")), (value, around) => {
        expect(substituteString(`${around}\${V}${around}`, { V: value })).toEqual({ value: `${around}${value}${around}`, errors: [] });
      }),
    );
  });
});

describe("loadConfig and keyFile", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-config-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const configWithKeyFile = (keyFile: string) => withExtra(`store: { keyFile: "${keyFile}" }`);

  async function expectLoadError(file: string, pattern: RegExp): Promise<void> {
    const err = await loadConfig(file, {}).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([expect.stringMatching(pattern)]);
  }

  it("reads a private key file, relative to the config file, trimming whitespace", async () => {
    await writeFile(join(dir, "store.key"), "  0123456789abcdef-key\n", { mode: 0o600 });
    await chmod(join(dir, "store.key"), 0o600);
    await writeFile(join(dir, "a.yaml"), configWithKeyFile("store.key"));
    const config = await loadConfig(join(dir, "a.yaml"), {});
    expect(config.store.encryptionKey).toBe("0123456789abcdef-key");
  });

  it("refuses a key file readable by group or others", async () => {
    await writeFile(join(dir, "open.key"), "0123456789abcdef-key\n");
    await chmod(join(dir, "open.key"), 0o644);
    await writeFile(join(dir, "b.yaml"), configWithKeyFile("open.key"));
    await expectLoadError(join(dir, "b.yaml"), /^store\.keyFile: .*open\.key is accessible by group or others \(mode 0644\); run: chmod 600/);
  });

  it("reports a missing, empty or too short key file", async () => {
    await writeFile(join(dir, "c.yaml"), configWithKeyFile("missing.key"));
    await expectLoadError(join(dir, "c.yaml"), /^store\.keyFile: cannot read .*missing\.key: ENOENT/);
    await writeFile(join(dir, "empty.key"), "\n", { mode: 0o600 });
    await writeFile(join(dir, "d.yaml"), configWithKeyFile("empty.key"));
    await expectLoadError(join(dir, "d.yaml"), /^store\.keyFile: .*empty\.key is empty/);
    await writeFile(join(dir, "short.key"), "abc", { mode: 0o600 });
    await writeFile(join(dir, "e.yaml"), configWithKeyFile("short.key"));
    await expectLoadError(join(dir, "e.yaml"), /^store\.keyFile: the key in .*short\.key must be at least 16 characters/);
  });

  it("reports an unreadable config file as a ConfigError", async () => {
    await expectLoadError(join(dir, "nope.yaml"), /^config: cannot read .*nope\.yaml: ENOENT/);
  });
});

describe("config/example.yaml", () => {
  const example = new URL("../../../config/example.yaml", import.meta.url).pathname;
  const env = {
    ESTUARY_IRC_SECRET: "irc-secret",
    ESTUARY_TELEGRAM_SECRET: "telegram-secret",
    ESTUARY_MATRIX_SECRET: "matrix-secret",
    ESTUARY_STORE_KEY: "0123456789abcdef0123",
  };

  it("loads with its variables set", async () => {
    const config = await loadConfig(example, env);
    expect(Object.keys(config.networks)).toEqual(["irc", "telegram", "matrix"]);
    expect(config.networks.irc?.secret).toBe("irc-secret");
    expect(config.store.encryptionKey).toBe(env.ESTUARY_STORE_KEY);
    expect(config.http?.publicUrl).toBe("https://gw.example.org/");
  });

  it("names each missing variable", async () => {
    const err = await loadConfig(example, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual(
      Object.keys(env).map((name) => expect.stringContaining(`environment variable ${name} is not set`)),
    );
  });
});
