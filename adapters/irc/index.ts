/**
 * The IRC adapter, Biboumi-compatible addressing (`#chan%server`,
 * `nick%server`, `server`), on irc-framework.
 */
import { parseAdapterOptions } from "../../core/adapter-options.ts";
import type { Adapter } from "../../core/adapter.ts";
import { fail } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { createAddressCodec } from "./ids.ts";
import { ircOptionsSchema, serverSettingsFields, serverSettingsSchema } from "./options.ts";
import { IrcSession } from "./session.ts";

export { ircOptionsSchema, serverSettingsFields, serverSettingsSchema } from "./options.ts";
export type { IrcOptions, ServerSettings } from "./options.ts";

export function createIrcAdapter(options: unknown, deps: { log: Logger }): Adapter {
  const opts = parseAdapterOptions("irc", ircOptionsSchema, options);
  const log = deps.log.child({ adapter: "irc" });
  const sessions = new Set<IrcSession>();
  return {
    network: "irc",
    gatewayType: "irc",
    displayName: "IRC",
    capabilities: { rooms: true },
    registration: {
      required: false,
      instructions: opts.fixedServer
        ? `Join IRC channels on ${opts.fixedServer} as #channel@this-gateway; no registration is needed.`
        : "Join IRC channels as #channel%irc.example.net@this-gateway and talk to people as nick%irc.example.net@this-gateway; no registration is needed.",
      fields: [],
    },
    ids: createAddressCodec({ fixedServer: opts.fixedServer }),
    async validateRegistration() {
      return {};
    },
    // Per-user, per-server settings (XEP-0050 `configure` on the server's JID); the session reads `server:<host>`.
    serviceSettings: {
      fields: serverSettingsFields,
      key: (service) => `server:${service}`,
      validate(values) {
        const parsed = serverSettingsSchema.safeParse(values);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          throw fail("not-acceptable", `Invalid value for ${String(issue?.path[0] ?? "a field")}: ${issue?.message ?? "invalid"}`);
        }
        return Object.fromEntries(Object.entries(parsed.data).filter(([, v]) => v !== undefined));
      },
    },
    async openSession(ctx) {
      const session = new IrcSession({ ...ctx, log: ctx.log ?? log }, opts);
      sessions.add(session);
      ctx.signal.addEventListener("abort", () => sessions.delete(session), { once: true });
      const close = session.close.bind(session);
      session.close = async (reason?: string) => {
        sessions.delete(session);
        await close(reason);
      };
      return session;
    },
    async shutdown() {
      await Promise.all([...sessions].map((s) => s.close("Gateway shutting down")));
    },
  };
}
