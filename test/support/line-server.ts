/**
 * A scripted IRC peer for client tests: a TCP server on 127.0.0.1 (free
 * port) that records the lines a client sends and lets the test answer with
 * exact bytes, so registration, SASL and odd server behaviour can be played
 * line by line (test/support/fake-ircd.ts is the full fake server).
 */
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { waitFor } from "./wait.ts";

export class LineServer {
  readonly host = "127.0.0.1";
  port = 0;
  /** Every line the client sent, without CR LF. */
  readonly lines: string[] = [];
  private socket: Socket | undefined;
  private partial = "";
  private readonly server: Server;

  private constructor() {
    this.server = createServer((socket) => {
      this.socket = socket;
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        const parts = (this.partial + chunk).split("\r\n");
        this.partial = parts.pop()!;
        this.lines.push(...parts);
      });
      socket.on("error", () => {});
    });
  }

  static async start(): Promise<LineServer> {
    const s = new LineServer();
    await new Promise<void>((resolve) => s.server.listen({ host: "127.0.0.1", port: 0 }, () => resolve()));
    s.port = (s.server.address() as AddressInfo).port;
    return s;
  }

  /** Sends lines (CR LF added) or raw bytes. */
  send(...lines: (string | Buffer)[]): void {
    for (const l of lines) this.socket!.write(typeof l === "string" ? `${l}\r\n` : l);
  }

  /** Resolves with the first line (from `from` on) matching, waiting for it. */
  async expect(match: RegExp | string, from = 0): Promise<string> {
    return waitFor(() => this.lines.slice(from).find((l) => (typeof match === "string" ? l === match : match.test(l))), { what: `client line ${match}` });
  }

  get connected(): boolean {
    return this.socket !== undefined && !this.socket.destroyed;
  }

  async stop(): Promise<void> {
    this.socket?.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
