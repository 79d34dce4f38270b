/**
 * Throughput and latency through a 3-way bridge: a MUC on a loopback Prosody
 * ↔ #bench on a loopback InspIRCd ↔ a room on the in-process test
 * homeserver. Alice (XMPP) and Bob (IRC) each send `--messages` numbered
 * lines, `--window` at most in flight per sender; every copy that arrives on
 * the two other networks is timed from its send. Prints one JSON object:
 * messages/s (bridged copies delivered per second), p50/p99 latency, lost and
 * duplicated copies (both must be 0).
 *
 *   node_modules/.bin/node bench/bridge/run.ts [--messages 500] [--window 50]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js";
import { startProsody } from "../../test/support/prosody.ts";
import { startInspircd } from "../../test/support/inspircd.ts";
import { connectClient } from "../../test/support/xmpp-client.ts";
import { ircRemote } from "../../test/support/irc-remote.ts";
import { startTestGateway } from "../../test/support/gateway.ts";
import { TestHomeserver, type Json } from "../../test/support/test-homeserver.ts";
import { waitFor } from "../../test/support/wait.ts";
import { createMatrixAdapter } from "../../adapters/matrix/index.ts";
import { bridgesSchema } from "../../core/bridge/config.ts";
import { startBridges } from "../../core/bridge/index.ts";
import { silentLogger } from "../../core/log.ts";

const root = sdkGlobalLogger as unknown as { methodFactory: () => () => void; rebuild(): void };
root.methodFactory = () => () => {};
root.rebuild();

const { values: args } = parseArgs({ options: { messages: { type: "string", default: "500" }, window: { type: "string", default: "50" } } });
const N = Number(args.messages);
const WINDOW = Number(args.window);
const ROOM = "bench@conference.localhost";
const log = (m: string) => process.stderr.write(`${m}\n`);

const dir = mkdtempSync(join(tmpdir(), "estuary-bench-bridge-"));
const hs = await TestHomeserver.start({ serverName: "hs.test" });
const carol = hs.addUser({ localpart: "carol", password: "pw", displayname: "Carol" });
const relayUser = hs.addUser({ localpart: "benchbridge", password: "pw" });
const mxRoom = hs.createRoom(carol, { room_alias_name: "bench", preset: "public_chat" });
const [prosody, ircd] = await Promise.all([
  startProsody({ muc: true, components: [{ domain: "irc.localhost", secret: "s1" }, { domain: "matrix.localhost", secret: "s2" }], users: [{ username: "alice", password: "pw" }] }),
  startInspircd(),
]);
const gateway = await startTestGateway({
  xmppPort: prosody.componentPort,
  outboundBuffer: 100_000,
  networks: {
    irc: { domain: "irc.localhost", secret: "s1", options: { servers: { "127.0.0.1": { port: ircd.port } }, allowedServers: ["127.0.0.1"], flood: { burst: 1000, intervalMs: 0 }, maxQueue: 100_000 } },
    matrix: { domain: "matrix.localhost", secret: "s2", options: { syncTimeoutMs: 5000 } },
  },
  adapters: { matrix: createMatrixAdapter },
  storeUrl: `sqlite:${join(dir, "estuary.sqlite")}`,
});
const alice = await connectClient(prosody, "alice", "pw");
const bob = await ircRemote(ircd, "bob");
await alice.send(xml("presence", { to: `${ROOM}/alice` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
await bob.join("#bench");
const config = {
  ...gateway.config,
  bridges: bridgesSchema.parse([
    {
      name: "bench",
      maxQueuedPerLeg: 100_000,
      xmpp: { room: ROOM },
      irc: { server: "127.0.0.1", channel: "#bench", nick: "benchbridge" },
      matrix: { homeserver: hs.url, userId: relayUser, accessToken: hs.loginAs(relayUser).accessToken, room: "#bench:hs.test" },
    },
  ]),
};
const bridges = await startBridges(gateway, config, { log: silentLogger() });
await waitFor(() => (hs.membership(mxRoom, relayUser) === "join" && bob.lines.some((l) => / JOIN :?#bench/i.test(l.line) && l.line.startsWith(":benchbridge")) ? true : undefined), { timeout: 20_000 });
log("bridge up");

const sentAt = new Map<string, number>();
const arrivals = new Map<string, number[]>(); // `${where}\n${tag}` → latencies
const record = (where: string, text: string) => {
  const m = /([ab]\d+)$/.exec(text);
  if (!m) return;
  const t0 = sentAt.get(m[1]!);
  if (t0 === undefined) return;
  const key = `${where}\n${m[1]}`;
  const list = arrivals.get(key) ?? [];
  list.push(performance.now() - t0);
  arrivals.set(key, list);
};
alice.xmpp.on("stanza", (s: Element) => {
  if (s.name === "message" && s.attrs.from === `${ROOM}/bob`) record("xmpp", s.getChildText("body") ?? "");
});
bob.client.on("raw", (ev: { line: string; from_server: boolean }) => {
  if (ev.from_server && ev.line.includes(" PRIVMSG #bench :<alice> ")) record("irc", ev.line.trimEnd());
});
hs.waitForEvent(mxRoom, (e) => {
  if (e.type === "m.room.message" && e.sender === relayUser) record("matrix", String((e.content as Json).body));
  return false;
}, 3_600_000).catch(() => {});

const expected = 2 * N * 2;
const delivered = () => [...arrivals.values()].reduce((n, l) => n + l.length, 0);
const start = performance.now();
async function sender(prefix: "a" | "b"): Promise<void> {
  for (let i = 0; i < N; i++) {
    const tag = `${prefix}${i}`;
    // Window: at most WINDOW of this sender's messages not yet seen on both other sides.
    await waitFor(() => {
      let open = 0;
      for (let j = Math.max(0, i - WINDOW * 2); j < i; j++) {
        const t = `${prefix}${j}`;
        const places = prefix === "a" ? ["irc", "matrix"] : ["xmpp", "matrix"];
        if (!places.every((p) => arrivals.has(`${p}\n${t}`))) open++;
      }
      return open < WINDOW ? true : undefined;
    }, { timeout: 60_000, interval: 2 });
    sentAt.set(tag, performance.now());
    if (prefix === "a") await alice.send(xml("message", { to: ROOM, type: "groupchat", id: tag }, xml("body", {}, `msg ${tag}`)));
    else bob.send(`PRIVMSG #bench :msg ${tag}`);
  }
}
await Promise.all([sender("a"), sender("b")]);
await waitFor(() => (delivered() >= expected ? true : undefined), { timeout: 120_000, interval: 10 }).catch(() => undefined);
const elapsed = (performance.now() - start) / 1000;
await new Promise((r) => setTimeout(r, 1000)); // late duplicates would show here
const lat = [...arrivals.values()].map((l) => l[0]!).sort((x, y) => x - y);
const pct = (p: number) => Math.round((lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] ?? NaN) * 10) / 10;
let lost = 0;
for (let i = 0; i < N; i++) {
  for (const w of ["irc", "matrix"]) if (!arrivals.has(`${w}\na${i}`)) lost++;
  for (const w of ["xmpp", "matrix"]) if (!arrivals.has(`${w}\nb${i}`)) lost++;
}
const duplicated = [...arrivals.values()].reduce((n, l) => n + l.length - 1, 0);
console.log(
  JSON.stringify({
    bridge: "XMPP MUC (Prosody) ↔ IRC (InspIRCd) ↔ Matrix (test homeserver)",
    messagesPerSender: N,
    window: WINDOW,
    copiesExpected: expected,
    copiesDelivered: delivered(),
    seconds: Math.round(elapsed * 100) / 100,
    messagesPerSecond: Math.round((delivered() / elapsed) * 10) / 10,
    latencyMs: { p50: pct(50), p99: pct(99), max: pct(100) },
    lost,
    duplicated,
  }),
);
bob.quit();
await alice.stop();
await bridges.stop();
await gateway.stop();
await Promise.all([prosody.stop(), ircd.stop(), hs.stop()]);
rmSync(dir, { recursive: true, force: true });
process.exit(lost === 0 && duplicated === 0 ? 0 : 1);
