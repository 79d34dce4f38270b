/**
 * The Matrix adapter (Client-Server API, on matrix-js-sdk's HTTP layer).
 * Addressing: see ids.ts. Not done: end-to-end encryption (encrypted rooms
 * get a notice and refuse sends).
 */
import { parseAdapterOptions } from "../../core/adapter-options.ts";
import type { Adapter } from "../../core/adapter.ts";
import type { Logger } from "../../core/log.ts";
import { fail } from "../../core/errors.ts";
import { createAddressCodec } from "./ids.ts";
import { matrixOptionsSchema } from "./options.ts";
import { registrationFields, validateRegistration, type MatrixCredentials } from "./registration.ts";
import { MatrixSession } from "./session.ts";

export { matrixOptionsSchema } from "./options.ts";
export type { MatrixOptions } from "./options.ts";

export function createMatrixAdapter(options: unknown, deps: { log: Logger }): Adapter {
  const opts = parseAdapterOptions("matrix", matrixOptionsSchema, options);
  const log = deps.log.child({ adapter: "matrix" });
  const sessions = new Set<MatrixSession>();
  return {
    network: "matrix",
    gatewayType: "matrix",
    displayName: "Matrix",
    // Redactions of others' events by the room's moderators (power level `redact`): XEP-0425.
    capabilities: { rooms: true, moderation: true },
    registration: {
      required: true,
      instructions:
        "Give your Matrix homeserver, user and password (used once to log in, then forgotten) or an access token. Rooms are #alias%server or !id%server, people user%server at this gateway.",
      fields: registrationFields,
    },
    ids: createAddressCodec(),
    async validateRegistration(values) {
      const creds = await validateRegistration(values, log);
      return { ...creds };
    },
    async openSession(ctx) {
      const r = ctx.registration;
      if (!r.homeserver || !r.userId || !r.accessToken) throw fail("registration-required", "Register with your Matrix account again");
      const creds: MatrixCredentials = { homeserver: r.homeserver, userId: r.userId, deviceId: r.deviceId ?? "", accessToken: r.accessToken };
      const session = new MatrixSession(ctx, opts, creds);
      sessions.add(session);
      session.start();
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
