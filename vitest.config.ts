import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/setup/fast-check.ts"],
    // Integration tests start real servers (Prosody, InspIRCd) on free loopback ports;
    // each file owns its servers, so files run in parallel on the 2 cores we have.
    pool: "forks",
    maxWorkers: 2,
    // Integration tests wait on real servers (reconnect back-offs, restarts): generous on a busy 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // A stray rejection anywhere fails the run instead of being lost.
    dangerouslyIgnoreUnhandledErrors: false,
  },
});
