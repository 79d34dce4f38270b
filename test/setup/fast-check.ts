/**
 * Property tests explore random inputs on a developer's machine (a new seed
 * every run, printed with any counterexample), but CI replays one fixed seed:
 * a rare counterexample is a bug to fix from a developer's run, not a coin
 * flip that decides whether main lands. ESTUARY_FC_SEED overrides both.
 */
import fc from "fast-check";

const fixed = process.env.ESTUARY_FC_SEED ?? (process.env.CI ? "20261122" : undefined);
if (fixed !== undefined) fc.configureGlobal({ seed: Number(fixed) });
