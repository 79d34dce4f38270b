/**
 * The transport irc-framework connects with: its TCP transport with our
 * per-line decoding (transport.ts), whose TLS sockets are opened here with
 * the admin's CA (servers.<host>.ca) and certificate validation on.
 */
import { isIP } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { FallbackDecodingTransport } from "./transport.ts";

/** Node's codes for a TLS certificate that failed validation (OpenSSL X509_V_ERR_* names, tls.checkServerIdentity). */
export function isCertificateError(err: Error | undefined): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && (/CERT|SIGNATURE|ISSUER/.test(code) || code === "ERR_TLS_CERT_ALTNAME_INVALID");
}

interface NetTransportInternals {
  options: { host: string; port: number; tls?: boolean; rejectUnauthorized?: boolean; ca?: string; ping_interval?: number };
  socket: TLSSocket | null;
  state: number;
  requested_disconnect: boolean;
  incoming_buffer: Buffer;
  disposeSocket(): void;
  _onSocketCreate(options: unknown, socket: TLSSocket): void;
}

/**
 * irc-framework's TCP transport (with our decoding) whose TLS sockets are
 * opened here: its own tls.connect passes no `ca` (irc-framework 4.14,
 * src/transports/net.js), so a server signed by a private CA could only be
 * reached with validation off. Plain TCP stays irc-framework's.
 */
export class TlsCaTransport extends FallbackDecodingTransport {
  connect(): void {
    const self = this as unknown as NetTransportInternals;
    const o = self.options;
    if (!o.tls) {
      (FallbackDecodingTransport.prototype as unknown as { connect(): void }).connect.call(this);
      return;
    }
    self.disposeSocket();
    self.requested_disconnect = false;
    self.incoming_buffer = Buffer.alloc(0);
    self.state = 1; // SOCK_CONNECTING in net.js
    const socket = tlsConnect({
      host: o.host,
      port: o.port,
      // SNI only for names (RFC 6066 §3); for an IP Node checks the IP SAN itself.
      ...(isIP(o.host) ? {} : { servername: o.host }),
      rejectUnauthorized: o.rejectUnauthorized !== false,
      ...(o.ca ? { ca: o.ca } : {}),
    });
    self.socket = socket;
    self._onSocketCreate(o, socket);
  }
}

