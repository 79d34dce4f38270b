/**
 * Outgoing Bot API calls of one bot, paced to Telegram's limits
 * (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
 * about 1 message per second per chat, 20 per minute per group, 30 per
 * second overall. Bottleneck limiters are chained: the chat's limiter (one
 * call at a time, so a chat's messages keep their order; spaced by the
 * per-chat or, for groups, the per-group rate) feeds the bot-wide limiter.
 *
 * Nothing is dropped silently: a chat with `maxQueuePerChat` calls waiting
 * refuses more with `queue-full`; a 429 waits `parameters.retry_after`
 * (https://core.telegram.org/bots/api#responseparameters) and retries, and
 * pauses every chat of the bot meanwhile; a call that would wait longer than
 * `retryWindowMs` in total is refused with `rate-limited`, so the XMPP
 * sender gets an error instead of a lost message.
 */
import { rateLimitWaits } from "../../core/metrics.ts";
import Bottleneck from "bottleneck";
import { GrammyError, HttpError } from "grammy";
import { fail } from "../../core/errors.ts";

export interface QueueOptions {
  perChatPerSec: number;
  perGroupPerMin: number;
  perBotPerSec: number;
  maxQueuePerChat: number;
  retryWindowMs: number;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });

export class SendQueue {
  private readonly options: QueueOptions;
  private readonly bot: Bottleneck;
  private readonly chats = new Map<number, { limiter: Bottleneck; pending: number }>();
  private readonly abort = new AbortController();
  /** Until when Telegram asked the whole bot to wait (a 429 pauses every chat). */
  private pausedUntil = 0;

  constructor(options: QueueOptions) {
    this.options = options;
    this.bot = new Bottleneck({ minTime: Math.ceil(1000 / options.perBotPerSec) });
  }

  /** How many calls of `chatId` wait or run. */
  pending(chatId: number): number {
    return this.chats.get(chatId)?.pending ?? 0;
  }

  /**
   * Runs `call` when the limits allow, retrying on 429 and 5xx within the
   * retry window. Rejects with an EstuaryError (`queue-full`, `rate-limited`,
   * `unavailable`) or the call's own GrammyError.
   */
  run<T>(chatId: number, call: () => Promise<T>): Promise<T> {
    if (this.abort.signal.aborted) return Promise.reject(fail("unavailable", "The Telegram session is closed"));
    const chat = this.chat(chatId);
    if (chat.pending >= this.options.maxQueuePerChat) {
      return Promise.reject(fail("queue-full", `Too many messages waiting for this Telegram chat (${this.options.maxQueuePerChat}); try again later`));
    }
    chat.pending++;
    const deadline = Date.now() + this.options.retryWindowMs;
    return chat.limiter
      .schedule(() => this.attempt(call, deadline))
      .catch((err: unknown) => {
        // Jobs dropped by stop() reject with Bottleneck's own error.
        if (err instanceof Bottleneck.BottleneckError) throw fail("unavailable", "The Telegram session closed before the message could be sent");
        throw err;
      })
      .finally(() => {
        chat.pending--;
        if (chat.pending === 0) this.forget(chatId, chat);
      });
  }

  private async attempt<T>(call: () => Promise<T>, deadline: number): Promise<T> {
    let backoff = 500;
    for (;;) {
      await sleep(this.pausedUntil - Date.now(), this.abort.signal);
      if (this.abort.signal.aborted) throw fail("unavailable", "The Telegram session closed before the message could be sent");
      try {
        return await call();
      } catch (err) {
        let waitMs: number;
        if (err instanceof GrammyError && err.error_code === 429) {
          waitMs = (err.parameters.retry_after ?? 1) * 1000;
          rateLimitWaits.inc({ network: "telegram" });
          if (Date.now() + waitMs > deadline) {
            throw fail("rate-limited", `Telegram asks to wait ${err.parameters.retry_after ?? 1} s before sending more; message not sent`, {
              retryAfter: err.parameters.retry_after,
              cause: err,
            });
          }
          this.pausedUntil = Math.max(this.pausedUntil, Date.now() + waitMs);
          continue;
        }
        if (err instanceof GrammyError && err.error_code >= 500) {
          waitMs = backoff;
          backoff = Math.min(backoff * 2, 10_000);
          if (Date.now() + waitMs > deadline) throw fail("unavailable", "Telegram keeps failing (server error); message not sent", { cause: err });
          await sleep(waitMs, this.abort.signal);
          continue;
        }
        if (err instanceof HttpError) throw fail("unavailable", "Telegram is unreachable; message not sent", { cause: err });
        throw err;
      }
    }
  }

  private chat(chatId: number): { limiter: Bottleneck; pending: number } {
    let chat = this.chats.get(chatId);
    if (chat === undefined) {
      const perChat = 1000 / this.options.perChatPerSec;
      const perGroup = chatId < 0 ? 60_000 / this.options.perGroupPerMin : 0;
      const limiter = new Bottleneck({ maxConcurrent: 1, minTime: Math.ceil(Math.max(perChat, perGroup)) });
      limiter.chain(this.bot);
      chat = { limiter, pending: 0 };
      this.chats.set(chatId, chat);
    }
    return chat;
  }

  /** An idle chat's limiter is dropped one interval after its last call: back-to-back messages stay spaced, idle chats cost nothing. */
  private forget(chatId: number, chat: { limiter: Bottleneck; pending: number }): void {
    const minTime = Math.max(1000 / this.options.perChatPerSec, chatId < 0 ? 60_000 / this.options.perGroupPerMin : 0);
    setTimeout(() => {
      if (this.chats.get(chatId) === chat && chat.pending === 0) this.chats.delete(chatId);
    }, minTime).unref();
  }

  /** Refuses new calls and ends waits; queued calls reject with `unavailable`. */
  async stop(): Promise<void> {
    this.abort.abort();
    const limiters = [...this.chats.values()].map((c) => c.limiter);
    this.chats.clear();
    await Promise.all(limiters.map((l) => l.stop({ dropWaitingJobs: true }).catch(() => {})));
    await this.bot.stop({ dropWaitingJobs: true }).catch(() => {});
  }
}
