/**
 * The byte side of an IRC connection: opening the TCP or TLS socket, and
 * cutting reads into decoded lines.
 */
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { decodeIrcLine } from "../transport.ts";

export interface SocketOptions {
  host: string;
  port: number;
  tls?: boolean | undefined;
  /** Validate the server's certificate (default true). */
  rejectUnauthorized?: boolean | undefined;
  /** PEM CA certificates trusted instead of Node's bundled roots (servers.<host>.ca). */
  ca?: string | undefined;
}

/**
 * A TCP socket, or a TLS one validated against `ca` when given (Node's roots
 * otherwise). Its ready event is `connect` for TCP, `secureConnect` for TLS.
 */
export function openSocket(o: SocketOptions): { socket: Socket; readyEvent: "connect" | "secureConnect" } {
  if (!o.tls) return { socket: netConnect({ host: o.host, port: o.port }), readyEvent: "connect" };
  const socket = tlsConnect({
    host: o.host,
    port: o.port,
    // SNI only for names (RFC 6066 §3); for an IP Node checks the IP SAN itself.
    ...(isIP(o.host) ? {} : { servername: o.host }),
    rejectUnauthorized: o.rejectUnauthorized !== false,
    ...(o.ca ? { ca: o.ca } : {}),
  });
  return { socket, readyEvent: "secureConnect" };
}

/** Node's codes for a TLS certificate that failed validation (OpenSSL X509_V_ERR_* names, tls.checkServerIdentity). */
export function isCertificateError(err: Error | undefined): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && (/CERT|SIGNATURE|ISSUER/.test(code) || code === "ERR_TLS_CERT_ALTNAME_INVALID");
}

const MAX_LINE = 16 * 1024;

export interface LineSink {
  line(text: string): void;
}

/**
 * Feeds every complete line of `held` + `data` to `sink` (without CR LF),
 * each decoded on its own (decodeIrcLine: UTF-8, else Latin-1), and returns
 * what is left of a partial line. That rest is a copy of its own: a view
 * would keep the whole read (up to 64 KB) alive on every idle connection.
 */
export function readLines(held: Buffer | undefined, data: Buffer, sink: LineSink): Buffer | undefined {
  const buffer = held === undefined ? data : Buffer.concat([held, data]);
  let start = 0;
  for (let nl = buffer.indexOf(0x0a); nl !== -1; nl = buffer.indexOf(0x0a, start)) {
    let end = nl;
    if (end > start && buffer[end - 1] === 0x0d) end--;
    const from = start;
    start = nl + 1;
    if (end > from) sink.line(decodeIrcLine(buffer.subarray(from, end)));
  }
  if (start === buffer.length) return undefined;
  // No line is this long (IRCv3 message-tags: 8191 bytes of tags + 512): a server that never ends one is not buffered without bound.
  if (buffer.length - start > MAX_LINE) return undefined;
  // Buffer.from would take a slice of Node's shared pool and keep it alive.
  const rest = Buffer.allocUnsafeSlow(buffer.length - start);
  buffer.copy(rest, 0, start);
  return rest;
}
