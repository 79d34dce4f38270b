/**
 * IRCv3 chathistory (https://ircv3.net/specs/extensions/chathistory) for an
 * IrcConnection: `CHATHISTORY LATEST <channel> * <n>` when a channel is
 * joined, its `chathistory` batch collected as history (never shown as live
 * chat), and a refusal (`FAIL CHATHISTORY`, 421) or silence answered with no
 * history rather than a stalled join.
 */
import type { LegacyEvent } from "../../core/model.ts";
import type { IrcConnection } from "./connection.ts";
import { ircLower } from "./ids.ts";

/** Longest a CHATHISTORY request may take (a join waits for it) before it counts as unanswered. */
const HISTORY_TIMEOUT_MS = 5000;

/** Most messages kept per answer (and per join replay: incoming.ts). */
export const MAX_REPLAYED = 200;

export type HistoryMessage = Extract<LegacyEvent, { type: "message" }>;

/** A CHATHISTORY LATEST waiting for its `chathistory` batch. */
export interface HistoryRequest {
  limit: number;
  messages: HistoryMessage[];
  finish(messages: HistoryMessage[]): void;
}

export function isHistoryBatch(type: string | undefined): boolean {
  return type === "chathistory" || type === "draft/chathistory";
}

/**
 * The channel's latest messages from the server's own history, n at most
 * the server's ISUPPORT CHATHISTORY, oldest first. [] when the server does
 * not offer it, the channel is not joined, or no answer comes in time.
 */
export async function history(c: IrcConnection, channel: string, limit: number): Promise<HistoryMessage[]> {
  const lower = ircLower(channel);
  const ch = c.channels.get(lower);
  const cap = c.client?.network.cap;
  const offered = cap !== undefined && (cap.isEnabled("chathistory") || cap.isEnabled("draft/chathistory")) && cap.isEnabled("batch");
  if (!ch?.synced || !c.online || !offered || c.historyRequests?.has(lower)) return [];
  // "If 0, the client SHOULD assume that there is no maximum number of messages."
  const max = Number(c.client?.network.options.CHATHISTORY);
  const n = Math.floor(Number.isFinite(max) && max > 0 ? Math.min(limit, max) : limit);
  if (n <= 0) return [];
  const requests = (c.historyRequests ??= new Map());
  return new Promise<HistoryMessage[]>((resolve) => {
    const timer = setTimeout(() => {
      const late = (c.lateHistory ??= new Map());
      late.set(lower, (late.get(lower) ?? 0) + 1);
      c.log.warn({ channel: ch.name }, "no answer to CHATHISTORY in time; joining without the network's history");
      req.finish([]);
    }, Math.min(c.cfg.timeoutMs, HISTORY_TIMEOUT_MS));
    const req: HistoryRequest = {
      limit: n,
      messages: [],
      finish: (messages) => {
        clearTimeout(timer);
        if (requests.get(lower) === req) requests.delete(lower);
        if (requests.size === 0 && c.historyRequests === requests) c.historyRequests = undefined;
        resolve(messages);
      },
    };
    requests.set(lower, req);
    c.enqueue([c.build("CHATHISTORY", ["LATEST", ch.name, "*", String(n)])], true).catch(() => req.finish([]));
  });
}

/**
 * A message inside a `chathistory` batch for `lower`: collected for the
 * request waiting for it, or dropped when that request already timed out.
 * False when neither (the message is handled as any other).
 */
export function collectHistory(c: IrcConnection, lower: string, event: HistoryMessage): boolean {
  const req = c.historyRequests?.get(lower);
  if (req) {
    event.history = true;
    req.messages.push(event);
    if (req.messages.length > MAX_REPLAYED) req.messages.shift();
    return true;
  }
  return c.lateHistory?.has(lower) === true;
}

/** The end of a batch: a `chathistory` one answers the request for its target. */
export function historyBatchEnd(c: IrcConnection, ev: { type?: string; params?: string[] }): void {
  if (!isHistoryBatch(ev.type)) return;
  const lower = ircLower(ev.params?.[0] ?? "");
  const req = c.historyRequests?.get(lower);
  if (req) {
    const out = req.messages.slice(-req.limit);
    // The spec says SHOULD be ascending; make sure (a stable sort keeps equal times in server order).
    if (out.every((m) => m.at)) out.sort((a, b) => a.at!.getTime() - b.at!.getTime());
    req.finish(out);
    return;
  }
  const late = c.lateHistory?.get(lower);
  if (late) {
    if (late > 1) c.lateHistory!.set(lower, late - 1);
    else {
      c.lateHistory!.delete(lower);
      if (c.lateHistory!.size === 0) c.lateHistory = undefined;
    }
  }
}

/** The server refused CHATHISTORY (for `lower`, or for every channel when undefined): no history. */
export function historyRefused(c: IrcConnection, lower: string | undefined): void {
  if (!c.historyRequests) return;
  for (const [l, req] of [...c.historyRequests]) if (lower === undefined || lower === l) req.finish([]);
}
