import { describe, expect, it } from "vitest";
import type { AdapterSession, SessionContext } from "../../../core/adapter.ts";
import { silentLogger } from "../../../core/log.ts";
import type { Network } from "../../../core/network.ts";
import { SessionManager } from "../../../core/sessions.ts";

/** Just what SessionManager reads of a network; the registration lookup resolves on a later turn, like a store. */
function fakeNetwork(maxUsers: number, opened: string[]): Network {
  const net = {
    name: "test",
    domain: "test.localhost",
    limits: { maxUsers },
    log: silentLogger(),
    fetch: globalThis.fetch,
    store: {
      registrations: { get: () => new Promise((r) => setImmediate(() => r(undefined))) },
      scoped: () => ({}),
    },
    adapter: {
      displayName: "Test",
      registration: { required: false },
      async openSession(ctx: SessionContext): Promise<AdapterSession> {
        opened.push(ctx.user);
        return { close: async () => {} } as unknown as AdapterSession;
      },
    },
  };
  return net as unknown as Network;
}

describe("SessionManager.get", () => {
  it("opens one session for a user however many stanzas ask at once", async () => {
    const opened: string[] = [];
    const net = fakeNetwork(10, opened);
    const sessions = new SessionManager(() => net, () => {});
    const [a, b, c] = await Promise.all([sessions.get("romeo@localhost"), sessions.get("romeo@localhost"), sessions.get("romeo@localhost")]);
    expect(opened).toEqual(["romeo@localhost"]);
    expect(b).toBe(a);
    expect(c).toBe(a);
  });

  it("counts users that are still opening against limits.maxUsers", async () => {
    const opened: string[] = [];
    const net = fakeNetwork(1, opened);
    const sessions = new SessionManager(() => net, () => {});
    const results = await Promise.allSettled([sessions.get("romeo@localhost"), sessions.get("juliet@localhost")]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected"]);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ kind: "not-allowed" });
    expect(opened).toEqual(["romeo@localhost"]);
    // A place freed is a place taken.
    await sessions.close("romeo@localhost");
    await expect(sessions.get("juliet@localhost")).resolves.toBeDefined();
  });
});
