/**
 * The gateway's bridges at run time: the config file's and those admins
 * create through ad-hoc commands (admin.ts). Each has a definition (the
 * validated `bridgeSchema` output), a source, a paused flag, and, while it
 * runs, a started `Bridge`. Pausing stops the bridge (its relay identities
 * leave); resuming builds it again from its definition, so a paused bridge
 * holds no connection.
 *
 * Persisted in `store.scoped("~gateway", "bridges")` (values sealed at rest:
 * definitions carry Matrix access tokens and Telegram bot tokens):
 *   `runtime` → BridgeConfig[]            bridges created at run time, with their paused flag
 *   `paused`  → Record<name, boolean>     pause/resume of config-file bridges where it differs from `paused:` in the file
 *
 * Config-file bridges cannot be removed at run time (the file would bring
 * them back at the next start); they can be paused. Mutations run one at a
 * time, so two admins racing cannot start a bridge twice.
 */
import type { Logger } from "pino";
import { asEstuaryError, fail } from "../errors.ts";
import type { Gateway } from "../gateway.ts";
import type { Bridge } from "./bridge.ts";
import { bridgeSchema, legsOf, type BridgeConfig, type LegName } from "./config.ts";

export type BridgeSource = "config" | "runtime";

export interface BridgeInfo {
  name: string;
  source: BridgeSource;
  legs: LegName[];
  /** running, paused, or failed (with `error`). */
  state: "running" | "paused" | "failed";
  error?: string;
  /** Per leg, what the leg says of itself (absent while not running). */
  legStates: Partial<Record<LegName, string>>;
}

interface Entry {
  def: BridgeConfig;
  source: BridgeSource;
  paused: boolean;
  bridge?: Bridge;
  error?: string;
}

export type BuildBridge = (gateway: Gateway, def: BridgeConfig, log: Logger) => Promise<Bridge>;

const RUNTIME_KEY = "runtime";
const PAUSED_KEY = "paused";

export class BridgeManager {
  readonly #gateway: Gateway;
  readonly #log: Logger;
  readonly #build: BuildBridge;
  readonly #entries = new Map<string, Entry>();
  #chain: Promise<unknown> = Promise.resolve();
  #started = false;
  #stopped = false;

  constructor(gateway: Gateway, configBridges: BridgeConfig[], deps: { log: Logger; build: BuildBridge }) {
    this.#gateway = gateway;
    this.#log = deps.log;
    this.#build = deps.build;
    for (const def of configBridges) this.#entries.set(def.name, { def, source: "config", paused: def.paused });
  }

  get #kv() {
    return this.#gateway.store.scoped("~gateway", "bridges");
  }

  /** Running bridges. */
  get bridges(): Bridge[] {
    return [...this.#entries.values()].flatMap((e) => (e.bridge ? [e.bridge] : []));
  }

  /**
   * Loads the run-time bridges and the pause overrides, then starts every
   * unpaused bridge. A bridge that cannot be built is logged and listed as
   * failed; the others start anyway.
   */
  start(opts: { persisted: boolean } = { persisted: true }): Promise<void> {
    return this.#serial(async () => {
      if (opts.persisted) {
        const overrides = (await this.#kv.get<Record<string, boolean>>(PAUSED_KEY)) ?? {};
        for (const [name, paused] of Object.entries(overrides)) {
          const e = this.#entries.get(name);
          if (e?.source === "config") e.paused = paused;
        }
        for (const raw of (await this.#kv.get<unknown[]>(RUNTIME_KEY)) ?? []) {
          const parsed = bridgeSchema.safeParse(raw);
          if (!parsed.success) {
            this.#log.error({ error: parsed.error.message }, "a stored run-time bridge no longer validates; ignored");
            continue;
          }
          const existing = this.#entries.get(parsed.data.name);
          if (existing) {
            // A runtime entry here was created by a command that came before start(): the same bridge.
            if (existing.source === "config") this.#log.warn({ bridge: parsed.data.name }, "a run-time bridge has the name of a config-file bridge; the config file's wins");
            continue;
          }
          this.#entries.set(parsed.data.name, { def: parsed.data, source: "runtime", paused: parsed.data.paused });
        }
      }
      this.#started = true;
      for (const e of this.#entries.values()) {
        if (this.#stopped) return;
        if (e.paused) this.#log.info({ bridge: e.def.name }, "bridge paused");
        else await this.#run(e).catch(() => undefined);
      }
    });
  }

  list(): BridgeInfo[] {
    return [...this.#entries.values()]
      .map((e): BridgeInfo => {
        const legStates: Partial<Record<LegName, string>> = {};
        for (const [name, leg] of e.bridge?.legs ?? []) legStates[name] = leg.status?.() ?? "running";
        return {
          name: e.def.name,
          source: e.source,
          legs: legsOf(e.def),
          state: e.paused ? "paused" : e.bridge ? "running" : "failed",
          ...(e.error !== undefined && !e.paused ? { error: e.error } : {}),
          legStates,
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Config-file errors the start met, by bridge name. */
  failures(): { name: string; source: BridgeSource; error: string }[] {
    return [...this.#entries.values()].flatMap((e) => (e.error !== undefined && !e.paused && !e.bridge ? [{ name: e.def.name, source: e.source, error: e.error }] : []));
  }

  /** Adds and starts a run-time bridge; refused (nothing kept) when it cannot be built. */
  create(def: BridgeConfig): Promise<void> {
    return this.#serial(async () => {
      if (this.#entries.has(def.name)) throw fail("conflict", `A bridge named ${def.name} exists already`);
      const entry: Entry = { def, source: "runtime", paused: def.paused };
      if (this.#started && !entry.paused) await this.#run(entry);
      this.#entries.set(def.name, entry);
      await this.#persist();
    });
  }

  pause(name: string): Promise<void> {
    return this.#serial(async () => {
      const e = this.#get(name);
      if (e.paused) throw fail("conflict", `${name} is paused already`);
      e.paused = true;
      e.error = undefined;
      await this.#halt(e);
      await this.#persist();
    });
  }

  resume(name: string): Promise<void> {
    return this.#serial(async () => {
      const e = this.#get(name);
      if (!e.paused && e.bridge) throw fail("conflict", `${name} is running already`);
      if (this.#started) await this.#run(e);
      e.paused = false;
      await this.#persist();
    });
  }

  remove(name: string): Promise<void> {
    return this.#serial(async () => {
      const e = this.#get(name);
      if (e.source === "config") {
        throw fail("not-allowed", `${name} is defined in the configuration file: remove it there (and restart), or pause it`);
      }
      await this.#halt(e);
      this.#entries.delete(name);
      await this.#persist();
      // The relay identities' state (sync tokens, offsets): a bridge created later under this name starts afresh.
      for (const leg of legsOf(e.def)) if (leg !== "xmpp") await this.#gateway.store.purgeUser(`bridge:${name}`, leg);
    });
  }

  /** Stops every bridge; the manager takes no more changes. */
  stop(): Promise<void> {
    this.#stopped = true;
    return this.#serial(async () => {
      await Promise.all([...this.#entries.values()].map((e) => this.#halt(e)));
    });
  }

  #get(name: string): Entry {
    const e = this.#entries.get(name);
    if (!e) throw fail("not-found", `No bridge named ${name}`);
    return e;
  }

  async #run(e: Entry): Promise<void> {
    if (this.#stopped) throw fail("unavailable", "The gateway is shutting down");
    const log = this.#log.child({ bridge: e.def.name });
    let bridge: Bridge | undefined;
    try {
      bridge = await this.#build(this.#gateway, e.def, log);
      await bridge.start();
    } catch (err) {
      await bridge?.stop().catch(() => undefined);
      e.error = asEstuaryError(err).message;
      log.error({ err }, "bridge could not start");
      throw err;
    }
    e.bridge = bridge;
    e.error = undefined;
    log.info({ legs: [...bridge.legs.keys()], source: e.source }, "bridge started");
  }

  async #halt(e: Entry): Promise<void> {
    const b = e.bridge;
    e.bridge = undefined;
    if (b) {
      await b.stop();
      this.#log.info({ bridge: e.def.name }, "bridge stopped");
    }
  }

  async #persist(): Promise<void> {
    const runtime = [...this.#entries.values()].filter((e) => e.source === "runtime").map((e) => ({ ...e.def, paused: e.paused }));
    // Only what differs from the file: editing `paused:` there later still takes effect.
    const paused = Object.fromEntries([...this.#entries.values()].filter((e) => e.source === "config" && e.paused !== e.def.paused).map((e) => [e.def.name, e.paused]));
    await this.#kv.set(RUNTIME_KEY, runtime);
    await this.#kv.set(PAUSED_KEY, paused);
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }
}
