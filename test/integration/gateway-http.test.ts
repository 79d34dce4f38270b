/**
 * The gateway's HTTP listener wired to the core: health follows the
 * component streams, metrics are exposed, and media a network hands over
 * reaches the XMPP user as a URL (with XEP-0066 OOB) that serves the bytes.
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
import { freePort } from "../support/ports.ts";
import type { Gateway } from "../../core/gateway.ts";
import { plain } from "../../core/format/model.ts";

const GW = "test.localhost";

describe("HTTP listener: health, metrics, media", () => {
  let prosody: ProsodyHandle;
  let gateway: Gateway;
  let dir: string;
  const net = new TestNetwork();
  let romeo: TestClient;
  let httpPort = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-http-"));
    httpPort = await freePort();
    prosody = await startProsody({ components: [{ domain: GW, secret: "s" }], users: [{ username: "romeo", password: "pw" }] });
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: { test: { domain: GW, secret: "s" } },
      adapters: { test: () => net.adapter() },
      // A fixed port: the listener must be started exactly once (a second start would fail to bind).
      http: { host: "127.0.0.1", port: httpPort, mediaDir: join(dir, "media") },
    });
    romeo = await connectClient(prosody, "romeo", "pw");
  });

  afterAll(async () => {
    await romeo?.stop();
    await gateway?.stop();
    await prosody?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("reports healthy with every component online, and exposes metrics", async () => {
    expect(gateway.httpUrl).toBe(`http://127.0.0.1:${httpPort}/`);
    const health = await fetch(`${gateway.httpUrl}health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ok" });
    const metrics = await (await fetch(`${gateway.httpUrl}metrics`)).text();
    expect(metrics).toMatch(/estuary_component_online\{domain="test\.localhost"\} 1/);
    expect(metrics).toMatch(/estuary_queue_depth\{network="test",queue="component-buffer"\} 0/);
    expect(metrics).toContain("estuary_rate_limit_waits_total");
  });

  it("counts a message it could not deliver as a delivery failure", async () => {
    await romeo.send(xml("message", { to: `nobody@${GW}`, type: "chat", id: "undeliverable" }, xml("body", {}, "hello?")));
    await romeo.waitFor((s) => s.attrs.id === "undeliverable" && s.attrs.type === "error");
    const metrics = await (await fetch(`${gateway.httpUrl}metrics`)).text();
    expect(metrics).toMatch(/estuary_delivery_failures_total\{network="test",direction="out",kind="registration-required"\} 1/);
  });

  it("hands network media to the XMPP user as a URL that serves the bytes", async () => {
    await romeo.iq(
      xml("iq", { type: "set", to: GW }, xml("query", { xmlns: "jabber:iq:register" }, xml("x", { xmlns: "jabber:x:data", type: "submit" }, xml("field", { var: "username" }, xml("value", {}, "r")), xml("field", { var: "password" }, xml("value", {}, "p"))))),
    );
    await romeo.send(xml("presence", { to: GW }));
    const ctx = await waitFor(() => net.sessions.get("romeo@localhost"), { what: "session" });
    expect(ctx.media).toBeDefined();
    const bytes = new TextEncoder().encode("a picture, honestly");
    const url = await ctx.media!.publish(bytes, { mediaType: "image/png", name: "rose.png" });
    net.emit("romeo@localhost", { type: "message", chat: { kind: "direct", contact: "nurse" }, from: { nick: "nurse" }, text: plain(""), attachments: [{ url, name: "rose.png" }] });
    const msg = await romeo.waitFor((s) => s.name === "message" && s.getChild("x", "jabber:x:oob") !== undefined);
    expect(msg.getChild("x", "jabber:x:oob")!.getChildText("url")).toBe(url);
    expect(msg.getChildText("body")).toBe(url);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/png");
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
  });

  it("turns unhealthy when a component stream is down", async () => {
    await prosody.stop();
    await waitFor(async () => ((await fetch(`${gateway.httpUrl}health`)).status === 503 ? true : undefined), { what: "unhealthy" });
  });
});
