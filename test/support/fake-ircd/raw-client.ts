/**
 * A bare TCP IRC client for tests: writes the lines it is given, parses what
 * comes back, and waits for lines. No library in between, so tests see
 * exactly what a server sends (tags, prefixes, trailing parameters).
 */
import { connect, type Socket } from "node:net";
import { parseLine, type Line } from "./protocol.ts";
import { waitFor } from "../wait.ts";

export interface RawClient {
  /** Every line received, raw and parsed, in order. */
  lines: { raw: string; line: Line }[];
  send(line: string): void;
  /** The first line not yet consumed that matches (consumed from then on: later waits see only newer lines). */
  next(what: string, pred: (l: Line, raw: string) => boolean, ms?: number): Promise<Line>;
  /** Registers with CAP negotiation (when `caps` is given) and resolves on RPL_WELCOME. */
  register(nick: string, caps?: string[]): Promise<void>;
  close(): void;
  socket: Socket;
}

export async function rawClient(port: number, host = "127.0.0.1"): Promise<RawClient> {
  const socket = connect({ host, port });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  socket.setEncoding("utf8");
  const lines: { raw: string; line: Line }[] = [];
  let cursor = 0;
  let buffer = "";
  socket.on("data", (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf("\r\n")) >= 0) {
      const raw = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 2);
      const line = parseLine(raw);
      if (line) lines.push({ raw, line });
    }
  });
  const client: RawClient = {
    lines,
    socket,
    send: (line) => void socket.write(`${line}\r\n`),
    async next(what, pred, ms = 5000) {
      const found = await waitFor(
        () => {
          for (let i = cursor; i < lines.length; i++) {
            const l = lines[i]!;
            if (pred(l.line, l.raw)) {
              cursor = i + 1;
              return l.line;
            }
          }
          return undefined;
        },
        { timeout: ms, interval: 5, what },
      );
      return found;
    },
    async register(nick, caps) {
      if (caps) {
        client.send("CAP LS 302");
        await client.next("CAP LS", (l) => l.command === "CAP" && l.params[1] === "LS");
        if (caps.length > 0) {
          client.send(`CAP REQ :${caps.join(" ")}`);
          await client.next("CAP ACK", (l) => l.command === "CAP" && (l.params[1] === "ACK" || l.params[1] === "NAK"));
        }
      }
      client.send(`NICK ${nick}`);
      client.send(`USER ${nick} 0 * :${nick}`);
      if (caps) client.send("CAP END");
      await client.next("001", (l) => l.command === "001");
    },
    close: () => void socket.destroy(),
  };
  return client;
}
