/**
 * Reads V8 .heapsnapshot files (written by `node --heapsnapshot-signal` or
 * v8.writeHeapSnapshot) and sums self sizes per constructor, like the
 * "Summary" view of Chrome DevTools; with two snapshots, the difference per
 * constructor divided by the difference in users tells what one user costs.
 * Format: the snapshot's own `meta` (node_fields, node_types) describes the
 * flat `nodes` array; `strings` holds the names.
 *
 *   node_modules/.bin/node bench/irc/heap.ts A.heapsnapshot [B.heapsnapshot --per N] [--top 40]
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapGroup {
  name: string;
  count: number;
  bytes: number;
}

/** Self size and object count per group: constructor name for objects, "(type)" for the rest. */
export function summarizeHeap(file: string): Map<string, HeapGroup> {
  const s = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const f = s.snapshot.meta.node_fields;
  const width = f.length;
  const iType = f.indexOf("type");
  const iName = f.indexOf("name");
  const iSize = f.indexOf("self_size");
  const types = s.snapshot.meta.node_types[0];
  const groups = new Map<string, HeapGroup>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!] ?? "?";
    const name = type === "object" || type === "native" ? s.strings[s.nodes[i + iName]!] ?? "?" : `(${type})`;
    const key = type === "native" ? `native ${name}` : name;
    const g = groups.get(key) ?? { name: key, count: 0, bytes: 0 };
    g.count++;
    g.bytes += s.nodes[i + iSize]!;
    groups.set(key, g);
  }
  return groups;
}

export function total(groups: Map<string, HeapGroup>): number {
  let n = 0;
  for (const g of groups.values()) n += g.bytes;
  return n;
}

/** Per-group growth from `a` to `b`, divided by `per` (users added), largest first. */
export function diffHeap(a: Map<string, HeapGroup>, b: Map<string, HeapGroup>, per: number, top: number): HeapGroup[] {
  const out: HeapGroup[] = [];
  for (const [k, g] of b) {
    const before = a.get(k) ?? { count: 0, bytes: 0 };
    out.push({ name: k, count: (g.count - before.count) / per, bytes: (g.bytes - before.bytes) / per });
  }
  return out.sort((x, y) => y.bytes - x.bytes).slice(0, top);
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { per: { type: "string", default: "1" }, top: { type: "string", default: "40" } },
  });
  const top = Number(values.top);
  const [fa, fb] = positionals;
  if (!fa) {
    process.stderr.write("usage: heap.ts A.heapsnapshot [B.heapsnapshot --per N] [--top 40]\n");
    process.exit(2);
  }
  const a = summarizeHeap(fa);
  const rows = fb
    ? diffHeap(a, summarizeHeap(fb), Number(values.per), top)
    : [...a.values()].sort((x, y) => y.bytes - x.bytes).slice(0, top);
  if (fb) process.stdout.write(`total: ${total(a)} → ${total(summarizeHeap(fb))} bytes; per unit below\n`);
  else process.stdout.write(`total: ${total(a)} bytes\n`);
  for (const r of rows) process.stdout.write(`${Math.round(r.bytes).toString().padStart(10)}  ${r.count.toFixed(1).padStart(8)}  ${r.name}\n`);
}
