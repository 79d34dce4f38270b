import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Bridge } from "../../../../core/bridge/bridge.ts";
import type { LegName } from "../../../../core/bridge/config.ts";
import { bridgeMetrics } from "../../../../core/bridge/metrics.ts";
import type { Delivery, Leg } from "../../../../core/bridge/types.ts";
import { fail } from "../../../../core/errors.ts";
import { plain, toPlain } from "../../../../core/format/model.ts";
import { silentLogger } from "../../../../core/log.ts";
import { openStore, type Store } from "../../../../core/store/index.ts";
import { waitFor } from "../../../support/wait.ts";

/** A leg that records deliveries and links the ids it "assigns", like the real legs do. */
class FakeLeg implements Leg {
  readonly name: LegName;
  readonly got: Delivery[] = [];
  behaviour: "ok" | "fail" | "hang" = "ok";
  #n = 0;
  bridge!: Bridge;
  constructor(name: LegName) {
    this.name = name;
  }
  async start() {}
  async stop() {}
  async deliver(d: Delivery): Promise<void> {
    if (this.behaviour === "fail") throw fail("unavailable", `${this.name} is down`);
    if (this.behaviour === "hang") return new Promise(() => {});
    this.got.push(d);
    if (d.type === "message") await this.bridge.ids(this.name).link(`${this.name}-${++this.#n}`, d.canon);
  }
  texts(): string[] {
    return this.got.map((d) => (d.type === "notice" ? `notice:${toPlain(d.text)}` : "text" in d ? `${d.type}:${toPlain(d.text)}` : d.type));
  }
}

/** A bridge on an in-memory store with three recording legs (delivery bound 5, timeout 500 ms). */
async function threeLegBridge(name: string): Promise<{ store: Store; bridge: Bridge; xmpp: FakeLeg; irc: FakeLeg; matrix: FakeLeg }> {
  const store = await openStore({ url: "memory:" });
  const bridge = new Bridge({ name, store, log: silentLogger(), maxQueuedPerLeg: 5, deliveryTimeoutMs: 500 });
  const [xmpp, irc, matrix] = [new FakeLeg("xmpp"), new FakeLeg("irc"), new FakeLeg("matrix")];
  for (const l of [xmpp, irc, matrix]) {
    l.bridge = bridge;
    bridge.add(l);
  }
  return { store, bridge, xmpp, irc, matrix };
}

describe("the bridge core", () => {
  let store: Store;
  let bridge: Bridge;
  let xmpp: FakeLeg, irc: FakeLeg, matrix: FakeLeg;

  beforeEach(async () => {
    ({ store, bridge, xmpp, irc, matrix } = await threeLegBridge("t"));
  });
  afterEach(async () => {
    await bridge.stop();
    await store.close();
  });

  const say = (leg: LegName, id: string, text: string, nick = "alice") =>
    bridge.inbound(leg, { type: "message", ids: [id], from: { nick }, text: plain(text) });

  it("relays a message once to every other leg, never back to its origin", async () => {
    say("xmpp", "x1", "hello");
    await waitFor(() => (irc.got.length === 1 && matrix.got.length === 1 ? true : undefined));
    expect(xmpp.got).toEqual([]);
    expect(irc.got[0]).toMatchObject({ type: "message", origin: "xmpp", from: { nick: "alice" } });
    const a = irc.got[0] as Extract<Delivery, { type: "message" }>;
    const b = matrix.got[0] as Extract<Delivery, { type: "message" }>;
    expect(a.canon).toBe(b.canon);
  });

  it("drops a replayed event (same id), in memory and from the persistent id map", async () => {
    say("irc", "dup", "once");
    say("irc", "dup", "once");
    await waitFor(() => (xmpp.got.length >= 1 ? true : undefined));
    // A fresh bridge on the same store (a restart) still knows the id.
    const again = new Bridge({ name: "t", store, log: silentLogger(), maxQueuedPerLeg: 5, deliveryTimeoutMs: 500 });
    const probe = new FakeLeg("matrix");
    probe.bridge = again;
    again.add(probe);
    again.add(new FakeLeg("irc"));
    again.inbound("irc", { type: "message", ids: ["dup"], from: { nick: "bob" }, text: plain("once") });
    again.inbound("irc", { type: "message", ids: ["fresh"], from: { nick: "bob" }, text: plain("new") });
    say("irc", "next", "after");
    await waitFor(() => (xmpp.got.length === 2 && probe.got.length === 1 ? true : undefined));
    expect(xmpp.texts()).toEqual(["message:once", "message:after"]);
    // In order per origin: had the replay gone through, it would have come before "new".
    expect(probe.texts()).toEqual(["message:new"]);
  });

  it("a reaction from a leg that received the message reaches the origin and the others, by canonical id; an edit there is not the author's", async () => {
    say("xmpp", "x1", "helo");
    await waitFor(() => (matrix.got.length === 1 ? true : undefined));
    const canon = (matrix.got[0] as Extract<Delivery, { type: "message" }>).canon;
    bridge.inbound("matrix", { type: "reactions", id: "matrix-1", from: { nick: "bob", contact: "@bob:hs" }, emojis: ["👍"] });
    await waitFor(() => (xmpp.got.length === 1 && irc.got.length === 2 ? true : undefined));
    expect(xmpp.got[0]).toMatchObject({ type: "reactions", canon, origin: "matrix", emojis: ["👍"] });
    expect(irc.got[1]).toMatchObject({ type: "reactions", canon });
    expect(matrix.got).toHaveLength(1);
    // On Matrix the relayed copy is the relay account's: an edit of it by anyone else is not alice's edit.
    bridge.inbound("matrix", { type: "edit", id: "matrix-1", from: { nick: "alice", contact: "@alice:hs" }, text: plain("hello") });
    // An edit of something the bridge never relayed goes nowhere.
    bridge.inbound("matrix", { type: "edit", id: "unknown", from: { nick: "x" }, text: plain("?") });
    say("matrix", "m-last", "sentinel");
    await waitFor(() => (xmpp.got.length === 2 ? true : undefined));
    expect(xmpp.texts()).toEqual(["reactions", "message:sentinel"]);
  });

  it("replies carry the canonical id and the original sender's name", async () => {
    say("irc", "i1", "question", "bob");
    await waitFor(() => (matrix.got.length === 1 ? true : undefined));
    bridge.inbound("matrix", { type: "message", ids: ["m9"], from: { nick: "carol" }, text: plain("answer"), replyTo: "matrix-1" });
    await waitFor(() => (irc.got.length === 1 ? true : undefined));
    const canon = (matrix.got[0] as Extract<Delivery, { type: "message" }>).canon;
    expect(irc.got[0]).toMatchObject({ type: "message", replyTo: { canon, nick: "bob" } });
  });

  it("a failing leg is reported to the origin once per window and does not hold up the others", async () => {
    irc.behaviour = "fail";
    const before = (await bridgeMetrics.undelivered.get()).values.find((v) => v.labels.from === "xmpp" && v.labels.to === "irc")?.value ?? 0;
    say("xmpp", "x1", "one");
    say("xmpp", "x2", "two");
    await waitFor(() => (matrix.got.length === 2 && xmpp.got.length === 1 ? true : undefined));
    expect(xmpp.texts()).toEqual(["notice:[bridge] A message could not be delivered to irc: irc is down"]);
    await waitFor(async () => {
      const after = (await bridgeMetrics.undelivered.get()).values.find((v) => v.labels.from === "xmpp" && v.labels.to === "irc")?.value ?? 0;
      return after - before === 2 ? true : undefined;
    });
  });

  it("a hanging leg times out per delivery; its bounded queue refuses the excess; the others flow", async () => {
    irc.behaviour = "hang";
    for (let i = 0; i < 8; i++) say("xmpp", `h${i}`, `m${i}`);
    await waitFor(() => (matrix.got.length === 8 ? true : undefined));
    // queue-full (5 waiting max) and timeouts are both reported: one notice so far.
    await waitFor(() => (xmpp.got.some((d) => d.type === "notice") ? true : undefined), { timeout: 2000 });
    expect(xmpp.got.filter((d) => d.type === "notice")).toHaveLength(1);
  });

  it("relays an edit only from the message's author, and an XMPP retraction only from its author", async () => {
    say("xmpp", "x1", "hello", "alice");
    await waitFor(() => (matrix.got.length === 1 ? true : undefined));
    // Any occupant can send XEP-0308/XEP-0424 stanzas naming alice's message; the relay would apply them everywhere.
    bridge.inbound("xmpp", { type: "edit", id: "x1", from: { nick: "mallory" }, text: plain("pwned") });
    bridge.inbound("xmpp", { type: "retract", id: "x1", from: { nick: "mallory" } });
    bridge.inbound("xmpp", { type: "edit", id: "x1", from: { nick: "alice" }, text: plain("hello!") });
    bridge.inbound("xmpp", { type: "retract", id: "x1", from: { nick: "alice" } });
    // Events of one origin are handled in order: once alice's arrived, mallory's would have too.
    await waitFor(() => (matrix.got.length === 3 && irc.got.length === 3 ? true : undefined));
    expect(matrix.texts()).toEqual(["message:hello", "edit:hello!", "retract"]);
    expect(irc.texts()).toEqual(["message:hello", "edit:hello!", "retract"]);
  });

  it("on a network leg the author is the account, not the display name; the network's own deletions pass", async () => {
    bridge.inbound("matrix", { type: "message", ids: ["$m1"], from: { nick: "bob", contact: "@bob:hs" }, text: plain("original") });
    await waitFor(() => (xmpp.got.length === 1 ? true : undefined));
    bridge.inbound("matrix", { type: "edit", id: "$m1", from: { nick: "bob", contact: "@eve:hs" }, text: plain("forged") });
    bridge.inbound("matrix", { type: "edit", id: "$m1", from: { nick: "Bob B.", contact: "@bob:hs" }, text: plain("fixed") });
    // A moderator's redaction: the homeserver checked the power level already.
    bridge.inbound("matrix", { type: "retract", id: "$m1", from: { nick: "mod", contact: "@mod:hs" } });
    await waitFor(() => (xmpp.got.length === 3 ? true : undefined));
    expect(xmpp.texts()).toEqual(["message:original", "edit:fixed", "retract"]);
  });
});

describe("the bridge core: moderation", () => {
  let store: Store;
  let bridge: Bridge;
  let xmpp: FakeLeg, irc: FakeLeg, matrix: FakeLeg;

  beforeEach(async () => {
    ({ store, bridge, xmpp, irc, matrix } = await threeLegBridge("m"));
  });
  afterEach(async () => {
    await bridge.stop();
    await store.close();
  });

  const moderations = (leg: FakeLeg) => leg.got.filter((d): d is Extract<Delivery, { type: "moderate" }> => d.type === "moderate");

  it("a moderation names the message's author (leg and person) to every other leg, with the moderator and reason", async () => {
    bridge.inbound("matrix", { type: "message", ids: ["$ev1"], from: { nick: "Carol", contact: "@carol:hs" }, text: plain("rude") });
    await waitFor(() => (xmpp.got.length === 1 ? true : undefined));
    bridge.inbound("xmpp", { type: "message", ids: ["x1"], sid: "sid-1", from: { nick: "dora" }, text: plain("spam") });
    await waitFor(() => (matrix.got.length === 1 ? true : undefined));

    bridge.inbound("xmpp", { type: "moderate", id: "xmpp-1", by: { nick: "alice" }, reason: "be nice" });
    bridge.inbound("xmpp", { type: "moderate", id: "sid-1", by: { nick: "alice" } });
    await waitFor(() => (moderations(irc).length === 2 ? true : undefined));
    expect(moderations(matrix)).toHaveLength(2);
    expect(moderations(xmpp)).toEqual([]);
    const [carols, doras] = moderations(irc);
    expect(carols).toMatchObject({ origin: "xmpp", by: { nick: "alice" }, reason: "be nice", author: { leg: "matrix", who: { nick: "Carol", contact: "@carol:hs" } } });
    expect(doras).toMatchObject({ origin: "xmpp", by: { nick: "alice" }, author: { leg: "xmpp", who: { nick: "dora" } } });
    expect(doras).not.toHaveProperty("reason");
  });

  it("a removal that comes back (or a second one) for the same message is not relayed again", async () => {
    bridge.inbound("xmpp", { type: "message", ids: ["x1"], from: { nick: "dora" }, text: plain("spam") });
    await waitFor(() => (matrix.got.length === 1 ? true : undefined));
    const removedCount = async () => (await bridgeMetrics.suppressed.get()).values.filter((v) => v.labels.reason === "removed").reduce((a, v) => a + v.value, 0);
    const before = await removedCount();
    bridge.inbound("xmpp", { type: "moderate", id: "x1", by: { nick: "alice" } });
    await waitFor(() => (moderations(matrix).length === 1 ? true : undefined));
    // The Matrix leg reports the removal it was asked to make, then the MUC's copy is retracted by its author.
    bridge.inbound("matrix", { type: "moderate", id: "matrix-1", by: { nick: "Carol" } });
    bridge.inbound("xmpp", { type: "retract", id: "x1", from: { nick: "dora" } });
    bridge.inbound("irc", { type: "message", ids: ["i1"], from: { nick: "bob" }, text: plain("marker") });
    await waitFor(() => (matrix.got.length === 3 ? true : undefined));
    expect(moderations(xmpp)).toEqual([]);
    expect(moderations(matrix)).toHaveLength(1);
    expect(irc.got.filter((d) => d.type === "retract" || d.type === "moderate")).toHaveLength(1);
    expect((await removedCount()) - before).toBe(2);
  });

  it("a moderation of a message the id map does not know is dropped", async () => {
    bridge.inbound("matrix", { type: "moderate", id: "$unknown", by: { nick: "Carol" } });
    bridge.inbound("matrix", { type: "message", ids: ["$m"], from: { nick: "Carol" }, text: plain("marker") });
    await waitFor(() => (xmpp.got.length === 1 ? true : undefined));
    expect(xmpp.got.map((d) => d.type)).toEqual(["message"]);
  });
});
