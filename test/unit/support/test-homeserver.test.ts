/**
 * The test homeserver, driven by the real matrix-js-sdk (and by raw HTTP where
 * the SDK hides what the spec requires, e.g. transaction idempotency).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  ClientEvent,
  createClient,
  MatrixError,
  MemoryStore,
  RoomEvent,
  RoomMemberEvent,
  type MatrixClient,
  type MatrixEvent,
} from "matrix-js-sdk";
import { logger as sdkGlobalLogger, type Logger } from "matrix-js-sdk/lib/logger.js";
import { TestHomeserver, type Json } from "../../support/test-homeserver.ts";
import { waitFor } from "../../support/wait.ts";

// The SDK logs through the client's logger and, in places (MatrixRTC), through
// children of its global loglevel logger, which copy the root's method factory.
const noop = () => {};
const root = sdkGlobalLogger as unknown as { methodFactory: () => () => void; rebuild(): void };
root.methodFactory = () => noop;
root.rebuild();
const silentLogger: Logger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, getChild: () => silentLogger };

let hs: TestHomeserver;
let alice: string;
let bob: string;
const clients: MatrixClient[] = [];

beforeEach(async () => {
  hs = await TestHomeserver.start({ serverName: "test.local" });
  alice = hs.addUser({ localpart: "alice", password: "alice-pw", displayname: "Alice" });
  bob = hs.addUser({ localpart: "bob", password: "bob-pw", displayname: "Bob" });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.stopClient();
  await hs.stop();
  // Every endpoint the SDK used in the test is implemented, and none crashed.
  expect(hs.unknownRequests).toEqual([]);
  expect(hs.serverErrors).toEqual([]);
});

interface ClientOptions {
  initialSyncLimit?: number;
  store?: MemoryStore;
}

async function startClient(userId: string, opts: ClientOptions = {}): Promise<MatrixClient> {
  const session = hs.loginAs(userId);
  const client = createClient({ baseUrl: hs.url, ...session, logger: silentLogger, store: opts.store });
  clients.push(client);
  const prepared = new Promise<void>((resolve, reject) => {
    client.on(ClientEvent.Sync, (state) => {
      if (state === "PREPARED") resolve();
      if (state === "ERROR") reject(new Error("initial sync failed"));
    });
  });
  await client.startClient({ initialSyncLimit: opts.initialSyncLimit ?? 20 });
  await prepared;
  return client;
}

/** Resolves with the first event in the room's live timeline (present or arriving) that matches. */
function timelineEvent(client: MatrixClient, roomId: string, predicate: (ev: MatrixEvent) => boolean): Promise<MatrixEvent> {
  return waitFor(() => client.getRoom(roomId)?.getLiveTimeline().getEvents().find(predicate), { what: "timeline event" });
}

async function http(method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; json: Json; headers: Headers }> {
  const res = await fetch(`${hs.url}${path}`, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Json, headers: res.headers };
}

/** A room bob created and alice joined, with one message from bob. */
function sharedRoom(name = "Shared"): string {
  const roomId = hs.createRoom(bob, { name, topic: "things", invite: [alice] });
  hs.asUser(alice).join(roomId);
  hs.asUser(bob).send(roomId, "hello before");
  return roomId;
}

describe("login", () => {
  it("logs in with a password through the SDK and the token works", async () => {
    const anon = createClient({ baseUrl: hs.url, logger: silentLogger });
    const flows = await anon.loginFlows();
    expect(flows.flows.map((f) => f.type)).toContain("m.login.password");
    const res = await anon.loginRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: "alice" }, password: "alice-pw" });
    expect(res.user_id).toBe(alice);
    expect(res.device_id).toMatch(/\S/);
    const who = await http("GET", "/_matrix/client/v3/account/whoami", res.access_token);
    expect(who.json).toMatchObject({ user_id: alice, device_id: res.device_id });
  });

  it("accepts the legacy top-level user field and a full user ID", async () => {
    const res = await http("POST", "/_matrix/client/v3/login", undefined, { type: "m.login.password", user: bob, password: "bob-pw" });
    expect(res.status).toBe(200);
    expect(res.json.user_id).toBe(bob);
  });

  it("refuses a wrong password with 403 M_FORBIDDEN", async () => {
    const anon = createClient({ baseUrl: hs.url, logger: silentLogger });
    const err = await anon
      .loginRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: "alice" }, password: "nope" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MatrixError);
    expect((err as MatrixError).httpStatus).toBe(403);
    expect((err as MatrixError).errcode).toBe("M_FORBIDDEN");
  });

  it("logout invalidates the token: later calls get 401 M_UNKNOWN_TOKEN", async () => {
    const session = hs.loginAs(alice);
    const client = createClient({ baseUrl: hs.url, ...session, logger: silentLogger });
    await client.logout();
    const who = await http("GET", "/_matrix/client/v3/account/whoami", session.accessToken);
    expect(who.status).toBe(401);
    expect(who.json.errcode).toBe("M_UNKNOWN_TOKEN");
    expect((await http("GET", "/_matrix/client/v3/account/whoami")).json.errcode).toBe("M_MISSING_TOKEN");
  });

  it("serves discovery documents", async () => {
    expect((await http("GET", "/.well-known/matrix/client")).json).toEqual({ "m.homeserver": { base_url: hs.url } });
    expect((await http("GET", "/_matrix/client/versions")).json.versions).toContain("v1.11");
  });
});

describe("sync", () => {
  it("initial sync brings a room the user is in, with its name, topic and history", async () => {
    const roomId = sharedRoom("Project");
    const client = await startClient(alice);
    const room = client.getRoom(roomId);
    expect(room?.name).toBe("Project");
    expect(room?.currentState.getStateEvents("m.room.topic", "")?.getContent().topic).toBe("things");
    expect(room?.getMyMembership()).toBe("join");
    expect(room?.getLiveTimeline().getEvents().map((e) => e.getContent().body)).toContain("hello before");
  });

  it("initial sync response has the spec's shape, with invites and leaves", async () => {
    const joined = sharedRoom();
    const invitedTo = hs.createRoom(bob, { name: "Invite", invite: [alice] });
    const kickedFrom = sharedRoom("Kick");
    const token = hs.loginAs(alice).accessToken;
    const first = (await http("GET", "/_matrix/client/v3/sync", token)).json as { next_batch: string; rooms: Record<string, Record<string, Json>> };
    // Without a filter the timeline holds the last 10 events; the room has 11, so it is limited.
    const room = first.rooms.join![joined] as Record<string, Json>;
    expect(Object.keys(room).sort()).toEqual(["account_data", "ephemeral", "state", "summary", "timeline", "unread_notifications"]);
    expect(room.timeline).toMatchObject({ limited: true, prev_batch: expect.any(String) });
    expect((room.timeline as { events: Json[] }).events).toHaveLength(10);
    const filter = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 50 } } }));
    const unlimited = (await http("GET", `/_matrix/client/v3/sync?filter=${filter}`, token)).json as typeof first;
    expect((unlimited.rooms.join![joined] as Record<string, Json>).timeline).toMatchObject({ limited: false });
    expect(((unlimited.rooms.join![joined] as Record<string, { events: Json[] }>).timeline!.events)[0]!.type).toBe("m.room.create");
    expect(room.summary).toMatchObject({ "m.joined_member_count": 2, "m.heroes": [bob] });
    expect(room.unread_notifications).toEqual({ notification_count: 1, highlight_count: 0 });
    const stateTypes = [...((room.state as { events: Json[] }).events), ...((room.timeline as { events: Json[] }).events)].map((e) => e.type);
    expect(stateTypes).toEqual(expect.arrayContaining(["m.room.create", "m.room.member", "m.room.power_levels", "m.room.join_rules", "m.room.name", "m.room.topic"]));
    const invite = first.rooms.invite![invitedTo] as { invite_state: { events: Json[] } };
    expect(invite.invite_state.events.map((e) => e.type)).toEqual(expect.arrayContaining(["m.room.create", "m.room.name", "m.room.member"]));

    hs.asUser(bob).kick(kickedFrom, alice, "bye");
    const next = (await http("GET", `/_matrix/client/v3/sync?since=${first.next_batch}`, token)).json as { rooms: Record<string, Record<string, Json>> };
    const left = next.rooms.leave![kickedFrom] as { timeline: { events: Json[] } };
    expect(left.timeline.events.at(-1)).toMatchObject({ type: "m.room.member", state_key: alice, content: { membership: "leave", reason: "bye" } });
    expect(next.rooms.join![kickedFrom]).toBeUndefined();
  });

  it("long-polls: a sync with a since token returns when an event arrives, or after the timeout", async () => {
    const roomId = sharedRoom();
    const token = hs.loginAs(alice).accessToken;
    const { next_batch } = (await http("GET", "/_matrix/client/v3/sync", token)).json as { next_batch: string };

    const started = Date.now();
    const empty = (await http("GET", `/_matrix/client/v3/sync?since=${next_batch}&timeout=300`, token)).json as { next_batch: string; rooms: { join: Json } };
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(empty.rooms.join).toEqual({});

    const pending = http("GET", `/_matrix/client/v3/sync?since=${empty.next_batch}&timeout=20000`, token);
    // The request must be parked on the server before the event is sent, or this would not test blocking.
    await waitFor(() => (hs.waitingSyncs === 1 ? true : undefined), { what: "the sync to park" });
    const eventId = hs.asUser(bob).send(roomId, "wake up");
    const woke = (await pending).json as { next_batch: string; rooms: { join: Record<string, { timeline: { events: Json[] } }> } };
    expect(woke.rooms.join[roomId]!.timeline.events.map((e) => e.event_id)).toEqual([eventId]);
    expect(Number(woke.next_batch.slice(1))).toBeGreaterThan(Number(empty.next_batch.slice(1)));
  });

  it("a message sent by a simulated user arrives as a live RoomEvent.Timeline event", async () => {
    const roomId = sharedRoom();
    const client = await startClient(alice);
    const arrived = new Promise<MatrixEvent>((resolve) =>
      client.on(RoomEvent.Timeline, (ev, _room, toStartOfTimeline) => {
        if (!toStartOfTimeline && ev.getContent().body === "live one") resolve(ev);
      }),
    );
    const eventId = hs.asUser(bob).send(roomId, "live one");
    const ev = await arrived;
    expect(ev.getId()).toBe(eventId);
    expect(ev.getSender()).toBe(bob);
    expect(ev.getRoomId()).toBe(roomId);
  });

  it("resuming from a saved next_batch token replays nothing old", async () => {
    const roomId = sharedRoom();
    const first = await startClient(alice);
    const savedToken = first.getSyncStateData()?.nextSyncToken ?? first.store.getSyncToken();
    expect(savedToken).toBeTruthy();
    first.stopClient();
    const oldIds = hs.events(roomId).map((e) => e.event_id);
    const newId = hs.asUser(bob).send(roomId, "while you were away");

    // Over HTTP: an incremental sync holds only what came after the token.
    const token = hs.loginAs(alice).accessToken;
    const raw = (await http("GET", `/_matrix/client/v3/sync?since=${savedToken}&timeout=0`, token)).json as { rooms: { join: Record<string, { timeline: { events: Json[] } }> } };
    expect(raw.rooms.join[roomId]!.timeline.events.map((e) => e.event_id)).toEqual([newId]);

    // Through the SDK: a store that hands back the saved token, as a persistent store would.
    class ResumingStore extends MemoryStore {
      override getSavedSyncToken(): Promise<string | null> {
        return Promise.resolve(savedToken!);
      }
    }
    const seen: string[] = [];
    const store = new ResumingStore();
    const second = createClient({ baseUrl: hs.url, ...hs.loginAs(alice), logger: silentLogger, store });
    clients.push(second);
    second.on(RoomEvent.Timeline, (ev) => seen.push(ev.getId()!));
    await second.startClient({ initialSyncLimit: 20 });
    await waitFor(() => (seen.includes(newId) ? true : undefined), { what: "the new message" });
    expect(seen.filter((id) => oldIds.includes(id))).toEqual([]);
  });

  it("backfills older history through /messages", async () => {
    const roomId = sharedRoom();
    for (let i = 0; i < 12; i++) hs.asUser(bob).send(roomId, `m${i}`);
    const client = await startClient(alice, { initialSyncLimit: 3 });
    const room = client.getRoom(roomId)!;
    const bodies = () => room.getLiveTimeline().getEvents().map((e) => e.getContent().body).filter((b) => typeof b === "string");
    expect(bodies()).toEqual(["m9", "m10", "m11"]);
    await client.scrollback(room, 5);
    expect(bodies()).toEqual(["m4", "m5", "m6", "m7", "m8", "m9", "m10", "m11"]);
    await client.scrollback(room, 30);
    expect(bodies()).toEqual(["hello before", ...Array.from({ length: 12 }, (_, i) => `m${i}`)]);
    expect(room.getLiveTimeline().getEvents()[0]!.getType()).toBe("m.room.create");
  });
});

describe("sending", () => {
  it("client.sendMessage lands in the room with the given content, echoed once", async () => {
    const roomId = sharedRoom();
    const client = await startClient(alice);
    const content = { msgtype: "m.text", body: "from the sdk", format: "org.matrix.custom.html", formatted_body: "<b>from</b> the sdk" };
    const { event_id } = await client.sendMessage(roomId, content as never);
    const stored = await hs.waitForEvent(roomId, (e) => e.event_id === event_id);
    expect(stored).toMatchObject({ type: "m.room.message", sender: alice, content });
    const marker = hs.asUser(bob).send(roomId, "after");
    await timelineEvent(client, roomId, (e) => e.getId() === marker);
    // The remote echo matched the local echo through unsigned.transaction_id: one copy only.
    const copies = client.getRoom(roomId)!.getLiveTimeline().getEvents().filter((e) => e.getContent().body === "from the sdk");
    expect(copies.map((e) => e.getId())).toEqual([event_id]);
  });

  it("the same txnId twice over HTTP gives one event (spec: transaction identifiers)", async () => {
    const roomId = sharedRoom();
    const token = hs.loginAs(alice).accessToken;
    const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/txn-1`;
    const a = await http("PUT", path, token, { msgtype: "m.text", body: "once" });
    const b = await http("PUT", path, token, { msgtype: "m.text", body: "once" });
    expect(a.status).toBe(200);
    expect(b.json.event_id).toBe(a.json.event_id);
    expect(hs.events(roomId).filter((e) => (e.content as Json).body === "once")).toHaveLength(1);
    const other = await http("PUT", path.replace("txn-1", "txn-2"), token, { msgtype: "m.text", body: "once" });
    expect(other.json.event_id).not.toBe(a.json.event_id);
    // Another device reusing the txnId is a different transaction.
    const otherDevice = await http("PUT", path, hs.loginAs(alice).accessToken, { msgtype: "m.text", body: "once" });
    expect(otherDevice.json.event_id).not.toBe(a.json.event_id);
  });

  it("redactions: the SDK redacts its own event; a simulated redaction reaches the SDK", async () => {
    const roomId = sharedRoom();
    const client = await startClient(alice);
    const { event_id: mine } = await client.sendTextMessage(roomId, "oops");
    await client.redactEvent(roomId, mine, undefined, { reason: "typo" });
    const redaction = await hs.waitForEvent(roomId, (e) => e.type === "m.room.redaction" && e.redacts === mine);
    expect(redaction.content).toMatchObject({ reason: "typo" });
    expect(hs.events(roomId).find((e) => e.event_id === mine)!.content).toEqual({});

    const theirs = hs.asUser(bob).send(roomId, "secret");
    await timelineEvent(client, roomId, (e) => e.getId() === theirs);
    hs.asUser(bob).redact(roomId, theirs);
    const ev = await waitFor(() => client.getRoom(roomId)!.findEventById(theirs)?.isRedacted() ? client.getRoom(roomId)!.findEventById(theirs) : undefined);
    expect(ev!.getContent()).toEqual({});
    // Redacting someone else's event needs the redact power level (50); alice has 0.
    const err = await client.redactEvent(roomId, hs.asUser(bob).send(roomId, "not yours")).catch((e: unknown) => e);
    expect((err as MatrixError).errcode).toBe("M_FORBIDDEN");
  });

  it("reactions and edits round-trip with their m.relates_to", async () => {
    const roomId = sharedRoom();
    const client = await startClient(alice);
    const target = hs.events(roomId).find((e) => (e.content as Json).body === "hello before")!.event_id as string;
    const { event_id } = await client.sendEvent(roomId, "m.reaction" as never, { "m.relates_to": { rel_type: "m.annotation", event_id: target, key: "👍" } } as never);
    const stored = await hs.waitForEvent(roomId, (e) => e.event_id === event_id);
    expect(stored).toMatchObject({ type: "m.reaction", content: { "m.relates_to": { rel_type: "m.annotation", event_id: target, key: "👍" } } });

    const theirs = hs.asUser(bob).react(roomId, target, "🎉");
    const reaction = await timelineEvent(client, roomId, (e) => e.getId() === theirs);
    expect(reaction.getType()).toBe("m.reaction");
    expect(reaction.getRelation()).toEqual({ rel_type: "m.annotation", event_id: target, key: "🎉" });

    const edit = hs.asUser(bob).edit(roomId, target, "hello after");
    const editEv = await timelineEvent(client, roomId, (e) => e.getId() === edit);
    expect(editEv.getContent()["m.new_content"]).toEqual({ msgtype: "m.text", body: "hello after" });
    expect(editEv.getRelation()).toMatchObject({ rel_type: "m.replace", event_id: target });
  });

  it("rate limiting: the SDK's scheduler retries a 429'd send after Retry-After; direct calls surface M_LIMIT_EXCEEDED", async () => {
    const roomId = sharedRoom();
    const client = await startClient(alice);
    const sends = () => hs.requests.filter((r) => r.method === "PUT" && r.path.includes("/send/")).length;
    hs.limitNext("PUT /send/", { retryAfterMs: 300 });
    const started = Date.now();
    const { event_id } = await client.sendTextMessage(roomId, "too fast");
    // createClient's MatrixScheduler waits for the Retry-After header (whole seconds, so 1 s) and resends.
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(sends()).toBe(2);
    expect(hs.events(roomId).filter((e) => (e.content as Json).body === "too fast").map((e) => e.event_id)).toEqual([event_id]);

    hs.limitNext(/\/state\/m\.room\.topic/, { retryAfterMs: 1500 });
    const err = await client.setRoomTopic(roomId, "limited").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MatrixError);
    expect((err as MatrixError).errcode).toBe("M_LIMIT_EXCEEDED");
    expect((err as MatrixError).httpStatus).toBe(429);
    expect((err as MatrixError).data.retry_after_ms).toBe(1500);
    // The SDK prefers the Retry-After header (seconds, rounded up) over retry_after_ms.
    expect((err as MatrixError).getRetryAfterMs()).toBe(2000);
    expect(hs.state(roomId, "m.room.topic")).toEqual({ topic: "things" });
  });
});

describe("ephemeral data", () => {
  it("typing from a simulated user arrives; the SDK's typing reaches other users' sync", async () => {
    const roomId = sharedRoom();
    const client = await startClient(alice);
    const typing = new Promise<string>((resolve) =>
      client.on(RoomMemberEvent.Typing, (_ev, member) => {
        if (member.typing) resolve(member.userId);
      }),
    );
    hs.asUser(bob).setTyping(roomId, true);
    expect(await typing).toBe(bob);
    hs.asUser(bob).setTyping(roomId, false);
    await waitFor(() => (client.getRoom(roomId)?.getMember(bob)?.typing === false ? true : undefined), { what: "bob stops typing" });

    const bobToken = hs.loginAs(bob).accessToken;
    const { next_batch } = (await http("GET", "/_matrix/client/v3/sync", bobToken)).json as { next_batch: string };
    await client.sendTyping(roomId, true, 10_000);
    const next = (await http("GET", `/_matrix/client/v3/sync?since=${next_batch}&timeout=5000`, bobToken)).json as { rooms: { join: Record<string, { ephemeral: { events: Json[] } }> } };
    expect(next.rooms.join[roomId]!.ephemeral.events).toContainEqual({ type: "m.typing", content: { user_ids: [alice] } });
  });

  it("read receipts go both ways as m.receipt", async () => {
    const roomId = sharedRoom();
    const client = await startClient(alice);
    const hello = hs.events(roomId).find((e) => (e.content as Json).body === "hello before")!.event_id as string;
    const bobToken = hs.loginAs(bob).accessToken;
    const { next_batch } = (await http("GET", "/_matrix/client/v3/sync", bobToken)).json as { next_batch: string };
    await client.sendReadReceipt(client.getRoom(roomId)!.findEventById(hello)!);
    const next = (await http("GET", `/_matrix/client/v3/sync?since=${next_batch}&timeout=5000`, bobToken)).json as { rooms: { join: Record<string, { ephemeral: { events: Json[] } }> } };
    const receipt = next.rooms.join[roomId]!.ephemeral.events.find((e) => e.type === "m.receipt");
    expect(receipt?.content).toMatchObject({ [hello]: { "m.read": { [alice]: { ts: expect.any(Number) } } } });

    const mine = (await client.sendTextMessage(roomId, "read me")).event_id;
    await timelineEvent(client, roomId, (e) => e.getId() === mine && e.status === null);
    hs.asUser(bob).readReceipt(roomId, mine);
    await waitFor(() => (client.getRoom(roomId)!.getEventReadUpTo(bob) === mine ? true : undefined), { what: "bob's receipt" });
  });
});

describe("presence and to-device", () => {
  it("presence of a room-mate reaches the SDK", async () => {
    sharedRoom();
    const client = await startClient(alice);
    hs.asUser(bob).setPresence("online", "around");
    const user = await waitFor(() => (client.getUser(bob)?.presence === "online" ? client.getUser(bob) : undefined), { what: "bob online" });
    expect(user!.presenceStatusMsg).toBe("around");
  });

  it("to-device messages are delivered once, and a repeated txnId is not resent", async () => {
    const client = await startClient(alice);
    const received: string[] = [];
    client.on(ClientEvent.ToDeviceEvent, (ev) => received.push(`${ev.getType()}:${ev.getContent().n}`));
    const bobToken = hs.loginAs(bob).accessToken;
    const body = { messages: { [alice]: { [client.getDeviceId()!]: { n: 1 } } } };
    await http("PUT", "/_matrix/client/v3/sendToDevice/org.example.ping/t1", bobToken, body);
    await http("PUT", "/_matrix/client/v3/sendToDevice/org.example.ping/t1", bobToken, body);
    hs.asUser(bob).sendToDevice("org.example.ping", { [alice]: { "*": { n: 2 } } });
    await waitFor(() => (received.length >= 2 ? true : undefined), { what: "two to-device messages" });
    // A later message arriving proves any duplicate of the first would have been seen by now.
    hs.asUser(bob).sendToDevice("org.example.ping", { [alice]: { "*": { n: 3 } } });
    await waitFor(() => (received.includes("org.example.ping:3") ? true : undefined), { what: "the third message" });
    expect(received).toEqual(["org.example.ping:1", "org.example.ping:2", "org.example.ping:3"]);
  });
});

describe("rooms", () => {
  it("creates a room through the SDK with alias, topic and invite; others join by alias", async () => {
    const client = await startClient(alice);
    const { room_id } = await client.createRoom({ name: "Made", topic: "by sdk", room_alias_name: "made", invite: [bob], is_direct: true });
    expect(hs.state(room_id, "m.room.canonical_alias")).toEqual({ alias: "#made:test.local" });
    expect(hs.state(room_id, "m.room.power_levels")).toMatchObject({ users: { [alice]: 100 } });
    expect(hs.state(room_id, "m.room.member", bob)).toMatchObject({ membership: "invite", is_direct: true });
    expect((await client.getRoomIdForAlias("#made:test.local")).room_id).toBe(room_id);
    const types = hs.events(room_id).map((e) => e.type);
    expect(types.slice(0, 3)).toEqual(["m.room.create", "m.room.member", "m.room.power_levels"]);

    const bobClient = await startClient(bob);
    await bobClient.joinRoom("#made:test.local");
    expect(hs.membership(room_id, bob)).toBe("join");
    await waitFor(() => (client.getRoom(room_id)?.getMember(bob)?.membership === "join" ? true : undefined), { what: "bob's join" });

    await client.setAccountData("m.direct" as never, { [bob]: [room_id] } as never);
    expect(hs.accountData(alice, "m.direct")).toEqual({ [bob]: [room_id] });
    expect((await client.getAccountDataFromServer("m.direct" as never)) as unknown).toEqual({ [bob]: [room_id] });
  });

  it("power levels: state needs the level; the creator's settings reach the client", async () => {
    const roomId = sharedRoom();
    const client = await startClient(alice);
    const err = await client.setRoomName(roomId, "mine now").catch((e: unknown) => e);
    expect((err as MatrixError).errcode).toBe("M_FORBIDDEN");
    expect(hs.state(roomId, "m.room.name")).toEqual({ name: "Shared" });
    hs.asUser(bob).sendState(roomId, "m.room.name", { name: "Renamed" });
    await waitFor(() => (client.getRoom(roomId)?.name === "Renamed" ? true : undefined), { what: "rename" });
    await client.leave(roomId);
    expect(hs.membership(roomId, alice)).toBe("leave");
    await waitFor(() => (client.getRoom(roomId)?.getMyMembership() === "leave" ? true : undefined), { what: "leave" });
  });

  it("members, joined members, single events and context over HTTP", async () => {
    const roomId = sharedRoom();
    const token = hs.loginAs(alice).accessToken;
    const r = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}`;
    const members = (await http("GET", `${r}/members`, token)).json.chunk as Json[];
    expect(members.map((m) => m.state_key).sort()).toEqual([alice, bob].sort());
    expect((await http("GET", `${r}/joined_members`, token)).json.joined).toEqual({
      [alice]: { display_name: "Alice", avatar_url: null },
      [bob]: { display_name: "Bob", avatar_url: null },
    });
    const hello = hs.events(roomId).at(-1)!;
    expect((await http("GET", `${r}/event/${encodeURIComponent(hello.event_id as string)}`, token)).json).toMatchObject({ event_id: hello.event_id, content: { body: "hello before" } });
    const ctx = (await http("GET", `${r}/context/${encodeURIComponent(hello.event_id as string)}?limit=4`, token)).json;
    expect((ctx.event as Json).event_id).toBe(hello.event_id);
    expect((ctx.events_before as Json[]).length).toBe(2);
    // Outsiders can't read the room.
    const carol = hs.addUser({ localpart: "carol", password: "x" });
    expect((await http("GET", `${r}/members`, hs.loginAs(carol).accessToken)).status).toBe(403);
  });

  it("paginates /messages both ways with tokens, omitting end at the edge", async () => {
    const roomId = sharedRoom();
    for (let i = 0; i < 4; i++) hs.asUser(bob).send(roomId, `p${i}`);
    const token = hs.loginAs(alice).accessToken;
    const r = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages`;
    const filter = encodeURIComponent(JSON.stringify({ types: ["m.room.message"] }));
    const back = (await http("GET", `${r}?dir=b&limit=3&filter=${filter}`, token)).json;
    expect((back.chunk as Json[]).map((e) => (e.content as Json).body)).toEqual(["p3", "p2", "p1"]);
    const older = (await http("GET", `${r}?dir=b&limit=3&filter=${filter}&from=${back.end}`, token)).json;
    expect((older.chunk as Json[]).map((e) => (e.content as Json).body)).toEqual(["p0", "hello before"]);
    expect(older.end).toBeUndefined();
    // Tokens sit between events: forward from the second page's start resumes after p0.
    const again = (await http("GET", `${r}?dir=f&limit=10&filter=${filter}&from=${older.start}`, token)).json;
    expect((again.chunk as Json[]).map((e) => (e.content as Json).body)).toEqual(["p1", "p2", "p3"]);
    // Without `from`, dir=f starts at the beginning of the room.
    const forward = (await http("GET", `${r}?dir=f&limit=2&filter=${filter}`, token)).json;
    expect((forward.chunk as Json[]).map((e) => (e.content as Json).body)).toEqual(["hello before", "p0"]);
    const rest = (await http("GET", `${r}?dir=f&limit=10&filter=${filter}&from=${forward.end}`, token)).json;
    expect((rest.chunk as Json[]).map((e) => (e.content as Json).body)).toEqual(["p1", "p2", "p3"]);
    expect(rest.end).toBeUndefined();
  });

  it("encrypted rooms: initial_state m.room.encryption and injected m.room.encrypted events", async () => {
    const roomId = hs.createRoom(bob, { invite: [alice], initial_state: [{ type: "m.room.encryption", content: { algorithm: "m.megolm.v1.aes-sha2" } }] });
    hs.asUser(alice).join(roomId);
    const client = await startClient(alice);
    expect(client.getRoom(roomId)!.hasEncryptionStateEvent()).toBe(true);
    const id = hs.asUser(bob).send(roomId, { algorithm: "m.megolm.v1.aes-sha2", ciphertext: "AwgA", sender_key: "k", session_id: "s", device_id: "D" }, "m.room.encrypted");
    const ev = await timelineEvent(client, roomId, (e) => e.getId() === id);
    expect(ev.getWireType()).toBe("m.room.encrypted");
    expect(ev.getWireContent().ciphertext).toBe("AwgA");
  });

  it("profile: a display name change updates the member event", async () => {
    const roomId = sharedRoom();
    const client = await startClient(alice);
    hs.asUser(bob).setDisplayName("Robert");
    await waitFor(() => (client.getRoom(roomId)?.getMember(bob)?.name === "Robert" ? true : undefined), { what: "new name" });
    await client.setDisplayName("Ally");
    expect((await client.getProfileInfo(alice)).displayname).toBe("Ally");
    expect(hs.state(roomId, "m.room.member", alice)).toMatchObject({ membership: "join", displayname: "Ally" });
  });
});

describe("media", () => {
  it("uploads through the SDK, then downloads the bytes with the access token", async () => {
    const client = await startClient(alice);
    const bytes = Buffer.from([0, 1, 2, 250, 251, 252]);
    const { content_uri } = await client.uploadContent(bytes, { type: "image/png", name: "dot.png" });
    expect(content_uri).toMatch(/^mxc:\/\/test\.local\/\S+$/);
    const url = client.mxcUrlToHttp(content_uri, undefined, undefined, undefined, false, true, true)!;
    expect(url).toContain("/_matrix/client/v1/media/download/test.local/");
    const authed = await fetch(url, { headers: { Authorization: `Bearer ${client.getAccessToken()}` } });
    expect(authed.status).toBe(200);
    expect(authed.headers.get("content-type")).toBe("image/png");
    expect(Buffer.from(await authed.arrayBuffer())).toEqual(bytes);
    const anonymous = await fetch(url);
    expect(anonymous.status).toBe(401);
    const legacy = await fetch(client.mxcUrlToHttp(content_uri, undefined, undefined, undefined, false, true, false)!);
    expect(Buffer.from(await legacy.arrayBuffer())).toEqual(bytes);
    expect(hs.media(content_uri)?.bytes).toEqual(bytes);
  });
});

describe("control API and bookkeeping", () => {
  it("records requests to unimplemented endpoints and answers 404 M_UNRECOGNIZED", async () => {
    const res = await http("GET", "/_matrix/client/v3/no/such/thing");
    expect(res.status).toBe(404);
    expect(res.json.errcode).toBe("M_UNRECOGNIZED");
    expect(hs.unknownRequests).toEqual([{ method: "GET", path: "/_matrix/client/v3/no/such/thing" }]);
    hs.unknownRequests.length = 0; // so afterEach's check holds
  });

  it("simulated users obey the same rules: no sending into rooms they are not in", () => {
    const roomId = sharedRoom();
    const carol = hs.addUser({ localpart: "carol", password: "x" });
    expect(() => hs.asUser(carol).send(roomId, "hi")).toThrow(/M_FORBIDDEN/);
    expect(() => hs.asUser(carol).join(roomId)).toThrow(/not invited/);
    hs.asUser(bob).invite(roomId, carol);
    hs.asUser(carol).join(roomId);
    expect(hs.asUser(carol).send(roomId, "hi")).toMatch(/^\$/);
    hs.asUser(bob).ban(roomId, carol);
    expect(() => hs.asUser(carol).join(roomId)).toThrow(/banned/);
  });

  it("waitForEvent resolves for past and future events and times out otherwise", async () => {
    const roomId = sharedRoom();
    expect((await hs.waitForEvent(roomId, (e) => (e.content as Json).body === "hello before")).sender).toBe(bob);
    const later = hs.waitForEvent(roomId, (e) => (e.content as Json).body === "later");
    const id = hs.asUser(bob).send(roomId, "later");
    expect((await later).event_id).toBe(id);
    await expect(hs.waitForEvent(roomId, () => false, 50)).rejects.toThrow(/no matching event/);
  });
});
