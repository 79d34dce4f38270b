/**
 * How the shipped entry point runs Node: bin/estuary.js's shebang
 * (`#!/usr/bin/env -S VAR=value … node --flag …`) is the one source of the
 * runtime settings that deploy/systemd and the Dockerfile repeat (the deploy
 * test keeps them equal). Benchmarks start `node <entry>` directly, which
 * ignores a shebang, so they apply these themselves: a figure then describes
 * Estuary as it is deployed.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");

export interface ShippedRuntime {
  /** Environment assignments before `node` (e.g. MALLOC_ARENA_MAX). */
  env: Record<string, string>;
  /** Node/V8 flags after `node` (e.g. --max-semi-space-size=2). */
  flags: string[];
}

export function shippedRuntime(entry = join(ROOT, "bin/estuary.js")): ShippedRuntime {
  const first = readFileSync(entry, "utf8").split("\n")[0] ?? "";
  const m = /^#!\/usr\/bin\/env -S (.*)$/.exec(first);
  if (!m) return { env: {}, flags: [] };
  const words = m[1]!.trim().split(/\s+/);
  const node = words.indexOf("node");
  const env: Record<string, string> = {};
  for (const w of words.slice(0, Math.max(node, 0))) {
    const eq = w.indexOf("=");
    if (eq > 0) env[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return { env, flags: node >= 0 ? words.slice(node + 1) : [] };
}
