/**
 * The Telegram adapter: each XMPP user brings their own bot (a token from
 * @BotFather) and talks through it, on grammY's Bot API client.
 * Addressing is described in ids.ts; admin notes in README.md.
 */
import { parseAdapterOptions } from "../../core/adapter-options.ts";
import { Api, GrammyError, HttpError } from "grammy";
import type { Adapter } from "../../core/adapter.ts";
import { fail } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { telegramCodec } from "./ids.ts";
import { telegramOptionsSchema } from "./options.ts";
import { DEFAULT_API_ROOT, TelegramSession } from "./session.ts";
import { TEXT_LIMIT } from "./split.ts";

export { telegramOptionsSchema } from "./options.ts";
export type { TelegramOptions } from "./options.ts";

/** A token as @BotFather prints it: "<bot id>:<secret>" (https://core.telegram.org/bots/api#authorizing-your-bot). */
const TOKEN_SHAPE = /^\d+:[A-Za-z0-9_-]+$/;

export function createTelegramAdapter(options: unknown, deps: { log: Logger }): Adapter {
  const opts = parseAdapterOptions("telegram", telegramOptionsSchema, options);
  const apiRoot = opts.apiRoot ?? DEFAULT_API_ROOT;
  const log = deps.log.child({ adapter: "telegram" });
  const sessions = new Set<TelegramSession>();
  return {
    network: "telegram",
    gatewayType: "telegram",
    displayName: "Telegram",
    // deleteMessage by a bot that is a group admin: XEP-0425. (Deletions by others are not
    // reported to bots: the Bot API has no such update outside business connections.)
    capabilities: { rooms: true, maxMessageLength: TEXT_LIMIT, moderation: true },
    registration: {
      required: true,
      instructions:
        "Create a bot with @BotFather on Telegram (/newbot), disable its privacy mode (/setprivacy → Disable) to see group messages, and paste its token here. People write to you by messaging the bot; add the bot to groups to join them.",
      fields: [{ var: "token", label: "Bot token from @BotFather", type: "text-private", required: true, secret: true }],
    },
    ids: telegramCodec,
    async validateRegistration(values) {
      const token = (values.token ?? "").trim();
      if (!TOKEN_SHAPE.test(token)) throw fail("not-acceptable", "Telegram refused this bot token: it should look like 123456789:AA… (as @BotFather gives it)");
      try {
        const me = await new Api(token, { apiRoot }).getMe();
        return { token, botId: String(me.id), botUsername: me.username };
      } catch (err) {
        if (err instanceof GrammyError && (err.error_code === 401 || err.error_code === 404)) {
          throw fail("not-acceptable", "Telegram refused this bot token (Unauthorized): check it with @BotFather");
        }
        if (err instanceof HttpError || err instanceof GrammyError) throw fail("unavailable", "Telegram could not be reached to check the token; try again later", { cause: err });
        throw err;
      }
    },
    async openSession(ctx) {
      const token = ctx.registration.token;
      const botId = Number(ctx.registration.botId ?? token?.split(":")[0]);
      if (!token || !Number.isSafeInteger(botId)) throw fail("registration-required", "Register a Telegram bot token first");
      const session = new TelegramSession({ ...ctx, log: ctx.log ?? log }, opts, {
        token,
        botId,
        ...(ctx.registration.botUsername ? { botUsername: ctx.registration.botUsername } : {}),
      });
      sessions.add(session);
      const close = session.close.bind(session);
      session.close = async () => {
        sessions.delete(session);
        await close();
      };
      session.start();
      return session;
    },
    async shutdown() {
      await Promise.all([...sessions].map((s) => s.close()));
    },
  };
}
