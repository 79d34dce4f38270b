/**
 * A real Estuary process for multi-process tests: the production command line
 * (core/cli.ts: `--config FILE`, signals, exit codes) with the `test` network
 * served by the test adapter, whose contact `echo` answers every direct
 * message with the same text. The built-in loader knows only the real
 * networks, so this entry injects the adapter through cli's `loadGateway`.
 *
 *   node_modules/.bin/node test/support/shard-entry.ts --config shard-1.yaml
 *
 * Besides the gateway's own log, it writes one JSON line per fact a test
 * waits for, prefixed with `@@ ` so it never mixes with pino's lines:
 *   {"event":"state","domain":…,"state":"online"}   a component stream changed state
 *   {"event":"echo","user":…}                          a message to echo was answered
 *
 * ESTUARY_TEST_FORGET_SENT=1 keeps the test network's record of sent
 * messages empty (it is for assertions in-process), so long runs such as
 * bench/soak measure the gateway's memory, not the record's.
 */
import type { Adapter } from "../../core/adapter.ts";
import { main } from "../../core/cli.ts";
import { startGateway } from "../../core/gateway.ts";
import { TestNetwork } from "./test-adapter.ts";

export const REPORT_PREFIX = "@@ ";
export const ECHO_CONTACT = "echo";

function report(fact: Record<string, unknown>): void {
  process.stdout.write(`${REPORT_PREFIX}${JSON.stringify(fact)}\n`);
}

/** The test adapter, plus a contact that echoes what it is sent. */
function echoAdapter(net: TestNetwork): Adapter {
  const base = net.adapter();
  return {
    ...base,
    async openSession(ctx) {
      const session = await base.openSession(ctx);
      let n = 0;
      return {
        ...session,
        async sendMessage(chat, message) {
          const sent = await session.sendMessage(chat, message);
          if (chat.kind === "direct" && chat.contact === ECHO_CONTACT) {
            // After the send resolves, as a network would deliver its answer.
            setImmediate(() => ctx.emit({ type: "message", chat, from: { nick: ECHO_CONTACT, contact: ECHO_CONTACT }, id: `echo-${++n}`, text: message.text }));
            report({ event: "echo", user: ctx.user });
          }
          return sent;
        },
      };
    },
  };
}

// Run only as the entry point: tests import REPORT_PREFIX from this module.
if (import.meta.main) {
  const net = new TestNetwork();
  if (process.env.ESTUARY_TEST_FORGET_SENT === "1") setInterval(() => net.log.splice(0), 1000).unref();
  const code = await main(process.argv.slice(2), {
    loadGateway: async () => ({
      async startGateway(config, options) {
        const gateway = await startGateway(config, { ...options, adapters: { test: () => echoAdapter(net) } });
        for (const n of gateway.networks.values()) {
          n.link.on("state", (state) => report({ event: "state", domain: n.domain, state }));
          if (n.link.state === "online") report({ event: "state", domain: n.domain, state: "online" });
        }
        return gateway;
      },
    }),
  });
  process.exit(code);
}
