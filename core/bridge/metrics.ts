/** Bridge metrics on the gateway's registry (core/metrics.ts); labels are leg names only (low cardinality). */
import { Counter } from "prom-client";
import { registry } from "../metrics.ts";

export const bridgeMetrics = {
  relayed: new Counter({
    name: "estuary_bridge_relayed_total",
    help: "Bridge deliveries accepted by the target leg's network",
    labelNames: ["from", "to", "kind"],
    registers: [registry],
  }),
  undelivered: new Counter({
    name: "estuary_bridge_undelivered_total",
    help: "Bridge deliveries that failed (logged and reported to the origin leg)",
    labelNames: ["from", "to", "kind"],
    registers: [registry],
  }),
  suppressed: new Counter({
    name: "estuary_bridge_suppressed_total",
    help: "Events not relayed because they were the bridge's own output, a duplicate, or a change by someone other than the author",
    labelNames: ["leg", "reason"],
    registers: [registry],
  }),
};
