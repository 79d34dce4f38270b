/**
 * Per-line decoding of what an IRC server sends: valid UTF-8 is read as
 * UTF-8, anything else as Latin-1 (the usual legacy IRC encoding), so one
 * client in Latin-1 does not turn into U+FFFD for everyone. What we send is
 * always UTF-8 (wire/client.ts).
 */

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function decodeIrcLine(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
  }
}
