/**
 * Fetching a URL on a user's behalf (an attachment to upload to a network)
 * without letting the user reach the gateway's own network (SSRF).
 *
 * - Only http and https.
 * - The host is resolved once; if ANY of its addresses is non-public
 *   (./address.ts) the fetch is refused, so a name cannot mix a public and a
 *   private answer and hope the connection picks the private one.
 * - The connection goes to the vetted addresses themselves: the request's
 *   `lookup` hook answers with them instead of resolving again, so a DNS
 *   rebinding (public on the first answer, 127.0.0.1 on the second) cannot
 *   redirect it. The Host header and the TLS SNI/certificate check still use
 *   the hostname (Node derives them from `hostname`, not from the address).
 * - Redirects are followed by hand, each hop vetted the same way.
 * - The body is capped while streaming, and the whole fetch (DNS, connect,
 *   redirects, body) has one deadline.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import type { LookupAddress } from "node:dns";
import { request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import type { SafeFetch } from "../adapter.ts";
import { EstuaryError, fail } from "../errors.ts";
import { createAllowList, isForbiddenAddress } from "./address.ts";
import { filenameFromContentDisposition, filenameFromUrl } from "./filename.ts";

export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

export interface SafeFetchOptions {
  /** Hostnames, addresses or CIDRs exempted from the address check (tests, a deliberate internal host). */
  allowHosts?: string[];
  /** Body cap in bytes (default 50 MiB); a call may ask for less, never more. */
  maxBytes?: number;
  /** Deadline for the whole fetch in ms (default 30 s); a call may change it. */
  timeoutMs?: number;
  /** Redirects followed before giving up (default 5). */
  maxRedirects?: number;
  /** DNS resolution (default `dns.lookup` with `all: true`); tests map names to addresses. */
  lookup?: Resolver;
  /** Trust roots for https instead of Node's bundled ones (a private CA; tests). */
  ca?: string | Buffer;
}

export const DEFAULT_MAX_BYTES = 50 * 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_REDIRECTS = 5;

/** RFC 9110 §15.4: the redirect statuses that carry a Location to follow. */
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

const defaultResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true });

export function createSafeFetch(options: SafeFetchOptions = {}): SafeFetch {
  const allow = createAllowList(options.allowHosts);
  const cap = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const resolve = options.lookup ?? defaultResolver;
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;

  /** Resolves and vets a hop's host; returns the addresses the connection may use. */
  async function vet(url: URL): Promise<LookupAddress[]> {
    // WHATWG URL already normalised odd IPv4 forms (2130706433, 0x7f.1) to dotted quads.
    const hostname = url.hostname.replace(/^\[|\]$/g, "");
    const literal = isIP(hostname);
    let addresses: LookupAddress[];
    if (literal !== 0) {
      addresses = [{ address: hostname, family: literal }];
    } else {
      try {
        addresses = await resolve(hostname);
      } catch (err) {
        throw fail("not-found", `Cannot fetch: no such host ${hostname}`, { cause: err });
      }
      if (addresses.length === 0) throw fail("not-found", `Cannot fetch: no such host ${hostname}`);
    }
    if (allow.host(hostname)) return addresses;
    for (const { address } of addresses) {
      if (isForbiddenAddress(address) && !allow.address(address)) {
        throw fail("forbidden", `Fetching ${hostname} refused: private address`);
      }
    }
    return addresses;
  }

  return async (input, callOptions = {}) => {
    const maxBytes = Math.min(callOptions.maxBytes ?? cap, cap);
    const timeoutMs = callOptions.timeoutMs ?? options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(fail("timeout", `Fetching the file took longer than ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    try {
      let url = parseHttpUrl(input);
      for (let hop = 0; ; hop++) {
        const addresses = await raceAbort(vet(url), controller.signal);
        const response = await get(url, addresses, controller.signal, options.ca);
        const location = response.headers.location;
        if (REDIRECTS.has(response.statusCode ?? 0) && location !== undefined) {
          response.resume();
          if (hop >= maxRedirects) throw fail("not-acceptable", `Cannot fetch: more than ${maxRedirects} redirects`);
          url = parseHttpUrl(location, url);
          continue;
        }
        const status = response.statusCode ?? 0;
        if (status < 200 || status > 299) {
          response.resume();
          throw statusError(status, url.hostname);
        }
        const data = await readCapped(response, maxBytes, controller.signal);
        const contentType = response.headers["content-type"]?.trim();
        const name = filenameFromContentDisposition(response.headers["content-disposition"]) ?? filenameFromUrl(url);
        return {
          data,
          ...(contentType ? { mediaType: contentType } : {}),
          ...(name !== undefined ? { name } : {}),
        };
      }
    } catch (err) {
      // An abort surfaces as the reason we gave it (timeout), whatever layer noticed first.
      if (controller.signal.aborted && controller.signal.reason instanceof EstuaryError) throw controller.signal.reason;
      throw err;
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  };
}

function parseHttpUrl(text: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(text, base);
  } catch {
    throw fail("bad-request", "Cannot fetch: not a valid URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw fail("bad-request", "Only http and https URLs can be fetched");
  return url;
}

/** One GET to `url`, connected to one of the vetted `addresses` only. */
function get(url: URL, addresses: LookupAddress[], signal: AbortSignal, ca: string | Buffer | undefined): Promise<IncomingMessage> {
  const pinned = (
    _hostname: string,
    opts: { all?: boolean },
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    // Called instead of DNS; `all` is set when Node races address families (autoSelectFamily).
    if (opts.all) callback(null, addresses);
    else callback(null, addresses[0]!.address, addresses[0]!.family);
  };
  const requestOptions: RequestOptions & { ca?: string | Buffer } = {
    method: "GET",
    protocol: url.protocol,
    hostname: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port === "" ? undefined : Number(url.port),
    path: `${url.pathname}${url.search}`,
    headers: { "user-agent": "Estuary-gateway", "accept-encoding": "identity", accept: "*/*" },
    lookup: pinned as RequestOptions["lookup"],
    // A fresh connection per hop: a pooled socket could belong to another name's vetting.
    agent: false,
    signal,
    ...(ca !== undefined ? { ca } : {}),
  };
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(requestOptions, resolve);
    req.on("error", (err) => reject(signal.aborted ? signal.reason : fail("unavailable", `Cannot fetch from ${url.hostname}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err })));
    req.end();
  });
}

async function readCapped(response: IncomingMessage, maxBytes: number, signal: AbortSignal): Promise<Uint8Array> {
  const declared = Number(response.headers["content-length"]);
  const tooLarge = (): EstuaryError => fail("too-large", `The file is larger than ${formatBytes(maxBytes)}`);
  if (Number.isFinite(declared) && declared > maxBytes) {
    response.destroy();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        response.destroy();
        throw tooLarge();
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof EstuaryError) throw err;
    if (signal.aborted) throw signal.reason;
    throw fail("unavailable", "Cannot fetch: the connection broke while downloading", { cause: err });
  }
  // A response cut short by the server (fewer bytes than announced) is not the file.
  if (!response.complete) throw fail("unavailable", "Cannot fetch: the download was cut short");
  return new Uint8Array(Buffer.concat(chunks, size));
}

function statusError(status: number, hostname: string): EstuaryError {
  if (status === 404 || status === 410) return fail("not-found", `Cannot fetch: ${hostname} answered ${status} (not found)`);
  if (status === 401 || status === 403) return fail("forbidden", `Cannot fetch: ${hostname} answered ${status} (access denied)`);
  return fail("unavailable", `Cannot fetch: ${hostname} answered ${status}`);
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${Math.round((n / 1024 / 1024) * 10) / 10} MiB`;
  if (n >= 1024) return `${Math.round((n / 1024) * 10) / 10} KiB`;
  return `${n} bytes`;
}

/** Rejects with the signal's reason as soon as it aborts (DNS lookups take no signal). */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e as Error);
      },
    );
  });
}
