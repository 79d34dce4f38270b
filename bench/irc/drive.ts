/**
 * The measurements, written once against "a gateway with Biboumi's
 * addressing" (`#chan%server@gateway/nick`, XEP-0045 MUC semantics), so the
 * very same code drives Estuary and Biboumi.
 */
import { performance } from "node:perf_hooks";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import type { TestClient } from "../../test/support/xmpp-client.ts";
import type { IrcRemote } from "../../test/support/irc-remote.ts";
import { cpuSeconds } from "./procs.ts";
import { percentile, round, sleep } from "./stats.ts";

export const IRC_SERVER = "127.0.0.1";
const MUC = "http://jabber.org/protocol/muc";
const MUC_USER = "http://jabber.org/protocol/muc#user";

export const roomJid = (channel: string, domain: string): string => `${channel}%${IRC_SERVER}@${domain}`;

const log = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`);
};
export { log };

/**
 * Joins a room (XEP-0045 §7.2) and resolves with the nick the gateway gave
 * us once our own presence (status 110) arrives.
 */
export function joinRoom(c: TestClient, room: string, nick: string, timeoutMs = 30_000): Promise<string> {
  const bare = room.toLowerCase();
  return new Promise<string>((resolve, reject) => {
    const onStanza = (s: Element): void => {
      if (s.name !== "presence") return;
      const from = (s.attrs.from as string | undefined) ?? "";
      if (from.split("/")[0]!.toLowerCase() !== bare) return;
      if (s.attrs.type === "error") {
        done();
        reject(new Error(`join ${room} as ${nick} refused: ${s.toString()}`));
        return;
      }
      const codes = (s.getChild("x", MUC_USER)?.getChildren("status") ?? []).map((x) => x.attrs.code);
      if (s.attrs.type === undefined && codes.includes("110")) {
        done();
        resolve(from.slice(from.indexOf("/") + 1));
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`join ${room} as ${nick}: no self-presence within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      c.xmpp.off("stanza", onStanza);
    };
    c.xmpp.on("stanza", onStanza);
    c.send(xml("presence", { to: `${room}/${nick}` }, xml("x", { xmlns: MUC }))).catch((err: unknown) => {
      done();
      reject(err as Error);
    });
  });
}

/** Calls `on(body, at)` for every groupchat body from `room/<not me>`; returns an unsubscribe. */
function onRoomMessage(c: TestClient, room: string, on: (body: string, from: string, at: number) => void): () => void {
  const bare = room.toLowerCase();
  const handler = (s: Element): void => {
    if (s.name !== "message" || s.attrs.type !== "groupchat") return;
    const at = performance.now();
    const from = (s.attrs.from as string | undefined) ?? "";
    const slash = from.indexOf("/");
    if (slash < 0 || from.slice(0, slash).toLowerCase() !== bare) return;
    const body = s.getChildText("body");
    if (body !== null) on(body, from.slice(slash + 1), at);
  };
  c.xmpp.on("stanza", handler);
  return () => c.xmpp.off("stanza", handler);
}

/** Calls `on(text, at)` for every PRIVMSG to `channel` the IRC person receives. */
function onChannelPrivmsg(r: IrcRemote, channel: string, on: (text: string, at: number) => void): () => void {
  const prefix = ` privmsg ${channel.toLowerCase()} :`;
  const handler = (ev: { line: string; from_server: boolean }): void => {
    if (!ev.from_server) return;
    const at = performance.now();
    const line = ev.line.replace(/\r?\n$/, "").replace(/^@\S+ /, "");
    const i = line.toLowerCase().indexOf(prefix);
    if (i < 0) return;
    on(line.slice(i + prefix.length), at);
  };
  r.client.on("raw", handler);
  return () => r.client.off("raw", handler);
}

export interface Pair {
  /** XMPP user in the room. */
  xmpp: TestClient;
  nick: string;
  room: string;
  /** IRC person in the same channel. */
  irc: IrcRemote;
  channel: string;
  gatewayPid: number;
  /** Other processes whose CPU time is reported per phase (Prosody, InspIRCd). */
  otherPids?: Record<string, number>;
}

export interface Throughput {
  sent: number;
  received: number;
  lost: number;
  /** received / (last arrival − first arrival). */
  msgsPerSec: number;
  /** From first send to last arrival. */
  elapsedMs: number;
  /**
   * The longest pause between two consecutive arrivals: a pipeline that paces (e.g. InspIRCd
   * reading a backlog one buffer per second) shows here as a gap near 1000 ms.
   */
  maxGapMs: number;
  /** XMPP → IRC: messages the gateway answered with an error stanza (XEP-0045 §7.4 / RFC 6120 §8.3). */
  errors?: number;
  /** Gateway CPU time (user+system, all threads) over the phase, per message received. */
  gatewayCpuMsPerMsg: number;
  /** The same for the other processes on the path and for the bench itself: who is busy. */
  cpuMsPerMsg: Record<string, number>;
}

/** Several runs of one direction, summarised by the median run (by msg/s). */
export interface Repeated extends Throughput {
  /** msg/s of every run, in the order they ran. */
  runsMsgsPerSec: number[];
  /** (max − min) / median of runsMsgsPerSec: how far the runs disagree. */
  spread: number;
  /** Messages lost over all runs (`lost` is the median run's). */
  lostAllRuns: number;
}

/**
 * The run with the median msg/s (the lower of the two middle ones for an even count), with
 * every run's rate beside it: one run on a shared machine can be off by a factor of 2 or more.
 */
export function medianRun(runs: Throughput[]): Repeated {
  if (runs.length === 0) throw new Error("medianRun: no runs");
  const sorted = [...runs].sort((a, b) => a.msgsPerSec - b.msgsPerSec);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  const rates = runs.map((r) => r.msgsPerSec);
  return {
    ...median,
    runsMsgsPerSec: rates,
    spread: round((Math.max(...rates) - Math.min(...rates)) / median.msgsPerSec, 2),
    lostAllRuns: runs.reduce((n, r) => n + r.lost, 0),
  };
}

/** CPU seconds so far of the gateway, the other processes and this bench process. */
function cpuSnapshot(p: Pair): Record<string, number> {
  const snap: Record<string, number> = { gateway: cpuSeconds(p.gatewayPid) };
  for (const [name, pid] of Object.entries(p.otherPids ?? {})) snap[name] = cpuSeconds(pid);
  const own = process.cpuUsage();
  snap.bench = (own.user + own.system) / 1e6;
  return snap;
}

function summarize(sent: number, arrivals: number[], t0: number, cpu0: Record<string, number>, p: Pair): Throughput {
  const n = arrivals.length;
  const first = arrivals[0] ?? Number.NaN;
  const last = arrivals[n - 1] ?? Number.NaN;
  const cpu1 = cpuSnapshot(p);
  const perMsg = (k: string): number => round(n > 0 ? ((cpu1[k]! - cpu0[k]!) * 1000) / n : Number.NaN, 3);
  const cpu = cpu1.gateway! - cpu0.gateway!;
  return {
    sent,
    received: n,
    lost: sent - n,
    msgsPerSec: round(n > 1 ? n / ((last - first) / 1000) : Number.NaN, 1),
    elapsedMs: round(last - t0, 1),
    maxGapMs: round(arrivals.reduce((gap, at, i) => (i > 0 ? Math.max(gap, at - arrivals[i - 1]!) : gap), 0), 1),
    gatewayCpuMsPerMsg: round(n > 0 ? (cpu * 1000) / n : Number.NaN, 3),
    cpuMsPerMsg: Object.fromEntries(Object.keys(cpu1).map((k) => [k, perMsg(k)])),
  };
}

/** Waits until `count()` reaches `target`, or nothing new arrived for `quietMs`, or `maxMs` passed. */
async function settle(count: () => number, target: number, quietMs = 3000, maxMs = 60_000): Promise<void> {
  const deadline = performance.now() + maxMs;
  let last = count();
  let lastChange = performance.now();
  while (count() < target && performance.now() < deadline) {
    await sleep(20);
    const now = count();
    if (now !== last) {
      last = now;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > quietMs) return;
  }
}

/**
 * XMPP → IRC: the XMPP user sends `total` groupchat messages, at most `window`
 * not yet reflected back by the gateway (XEP-0045 §7.4 reflection), and the
 * IRC person counts the PRIVMSGs.
 */
export async function xmppToIrc(p: Pair, total: number, window: number, tag: string): Promise<Throughput> {
  const arrivals: number[] = [];
  const stopIrc = onChannelPrivmsg(p.irc, p.channel, (text, at) => {
    if (text.startsWith(`${tag} `)) arrivals.push(at);
  });
  let reflected = 0;
  let errors = 0;
  let firstError: string | undefined;
  const onError = (st: Element): void => {
    if (st.name === "message" && st.attrs.type === "error" && String(st.attrs.id ?? "").startsWith(`${tag}-`)) {
      errors++;
      firstError ??= st.toString().slice(0, 500);
      wake?.();
    }
  };
  p.xmpp.xmpp.on("stanza", onError);
  let wake: (() => void) | undefined;
  const stopX = onRoomMessage(p.xmpp, p.room, (body, from) => {
    if (from === p.nick && body.startsWith(`${tag} `)) {
      reflected++;
      wake?.();
    }
  });
  const cpu0 = cpuSnapshot(p);
  const t0 = performance.now();
  try {
    for (let i = 0; i < total; i++) {
      while (i - reflected - errors >= window) {
        // No reflection for 10 s: the gateway stalled; stop sending, report what arrived.
        const got = await new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(false), 10_000);
          wake = () => {
            clearTimeout(t);
            resolve(true);
          };
        });
        wake = undefined;
        if (!got) {
          log(`${tag}: no reflection for 10 s after ${i} sent, ${reflected} reflected; stopping early`);
          i = total;
          break;
        }
      }
      if (i >= total) break;
      await p.xmpp.send(xml("message", { to: p.room, type: "groupchat", id: `${tag}-${i}` }, xml("body", {}, `${tag} ${i}`)));
    }
    await settle(() => arrivals.length, total);
    if (errors > 0) log(`${tag}: ${errors} error replies, first: ${firstError}`);
    return { ...summarize(total, arrivals, t0, cpu0, p), errors };
  } finally {
    p.xmpp.xmpp.off("stanza", onError);
    stopIrc();
    stopX();
    p.xmpp.inbox.length = 0;
  }
}

/** IRC → XMPP: the IRC person writes `total` PRIVMSGs at once; the XMPP user counts them. */
export async function ircToXmpp(p: Pair, total: number, tag: string): Promise<Throughput> {
  const arrivals: number[] = [];
  const stopX = onRoomMessage(p.xmpp, p.room, (body, _from, at) => {
    if (body.startsWith(`${tag} `)) arrivals.push(at);
  });
  const cpu0 = cpuSnapshot(p);
  const t0 = performance.now();
  try {
    for (let i = 0; i < total; i++) p.irc.send(`PRIVMSG ${p.channel} :${tag} ${i}`);
    await settle(() => arrivals.length, total);
    return summarize(total, arrivals, t0, cpu0, p);
  } finally {
    stopX();
    p.xmpp.inbox.length = 0;
    p.irc.lines.length = 0;
  }
}

export interface Latency {
  count: number;
  lost: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function latencySummary(samples: number[], count: number): Latency {
  return {
    count,
    lost: count - samples.length,
    p50Ms: round(percentile(samples, 50), 2),
    p99Ms: round(percentile(samples, 99), 2),
    maxMs: round(Math.max(...samples), 2),
  };
}

/** One message at a time, XMPP → IRC: send, wait for it on IRC (and for the reflection), next. */
export async function latencyXmppToIrc(p: Pair, count: number, tag: string): Promise<Latency> {
  const samples: number[] = [];
  let waiting: { text: string; resolve: (at: number) => void } | undefined;
  let reflectWait: { text: string; resolve: () => void } | undefined;
  const stopIrc = onChannelPrivmsg(p.irc, p.channel, (text, at) => {
    if (waiting && text === waiting.text) waiting.resolve(at);
  });
  const stopX = onRoomMessage(p.xmpp, p.room, (body, from) => {
    if (reflectWait && from === p.nick && body === reflectWait.text) reflectWait.resolve();
  });
  try {
    for (let i = 0; i < count; i++) {
      const sentAt = performance.now();
      const text = `${tag} ${i} ${sentAt.toFixed(3)}`;
      const arrival = awaitable<number>(text);
      waiting = arrival.waiter;
      const reflection = awaitable<undefined>(text);
      reflectWait = { text, resolve: () => reflection.waiter.resolve(undefined) };
      const arrived = arrival.promise;
      const reflected = reflection.promise;
      await p.xmpp.send(xml("message", { to: p.room, type: "groupchat", id: `${tag}-${i}` }, xml("body", {}, text)));
      const at = await arrived;
      if (at !== undefined) samples.push(at - sentAt);
      await reflected;
    }
    return latencySummary(samples, count);
  } finally {
    stopIrc();
    stopX();
    p.xmpp.inbox.length = 0;
    p.irc.lines.length = 0;
  }
}

/** A promise for the arrival of `text`, resolved by its waiter or undefined after 10 s (counted as not arrived). */
function awaitable<T>(text: string): { promise: Promise<T | undefined>; waiter: { text: string; resolve: (v: T) => void } } {
  let waiter!: { text: string; resolve: (v: T) => void };
  const promise = new Promise<T | undefined>((resolve) => {
    const t = setTimeout(() => resolve(undefined), 10_000);
    waiter = {
      text,
      resolve: (v) => {
        clearTimeout(t);
        resolve(v);
      },
    };
  });
  return { promise, waiter };
}

/** One message at a time, IRC → XMPP. */
export async function latencyIrcToXmpp(p: Pair, count: number, tag: string): Promise<Latency> {
  const samples: number[] = [];
  let waiting: { text: string; resolve: (at: number) => void } | undefined;
  const stopX = onRoomMessage(p.xmpp, p.room, (body, _from, at) => {
    if (waiting && body === waiting.text) waiting.resolve(at);
  });
  try {
    for (let i = 0; i < count; i++) {
      const sentAt = performance.now();
      const text = `${tag} ${i} ${sentAt.toFixed(3)}`;
      const arrival = awaitable<number>(text);
      waiting = arrival.waiter;
      const arrived = arrival.promise;
      p.irc.send(`PRIVMSG ${p.channel} :${text}`);
      const at = await arrived;
      if (at !== undefined) samples.push(at - sentAt);
    }
    return latencySummary(samples, count);
  } finally {
    stopX();
    p.xmpp.inbox.length = 0;
    p.irc.lines.length = 0;
  }
}
