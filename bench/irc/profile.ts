/**
 * Reads a V8 .cpuprofile (written by `node --cpu-prof`) and lists where the
 * time went: self time per function and per source file, highest first.
 * Format: Chrome DevTools Protocol Profiler.Profile (nodes with callFrame and
 * hitCount, samples, timeDeltas in µs).
 */
import { readFileSync } from "node:fs";
import { relative, resolve } from "node:path";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** A time window in CLOCK_MONOTONIC µs (V8's profile clock, and process.hrtime's). */
export interface Window {
  fromUs: number;
  toUs: number;
}

const ROOT = resolve(import.meta.dirname, "../..");

function shortUrl(url: string): string {
  if (url === "") return "(native)";
  const path = url.startsWith("file://") ? new URL(url).pathname : url;
  return path.startsWith(ROOT) ? relative(ROOT, path) : path;
}

export interface ProfileSummary {
  totalMs: number;
  sampledMs: number;
  topFunctions: { ms: number; pct: number; fn: string }[];
  topFiles: { ms: number; pct: number; file: string }[];
}

/**
 * Self time per function and per file. Without `window`, over the whole
 * profile (hitCount); with it, only the samples taken inside the window.
 */
export function summarizeProfile(file: string, top = 25, window?: Window): ProfileSummary {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const hitsById = new Map<number, number>();
  if (window && p.samples && p.timeDeltas) {
    let t = p.startTime;
    for (let i = 0; i < p.samples.length; i++) {
      t += p.timeDeltas[i] ?? 0;
      if (t >= window.fromUs && t <= window.toUs) hitsById.set(p.samples[i]!, (hitsById.get(p.samples[i]!) ?? 0) + 1);
    }
  } else for (const n of p.nodes) hitsById.set(n.id, n.hitCount ?? 0);
  const totalHits = [...hitsById.values()].reduce((a, b) => a + b, 0);
  const totalMs = window ? (window.toUs - window.fromUs) / 1000 : (p.endTime - p.startTime) / 1000;
  const msPerHit = totalHits > 0 ? totalMs / totalHits : 0;
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const n of p.nodes) {
    const hits = hitsById.get(n.id) ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const where = shortUrl(url);
    const fnKey = `${functionName || "(anonymous)"} ${where}${url ? `:${lineNumber + 1}` : ""}`;
    byFn.set(fnKey, (byFn.get(fnKey) ?? 0) + hits);
    // Group dependency files by package, ours by file.
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where)?.[1];
    const fileKey = pkg ? `node_modules/${pkg}` : where;
    byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + hits);
  }
  const rank = <K extends string>(m: Map<string, number>, key: K) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, hits]) => ({ ms: Math.round(hits * msPerHit), pct: Math.round((1000 * hits) / totalHits) / 10, [key]: k }) as { ms: number; pct: number } & Record<K, string>);
  return {
    totalMs: Math.round(totalMs),
    sampledMs: Math.round(totalHits * msPerHit),
    topFunctions: rank(byFn, "fn"),
    topFiles: rank(byFile, "file"),
  };
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write("usage: node bench/irc/profile.ts FILE.cpuprofile\n");
    process.exit(2);
  }
  console.log(JSON.stringify(summarizeProfile(file), null, 2));
}
