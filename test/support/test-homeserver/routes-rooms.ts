/**
 * Room endpoints: creation, membership, sending, state, history, ephemeral
 * data, aliases, and /sync with long polling.
 */
import { invalidParam, MatrixHttpError, notFound, obj, str, type Json, type Request, type Router } from "./http.ts";
import { authed, C, ok, requireSelf, type Context } from "./context.ts";
import { clientEvent, matchesFilter, type StoredEvent, type Viewer } from "./events.ts";
import type { CreateRoomOptions, Room } from "./rooms.ts";
import { buildSync, parseSyncToken, syncToken } from "./sync.ts";
import type { Session } from "./store.ts";

const viewerOf = (s: Session): Viewer => ({ userId: s.userId, deviceId: s.deviceId });

function token(req: Request, name: string): number | undefined {
  const raw = req.query.get(name);
  if (raw === null) return undefined;
  const pos = parseSyncToken(raw);
  if (pos === undefined) throw invalidParam(`invalid ${name} token`);
  return pos;
}

/** Reading a room needs current or past membership (history_visibility "shared" is all we model). */
function readableRoom(ctx: Context, roomId: string, userId: string): Room {
  const room = ctx.rooms.get(roomId);
  const m = room.membership(userId);
  if (m !== "join" && m !== "leave" && m !== "ban") throw new MatrixHttpError(403, "M_FORBIDDEN", `${userId} is not in room ${roomId}`);
  return room;
}

export function roomRoutes(router: Router, ctx: Context): void {
  const { rooms } = ctx;
  const R = `${C}/rooms/:roomId`;

  authed(router, ctx, "POST", `${C}/createRoom`, (req, s) => {
    const roomId = rooms.createRoom(s.userId, req.body as CreateRoomOptions);
    const alias = rooms.rooms.get(roomId)!.getState("m.room.canonical_alias")?.content.alias;
    return ok(alias ? { room_id: roomId, room_alias: alias } : { room_id: roomId });
  });

  const join = (req: Request, s: Session) => {
    const room = rooms.resolveRoom(req.params.roomIdOrAlias ?? req.params.roomId!);
    if (room.membership(s.userId) !== "join") rooms.setMembership(s.userId, room.id, s.userId, "join", reasonOf(req.body));
    return ok({ room_id: room.id });
  };
  authed(router, ctx, "POST", `${C}/join/:roomIdOrAlias`, join);
  authed(router, ctx, "POST", `${R}/join`, join);
  authed(router, ctx, "POST", `${R}/leave`, (req, s) => {
    rooms.setMembership(s.userId, req.params.roomId!, s.userId, "leave", reasonOf(req.body));
    return ok();
  });
  authed(router, ctx, "POST", `${R}/forget`, () => ok());
  for (const [action, membership] of [["invite", "invite"], ["kick", "leave"], ["ban", "ban"], ["unban", "leave"]] as const) {
    authed(router, ctx, "POST", `${R}/${action}`, (req, s) => {
      const target = str(req.body, "user_id");
      if (!target) throw new MatrixHttpError(400, "M_BAD_JSON", "user_id is required");
      if (action === "unban" && rooms.get(req.params.roomId!).membership(target) !== "ban") throw new MatrixHttpError(403, "M_FORBIDDEN", `${target} is not banned`);
      rooms.setMembership(s.userId, req.params.roomId!, target, membership, reasonOf(req.body));
      return ok();
    });
  }

  authed(router, ctx, "PUT", `${R}/send/:type/:txnId`, (req, s) => {
    const ev = rooms.sendEvent(s.userId, req.params.roomId!, req.params.type!, req.body, { deviceId: s.deviceId, txnId: req.params.txnId!, key: req.path });
    return ok({ event_id: ev.event_id });
  });
  authed(router, ctx, "PUT", `${R}/redact/:eventId/:txnId`, (req, s) => {
    const ev = rooms.redact(s.userId, req.params.roomId!, req.params.eventId!, str(req.body, "reason"), { deviceId: s.deviceId, txnId: req.params.txnId!, key: req.path });
    return ok({ event_id: ev.event_id });
  });

  // State: the state key may be absent or empty (`/state/m.room.name` and `/state/m.room.name/`).
  const putState = (req: Request, s: Session) =>
    ok({ event_id: rooms.sendState(s.userId, req.params.roomId!, req.params.type!, req.params.stateKey ?? "", req.body).event_id });
  const getState = (req: Request, s: Session) => {
    const room = readableRoom(ctx, req.params.roomId!, s.userId);
    const ev = room.getState(req.params.type!, req.params.stateKey ?? "");
    if (!ev) throw notFound("Event not found");
    return ok(req.query.get("format") === "event" ? clientEvent(ev, viewerOf(s)) : ev.content);
  };
  authed(router, ctx, "PUT", `${R}/state/:type`, putState);
  authed(router, ctx, "PUT", `${R}/state/:type/:stateKey`, putState);
  authed(router, ctx, "GET", `${R}/state/:type`, getState);
  authed(router, ctx, "GET", `${R}/state/:type/:stateKey`, getState);
  authed(router, ctx, "GET", `${R}/state`, (req, s) => ok([...readableRoom(ctx, req.params.roomId!, s.userId).state.values()].map((e) => clientEvent(e, viewerOf(s)))));

  authed(router, ctx, "GET", `${R}/members`, (req, s) => {
    const room = readableRoom(ctx, req.params.roomId!, s.userId);
    const at = token(req, "at");
    const state = at === undefined ? room.state : room.stateBefore(indexAfter(room, at));
    const only = req.query.get("membership");
    const not = req.query.get("not_membership");
    const chunk = [...state.values()]
      .filter((e) => e.type === "m.room.member" && (!only || e.content.membership === only) && (!not || e.content.membership !== not))
      .map((e) => clientEvent(e, viewerOf(s)));
    return ok({ chunk });
  });
  authed(router, ctx, "GET", `${R}/joined_members`, (req, s) => {
    const room = readableRoom(ctx, req.params.roomId!, s.userId);
    const joined: Json = {};
    for (const userId of room.members("join")) {
      const c = room.getState("m.room.member", userId)!.content;
      joined[userId] = { display_name: c.displayname ?? null, avatar_url: c.avatar_url ?? null };
    }
    return ok({ joined });
  });

  // GET /messages: tokens are stream positions; dir=b walks down from `from`, dir=f up from it.
  authed(router, ctx, "GET", `${R}/messages`, (req, s) => {
    const room = readableRoom(ctx, req.params.roomId!, s.userId);
    const dir = req.query.get("dir") ?? "b";
    if (dir !== "b" && dir !== "f") throw invalidParam("dir must be b or f");
    const limit = Math.max(0, Number(req.query.get("limit") ?? 10)) || 10;
    const filter = parseFilter(req.query.get("filter"));
    const from = token(req, "from") ?? (dir === "b" ? ctx.stream.pos : -1);
    const to = token(req, "to");
    const inRange = (e: StoredEvent) => (dir === "b" ? e.pos <= from && (to === undefined || e.pos > to) : e.pos > from && (to === undefined || e.pos <= to));
    const ordered = dir === "b" ? [...room.events].reverse() : room.events;
    const candidates = ordered.filter((e) => inRange(e) && matchesFilter(filter, e));
    const page = candidates.slice(0, limit);
    const last = page.at(-1);
    const response: Json = { start: syncToken(from), chunk: page.map((e) => clientEvent(e, viewerOf(s))) };
    // `end` is omitted when there is nothing further in that direction (spec: GET /messages).
    if (last && candidates.length > page.length) response.end = syncToken(dir === "b" ? last.pos - 1 : last.pos);
    if (filter?.lazy_load_members === true) {
      const senders = new Set(page.map((e) => e.sender));
      response.state = [...senders].flatMap((u) => {
        const m = room.getState("m.room.member", u);
        return m ? [clientEvent(m, viewerOf(s))] : [];
      });
    }
    return ok(response);
  });

  authed(router, ctx, "GET", `${R}/event/:eventId`, (req, s) => ok(clientEvent(findEvent(readableRoom(ctx, req.params.roomId!, s.userId), req.params.eventId!), viewerOf(s))));

  authed(router, ctx, "GET", `${R}/context/:eventId`, (req, s) => {
    const room = readableRoom(ctx, req.params.roomId!, s.userId);
    const ev = findEvent(room, req.params.eventId!);
    const limit = Math.max(0, Number(req.query.get("limit") ?? 10));
    const i = room.events.indexOf(ev);
    const before = room.events.slice(Math.max(0, i - Math.floor(limit / 2)), i).reverse();
    const after = room.events.slice(i + 1, i + 1 + Math.ceil(limit / 2));
    const lastIndex = i + after.length;
    return ok({
      event: clientEvent(ev, viewerOf(s)),
      events_before: before.map((e) => clientEvent(e, viewerOf(s))),
      events_after: after.map((e) => clientEvent(e, viewerOf(s))),
      start: syncToken((before.at(-1) ?? ev).pos - 1),
      end: syncToken((after.at(-1) ?? ev).pos),
      state: [...room.stateBefore(lastIndex + 1).values()].map((e) => clientEvent(e, viewerOf(s))),
    });
  });

  // Relations (spec: GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]).
  const relations = (req: Request, s: Session) => {
    const room = readableRoom(ctx, req.params.roomId!, s.userId);
    findEvent(room, req.params.eventId!);
    const chunk = room.events
      .filter((e) => {
        const rel = obj(e.content["m.relates_to"]);
        return rel?.event_id === req.params.eventId && (!req.params.relType || rel?.rel_type === req.params.relType) && (!req.params.eventType || e.type === req.params.eventType);
      })
      .reverse()
      .map((e) => clientEvent(e, viewerOf(s)));
    return ok({ chunk });
  };
  const V1R = "/_matrix/client/v1/rooms/:roomId/relations/:eventId";
  authed(router, ctx, "GET", V1R, relations);
  authed(router, ctx, "GET", `${V1R}/:relType`, relations);
  authed(router, ctx, "GET", `${V1R}/:relType/:eventType`, relations);

  authed(router, ctx, "PUT", `${R}/typing/:userId`, (req, s) => {
    const typing = req.body.typing === true;
    rooms.setTyping(requireSelf(s, req.params.userId), req.params.roomId!, typing, typeof req.body.timeout === "number" ? req.body.timeout : 30_000);
    return ok();
  });
  authed(router, ctx, "POST", `${R}/receipt/:type/:eventId`, (req, s) => {
    const { roomId, type, eventId } = req.params as { roomId: string; type: string; eventId: string };
    if (type === "m.fully_read") ctx.accounts.setAccountData(s.userId, "m.fully_read", { event_id: eventId }, roomId);
    else if (type === "m.read" || type === "m.read.private") rooms.addReceipt(s.userId, roomId, type, eventId, str(req.body, "thread_id"));
    else throw invalidParam(`unknown receipt type ${type}`);
    return ok();
  });
  authed(router, ctx, "POST", `${R}/read_markers`, (req, s) => {
    const roomId = req.params.roomId!;
    const fullyRead = str(req.body, "m.fully_read");
    if (fullyRead) ctx.accounts.setAccountData(s.userId, "m.fully_read", { event_id: fullyRead }, roomId);
    for (const type of ["m.read", "m.read.private"]) {
      const eventId = str(req.body, type);
      if (eventId) rooms.addReceipt(s.userId, roomId, type, eventId);
    }
    return ok();
  });

  // Room aliases (spec: "Room aliases"); resolving needs no access token on this server.
  router.add("GET", `${C}/directory/room/:alias`, (req) => {
    const roomId = rooms.aliases.get(req.params.alias!);
    if (!roomId) throw notFound(`Room alias ${req.params.alias} not found`);
    return ok({ room_id: roomId, servers: [ctx.serverName] });
  });
  authed(router, ctx, "PUT", `${C}/directory/room/:alias`, (req) => {
    const alias = req.params.alias!;
    const roomId = str(req.body, "room_id");
    if (!roomId) throw new MatrixHttpError(400, "M_BAD_JSON", "room_id is required");
    rooms.get(roomId);
    if (rooms.aliases.has(alias)) throw new MatrixHttpError(409, "M_UNKNOWN", "Room alias already exists");
    rooms.aliases.set(alias, roomId);
    return ok();
  });
  authed(router, ctx, "DELETE", `${C}/directory/room/:alias`, (req) => {
    if (!rooms.aliases.delete(req.params.alias!)) throw notFound("Room alias not found");
    return ok();
  });

  // GET /sync: long-polls until there is news for this user, `timeout` ms pass, or the client goes away.
  authed(router, ctx, "GET", `${C}/sync`, async (req, s) => {
    const since = token(req, "since") ?? null;
    const timeout = Math.max(0, Number(req.query.get("timeout") ?? 0) || 0);
    const filter = ctx.accounts.resolveFilter(s.userId, req.query.get("filter"));
    const fullState = req.query.get("full_state") === "true";
    const setPresence = req.query.get("set_presence");
    // Only a change of presence advances the stream; re-stating it on every poll would wake every poll forever.
    if (setPresence && ctx.accounts.get(s.userId).presence.value.presence !== setPresence) ctx.accounts.setPresence(s.userId, setPresence);
    const deadline = Date.now() + timeout;
    for (;;) {
      const upTo = ctx.stream.pos;
      const { response, hasNews } = buildSync(rooms, ctx.accounts, viewerOf(s), { since, filter, fullState, upTo });
      if (hasNews || since === null || fullState || Date.now() >= deadline || req.signal.aborted) return ok(response);
      await ctx.stream.waitForChange(deadline - Date.now(), req.signal);
    }
  });
}

function reasonOf(body: Json): Json {
  const reason = str(body, "reason");
  return reason === undefined ? {} : { reason };
}

function findEvent(room: Room, eventId: string): StoredEvent {
  const ev = room.events.find((e) => e.event_id === eventId);
  if (!ev) throw notFound("Event not found");
  return ev;
}

function indexAfter(room: Room, pos: number): number {
  const i = room.events.findIndex((e) => e.pos > pos);
  return i === -1 ? room.events.length : i;
}

function parseFilter(raw: string | null): Json | undefined {
  if (!raw) return undefined;
  try {
    return obj(JSON.parse(raw));
  } catch {
    throw new MatrixHttpError(400, "M_NOT_JSON", "filter is not valid JSON");
  }
}
