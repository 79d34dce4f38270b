/**
 * Throughput and latency through a 3-way bridge: a MUC on a loopback Prosody
 * ↔ #bench on a loopback InspIRCd ↔ a third network, chosen with `--third`:
 *
 *   telegram (default): a supergroup on the in-process fake Bot API
 *     (test/support/fake-bot-api.ts), the bridge bot an administrator with
 *     privacy mode off. The Telegram adapter's rate limits are lifted for the
 *     run (Telegram's real ones would cap the group at 20 messages/min); the
 *     output says which limits were used.
 *   matrix: a room on the in-process test homeserver.
 *
 * Alice (XMPP), Bob (IRC) and Carol (on the third network: `fake.userSends`
 * on Telegram, a simulated user on Matrix) each send `--messages` numbered
 * lines, at most `--window` in flight per sender (in flight: not yet seen on
 * both other networks). Every copy that arrives on the two other networks is
 * timed from its send (Telegram copies: the bot's sendMessage as the fake
 * records it). Prints one JSON object: messages/s (bridged copies delivered
 * per second), p50/p99/max latency overall and per path, lost, duplicated and
 * echoed copies (all must be 0); with Telegram, the spacing of the bot's
 * sendMessage calls (the leg delivers one at a time, so it bounds the rate).
 *
 *   node_modules/.bin/node bench/bridge/run.ts [--third telegram|matrix] [--messages 500] [--window 50]
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
import { FakeBotApi } from "../../test/support/fake-bot-api.ts";
import { waitFor } from "../../test/support/wait.ts";
import { createMatrixAdapter } from "../../adapters/matrix/index.ts";
import { createTelegramAdapter } from "../../adapters/telegram/index.ts";
import { bridgesSchema } from "../../core/bridge/config.ts";
import { startBridges } from "../../core/bridge/index.ts";
import { silentLogger } from "../../core/log.ts";

const root = sdkGlobalLogger as unknown as { methodFactory: () => () => void; rebuild(): void };
root.methodFactory = () => () => {};
root.rebuild();

const { values: args } = parseArgs({
  options: {
    third: { type: "string", default: "telegram" },
    messages: { type: "string", default: "500" },
    window: { type: "string", default: "50" },
  },
});
if (args.third !== "telegram" && args.third !== "matrix") throw new Error("--third must be telegram or matrix");
const THIRD: "telegram" | "matrix" = args.third;
const N = Number(args.messages);
const WINDOW = Number(args.window);
const ROOM = "bench@conference.localhost";
const log = (m: string) => process.stderr.write(`${m}\n`);

type Net = "xmpp" | "irc" | "telegram" | "matrix";
type Prefix = "a" | "b" | "c";
const ORIGIN: Record<Prefix, Net> = { a: "xmpp", b: "irc", c: THIRD };
const NETS: Net[] = ["xmpp", "irc", THIRD];
const targetsOf = (p: Prefix): Net[] => NETS.filter((n) => n !== ORIGIN[p]);

/**
 * Lifted for the benchmark: the defaults (adapters/telegram/options.ts) follow
 * Telegram's documented limits, 1/s per chat and 20/min per group, which
 * would measure the limiter rather than the bridge.
 */
const TELEGRAM_RATE_LIMITS = { perChatPerSec: 1000, perGroupPerMin: 100_000, perBotPerSec: 1000 };
const TG_TOKEN = "5550009:AAbench-token";
const TG_GROUP = -1009009;
const TG_CAROL = 4001;
const TG_OWNER = 4002;

const dir = mkdtempSync(join(tmpdir(), "estuary-bench-bridge-"));

// ── The third network ────────────────────────────────────────────────────
let hs: TestHomeserver | undefined;
let fake: FakeBotApi | undefined;
let thirdLeg: Record<string, unknown>;
let thirdNetwork: { domain: string; secret: string; options: Record<string, unknown> };
let thirdReady: () => boolean;
let carolSends: (text: string) => void;
/** Registers `record(text)` for every copy the bridge posts on the third network. */
let watchThird: (record: (text: string) => void) => void;

if (THIRD === "matrix") {
  const h = (hs = await TestHomeserver.start({ serverName: "hs.test" }));
  const carol = h.addUser({ localpart: "carol", password: "pw", displayname: "Carol" });
  const relayUser = h.addUser({ localpart: "benchbridge", password: "pw" });
  const mxRoom = h.createRoom(carol, { room_alias_name: "bench", preset: "public_chat" });
  thirdNetwork = { domain: "matrix.localhost", secret: "s2", options: { syncTimeoutMs: 5000 } };
  thirdLeg = { matrix: { homeserver: h.url, userId: relayUser, accessToken: h.loginAs(relayUser).accessToken, room: "#bench:hs.test" } };
  thirdReady = () => h.membership(mxRoom, relayUser) === "join";
  const asCarol = h.asUser(carol);
  carolSends = (text) => void asCarol.send(mxRoom, text);
  watchThird = (record) =>
    void h
      .waitForEvent(mxRoom, (e) => {
        if (e.type === "m.room.message" && e.sender === relayUser) record(String((e.content as Json).body));
        return false;
      }, 3_600_000)
      .catch(() => {});
} else {
  const f = (fake = await FakeBotApi.start());
  f.addBot({ token: TG_TOKEN, username: "bench_bot", first_name: "Bench bridge", can_read_all_group_messages: true }); // privacy mode off
  f.addUser({ id: TG_OWNER, first_name: "Owner" });
  f.addUser({ id: TG_CAROL, first_name: "Carol" });
  f.addGroup({ id: TG_GROUP, title: "Bench", type: "supergroup", members: [{ userId: TG_OWNER, status: "creator" }, { userId: TG_CAROL, status: "member" }] });
  f.addBotToGroup(TG_TOKEN, TG_GROUP, { status: "administrator", by: TG_OWNER });
  thirdNetwork = {
    domain: "telegram.localhost",
    secret: "s2",
    options: { apiRoot: f.url, pollTimeoutSec: 1, rateLimits: TELEGRAM_RATE_LIMITS, maxQueuePerChat: 100_000 },
  };
  thirdLeg = { telegram: { token: TG_TOKEN, chat: TG_GROUP } };
  // Up once the bot's polling loop has asked for updates.
  thirdReady = () => f.calls.some((c) => c.token === TG_TOKEN && c.method.toLowerCase() === "getupdates");
  carolSends = (text) => void f.userSends(TG_TOKEN, { from: TG_CAROL, chat: TG_GROUP, text });
  watchThird = (record) =>
    void f
      .waitForSent((r) => {
        if (r.token === TG_TOKEN && r.chat_id === TG_GROUP && r.text !== undefined) record(r.text);
        return false;
      }, 3_600_000)
      .catch(() => {});
}

const [prosody, ircd] = await Promise.all([
  startProsody({
    muc: true,
    components: [{ domain: "irc.localhost", secret: "s1" }, { domain: `${THIRD}.localhost`, secret: "s2" }],
    users: [{ username: "alice", password: "pw" }],
  }),
  startInspircd(),
]);
const gateway = await startTestGateway({
  xmppPort: prosody.componentPort,
  outboundBuffer: 100_000,
  networks: {
    irc: { domain: "irc.localhost", secret: "s1", options: { servers: { "127.0.0.1": { port: ircd.port } }, allowedServers: ["127.0.0.1"], flood: { burst: 1000, intervalMs: 0 }, maxQueue: 100_000 } },
    [THIRD]: thirdNetwork,
  },
  adapters: THIRD === "matrix" ? { matrix: createMatrixAdapter } : { telegram: createTelegramAdapter },
  storeUrl: `sqlite:${join(dir, "estuary.sqlite")}`,
});
const alice = await connectClient(prosody, "alice", "pw");
const bob = await ircRemote(ircd, "bob");
let relayInRoom = false;
alice.xmpp.on("stanza", (s: Element) => {
  if (s.name === "presence" && s.attrs.from === `${ROOM}/relay` && s.attrs.type === undefined) relayInRoom = true;
});
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
      ...thirdLeg,
    },
  ]),
};
const bridges = await startBridges(gateway, config, { log: silentLogger() });
await waitFor(
  () => (relayInRoom && thirdReady() && bob.lines.some((l) => / JOIN :?#bench/i.test(l.line) && l.line.startsWith(":benchbridge")) ? true : undefined),
  { timeout: 20_000, what: "the bridge's three legs" },
);
log(`bridge up (XMPP ↔ IRC ↔ ${THIRD})`);

// ── Measurement ──────────────────────────────────────────────────────────
const sentAt = new Map<string, number>();
const arrivals = new Map<string, number[]>(); // `${where}\n${tag}` → latencies
let echoed = 0; // copies that came back to the network they were sent from
/** Per sender: tags sent and not yet seen on both other networks; senders wait on `wake`. */
const open: Record<Prefix, Set<string>> = { a: new Set(), b: new Set(), c: new Set() };
let wake: (() => void)[] = [];
const record = (where: Net, text: string) => {
  const m = /([abc])(\d+)$/.exec(text);
  if (!m) return;
  const prefix = m[1] as Prefix;
  const tag = `${prefix}${m[2]}`;
  const t0 = sentAt.get(tag);
  if (t0 === undefined) return;
  if (ORIGIN[prefix] === where) {
    echoed++;
    return;
  }
  const key = `${where}\n${tag}`;
  const list = arrivals.get(key) ?? [];
  list.push(performance.now() - t0);
  arrivals.set(key, list);
  if (list.length === 1 && targetsOf(prefix).every((w) => arrivals.has(`${w}\n${tag}`))) {
    open[prefix].delete(tag);
    const w = wake;
    wake = [];
    for (const f of w) f();
  }
};
// XMPP: everything in the room but Alice's own reflections (puppets of Bob and Carol, under any nick).
alice.xmpp.on("stanza", (s: Element) => {
  if (s.name === "message" && s.attrs.type === "groupchat" && s.attrs.from !== `${ROOM}/alice`) record("xmpp", s.getChildText("body") ?? "");
});
// IRC: what the bridge's nick says in the channel (Bob does not see his own lines).
bob.client.on("raw", (ev: { line: string; from_server: boolean }) => {
  // (Lines may start with IRCv3 message tags: `@time=… :benchbridge!…`.)
  if (ev.from_server && /^(@\S+ )?:benchbridge!\S* PRIVMSG #bench :/.test(ev.line)) record("irc", ev.line.trimEnd());
});
watchThird((text) => record(THIRD, text));

const expected = 3 * N * 2;
const delivered = () => [...arrivals.values()].reduce((n, l) => n + l.length, 0);
const start = performance.now();
async function sender(prefix: Prefix): Promise<void> {
  for (let i = 0; i < N; i++) {
    const tag = `${prefix}${i}`;
    const deadline = Date.now() + 60_000;
    while (open[prefix].size >= WINDOW) {
      if (Date.now() > deadline) {
        // What was never sent counts as lost below.
        log(`${prefix}: window stuck for 60 s at ${[...open[prefix]].slice(0, 5).join(" ")}…`);
        return;
      }
      await new Promise<void>((r) => {
        wake.push(r);
        setTimeout(r, 1000).unref();
      });
    }
    open[prefix].add(tag);
    sentAt.set(tag, performance.now());
    const text = `msg ${tag}`;
    if (prefix === "a") await alice.send(xml("message", { to: ROOM, type: "groupchat", id: tag }, xml("body", {}, text)));
    else if (prefix === "b") bob.send(`PRIVMSG #bench :${text}`);
    else {
      carolSends(text);
      // Keep the sender loop from monopolising the event loop: the fake and Matrix sends are synchronous.
      await new Promise((r) => setImmediate(r));
    }
  }
}
await Promise.all([sender("a"), sender("b"), sender("c")]);
await waitFor(() => (delivered() >= expected ? true : undefined), { timeout: 120_000, interval: 10 }).catch(() => undefined);
const elapsed = (performance.now() - start) / 1000;
await new Promise((r) => setTimeout(r, 1000)); // late duplicates would show here

const round = (x: number | undefined) => (x === undefined ? null : Math.round(x * 10) / 10);
function percentiles(lat: number[]) {
  const s = [...lat].sort((x, y) => x - y);
  const pct = (p: number) => round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]);
  return { p50: pct(50), p99: pct(99), max: pct(100) };
}
const firstCopies = (pred: (where: string, tag: string) => boolean) =>
  [...arrivals].filter(([k]) => pred(...(k.split("\n") as [string, string]))).map(([, l]) => l[0]!);
const perPath: Record<string, { p50: number | null; p99: number | null; max: number | null }> = {};
for (const p of ["a", "b", "c"] as const) {
  for (const w of targetsOf(p)) perPath[`${ORIGIN[p]}→${w}`] = percentiles(firstCopies((where, tag) => where === w && tag.startsWith(p)));
}
let lost = 0;
for (let i = 0; i < N; i++) for (const p of ["a", "b", "c"] as const) for (const w of targetsOf(p)) if (!arrivals.has(`${w}\n${p}${i}`)) lost++;
const duplicated = [...arrivals.values()].reduce((n, l) => n + l.length - 1, 0);
/**
 * The spacing of the bot's sendMessage calls as the fake received them: the
 * Telegram leg delivers one message at a time (the bridge's per-leg serial
 * queue, then the adapter's per-chat limiter), so this gap bounds its rate.
 */
function telegramSendGaps() {
  const at = fake!.calls.filter((c) => c.token === TG_TOKEN && c.method === "sendMessage").map((c) => c.at);
  const gaps = at.slice(1).map((t, i) => t - at[i]!).sort((x, y) => x - y);
  return { calls: at.length, gapMsP50: gaps[gaps.length >> 1] ?? null, gapMsMean: round(gaps.length ? (at.at(-1)! - at[0]!) / gaps.length : undefined) };
}
console.log(
  JSON.stringify({
    bridge: `XMPP MUC (Prosody) ↔ IRC (InspIRCd) ↔ ${THIRD === "matrix" ? "Matrix (test homeserver)" : "Telegram (fake Bot API)"}`,
    ...(THIRD === "telegram" ? { telegramRateLimits: { ...TELEGRAM_RATE_LIMITS, note: "lifted for the benchmark (defaults: 1/s per chat, 20/min per group, 30/s per bot)" } } : {}),
    messagesPerSender: N,
    senders: 3,
    window: WINDOW,
    copiesExpected: expected,
    copiesDelivered: delivered(),
    seconds: Math.round(elapsed * 100) / 100,
    messagesPerSecond: Math.round((delivered() / elapsed) * 10) / 10,
    latencyMs: percentiles(firstCopies(() => true)),
    latencyMsByPath: perPath,
    lost,
    duplicated,
    echoed,
    ...(THIRD === "telegram" ? { telegramSendMessage: telegramSendGaps() } : {}),
  }),
);
bob.quit();
await alice.stop();
await bridges.stop();
await gateway.stop();
await Promise.all([prosody.stop(), ircd.stop(), hs?.stop(), fake?.stop()]);
rmSync(dir, { recursive: true, force: true });
process.exit(lost === 0 && duplicated === 0 && echoed === 0 ? 0 : 1);
