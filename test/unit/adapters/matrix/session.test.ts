/**
 * The Matrix session against the test homeserver, without XMPP: media both
 * ways, rate limits waited out or refused, bounded queues, first-login sync.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js";
import type { AdapterSession, SessionContext } from "../../../../core/adapter.ts";
import type { LegacyEvent } from "../../../../core/model.ts";
import { plain } from "../../../../core/format/model.ts";
import { silentLogger } from "../../../../core/log.ts";
import { createMatrixAdapter } from "../../../../adapters/matrix/index.ts";
import { KeyedQueues } from "../../../../adapters/matrix/api.ts";
import { TestHomeserver, type Json } from "../../../support/test-homeserver.ts";
import { waitFor } from "../../../support/wait.ts";

const root = sdkGlobalLogger as unknown as { methodFactory: () => () => void; rebuild(): void };
root.methodFactory = () => () => {};
root.rebuild();

let hs: TestHomeserver;
let me: string;
let bob: string;
let roomId: string;
let sessions: AdapterSession[];

beforeEach(async () => {
  hs = await TestHomeserver.start({ serverName: "hs.test" });
  me = hs.addUser({ localpart: "romeo", password: "pw", displayname: "Romeo" });
  bob = hs.addUser({ localpart: "bob", password: "pw", displayname: "Bob" });
  roomId = hs.createRoom(bob, { name: "R", invite: [me] });
  hs.asUser(me).join(roomId);
  sessions = [];
});

afterEach(async () => {
  await Promise.all(sessions.map((s) => s.close()));
  await hs.stop();
  expect(hs.unknownRequests).toEqual([]);
  expect(hs.serverErrors).toEqual([]);
});

function memoryStore(): SessionContext["store"] {
  const m = new Map<string, unknown>();
  return {
    get: async <T,>(k: string) => m.get(k) as T | undefined,
    set: async (k, v) => void m.set(k, v),
    delete: async (k) => void m.delete(k),
  };
}

async function open(extra: Partial<SessionContext> = {}, options: Record<string, unknown> = {}) {
  const adapter = createMatrixAdapter({ retryWindowMs: 2500, syncTimeoutMs: 2000, ...options }, { log: silentLogger() });
  const registration = await adapter.validateRegistration({ homeserver: hs.url, user: "romeo", password: "pw" });
  expect(registration).toEqual({ homeserver: hs.url, userId: me, deviceId: expect.any(String), accessToken: expect.any(String) });
  const events: LegacyEvent[] = [];
  const ctx: SessionContext = {
    user: "romeo@localhost",
    registration,
    emit: (e) => events.push(e),
    log: silentLogger(),
    store: memoryStore(),
    signal: new AbortController().signal,
    fetch: async () => ({ data: new Uint8Array([1, 2, 3]), mediaType: "image/png", name: "dot.png" }),
    ...extra,
  };
  const session = await adapter.openSession(ctx);
  sessions.push(session);
  await waitFor(() => events.find((e) => e.type === "status" && e.state === "online"), { what: "online" });
  return { session, events, ctx };
}

describe("Matrix session", () => {
  it("does not replay history at the first login", async () => {
    hs.asUser(bob).send(roomId, "old news");
    const { events } = await open();
    hs.asUser(bob).send(roomId, "fresh");
    await waitFor(() => events.find((e) => e.type === "message" && JSON.stringify(e.text).includes("fresh")), { what: "the fresh message" });
    const texts = events.filter((e) => e.type === "message").map((e) => (e.type === "message" ? JSON.stringify(e.text) : ""));
    expect(texts.some((t) => t.includes("old news"))).toBe(false);
  });

  it("publishes incoming media through ctx.media and uploads outgoing attachments", async () => {
    const published: { data: Uint8Array; meta: unknown }[] = [];
    const { session, events } = await open({
      media: { publish: async (data, meta) => (published.push({ data, meta }), "https://gw.example/m/1") },
    });
    const upload = await fetch(`${hs.url}/_matrix/media/v3/upload?filename=cat.png`, {
      method: "POST",
      headers: { Authorization: `Bearer ${hs.loginAs(bob).accessToken}`, "Content-Type": "image/png" },
      body: new Uint8Array([9, 8, 7]),
    });
    const { content_uri } = (await upload.json()) as { content_uri: string };
    hs.asUser(bob).send(roomId, { msgtype: "m.image", body: "cat.png", url: content_uri, info: { mimetype: "image/png" } });
    const msg = await waitFor(() => events.find((e) => e.type === "message" && e.attachments !== undefined), { what: "the image" });
    expect(msg.type === "message" && msg.attachments).toEqual([{ url: "https://gw.example/m/1", name: "cat.png", mediaType: "image/png", size: 3 }]);
    expect([...published[0]!.data]).toEqual([9, 8, 7]);

    const sent = await session.sendMessage({ kind: "room", room: roomId }, { text: plain("https://files.example/dot.png"), attachments: [{ url: "https://files.example/dot.png" }] });
    const ev = await hs.waitForEvent(roomId, (e) => e.event_id === sent.id);
    expect(ev.content).toMatchObject({ msgtype: "m.image", body: "dot.png", info: { mimetype: "image/png", size: 3 } });
    expect([...hs.media((ev.content as Json).url as string)!.bytes]).toEqual([1, 2, 3]);
  });

  it("waits out a short rate limit and delivers once; a long one rejects rate-limited", async () => {
    const { session } = await open();
    hs.limitNext("PUT /send/", { retryAfterMs: 200 });
    const ok = await session.sendMessage({ kind: "room", room: roomId }, { text: plain("patient") });
    expect(hs.events(roomId).filter((e) => (e.content as Json).body === "patient").map((e) => e.event_id)).toEqual([ok.id]);
    hs.limitNext("PUT /send/", { retryAfterMs: 10_000 });
    await expect(session.sendMessage({ kind: "room", room: roomId }, { text: plain("hasty") })).rejects.toMatchObject({ kind: "rate-limited" });
    expect(hs.events(roomId).some((e) => (e.content as Json).body === "hasty")).toBe(false);
  });

  it("refuses sends into a room that is not a Matrix room we can reach", async () => {
    const { session } = await open();
    await expect(session.sendMessage({ kind: "room", room: "#nowhere:hs.test" }, { text: plain("x") })).rejects.toMatchObject({ kind: "not-found" });
  });
});

describe("bounded queues", () => {
  it("run jobs of one key in order and refuse beyond the bound with queue-full", async () => {
    const q = new KeyedQueues(2);
    const order: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a = q.run("r", async () => {
      await gate;
      order.push(1);
    });
    const b = q.run("r", async () => void order.push(2));
    await expect(q.run("r", async () => {})).rejects.toMatchObject({ kind: "queue-full" });
    await q.run("other", async () => void order.push(0));
    release();
    await Promise.all([a, b]);
    expect(order).toEqual([0, 1, 2]);
    expect(q.size("r")).toBe(0);
  });
});
