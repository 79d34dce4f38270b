/** The Matrix adapter's gateway-wide configuration. */
import { z } from "zod";

export const matrixOptionsSchema = z.object({
  /** Sends waiting per room before new ones are refused with queue-full (never dropped silently). */
  maxQueuePerRoom: z.number().int().min(1).default(100),
  /** How long a send may wait out rate limits and outages before it is refused. */
  retryWindowMs: z.number().int().min(0).default(60_000),
  /** Timeline events per room asked for when resuming a sync (gaps beyond are not replayed). */
  backfillLimit: z.number().int().min(0).default(50),
  /** Long-poll timeout of /sync. */
  syncTimeoutMs: z.number().int().min(0).default(30_000),
  /** Sync retry backoff: first delay and cap. */
  reconnect: z
    .object({ initialMs: z.number().int().min(1).default(1000), maxMs: z.number().int().min(1).default(60_000) })
    .prefault({}),
});

export type MatrixOptions = z.infer<typeof matrixOptionsSchema>;
