/**
 * XEP-0363 end to end: with `media.uploadService` configured, media a network
 * hands over is uploaded to the XMPP server's own upload service (Prosody
 * 0.12's mod_http_file_share) and the user receives a URL on Prosody's HTTP
 * port that serves the bytes; when the service refuses, the gateway's own
 * listener serves the file instead.
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
import type { SessionContext } from "../../core/adapter.ts";
import { plain } from "../../core/format/model.ts";

const GW = "test.localhost";
const SIZE_LIMIT = 64 * 1024;

describe("XEP-0363: network media through the XMPP server's upload service", () => {
  let prosody: ProsodyHandle;
  let gateway: Gateway;
  let dir: string;
  const net = new TestNetwork();
  let romeo: TestClient;
  let ctx: SessionContext;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-upload-"));
    prosody = await startProsody({
      components: [{ domain: GW, secret: "s" }],
      users: [{ username: "romeo", password: "pw" }],
      upload: { access: [GW], sizeLimit: SIZE_LIMIT },
    });
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: { test: { domain: GW, secret: "s" } },
      adapters: { test: () => net.adapter() },
      // The gateway's own listener is the fallback when the service refuses.
      http: { host: "127.0.0.1", port: 0, mediaDir: join(dir, "media") },
      media: { uploadService: prosody.uploadDomain, timeoutSeconds: 5 },
    });
    romeo = await connectClient(prosody, "romeo", "pw");
    await romeo.iq(
      xml("iq", { type: "set", to: GW }, xml("query", { xmlns: "jabber:iq:register" }, xml("x", { xmlns: "jabber:x:data", type: "submit" }, xml("field", { var: "username" }, xml("value", {}, "r")), xml("field", { var: "password" }, xml("value", {}, "p"))))),
    );
    await romeo.send(xml("presence", { to: GW }));
    ctx = await waitFor(() => net.sessions.get("romeo@localhost"), { what: "session" });
  }, 60_000);

  afterAll(async () => {
    await romeo?.stop();
    await gateway?.stop();
    await prosody?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("uploads to Prosody and the user receives its URL, which serves the bytes", async () => {
    expect(ctx.media).toBeDefined();
    const bytes = new TextEncoder().encode("a picture of a rose, honestly");
    const url = await ctx.media!.publish(bytes, { mediaType: "image/png", name: "rose.png" });
    expect(url.startsWith(`http://127.0.0.1:${prosody.httpPort}/`)).toBe(true);
    expect(url.endsWith("/rose.png")).toBe(true);
    net.emit("romeo@localhost", { type: "message", chat: { kind: "direct", contact: "nurse" }, from: { nick: "nurse" }, text: plain(""), attachments: [{ url, name: "rose.png" }] });
    const msg = await romeo.waitFor((s) => s.name === "message" && s.getChild("x", "jabber:x:oob") !== undefined);
    expect(msg.getChild("x", "jabber:x:oob")!.getChildText("url")).toBe(url);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
  });

  it("falls back to the gateway's own listener when the service refuses the size", async () => {
    const bytes = new Uint8Array(SIZE_LIMIT + 1).fill(7);
    const url = await ctx.media!.publish(bytes, { mediaType: "application/octet-stream", name: "big.bin" });
    expect(url.startsWith(gateway.httpUrl!)).toBe(true);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
  });
});
