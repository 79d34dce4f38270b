/**
 * Adapters validate their own `networks.<net>.options` with zod; this turns a
 * failure into the same shape as config errors: one `key.path: problem` line
 * per issue, naming the full config key, so an admin sees where to look.
 */
import type { z } from "zod";
import { fail } from "./errors.ts";

export function parseAdapterOptions<S extends z.ZodType>(network: string, schema: S, options: unknown): z.output<S> {
  const parsed = schema.safeParse(options ?? {});
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => `networks.${network}.options${i.path.map((p) => `.${String(p)}`).join("")}: ${i.message}`);
  throw fail("not-acceptable", `Invalid ${network} adapter options:\n${lines.join("\n")}`);
}
