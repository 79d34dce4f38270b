/**
 * Registration: homeserver discovery and one password login. The password
 * is used once and never stored; the access token is (as a secret).
 */
import type { FormField } from "../../core/adapter.ts";
import { fail } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { api, makeClient, Method, toEstuaryError } from "./api.ts";
import { isServerName } from "./ids.ts";

export const registrationFields: FormField[] = [
  {
    var: "homeserver",
    label: "Homeserver",
    type: "text-single",
    required: true,
    desc: "Server name (example.org, found through .well-known) or URL (https://matrix.example.org)",
  },
  { var: "user", label: "Matrix user", type: "text-single", desc: "@alice:example.org or alice" },
  { var: "password", label: "Password", type: "text-private", secret: true, desc: "Used once to log in; not stored" },
  { var: "accessToken", label: "Access token", type: "text-private", secret: true, desc: "Instead of a password" },
];

export interface MatrixCredentials {
  homeserver: string;
  userId: string;
  deviceId: string;
  accessToken: string;
}

async function wellKnown(base: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${base}/.well-known/matrix/client`, { signal: AbortSignal.timeout(10_000), redirect: "follow" });
    if (!res.ok) return undefined;
    const json = (await res.json()) as { "m.homeserver"?: { base_url?: unknown } };
    const url = json["m.homeserver"]?.base_url;
    return typeof url === "string" && /^https?:\/\//.test(url) ? url.replace(/\/+$/, "") : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Spec "Server Discovery" (well-known URI): a server name is looked up at
 * https://name/.well-known/matrix/client; a URL is tried the same way and
 * otherwise taken as the base URL. The result must answer /versions.
 */
export async function discoverHomeserver(input: string): Promise<string> {
  const trimmed = input.trim();
  let base: string;
  if (/^https?:\/\//i.test(trimmed)) {
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch {
      throw fail("not-acceptable", "The homeserver URL is not valid");
    }
    base = url.origin + url.pathname.replace(/\/+$/, "");
  } else if (isServerName(trimmed)) {
    base = `https://${trimmed}`;
  } else {
    throw fail("not-acceptable", "The homeserver must be a server name or an http(s) URL");
  }
  const found = (await wellKnown(base)) ?? base;
  try {
    const res = await fetch(`${found}/_matrix/client/versions`, { signal: AbortSignal.timeout(10_000) });
    const json = (await res.json()) as { versions?: unknown };
    if (!res.ok || !Array.isArray(json.versions)) throw new Error(`HTTP ${res.status}`);
  } catch {
    throw fail("not-acceptable", `No Matrix homeserver answers at ${found}`);
  }
  return found;
}

export async function validateRegistration(values: Record<string, string>, log: Logger): Promise<MatrixCredentials> {
  const homeserver = await discoverHomeserver(values.homeserver ?? "");
  const user = (values.user ?? "").trim();
  const password = values.password ?? "";
  const token = (values.accessToken ?? "").trim();
  if (password !== "") {
    if (user === "") throw fail("not-acceptable", "Give your Matrix user (@alice:example.org or alice) with the password");
    const anon = makeClient({ baseUrl: homeserver, log });
    try {
      // Spec "Login": m.login.password with an m.id.user identifier takes a localpart or a full user ID.
      const res = await anon.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user },
        password,
        initial_device_display_name: "Estuary XMPP gateway",
      });
      return { homeserver, userId: res.user_id, deviceId: res.device_id, accessToken: res.access_token };
    } catch (err) {
      const e = toEstuaryError(err, "Login failed");
      throw e.kind === "not-allowed" || e.kind === "not-acceptable" ? fail("not-acceptable", e.message) : e;
    }
  }
  if (token !== "") {
    const client = makeClient({ baseUrl: homeserver, accessToken: token, log });
    try {
      const who = await api<{ user_id: string; device_id?: string }>(client, Method.Get, "/account/whoami");
      if (user !== "" && user.startsWith("@") && user !== who.user_id) throw fail("not-acceptable", `That access token belongs to ${who.user_id}`);
      return { homeserver, userId: who.user_id, deviceId: who.device_id ?? "", accessToken: token };
    } catch (err) {
      const e = toEstuaryError(err, "The access token was refused");
      throw e.kind === "not-allowed" ? fail("not-acceptable", e.message) : e;
    }
  }
  throw fail("not-acceptable", "Give a password or an access token");
}
