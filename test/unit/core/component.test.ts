import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { corkForTick } from "../../../core/component.ts";

/** A Writable that records each write(2) it would make: one batch per _write/_writev call. */
function sink(): { w: Writable; batches: string[][] } {
  const batches: string[][] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      batches.push([chunk.toString()]);
      cb();
    },
    writev(chunks, cb) {
      batches.push(chunks.map((c) => String(c.chunk)));
      cb();
    },
  });
  return { w, batches };
}

const nextTick = (): Promise<void> => new Promise((r) => process.nextTick(r));

describe("corkForTick", () => {
  it("sends the writes of one tick as one batch, once the tick's callbacks have run", async () => {
    const { w, batches } = sink();
    for (const s of ["a", "b", "c"]) {
      corkForTick(w);
      w.write(s);
    }
    // Promise jobs queued in the same tick are still in the batch.
    await Promise.resolve();
    corkForTick(w);
    w.write("d");
    expect(batches).toEqual([]);
    await nextTick();
    expect(batches).toEqual([["a", "b", "c", "d"]]);
    corkForTick(w);
    w.write("e");
    await nextTick();
    expect(batches).toEqual([["a", "b", "c", "d"], ["e"]]);
    expect(w.writableCorked).toBe(0);
  });

  it("sends at once when maxBytes are waiting, then batches the rest of the tick", async () => {
    const { w, batches } = sink();
    for (const s of ["aa", "bb", "cc", "dd"]) {
      corkForTick(w, 4);
      w.write(s);
    }
    expect(batches).toEqual([["aa", "bb"]]);
    await nextTick();
    expect(batches).toEqual([["aa", "bb"], ["cc", "dd"]]);
    expect(w.writableCorked).toBe(0);
  });

  it("leaves a destroyed socket alone", () => {
    const { w } = sink();
    w.destroy();
    corkForTick(w);
    expect(w.writableCorked).toBe(0);
  });
});
