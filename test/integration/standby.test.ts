/**
 * Hot standby on Prosody: Prosody accepts one component connection per
 * domain, so a second Estuary on the same store keeps retrying while the
 * primary holds the domain, and takes over when it dies, resuming users
 * from the shared store. In the gap Prosody bounces stanzas with an error:
 * nothing is lost silently.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { xml } from "@xmpp/client";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway } from "../support/gateway.ts";
import { TestNetwork } from "../support/test-adapter.ts";
import { waitFor } from "../support/wait.ts";
import type { Gateway } from "../../core/gateway.ts";
import { toPlain } from "../../core/format/model.ts";

const GW = "test.localhost";

describe("hot standby on Prosody", () => {
  let prosody: ProsodyHandle;
  let dir: string;
  let primary: Gateway;
  let standby: Gateway;
  const primaryNet = new TestNetwork();
  const standbyNet = new TestNetwork();
  let romeo: TestClient;

  const start = (net: TestNetwork, waitOnline: boolean) =>
    startTestGateway({
      xmppPort: prosody.componentPort,
      networks: { test: { domain: GW, secret: "s" } },
      adapters: { test: () => net.adapter() },
      storeUrl: `sqlite:${join(dir, "shared.sqlite")}`,
      reconnect: { initialDelayMs: 100, maxDelayMs: 400 },
      waitOnline,
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-standby-"));
    prosody = await startProsody({ components: [{ domain: GW, secret: "s" }], users: [{ username: "romeo", password: "pw" }] });
    primary = await start(primaryNet, true);
    standby = await start(standbyNet, false);
    romeo = await connectClient(prosody, "romeo", "pw");
  });

  afterAll(async () => {
    await romeo?.stop();
    await standby?.stop();
    await primary?.stop();
    await prosody?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("the standby waits while the primary holds the domain", async () => {
    await romeo.iq(
      xml(
        "iq",
        { type: "set", to: GW },
        xml(
          "query",
          { xmlns: "jabber:iq:register" },
          xml("x", { xmlns: "jabber:x:data", type: "submit" }, xml("field", { var: "username" }, xml("value", {}, "romeo")), xml("field", { var: "password" }, xml("value", {}, "pw"))),
        ),
      ),
    );
    // Prosody refused the standby's stream (one connection per component domain); it keeps trying.
    await waitFor(() => standby.networks.get("test")!.link.state === "offline" || undefined, { what: "standby refused" });
    expect(primary.networks.get("test")!.link.state).toBe("online");
    expect(standby.networks.get("test")!.link.state).not.toBe("online");
  });

  it("takes over when the primary dies; the gap bounces with an error; users resume from the store", async () => {
    await primary.stop();
    // During the gap (or right after), a message either reaches the new primary or bounces; never vanishes.
    await romeo.send(xml("message", { to: `nurse@${GW}`, type: "chat", id: "gap" }, xml("body", {}, "anyone?")));
    const answer = await Promise.race([
      romeo.waitFor((s) => s.attrs.id === "gap" && s.attrs.type === "error", 10_000),
      standbyNet.waitForSent((r) => r.op === "send" && r.message !== undefined, 10_000).catch(() => undefined),
    ]);
    expect(answer).toBeDefined();
    await standby.networks.get("test")!.link.online(10_000);
    await romeo.send(xml("presence", { to: GW }));
    await waitFor(() => standbyNet.sessions.get("romeo@localhost"), { what: "romeo resumed on the standby", timeout: 10_000 });
    await romeo.send(xml("message", { to: `nurse@${GW}`, type: "chat", id: "after" }, xml("body", {}, "hello again")));
    const sent = await standbyNet.waitForSent((r) => r.op === "send" && r.message !== undefined && toPlain(r.message.text) === "hello again");
    expect(sent).toMatchObject({ user: "romeo@localhost", chat: { kind: "direct", contact: "nurse" } });
  });
});
