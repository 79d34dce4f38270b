/**
 * irc-framework's TCP/TLS transport with per-line decoding: valid UTF-8 is
 * read as UTF-8, anything else as Latin-1 (the usual legacy IRC encoding).
 * irc-framework's own `encoding` option decodes every line with one
 * iconv-lite codec, which turns invalid UTF-8 into U+FFFD and would also
 * encode what we send, so we decode here and keep sending UTF-8.
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

interface NetTransportLike {
  incoming_buffer: Buffer;
  emit(event: string, ...args: unknown[]): boolean;
}

// Deep import: the transport class is not exported from the package index (src/index.js).
const NetTransport = require("irc-framework/src/transports/net") as new (options: unknown) => NetTransportLike;

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function decodeIrcLine(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return Buffer.from(bytes).toString("latin1");
  }
}

export class FallbackDecodingTransport extends NetTransport {
  onSocketData(data: Buffer): void {
    let buffer = Buffer.concat([this.incoming_buffer, data]);
    for (let nl = buffer.indexOf(0x0a); nl !== -1; nl = buffer.indexOf(0x0a)) {
      const line = decodeIrcLine(buffer.subarray(0, nl + 1));
      buffer = buffer.subarray(nl + 1);
      this.emit("line", line);
    }
    this.incoming_buffer = buffer;
  }
}
