#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=2
// Entry point. Node runs core/cli.ts directly by stripping its types, which
// needs Node >= 22.18 / 23.6 (this project pins Node 24); older versions get
// a clear message instead of a syntax error. This shim is the only place the
// process exits with main's code. The shebang's --max-semi-space-size=2 caps V8's young
// generation and MALLOC_ARENA_MAX=2 glibc's per-thread arenas (measured in README,
// Benchmarks); deploy/ and the Dockerfile set the same, and bench/shipped.ts reads them here.
if (!process.features.typescript) {
  process.stderr.write(`estuary: Node ${process.versions.node} cannot run TypeScript sources; use Node 24 or later.\n`);
  process.exit(1);
}
// The compiled code cache (Node 22.1+) spares recompiling the sources at every start: about
// 20 MiB less memory at rest, and a faster start. NODE_COMPILE_CACHE chooses the directory.
const { enableCompileCache } = await import("node:module");
enableCompileCache?.();
const { main } = await import("../core/cli.ts");
process.exit(await main(process.argv.slice(2)));
