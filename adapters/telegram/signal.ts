/** grammY types its signals with the abort-controller polyfill's class; Node's own AbortSignal is what it gets at run time. */
import type { Api } from "grammy";

export type GrammySignal = NonNullable<Parameters<Api["getMe"]>[0]>;

export const grammySignal = (signal: AbortSignal): GrammySignal => signal as unknown as GrammySignal;
