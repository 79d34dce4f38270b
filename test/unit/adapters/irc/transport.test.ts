import { describe, expect, it } from "vitest";
import { FallbackDecodingTransport } from "../../../../adapters/irc/transport.ts";

type Internals = { incoming_buffer: Buffer; on(event: "line", fn: (line: string) => void): void; onSocketData(data: Buffer): void };

function transport(): { t: Internals; lines: string[] } {
  const t = new (FallbackDecodingTransport as unknown as new (o: unknown) => Internals)({});
  const lines: string[] = [];
  t.on("line", (line) => lines.push(line));
  return { t, lines };
}

describe("FallbackDecodingTransport", () => {
  it("splits reads into lines, across reads, decoding each line on its own", () => {
    const { t, lines } = transport();
    t.onSocketData(Buffer.from("PING :a\r\nPRIVMSG #c :hé"));
    t.onSocketData(Buffer.concat([Buffer.from("llo\r\nPRIVMSG #c :"), Buffer.from([0xe9]), Buffer.from("\r\n")]));
    t.onSocketData(Buffer.from("NOTICE x :y\r\n"));
    expect(lines).toEqual(["PING :a\r\n", "PRIVMSG #c :héllo\r\n", "PRIVMSG #c :é\r\n", "NOTICE x :y\r\n"]);
    expect(t.incoming_buffer.length).toBe(0);
  });

  it("keeps a partial line as a copy, not as a view that holds the whole read", () => {
    const { t, lines } = transport();
    const read = Buffer.from(`${"PRIVMSG #c :x\r\n".repeat(1000)}PART #c`);
    t.onSocketData(read);
    expect(lines).toHaveLength(1000);
    expect(t.incoming_buffer.toString()).toBe("PART #c");
    expect(t.incoming_buffer.buffer.byteLength).toBeLessThan(read.length);
    t.onSocketData(Buffer.from("\r\n"));
    expect(lines.at(-1)).toBe("PART #c\r\n");
  });
});
