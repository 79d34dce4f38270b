import { describe, expect, it, vi } from "vitest";
import type { ParsedMessage } from "irc-framework";
import { ChannelList } from "../../../../adapters/irc/channel-list.ts";
import { InviteWaits } from "../../../../adapters/irc/invites.ts";
import { EstuaryError, isEstuaryError } from "../../../../core/errors.ts";

const line = (command: string, ...params: string[]): ParsedMessage => ({ command, params, tags: {}, prefix: "irc.test", nick: "", ident: "", hostname: "" });
const kindOf = async (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => (isEstuaryError(e) ? e.kind : "not an EstuaryError"),
  );

describe("LIST answers", () => {
  it("collects 322 until 323, without InspIRCd's [+modes] topic prefix", async () => {
    const send = vi.fn(async () => {});
    const list = new ChannelList({ send });
    const result = list.list();
    expect(send).toHaveBeenCalledTimes(1);
    expect(list.onMessage(line("321", "me", "Channel", "Users  Name"))).toBe(true);
    list.onMessage(line("322", "me", "#a", "3", "[+nt] hello world"));
    list.onMessage(line("322", "me", "#b", "1", ""));
    expect(list.onMessage(line("323", "me", "End of channel list."))).toBe(true);
    expect(await result).toEqual([
      { name: "#a", users: 3, topic: "hello world" },
      { name: "#b", users: 1, topic: "" },
    ]);
    // Nothing pending: other numerics are not ours.
    expect(list.onMessage(line("322", "me", "#c", "1", "late"))).toBe(false);
  });

  it("reuses a fresh result and asks again once it is old", async () => {
    let now = 0;
    const send = vi.fn(async () => {});
    const list = new ChannelList({ send, cacheMs: 60_000, now: () => now });
    const first = list.list();
    const concurrent = list.list();
    list.onMessage(line("323", "me", "End"));
    expect(await first).toEqual([]);
    expect(await concurrent).toEqual([]);
    now = 59_000;
    await list.list();
    expect(send).toHaveBeenCalledTimes(1);
    now = 61_000;
    const again = list.list();
    expect(send).toHaveBeenCalledTimes(2);
    list.onMessage(line("322", "me", "#new", "2", "t"));
    list.onMessage(line("323", "me", "End"));
    expect((await again).map((c) => c.name)).toEqual(["#new"]);
  });

  it("keeps at most maxEntries channels and consumes the rest of the answer", async () => {
    const list = new ChannelList({ send: async () => {}, maxEntries: 3 });
    const result = list.list();
    for (let i = 0; i < 10; i++) expect(list.onMessage(line("322", "me", `#c${i}`, "1", ""))).toBe(true);
    expect((await result).map((c) => c.name)).toEqual(["#c0", "#c1", "#c2"]);
    expect(list.onMessage(line("323", "me", "End"))).toBe(true);
    expect(list.onMessage(line("322", "me", "#after", "1", ""))).toBe(false);
  });

  it("a timeout with nothing is an error; with something, the partial list", async () => {
    vi.useFakeTimers();
    try {
      const empty = new ChannelList({ send: async () => {}, timeoutMs: 1000 });
      const failed = kindOf(empty.list());
      await vi.advanceTimersByTimeAsync(1001);
      expect(await failed).toBe("timeout");
      const partial = new ChannelList({ send: async () => {}, timeoutMs: 1000 });
      const some = partial.list();
      partial.onMessage(line("322", "me", "#only", "4", ""));
      await vi.advanceTimersByTimeAsync(1001);
      expect((await some).map((c) => c.name)).toEqual(["#only"]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("a refusal (263 try again, 481) or an unsendable LIST is an error", async () => {
    const busy = new ChannelList({ send: async () => {} });
    const b = kindOf(busy.list());
    busy.onMessage(line("263", "me", "LIST", "Server load is temporarily too heavy"));
    expect(await b).toBe("rate-limited");
    const oper = new ChannelList({ send: async () => {} });
    const o = kindOf(oper.list());
    oper.onMessage(line("481", "me", "Permission Denied"));
    expect(await o).toBe("forbidden");
    const down = new ChannelList({ send: async () => Promise.reject(new EstuaryError("unavailable", "down")) });
    expect(await kindOf(down.list())).toBe("unavailable");
  });
});

describe("INVITE answers", () => {
  it("341 confirms; refusals map to error kinds by the nick or channel they name", async () => {
    const waits = new InviteWaits(5000);
    const ok = waits.wait("#Chan", "Bob");
    expect(waits.onMessage(line("341", "me", "bob", "#chan"))).toBe(true);
    await expect(ok.result).resolves.toBeUndefined();
    const cases: [ParsedMessage, string][] = [
      [line("401", "me", "ghost", "No such nick"), "not-found"],
      [line("443", "me", "ghost", "#chan", "is already on channel"), "conflict"],
      [line("482", "me", "#chan", "You must be a channel operator"), "forbidden"],
      [line("442", "me", "#chan", "You're not on that channel"), "not-acceptable"],
    ];
    for (const [msg, kind] of cases) {
      const w = waits.wait("#chan", "ghost");
      expect(waits.onMessage(msg)).toBe(true);
      expect(await kindOf(w.result)).toBe(kind);
    }
    // A numeric naming no invitation is left to the connection.
    const w = waits.wait("#chan", "bob");
    expect(waits.onMessage(line("401", "me", "carol", "No such nick"))).toBe(false);
    w.cancel();
    await w.result;
  });
});

describe("memory", () => {
  it("drops a stale list by itself, and everything when the connection closes", async () => {
    vi.useFakeTimers();
    try {
      const send = vi.fn(async () => {});
      const list = new ChannelList({ send, cacheMs: 1000, now: () => Date.now() });
      const first = list.list();
      list.onMessage(line("322", "me", "#a", "1", ""));
      list.onMessage(line("323", "me", "End"));
      await first;
      expect((list as unknown as { cached?: unknown }).cached).toBeDefined();
      await vi.advanceTimersByTimeAsync(1001);
      expect((list as unknown as { cached?: unknown }).cached).toBeUndefined();
      const pending = kindOf(list.list());
      list.dispose();
      expect(await pending).toBe("unavailable");
    } finally {
      vi.useRealTimers();
    }
  });
});
