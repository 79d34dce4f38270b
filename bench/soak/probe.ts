/**
 * A memory probe preloaded into the Estuary child of the soak bench
 * (`node --expose-gc --import ./bench/soak/probe.ts test/support/shard-entry.ts …`):
 * shard-entry stays the main module (it runs the CLI only as the entry point,
 * `import.meta.main`), and this module adds a command channel on stdin.
 *
 * Commands, one per line on stdin:
 *   gc            a full, synchronous major GC (`gc()`, needs --expose-gc), then
 *                 one report line with what is left: the live heap
 *   snap <file>   a heap snapshot (v8.writeHeapSnapshot) after a full GC,
 *                 for bench/irc/heap.ts to compare per constructor
 *
 * Reports are one JSON line on stdout with the shard-entry prefix
 * (`@@ {"event":"probe",…}`), so they never mix with pino's lines.
 *
 * Why each figure (Node's process.memoryUsage / v8 docs,
 * https://nodejs.org/api/process.html#processmemoryusage,
 * https://nodejs.org/api/v8.html#v8getheapstatistics):
 * - heapUsed after a full GC is the live JS heap: if it climbs, JS keeps
 *   something it should not (a leak in the code).
 * - heapTotal / the spaces' physical sizes are what V8 has committed: V8
 *   grows old space in steps and keeps it, so RSS steps with flat heapUsed
 *   are V8 sizing, not a leak.
 * - external / arrayBuffers: memory outside the heap held by JS objects
 *   (Buffers of sockets, TextEncoder output).
 * - malloced_memory: V8's own malloc use. SQLite's page cache and glibc's
 *   arenas are in neither: /proc/self/status RssAnon minus V8's physical
 *   heap estimates that native rest.
 */
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import v8 from "node:v8";

const PREFIX = "@@ ";

function procStatusKiB(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync("/proc/self/status", "utf8").split("\n")) {
    const m = /^(VmRSS|RssAnon|RssFile|RssShmem|VmHWM):\s+(\d+) kB$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

function fullGc(): number {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) throw new Error("probe: run node with --expose-gc");
  const t = performance.now();
  collect();
  return performance.now() - t;
}

function measure(): Record<string, unknown> {
  const before = process.memoryUsage();
  const gcMs = fullGc();
  const after = process.memoryUsage();
  const h = v8.getHeapStatistics();
  const spaces: Record<string, { size: number; used: number; physical: number }> = {};
  for (const s of v8.getHeapSpaceStatistics()) {
    spaces[s.space_name] = { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size };
  }
  return {
    event: "probe",
    gcMs,
    heapUsedBeforeGc: before.heapUsed,
    rss: after.rss,
    heapTotal: after.heapTotal,
    heapUsed: after.heapUsed,
    external: after.external,
    arrayBuffers: after.arrayBuffers,
    heap: {
      totalHeapSize: h.total_heap_size,
      totalPhysicalSize: h.total_physical_size,
      usedHeapSize: h.used_heap_size,
      heapSizeLimit: h.heap_size_limit,
      mallocedMemory: h.malloced_memory,
      peakMallocedMemory: h.peak_malloced_memory,
      externalMemory: h.external_memory,
      nativeContexts: h.number_of_native_contexts,
      detachedContexts: h.number_of_detached_contexts,
    },
    spaces,
    procKiB: procStatusKiB(),
  };
}

const report = (fact: Record<string, unknown>): void => {
  process.stdout.write(`${PREFIX}${JSON.stringify(fact)}\n`);
};

const lines = createInterface({ input: process.stdin, terminal: false });
lines.on("line", (line) => {
  const [cmd, arg] = line.trim().split(/\s+/, 2);
  try {
    if (cmd === "gc") report(measure());
    else if (cmd === "snap" && arg) {
      fullGc();
      const t = performance.now();
      const file = v8.writeHeapSnapshot(arg);
      report({ event: "snapshot", file, ms: performance.now() - t });
    } else report({ event: "probe-error", error: `unknown command ${JSON.stringify(line)}` });
  } catch (e) {
    report({ event: "probe-error", error: String(e) });
  }
});
// The channel must never keep a stopping gateway alive.
(process.stdin as { unref?: () => void }).unref?.();
