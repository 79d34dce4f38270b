/**
 * A person on IRC, played by a plain irc-framework client against the test
 * InspIRCd: records raw server lines so tests can assert what really went
 * over the wire (one line = one IRC command).
 */
import { Client } from "irc-framework";
import type { InspircdHandle } from "./inspircd.ts";
import { waitFor } from "./wait.ts";

export interface IrcRemote {
  client: Client;
  nick: string;
  /** Raw lines from the server (message tags stripped), with arrival time. */
  lines: { line: string; at: number }[];
  waitLine(what: string, pred: (line: string) => boolean, ms?: number): Promise<string>;
  send(line: string): void;
  join(channel: string): Promise<void>;
  quit(): void;
}

export async function ircRemote(server: Pick<InspircdHandle, "host" | "port">, nick: string): Promise<IrcRemote> {
  const client = new Client();
  const lines: { line: string; at: number }[] = [];
  client.on("raw", (ev: { line: string; from_server: boolean }) => {
    if (ev.from_server) lines.push({ line: ev.line.replace(/\r?\n$/, "").replace(/^@\S+ /, ""), at: Date.now() });
  });
  const registered = new Promise<void>((resolve) => client.once("registered", () => resolve()));
  client.connect({ host: server.host, port: server.port, nick, username: nick, gecos: nick, auto_reconnect: false });
  await registered;
  const waitLine = (what: string, pred: (line: string) => boolean, ms = 10_000): Promise<string> =>
    waitFor(() => lines.find((l) => pred(l.line))?.line, { timeout: ms, interval: 10, what });
  return {
    client,
    nick,
    lines,
    waitLine,
    send: (line) => client.raw(line),
    async join(channel) {
      client.raw(`JOIN ${channel}`);
      await waitLine(`${nick} in ${channel}`, (l) => / 366 /.test(l) && l.toLowerCase().includes(channel.toLowerCase()));
    },
    quit: () => client.quit(),
  };
}
