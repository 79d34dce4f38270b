import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { definitionFromForm } from "../../../../core/bridge/admin.ts";
import { Bridge } from "../../../../core/bridge/bridge.ts";
import { bridgeSchema, type BridgeConfig, type LegName } from "../../../../core/bridge/config.ts";
import { BridgeManager } from "../../../../core/bridge/manager.ts";
import type { Leg } from "../../../../core/bridge/types.ts";
import { fail, type EstuaryError } from "../../../../core/errors.ts";
import type { Gateway } from "../../../../core/gateway.ts";
import { silentLogger } from "../../../../core/log.ts";
import { openStore, type Store } from "../../../../core/store/index.ts";

describe("definitionFromForm", () => {
  it("gives what the config schema gives for the same bridge", () => {
    const def = definitionFromForm({
      name: "lobby",
      xmpp_room: "Lobby@Conference.Example.org",
      irc_server: "irc.example.org",
      irc_channel: "#lobby",
      irc_nick: "",
      telegram_token: "123:AA",
      telegram_chat: "-100123",
      join_part: "irc, Telegram",
    });
    expect(def).toEqual(
      bridgeSchema.parse({
        name: "lobby",
        xmpp: { room: "lobby@conference.example.org" },
        irc: { server: "irc.example.org", channel: "#lobby" },
        telegram: { token: "123:AA", chat: -100123 },
        joinPartRelay: { irc: true, telegram: true },
      }),
    );
  });

  it("refuses with the fields at fault named and no secret quoted", () => {
    const err = (() => {
      try {
        definitionFromForm({ name: "x y", xmpp_room: "room@muc.example.org", telegram_token: "sekrit", telegram_chat: "lobby" });
      } catch (e) {
        return e as EstuaryError;
      }
    })();
    expect(err?.kind).toBe("not-acceptable");
    expect(err?.message).toMatch(/^Bridge name: letters, digits/);
    expect(err?.message).toMatch(/Telegram group chat id: /);
    expect(err?.message).not.toContain("sekrit");
  });

  it("refuses a bridge with one leg", () => {
    expect(() => definitionFromForm({ name: "solo", xmpp_room: "room@muc.example.org" })).toThrow(/at least two legs/);
  });
});

class FakeLeg implements Leg {
  readonly name: LegName;
  started = 0;
  stopped = 0;
  constructor(name: LegName) {
    this.name = name;
  }
  async start() {
    this.started++;
  }
  async stop() {
    this.stopped++;
  }
  async deliver() {}
  status() {
    return this.stopped > 0 ? "stopped" : "up";
  }
}

describe("BridgeManager", () => {
  let store: Store;
  let gateway: Gateway;
  const legs: FakeLeg[] = [];
  const refuse = new Set<string>();
  const build = async (_gw: Gateway, def: BridgeConfig) => {
    if (refuse.has(def.name)) throw fail("not-acceptable", `bridge ${def.name}: the irc leg needs networks.irc enabled`);
    const b = new Bridge({ name: def.name, store, log: silentLogger(), maxQueuedPerLeg: 10, deliveryTimeoutMs: 1000 });
    for (const n of ["xmpp", "irc"] as const) {
      const l = new FakeLeg(n);
      legs.push(l);
      b.add(l);
    }
    return b;
  };
  const def = (name: string, paused = false) => bridgeSchema.parse({ name, paused, xmpp: { room: `${name}@muc.example.org` }, irc: { server: "irc.example.org", channel: `#${name}` } });
  const manager = (config: BridgeConfig[] = []) => new BridgeManager(gateway, config, { log: silentLogger(), build });

  beforeEach(async () => {
    store = await openStore({ url: "memory:" });
    gateway = { store, networks: new Map() } as unknown as Gateway;
    legs.length = 0;
    refuse.clear();
  });
  afterEach(() => store.close());

  it("starts unpaused bridges, lists them with their legs' states, and persists run-time ones for the next start", async () => {
    const m = manager([def("cfg"), def("off", true)]);
    await m.start();
    await m.create(def("rt"));
    expect(m.list()).toEqual([
      { name: "cfg", source: "config", legs: ["xmpp", "irc"], state: "running", legStates: { xmpp: "up", irc: "up" } },
      { name: "off", source: "config", legs: ["xmpp", "irc"], state: "paused", legStates: {} },
      { name: "rt", source: "runtime", legs: ["xmpp", "irc"], state: "running", legStates: { xmpp: "up", irc: "up" } },
    ]);
    await m.stop();
    expect(legs.every((l) => l.stopped === 1)).toBe(true);

    const again = manager([def("cfg"), def("off", true)]);
    await again.start();
    expect(again.list().map((b) => `${b.name}:${b.source}:${b.state}`)).toEqual(["cfg:config:running", "off:config:paused", "rt:runtime:running"]);
    await again.stop();
  });

  it("pauses and resumes (a paused bridge holds no leg), and remembers it across starts", async () => {
    const m = manager([def("cfg")]);
    await m.start();
    await m.create(def("rt"));
    await m.pause("rt");
    await m.pause("cfg");
    expect(m.bridges).toEqual([]);
    expect(legs.every((l) => l.stopped === 1)).toBe(true);
    await expect(m.pause("rt")).rejects.toMatchObject({ kind: "conflict" });
    await m.stop();

    const again = manager([def("cfg")]);
    await again.start();
    expect(again.list().map((b) => b.state)).toEqual(["paused", "paused"]);
    await again.resume("cfg");
    expect(again.bridges.map((b) => b.name)).toEqual(["cfg"]);
    // Back to what the file says: no override is kept, so editing the file later still counts.
    expect(await store.scoped("~gateway", "bridges").get("paused")).toEqual({});
    await again.stop();
  });

  it("removes run-time bridges only, forgetting their stored state", async () => {
    const m = manager([def("cfg")]);
    await m.start();
    await m.create(def("rt"));
    await store.scoped("bridge:rt", "irc").set("offset", 42);
    await expect(m.remove("cfg")).rejects.toMatchObject({ kind: "not-allowed", message: expect.stringMatching(/configuration file/) });
    await m.remove("rt");
    expect(m.list().map((b) => b.name)).toEqual(["cfg"]);
    expect(await store.scoped("~gateway", "bridges").get("runtime")).toEqual([]);
    expect(await store.scoped("bridge:rt", "irc").get("offset")).toBeUndefined();
    await expect(m.remove("nope")).rejects.toMatchObject({ kind: "not-found" });
    await m.stop();
  });

  it("keeps nothing of a bridge that cannot be built, and refuses a taken name", async () => {
    const m = manager([def("cfg")]);
    await m.start();
    refuse.add("broken");
    await expect(m.create(def("broken"))).rejects.toThrow(/networks\.irc/);
    await expect(m.create(def("cfg"))).rejects.toMatchObject({ kind: "conflict" });
    expect(m.list().map((b) => b.name)).toEqual(["cfg"]);
    expect(await store.scoped("~gateway", "bridges").get("runtime")).toBeUndefined();
    await m.stop();
  });

  it("lists a stored bridge that fails at start as failed, with the reason, and starts the others", async () => {
    const m = manager();
    await m.start();
    await m.create(def("a"));
    await m.create(def("b"));
    await m.stop();
    refuse.add("a");
    const again = manager();
    await again.start();
    expect(again.list().map((b) => [b.name, b.state, b.error])).toEqual([
      ["a", "failed", "bridge a: the irc leg needs networks.irc enabled"],
      ["b", "running", undefined],
    ]);
    refuse.clear();
    await again.resume("a");
    expect(again.list().map((b) => b.state)).toEqual(["running", "running"]);
    await again.stop();
  });
});
