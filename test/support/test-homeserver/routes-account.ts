/**
 * Account-level endpoints: discovery, login/logout, profile, presence,
 * account data, filters, push rules, capabilities, devices and the minimal
 * key endpoints a client without E2EE still touches.
 */
import { MatrixHttpError, notFound, obj, str, type Json, type Router } from "./http.ts";
import { authed, C, ok, requireSelf, type Context } from "./context.ts";

/** Spec versions advertised: the SDK requires >= v1.1 and uses authenticated media from v1.11. */
const SPEC_VERSIONS = ["r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12"];

/** A minimal valid push ruleset (spec: "Push Rules"): master rule off, messages notify. */
const PUSH_RULES = {
  global: {
    override: [{ rule_id: ".m.rule.master", default: true, enabled: false, conditions: [], actions: [] }],
    content: [],
    room: [],
    sender: [],
    underride: [
      {
        rule_id: ".m.rule.message",
        default: true,
        enabled: true,
        conditions: [{ kind: "event_match", key: "type", pattern: "m.room.message" }],
        actions: ["notify"],
      },
    ],
  },
};

export function accountRoutes(router: Router, ctx: Context): void {
  const { accounts } = ctx;

  router.add("GET", "/.well-known/matrix/client", () => ok({ "m.homeserver": { base_url: ctx.baseUrl() } }));
  router.add("GET", "/_matrix/client/versions", () => ok({ versions: SPEC_VERSIONS, unstable_features: {} }));
  router.add("GET", `${C}/login`, () => ok({ flows: [{ type: "m.login.password" }] }));

  // POST /login: m.login.password with `identifier: { type: "m.id.user", user }` or the deprecated top-level `user`.
  router.add("POST", `${C}/login`, (req) => {
    if (str(req.body, "type") !== "m.login.password") throw new MatrixHttpError(400, "M_UNKNOWN", "Unknown login type");
    const identifier = obj(req.body.identifier);
    if (identifier && identifier.type !== "m.id.user") throw new MatrixHttpError(400, "M_UNKNOWN", "Only m.id.user identifiers are supported");
    const user = identifier ? str(identifier, "user") : str(req.body, "user");
    const password = str(req.body, "password");
    if (!user || password === undefined) throw new MatrixHttpError(400, "M_BAD_JSON", "user and password are required");
    const session = accounts.login(user, password, str(req.body, "device_id"), str(req.body, "initial_device_display_name"));
    return ok({
      user_id: session.userId,
      access_token: session.accessToken,
      device_id: session.deviceId,
      home_server: ctx.serverName,
      well_known: { "m.homeserver": { base_url: ctx.baseUrl() } },
    });
  });
  authed(router, ctx, "POST", `${C}/logout`, (_req, session) => {
    accounts.logout(session.accessToken);
    return ok();
  });
  authed(router, ctx, "POST", `${C}/logout/all`, (_req, session) => {
    for (const [token, s] of accounts.sessions) if (s.userId === session.userId) accounts.logout(token);
    return ok();
  });
  authed(router, ctx, "GET", `${C}/account/whoami`, (_req, s) => ok({ user_id: s.userId, device_id: s.deviceId, is_guest: false }));

  authed(router, ctx, "GET", `${C}/capabilities`, () =>
    ok({
      capabilities: {
        "m.change_password": { enabled: false },
        "m.room_versions": { default: "10", available: { "10": "stable", "11": "stable" } },
        "m.set_displayname": { enabled: true },
        "m.set_avatar_url": { enabled: true },
        "m.3pid_changes": { enabled: false },
      },
    }),
  );
  authed(router, ctx, "GET", `${C}/pushrules/`, () => ok(PUSH_RULES));
  authed(router, ctx, "GET", `${C}/voip/turnServer`, () => ok({}));
  authed(router, ctx, "GET", `${C}/thirdparty/protocols`, () => ok({}));
  authed(router, ctx, "GET", `${C}/joined_rooms`, (_req, s) =>
    ok({ joined_rooms: [...ctx.rooms.rooms.values()].filter((r) => r.membership(s.userId) === "join").map((r) => r.id) }),
  );

  // Filters (spec: POST /user/{userId}/filter): IDs are indexes into the user's list.
  authed(router, ctx, "POST", `${C}/user/:userId/filter`, (req, s) => {
    const filters = accounts.get(requireSelf(s, req.params.userId)).filters;
    filters.push(req.body);
    return ok({ filter_id: String(filters.length - 1) });
  });
  authed(router, ctx, "GET", `${C}/user/:userId/filter/:filterId`, (req, s) => {
    const filter = accounts.get(requireSelf(s, req.params.userId)).filters[Number(req.params.filterId)];
    if (!filter) throw notFound("No such filter");
    return ok(filter);
  });

  // Account data, global and per room.
  authed(router, ctx, "PUT", `${C}/user/:userId/account_data/:type`, (req, s) => {
    accounts.setAccountData(requireSelf(s, req.params.userId), req.params.type!, req.body);
    return ok();
  });
  authed(router, ctx, "GET", `${C}/user/:userId/account_data/:type`, (req, s) => ok(accounts.getAccountData(requireSelf(s, req.params.userId), req.params.type!)));
  authed(router, ctx, "PUT", `${C}/user/:userId/rooms/:roomId/account_data/:type`, (req, s) => {
    ctx.rooms.get(req.params.roomId!);
    accounts.setAccountData(requireSelf(s, req.params.userId), req.params.type!, req.body, req.params.roomId);
    return ok();
  });
  authed(router, ctx, "GET", `${C}/user/:userId/rooms/:roomId/account_data/:type`, (req, s) =>
    ok(accounts.getAccountData(requireSelf(s, req.params.userId), req.params.type!, req.params.roomId)),
  );

  // Profiles are public on this server (no profile lookup restrictions).
  const profileOf = (userId: string): Json => {
    const account = accounts.users.get(userId);
    if (!account) throw notFound("Profile not found");
    const profile: Json = {};
    if (account.displayname !== undefined) profile.displayname = account.displayname;
    if (account.avatarUrl !== undefined) profile.avatar_url = account.avatarUrl;
    return profile;
  };
  router.add("GET", `${C}/profile/:userId`, (req) => ok(profileOf(req.params.userId!)));
  for (const field of ["displayname", "avatar_url"] as const) {
    router.add("GET", `${C}/profile/:userId/${field}`, (req) => {
      const value = profileOf(req.params.userId!)[field];
      if (value === undefined) throw notFound(`No ${field} set`);
      return ok({ [field]: value });
    });
    authed(router, ctx, "PUT", `${C}/profile/:userId/${field}`, (req, s) => {
      ctx.rooms.setProfile(requireSelf(s, req.params.userId), field, str(req.body, field));
      return ok();
    });
  }

  authed(router, ctx, "PUT", `${C}/presence/:userId/status`, (req, s) => {
    const presence = str(req.body, "presence");
    if (presence !== "online" && presence !== "offline" && presence !== "unavailable") throw new MatrixHttpError(400, "M_INVALID_PARAM", "bad presence");
    accounts.setPresence(requireSelf(s, req.params.userId), presence, str(req.body, "status_msg"));
    return ok();
  });
  authed(router, ctx, "GET", `${C}/presence/:userId/status`, (req) => {
    const { presence, statusMsg, lastActive } = accounts.get(req.params.userId!).presence.value;
    return ok({ presence, last_active_ago: Date.now() - lastActive, currently_active: presence === "online", ...(statusMsg ? { status_msg: statusMsg } : {}) });
  });

  // Devices and keys: stored and echoed so a client's key upload/query cycle works; nothing is verified.
  const deviceJson = (d: { deviceId: string; displayName?: string }) => ({ device_id: d.deviceId, display_name: d.displayName ?? null, last_seen_ts: Date.now() });
  authed(router, ctx, "GET", `${C}/devices`, (_req, s) => ok({ devices: [...accounts.get(s.userId).devices.values()].map(deviceJson) }));
  authed(router, ctx, "GET", `${C}/devices/:deviceId`, (req, s) => {
    const device = accounts.get(s.userId).devices.get(req.params.deviceId!);
    if (!device) throw notFound("Unknown device");
    return ok(deviceJson(device));
  });
  authed(router, ctx, "POST", `${C}/keys/upload`, (req, s) => {
    const device = accounts.get(s.userId).devices.get(s.deviceId)!;
    const deviceKeys = obj(req.body.device_keys);
    if (deviceKeys) device.deviceKeys = deviceKeys;
    for (const keyId of Object.keys(obj(req.body.one_time_keys) ?? {})) {
      const algorithm = keyId.split(":")[0]!;
      device.oneTimeKeyCounts[algorithm] = (device.oneTimeKeyCounts[algorithm] ?? 0) + 1;
    }
    const fallback = Object.keys(obj(req.body.fallback_keys) ?? {}).map((k) => k.split(":")[0]!);
    if (fallback.length > 0) device.fallbackKeyTypes = fallback;
    return ok({ one_time_key_counts: device.oneTimeKeyCounts });
  });
  authed(router, ctx, "POST", `${C}/keys/query`, (req) => {
    const result: Record<string, Json> = {};
    for (const [userId, wanted] of Object.entries(obj(req.body.device_keys) ?? {})) {
      const account = accounts.users.get(userId);
      const perDevice: Json = {};
      for (const device of account?.devices.values() ?? []) {
        const all = !Array.isArray(wanted) || wanted.length === 0;
        if (device.deviceKeys && (all || (wanted as unknown[]).includes(device.deviceId))) perDevice[device.deviceId] = device.deviceKeys;
      }
      result[userId] = perDevice;
    }
    return ok({ device_keys: result, failures: {}, master_keys: {}, self_signing_keys: {}, user_signing_keys: {} });
  });
  authed(router, ctx, "POST", `${C}/keys/claim`, () => ok({ one_time_keys: {}, failures: {} }));
  authed(router, ctx, "GET", `${C}/keys/changes`, () => ok({ changed: [], left: [] }));
  // A server without key backup answers this way (spec: GET /room_keys/version).
  authed(router, ctx, "GET", `${C}/room_keys/version`, () => {
    throw new MatrixHttpError(404, "M_NOT_FOUND", "No current backup version");
  });
  authed(router, ctx, "PUT", `${C}/sendToDevice/:type/:txnId`, (req, s) => {
    accounts.sendToDevice(s.userId, req.params.type!, obj(req.body.messages) ?? {}, `${s.userId}|${s.deviceId}|${req.path}`);
    return ok();
  });
}
