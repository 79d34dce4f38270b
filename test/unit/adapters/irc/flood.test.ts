import { describe, expect, it } from "vitest";
import { TokenBucket } from "../../../../adapters/irc/flood.ts";

describe("TokenBucket", () => {
  it("gives `burst` lines at once, then one per interval", () => {
    let now = 1000;
    const b = new TokenBucket(3, 2000, () => now);
    expect([b.take(), b.take(), b.take()]).toEqual([0, 0, 0]);
    expect(b.take()).toBe(2000);
    now += 1500;
    expect(b.take()).toBe(500);
    now += 500;
    expect(b.take()).toBe(0);
    expect(b.take()).toBe(2000);
  });

  it("refills up to `burst` only, counting from when it was last full", () => {
    let now = 0;
    const b = new TokenBucket(2, 1000, () => now);
    expect([b.take(), b.take()]).toEqual([0, 0]);
    now += 60_000; // long idle: back to 2, not 60
    expect([b.take(), b.take(), b.take()]).toEqual([0, 0, 1000]);
    now += 999;
    expect(b.take()).toBe(1);
    now += 1;
    expect(b.take()).toBe(0);
  });

  it("never waits when flood control is lifted", () => {
    const b = new TokenBucket(1, 0, () => 0);
    expect(Array.from({ length: 100 }, () => b.take()).every((w) => w === 0)).toBe(true);
  });
});
