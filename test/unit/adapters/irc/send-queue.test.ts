import { afterEach, describe, expect, it, vi } from "vitest";
import { SendQueue } from "../../../../adapters/irc/send-queue.ts";

function sink() {
  const written: string[] = [];
  let writable = true;
  return {
    written,
    setWritable: (w: boolean) => (writable = w),
    sink: { writable: () => writable, write: (line: string, done: () => void) => (written.push(line), done()) },
  };
}

describe("IRC send queue", () => {
  afterEach(() => vi.useRealTimers());

  it("writes in order, urgent lines first, and strips CR/LF/NUL from every line", async () => {
    const s = sink();
    const q = new SendQueue({ host: "irc.test", maxQueue: 10, retryWindowMs: 1000, flood: { burst: 5, intervalMs: 0 } }, s.sink);
    const a = q.enqueue(["PRIVMSG #a :one", "PRIVMSG #a :two\r\nQUIT :x"]);
    const b = q.enqueue(["JOIN #a"], true);
    q.setOnline(true);
    await Promise.all([a, b]);
    expect(s.written).toEqual(["JOIN #a", "PRIVMSG #a :one", "PRIVMSG #a :twoQUIT :x"]);
  });

  it("requeued lines (written to a connection that died unechoed) go after the rejoins and before what was typed meanwhile", async () => {
    const s = sink();
    const q = new SendQueue({ host: "irc.test", maxQueue: 10, retryWindowMs: 1000, flood: { burst: 5, intervalMs: 0 } }, s.sink);
    const typed = q.enqueue(["PRIVMSG #a :typed during the outage"]);
    const again = q.requeue(["PRIVMSG #a :lost in the drop 1", "PRIVMSG #a :lost in the drop 2"]);
    const rejoin = q.enqueue(["JOIN #a"], true);
    q.setOnline(true);
    await Promise.all([typed, again, rejoin]);
    expect(s.written).toEqual(["JOIN #a", "PRIVMSG #a :lost in the drop 1", "PRIVMSG #a :lost in the drop 2", "PRIVMSG #a :typed during the outage"]);
  });

  it("refuses requeued lines, like any, once the retry window passes offline", async () => {
    vi.useFakeTimers();
    const q = new SendQueue({ host: "irc.test", maxQueue: 10, retryWindowMs: 1000, flood: { burst: 5, intervalMs: 0 } }, sink().sink);
    const again = q.requeue(["PRIVMSG #a :x"]);
    const assertion = expect(again).rejects.toMatchObject({ kind: "unavailable" });
    await vi.advanceTimersByTimeAsync(1001);
    await assertion;
    expect(q.length).toBe(0);
  });

  it("refuses a message that does not fit whole, and queues nothing of it", async () => {
    const q = new SendQueue({ host: "irc.test", maxQueue: 2, retryWindowMs: 1000, flood: { burst: 5, intervalMs: 0 } }, sink().sink);
    void q.enqueue(["a"]).catch(() => {});
    await expect(q.enqueue(["b", "c"])).rejects.toMatchObject({ kind: "queue-full" });
    expect(q.length).toBe(1);
  });

  it("paces lines after the burst, one per interval", async () => {
    vi.useFakeTimers();
    const s = sink();
    const q = new SendQueue({ host: "irc.test", maxQueue: 10, retryWindowMs: 60_000, flood: { burst: 2, intervalMs: 2000 } }, s.sink);
    q.setOnline(true);
    void q.enqueue(["1", "2", "3", "4"]);
    await vi.advanceTimersByTimeAsync(0);
    expect(s.written).toEqual(["1", "2"]);
    await vi.advanceTimersByTimeAsync(1999);
    expect(s.written).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(s.written).toEqual(["1", "2", "3"]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(s.written).toEqual(["1", "2", "3", "4"]);
  });

  it("refuses lines that waited past the retry window while offline, never dropping them silently", async () => {
    vi.useFakeTimers();
    const s = sink();
    const q = new SendQueue({ host: "irc.test", maxQueue: 10, retryWindowMs: 5000, flood: { burst: 5, intervalMs: 0 } }, s.sink);
    const line = q.enqueue(["PRIVMSG #a :hello"]);
    const outcome = line.then(() => "sent", (e: { kind: string }) => e.kind);
    await vi.advanceTimersByTimeAsync(5000);
    expect(await outcome).toBe("unavailable");
    expect(s.written).toEqual([]);
    expect(q.length).toBe(0);
  });
});
