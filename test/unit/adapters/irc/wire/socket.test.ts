import { describe, expect, it } from "vitest";
import { isCertificateError, readLines } from "../../../../../adapters/irc/wire/socket.ts";

function sink(): { lines: string[]; line(t: string): void } {
  const lines: string[] = [];
  return { lines, line: (t) => lines.push(t) };
}

describe("readLines", () => {
  it("splits reads into lines across reads, decoding each line on its own (UTF-8, else Latin-1)", () => {
    const s = sink();
    let held = readLines(undefined, Buffer.from("PING :a\r\nPRIVMSG #c :hé"), s);
    held = readLines(held, Buffer.concat([Buffer.from("llo\r\nPRIVMSG #c :"), Buffer.from([0xe9]), Buffer.from("\r\n")]), s);
    held = readLines(held, Buffer.from("NOTICE x :y\n\r\n"), s);
    expect(s.lines).toEqual(["PING :a", "PRIVMSG #c :héllo", "PRIVMSG #c :é", "NOTICE x :y"]);
    expect(held).toBeUndefined();
  });

  it("keeps a partial line as a copy of its own, not a view that holds the whole read", () => {
    const s = sink();
    const read = Buffer.from(`${"PRIVMSG #c :x\r\n".repeat(1000)}PART #c`);
    const held = readLines(undefined, read, s);
    expect(s.lines).toHaveLength(1000);
    expect(held!.toString()).toBe("PART #c");
    expect(held!.buffer.byteLength).toBe(7);
    readLines(held, Buffer.from("\r\n"), s);
    expect(s.lines.at(-1)).toBe("PART #c");
  });

  it("does not buffer a line that never ends without bound", () => {
    const s = sink();
    expect(readLines(undefined, Buffer.alloc(20_000, 0x61), s)).toBeUndefined();
    expect(s.lines).toEqual([]);
  });
});

describe("isCertificateError", () => {
  it("knows Node's certificate codes and nothing else", () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    expect(isCertificateError(err("UNABLE_TO_VERIFY_LEAF_SIGNATURE"))).toBe(true);
    expect(isCertificateError(err("DEPTH_ZERO_SELF_SIGNED_CERT"))).toBe(true);
    expect(isCertificateError(err("ERR_TLS_CERT_ALTNAME_INVALID"))).toBe(true);
    expect(isCertificateError(err("ECONNREFUSED"))).toBe(false);
    expect(isCertificateError(undefined)).toBe(false);
  });
});
