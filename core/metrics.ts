/**
 * Prometheus metrics (prom-client). One registry per process; the optional
 * HTTP listener exposes it. Labels stay low-cardinality: network, domain,
 * direction — never a user or room.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "estuary_" });

export const metrics = {
  componentOnline: new Gauge({
    name: "estuary_component_online",
    help: "1 when the XEP-0114 stream for the domain is authenticated, else 0",
    labelNames: ["domain"],
    registers: [registry],
  }),
  componentStateChanges: new Counter({
    name: "estuary_component_state_changes_total",
    help: "Component stream state changes",
    labelNames: ["domain", "state"],
    registers: [registry],
  }),
  componentBuffered: new Gauge({
    name: "estuary_component_buffered_stanzas",
    help: "Stanzas waiting for the component stream to come back",
    labelNames: ["domain"],
    registers: [registry],
  }),
  componentBufferDropped: new Counter({
    name: "estuary_component_buffer_dropped_total",
    help: "Stanzas refused because the offline buffer was full",
    labelNames: ["domain"],
    registers: [registry],
  }),
  messages: new Counter({
    name: "estuary_messages_total",
    help: "Messages relayed",
    labelNames: ["network", "direction"],
    registers: [registry],
  }),
  deliveryFailures: new Counter({
    name: "estuary_delivery_failures_total",
    help: "Messages that could not be delivered (the sender got an error)",
    labelNames: ["network", "direction", "kind"],
    registers: [registry],
  }),
  sessions: new Gauge({
    name: "estuary_sessions",
    help: "Open adapter sessions",
    labelNames: ["network"],
    registers: [registry],
  }),
};

/** Where queue depths are read from at scrape time (registered by the gateway per network and queue). */
export const queueDepthSources = new Map<string, { network: string; queue: string; depth: () => number }>();

export const queueDepth = new Gauge({
  name: "estuary_queue_depth",
  help: "Entries waiting in a bounded queue (per network and queue)",
  labelNames: ["network", "queue"],
  registers: [registry],
  collect() {
    this.reset();
    for (const s of queueDepthSources.values()) this.set({ network: s.network, queue: s.queue }, s.depth());
  },
});

export const rateLimitWaits = new Counter({
  name: "estuary_rate_limit_waits_total",
  help: "Times a network asked us to slow down (429 / M_LIMIT_EXCEEDED) and a send waited",
  labelNames: ["network"],
  registers: [registry],
});
