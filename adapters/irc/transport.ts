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

const EMPTY = Buffer.alloc(0);

export class FallbackDecodingTransport extends NetTransport {
  onSocketData(data: Buffer): void {
    // Concatenate only when a partial line is waiting (most reads end on a line boundary).
    const held = this.incoming_buffer as Buffer | undefined; // set by connect()
    const buffer = !held || held.length === 0 ? data : Buffer.concat([held, data]);
    let start = 0;
    for (let nl = buffer.indexOf(0x0a); nl !== -1; nl = buffer.indexOf(0x0a, start)) {
      const line = decodeIrcLine(buffer.subarray(start, nl + 1));
      start = nl + 1;
      this.emit("line", line);
    }
    // What is kept between reads is a copy of the partial line (or nothing): a view into the
    // read would keep the whole chunk (up to 64 KB) alive on every idle connection (bench/irc
    // heap snapshots: ~2 KB of array buffers per user).
    this.incoming_buffer = start === buffer.length ? EMPTY : ownCopy(buffer.subarray(start));
  }
}

/** A copy in memory of its own (Buffer.from would take a slice of Node's shared pool, kept alive with it). */
function ownCopy(bytes: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(copy);
  return copy;
}
