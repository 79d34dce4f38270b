/**
 * What one IRC connection costs in a Node process, by client code: an
 * irc-framework `Client` set up as Estuary used to set it up (one command
 * table shared by every client), Estuary's own client (adapters/irc/wire,
 * set up as adapters/irc/connection.ts does), and a raw `net.Socket` that
 * only registers, joins and answers PING. Each kind runs in its own child process
 * (with Estuary's shipped runtime flags, bench/shipped.ts) against the same
 * loopback InspIRCd; every connection joins a channel of `--room-size`, as in
 * run.ts's memory phase. Prints JSON: heap, external and RSS per connection
 * after a full GC.
 *
 *   node_modules/.bin/node bench/irc/client-cost.ts [--clients 300] [--room-size 10]
 *
 * It isolates the IRC library's share of bench/irc's "KiB per user", which
 * also holds the core's room state, the send queue, loggers and so on.
 */
import { spawnSync } from "node:child_process";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Client } from "irc-framework";
import { startInspircd } from "../../test/support/inspircd.ts";
import { IrcClient } from "../../adapters/irc/wire/client.ts";
import { shippedRuntime } from "../shipped.ts";
import { pool, round, sleep } from "./stats.ts";

const KINDS = ["irc-framework", "lean", "raw-socket"] as const;

/**
 * irc-framework builds a table of ~200 command handlers per Client
 * (src/commands/handler.js); they keep no per-client state, so one table can
 * serve every client (saves ~8 KB each): how Estuary ran it before its own client.
 */
let sharedTable: unknown;
function shareCommandTable(client: Client): void {
  const handler = (client as unknown as { command_handler: { handlers: unknown } }).command_handler;
  sharedTable ??= handler.handlers;
  handler.handlers = sharedTable;
}

/** What adapters/irc/connection.ts asks for besides the client's defaults. */
const EXTRA_CAPS = ["draft/relaymsg", "draft/chathistory", "chathistory"];
type Kind = (typeof KINDS)[number];

interface Cost {
  clients: number;
  heapKiBPerClient: number;
  externalKiBPerClient: number;
  rssKiBPerClient: number;
}

function fullGc(): void {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  gc();
  gc();
}

/** Connects one client the given way; resolves once it is in `channel` (366 RPL_ENDOFNAMES). */
async function connectOne(kind: Kind, host: string, port: number, nick: string, channel: string): Promise<unknown> {
  if (kind === "lean") {
    const c = new IrcClient();
    c.requestCap(EXTRA_CAPS);
    // connection.ts takes every event through one sink object (its IrcConnection); a shared no-op one stands for it.
    c.sink = NOOP_SINK;
    const registered = new Promise<void>((r) => c.once("registered", () => r()));
    c.connect({ host, port, nick, username: nick, gecos: nick, enable_echomessage: true });
    await registered;
    const joined = new Promise<void>((r) => c.once("userlist", () => r()));
    c.write(`JOIN ${channel}`);
    await joined;
    return c;
  }
  if (kind === "irc-framework") {
    const c = new Client();
    shareCommandTable(c);
    for (const event of LISTENED) c.on(event, noop);
    c.connection.on("message", noop);
    const registered = new Promise<void>((r) => c.once("registered", () => r()));
    c.connect({ host, port, nick, username: nick, gecos: nick, auto_reconnect: false });
    await registered;
    const joined = new Promise<void>((r) => c.once("userlist", () => r()));
    c.raw(`JOIN ${channel}`);
    await joined;
    return c;
  }
  const s = connect({ host, port });
  s.setEncoding("utf8");
  await new Promise<void>((done) => {
    let partial = "";
    s.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\r\n");
      partial = lines.pop()!;
      for (const line of lines) {
        const words = line.split(" ");
        if (words[0] === "PING") s.write(`PONG ${words.slice(1).join(" ")}\r\n`);
        else if (words[1] === "001") s.write(`JOIN ${channel}\r\n`);
        else if (words[1] === "366") done();
      }
    });
    s.write(`NICK ${nick}\r\nUSER ${nick} 0 * :${nick}\r\n`);
  });
  return s;
}

const LISTENED = ["socket close", "join", "userlist", "batch end", "channel info", "topic", "topicsetby", "part", "kick", "quit", "nick", "mode", "away", "back", "invite", "displayed host", "privmsg", "action", "notice"];
function noop(): void {}
const NOOP_SINK = { ircEvent: noop };

/** Child: connects `clients` clients of one kind and prints their cost as JSON. */
async function measure(kind: Kind, host: string, port: number, clients: number, roomSize: number): Promise<Cost> {
  const keep: unknown[] = [];
  await sleep(500);
  fullGc();
  const m0 = process.memoryUsage();
  await pool(
    Array.from({ length: clients }, (_, i) => i),
    40,
    async (i) => {
      keep.push(await connectOne(kind, host, port, `${kind[0]}${i}`, `#c${kind[0]}${Math.floor(i / roomSize)}`));
    },
  );
  await sleep(2000);
  fullGc();
  const m1 = process.memoryUsage();
  const per = (a: number, b: number): number => round((b - a) / clients / 1024, 2);
  if (keep.length !== clients) throw new Error(`only ${keep.length} of ${clients} connected`);
  return { clients, heapKiBPerClient: per(m0.heapUsed, m1.heapUsed), externalKiBPerClient: per(m0.external, m1.external), rssKiBPerClient: per(m0.rss, m1.rss) };
}

const { values } = parseArgs({
  options: {
    clients: { type: "string", default: "300" },
    "room-size": { type: "string", default: "10" },
    child: { type: "string" },
    host: { type: "string" },
    port: { type: "string" },
  },
});
const clients = Number(values.clients);
const roomSize = Number(values["room-size"]);

if (values.child) {
  const cost = await measure(values.child as Kind, values.host!, Number(values.port), clients, roomSize);
  process.stdout.write(JSON.stringify(cost));
  process.exit(0);
}

const ircd = await startInspircd({});
const out: Record<string, unknown> = { clients, roomSize, node: process.version };
try {
  const shipped = shippedRuntime();
  for (const kind of KINDS) {
    process.stderr.write(`[client-cost] ${kind}: ${clients} connections\n`);
    const child = spawnSync(
      join(resolve(import.meta.dirname, "../.."), "node_modules/.bin/node"),
      [...shipped.flags, import.meta.filename, "--child", kind, "--host", ircd.host, "--port", String(ircd.port), "--clients", String(clients), "--room-size", String(roomSize)],
      { env: { ...process.env, ...shipped.env }, encoding: "utf8", timeout: 300_000 },
    );
    if (child.status !== 0) throw new Error(`${kind} failed: ${child.stderr}`);
    out[kind] = JSON.parse(child.stdout) as Cost;
  }
} finally {
  await ircd.stop();
}
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
