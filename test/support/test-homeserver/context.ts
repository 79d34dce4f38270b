/** What route handlers share: state, authentication and the server's identity. */
import { MatrixHttpError, type Handler, type Reply, type Request, type Router } from "./http.ts";
import type { Rooms } from "./rooms.ts";
import type { Accounts, Session, Stream } from "./store.ts";

export interface Context {
  serverName: string;
  baseUrl: () => string;
  stream: Stream;
  accounts: Accounts;
  rooms: Rooms;
}

/** Client-Server API v3 prefix; v1 endpoints (media, relations) spell theirs out. */
export const C = "/_matrix/client/v3";

/**
 * Access token from `Authorization: Bearer` or the deprecated `access_token`
 * query parameter (spec: "Using access tokens").
 */
export function authenticate(ctx: Context, req: Request): Session {
  const header = req.headers.authorization;
  const token = header?.startsWith("Bearer ") ? header.slice(7) : req.query.get("access_token");
  if (!token) throw new MatrixHttpError(401, "M_MISSING_TOKEN", "Missing access token");
  const session = ctx.accounts.sessions.get(token);
  if (!session) throw new MatrixHttpError(401, "M_UNKNOWN_TOKEN", "Unknown access token", { soft_logout: false });
  return session;
}

export type AuthedHandler = (req: Request, session: Session) => Reply | Promise<Reply>;

/** Registers a route whose handler needs a valid access token. */
export function authed(router: Router, ctx: Context, method: string, path: string, handler: AuthedHandler): void {
  const wrapped: Handler = (req) => handler(req, authenticate(ctx, req));
  router.add(method, path, wrapped);
}

export const ok = (json: unknown = {}): Reply => ({ json });

/** The user in the path must be the caller (account data, filters, presence, typing...). */
export function requireSelf(session: Session, userId: string | undefined): string {
  if (userId !== session.userId) throw new MatrixHttpError(403, "M_FORBIDDEN", "Cannot act for another user");
  return userId;
}
