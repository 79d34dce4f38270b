/**
 * Bot API failures → typed errors. Telegram answers `{ ok: false,
 * error_code, description }` (https://core.telegram.org/bots/api#making-requests);
 * grammY throws it as a GrammyError, network failures as an HttpError.
 * Descriptions are Telegram's own words and never hold the token.
 */
import { GrammyError, HttpError } from "grammy";
import { EstuaryError, fail } from "../../core/errors.ts";

export function apiError(err: unknown, what = "Telegram refused the request"): EstuaryError {
  if (err instanceof EstuaryError) return err;
  if (err instanceof HttpError) return fail("unavailable", "Telegram is unreachable", { cause: err });
  if (!(err instanceof GrammyError)) return fail("internal", "Internal gateway error", { cause: err });
  const text = `${what}: ${err.description}`;
  const d = err.description.toLowerCase();
  switch (err.error_code) {
    case 400:
      if (/not enough rights|admin_required|can't be (deleted|edited)|not_allowed/.test(d)) return fail("not-allowed", text, { cause: err });
      if (/not found|invalid user_id|user_id_invalid|peer_id_invalid/.test(d)) return fail("not-found", text, { cause: err });
      return fail("not-acceptable", text, { cause: err });
    case 401:
      return fail("unavailable", "Telegram refused the bot token (revoked?)", { cause: err });
    case 403:
      // "bot can't initiate conversation with a user", "bot was blocked by the user", "bot was kicked…"
      return fail("not-allowed", `${text} (a bot can only write to people who started a chat with it, in groups it is a member of)`, { cause: err });
    case 404:
      return fail("not-found", text, { cause: err });
    case 429:
      return fail("rate-limited", text, { cause: err, retryAfter: err.parameters.retry_after });
    default:
      return fail("unavailable", text, { cause: err });
  }
}
