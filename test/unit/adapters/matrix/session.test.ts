/**
 * The Matrix session against the test homeserver, without XMPP: media both
 * ways, rate limits waited out or refused, bounded queues, first-login sync,
 * invitations both ways.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
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
  vi.restoreAllMocks();
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

type InviteEvent = Extract<LegacyEvent, { type: "invite" }>;

/**
 * Watches the session's HTTP traffic (matrix-js-sdk calls globalThis.fetch):
 * the invite requests with their JSON bodies, and the room IDs each /sync
 * answer lists under rooms.invite.
 */
function tapFetch() {
  const original = globalThis.fetch;
  const invites: { path: string; body: unknown }[] = [];
  const syncedInvites: string[] = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (init?.method === "POST" && url.pathname.endsWith("/invite")) invites.push({ path: url.pathname, body: JSON.parse(String(init.body)) });
    const res = await original(input, init);
    if (url.pathname.endsWith("/sync") && res.ok) {
      const json = (await res.clone().json()) as { rooms?: { invite?: Record<string, unknown> } };
      syncedInvites.push(...Object.keys(json.rooms?.invite ?? {}));
    }
    return res;
  });
  return { invites, syncedInvites };
}

const invitesOf = (events: LegacyEvent[], room: string): InviteEvent[] => events.filter((e): e is InviteEvent => e.type === "invite" && e.room === room);

describe("Matrix invitations", () => {
  it("invite() posts user_id and the reason (only when there is one) to /rooms/{roomId}/invite", async () => {
    const carol = hs.addUser({ localpart: "carol", password: "pw", displayname: "Carol" });
    const dave = hs.addUser({ localpart: "dave", password: "pw", displayname: "Dave" });
    const { session } = await open();
    const tap = tapFetch();
    await session.invite!(roomId, carol, "party planning");
    await session.invite!(roomId, dave, "");
    const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`;
    expect(tap.invites).toEqual([
      { path, body: { user_id: carol, reason: "party planning" } },
      { path, body: { user_id: dave } },
    ]);
    expect(hs.state(roomId, "m.room.member", carol)).toMatchObject({ membership: "invite", reason: "party planning" });
    expect(hs.events(roomId).findLast((e) => e.type === "m.room.member" && e.state_key === carol)?.sender).toBe(me);
    expect(hs.membership(roomId, dave)).toBe("invite");
  });

  it("maps the server's 403 M_FORBIDDEN to forbidden, and a member already in to conflict without asking", async () => {
    const carol = hs.addUser({ localpart: "carol", password: "pw" });
    const mallory = hs.addUser({ localpart: "mallory", password: "pw" });
    const { session } = await open();
    hs.asUser(bob).ban(roomId, mallory, "spam");
    await expect(session.invite!(roomId, mallory)).rejects.toMatchObject({ kind: "forbidden", message: expect.stringMatching(/^Matrix refused the invitation: .*banned/) });
    expect(hs.membership(roomId, mallory)).toBe("ban");

    // Invitations need power level 50 from now on; Romeo has 0.
    hs.asUser(bob).sendState(roomId, "m.room.power_levels", { ...hs.state(roomId, "m.room.power_levels"), invite: 50 });
    await expect(session.invite!(roomId, carol)).rejects.toMatchObject({ kind: "forbidden", message: expect.stringMatching(/power level/) });
    expect(hs.membership(roomId, carol)).toBeUndefined();

    const tap = tapFetch();
    await expect(session.invite!(roomId, bob)).rejects.toMatchObject({ kind: "conflict" });
    expect(tap.invites).toEqual([]);
  });

  it("tells a group-room invitation once, even when a later sync lists it again", async () => {
    const dave = hs.addUser({ localpart: "dave", password: "pw", displayname: "Dave" });
    const secret = hs.createRoom(dave, { name: "Secret", preset: "private_chat" });
    const other = hs.createRoom(dave, { name: "Other", preset: "private_chat" });
    const tap = tapFetch();
    const { events } = await open();
    hs.asUser(dave).invite(secret, me, "a surprise");
    await waitFor(() => invitesOf(events, secret)[0], { what: "the invitation" });
    // Inviting again writes a new m.room.member event, so the next sync lists the room under rooms.invite again.
    hs.asUser(dave).invite(secret, me, "a surprise");
    await waitFor(() => (tap.syncedInvites.filter((r) => r === secret).length >= 2 ? true : undefined), { what: "the invitation synced twice" });
    // A later invitation is a barrier: rooms are listed in creation order, so the repeat was handled before it.
    hs.asUser(dave).invite(other, me);
    await waitFor(() => invitesOf(events, other)[0], { what: "the second invitation" });
    expect(invitesOf(events, secret)).toHaveLength(1);
    expect(hs.membership(secret, me)).toBe("invite");
  });

  it("accepts a direct-chat invitation without telling it, records it in m.direct and carries its messages", async () => {
    const carol = hs.addUser({ localpart: "carol", password: "pw", displayname: "Carol" });
    const { events } = await open();
    const dm = hs.createRoom(carol, { is_direct: true, invite: [me], preset: "trusted_private_chat" });
    await waitFor(() => (hs.membership(dm, me) === "join" ? true : undefined), { what: "the direct chat joined" });
    await waitFor(() => (hs.accountData(me, "m.direct")?.[carol] !== undefined ? true : undefined), { what: "m.direct updated" });
    expect(hs.accountData(me, "m.direct")).toEqual({ [carol]: [dm] });
    hs.asUser(carol).send(dm, "psst");
    const msg = await waitFor(() => events.find((e) => e.type === "message" && JSON.stringify(e.text).includes("psst")), { what: "the direct message" });
    expect(msg).toMatchObject({ chat: { kind: "direct", contact: carol } });
    expect(events.filter((e) => e.type === "invite")).toEqual([]);
  });

  it("names the inviter from invite_state (the room's member event; the Matrix ID when it has no name) and carries the reason", async () => {
    const dave = hs.addUser({ localpart: "dave", password: "pw", displayname: "Dave" });
    const eve = hs.addUser({ localpart: "eve", password: "pw" });
    hs.asUser(eve).setDisplayName("");
    const secret = hs.createRoom(dave, { name: "Secret", preset: "private_chat" });
    // Dave's name in this room differs from his profile's: the stripped state's member event is what counts.
    hs.asUser(dave).sendState(secret, "m.room.member", { membership: "join", displayname: "Dave the Host" }, dave);
    const plainRoom = hs.createRoom(eve, { name: "Plain", preset: "private_chat" });
    const { events } = await open();
    hs.asUser(dave).invite(secret, me, "a surprise");
    hs.asUser(eve).invite(plainRoom, me);
    expect(await waitFor(() => invitesOf(events, secret)[0], { what: "Dave's invitation" })).toEqual({ type: "invite", room: secret, from: { nick: "Dave the Host", contact: dave }, reason: "a surprise" });
    expect(await waitFor(() => invitesOf(events, plainRoom)[0], { what: "Eve's invitation" })).toEqual({ type: "invite", room: plainRoom, from: { nick: eve, contact: eve } });
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
