/** The Telegram adapter's gateway-wide options (the `options` of the `telegram` network in the config). */
import { z } from "zod";

export const telegramOptionsSchema = z.object({
  /**
   * Bot API server root (grammY's `client.apiRoot`). The default is Telegram's;
   * a self-hosted telegram-bot-api server or the test fake go here.
   */
  apiRoot: z.url().optional(),
  /** getUpdates long-poll timeout in seconds (https://core.telegram.org/bots/api#getupdates). */
  pollTimeoutSec: z.number().int().min(0).max(50).default(25),
  /**
   * Telegram's documented limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
   * about 1 message per second per chat, 20 per minute per group, 30 per second overall.
   */
  rateLimits: z
    .object({
      perChatPerSec: z.number().positive().default(1),
      perGroupPerMin: z.number().positive().default(20),
      perBotPerSec: z.number().positive().default(30),
    })
    .prefault({}),
  /** Messages waiting per chat before new ones are refused with `queue-full`. */
  maxQueuePerChat: z.number().int().min(1).default(100),
  /** How long a message may wait (flood waits, 5xx retries) before it is refused with `rate-limited`. */
  retryWindowMs: z.number().int().min(0).default(60_000),
  /** First and longest delay between failed getUpdates calls. */
  reconnect: z
    .object({ initialMs: z.number().int().min(1).default(1000), maxMs: z.number().int().min(1).default(60_000) })
    .prefault({}),
});

export type TelegramOptions = z.infer<typeof telegramOptionsSchema>;
