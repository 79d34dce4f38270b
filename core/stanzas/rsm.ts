/**
 * Result Set Management (XEP-0059) over a list the gateway holds in full
 * (an IRC server's channel list): parse the request's `<set/>`, cut the page,
 * describe it. Item UIDs are whatever the caller names items by (a room JID).
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { fail } from "../errors.ts";

export const RSM_NS = "http://jabber.org/protocol/rsm";

export interface RsmRequest {
  /** `<max/>`: page size asked for (0: the count only, §2.7). */
  max?: number;
  /** `<after/>`: the page after this UID (§2.2). */
  after?: string;
  /** `<before/>`: the page before this UID (§2.3); `true` for an empty `<before/>`, the last page (§2.5). */
  before?: string | true;
  /** `<index/>`: the page starting at this position (§2.6). */
  index?: number;
}

export interface RsmPage<T> {
  items: T[];
  /** Position of the page's first item in the whole set. */
  firstIndex: number;
  /** Size of the whole set. */
  count: number;
}

function nonNegativeInt(text: string, what: string): number {
  const t = text.trim();
  if (!/^\d{1,9}$/.test(t)) throw fail("bad-request", `RSM ${what} must be a non-negative integer`);
  return Number(t);
}

/** The request in a `<set xmlns=rsm/>`, or undefined without one. Throws bad-request when malformed. */
export function parseRsm(set: Element | undefined): RsmRequest | undefined {
  if (!set) return undefined;
  const req: RsmRequest = {};
  const max = set.getChildText("max");
  if (max !== null) req.max = nonNegativeInt(max, "max");
  const after = set.getChild("after");
  if (after) {
    const id = after.getText();
    // An empty <after/> names no item (only <before/> has an empty form, §2.5).
    if (id === "") throw fail("bad-request", "RSM after needs a UID");
    req.after = id;
  }
  const before = set.getChild("before");
  if (before) req.before = before.getText() === "" ? true : before.getText();
  const index = set.getChildText("index");
  if (index !== null) req.index = nonNegativeInt(index, "index");
  if (req.after !== undefined && req.before !== undefined) throw fail("bad-request", "RSM after and before cannot be combined");
  return req;
}

/**
 * The page `req` asks for out of `all`, at most `limits.max` items (also the
 * size without `<max/>`: a service may return fewer items than asked, §2.1).
 * A UID in after/before that is not in the set is item-not-found (§2.4).
 */
export function rsmPage<T>(all: readonly T[], uidOf: (item: T) => string, req: RsmRequest | undefined, limits: { max: number }): RsmPage<T> {
  const count = all.length;
  const size = Math.min(req?.max ?? limits.max, limits.max);
  const position = (uid: string): number => {
    const i = all.findIndex((item) => uidOf(item) === uid);
    if (i < 0) throw fail("not-found", "No such item in this result set");
    return i;
  };
  let start: number;
  if (req?.after !== undefined) start = position(req.after) + 1;
  else if (req?.before === true) start = Math.max(0, count - size);
  else if (req?.before !== undefined) start = Math.max(0, position(req.before) - size);
  else start = Math.min(req?.index ?? 0, count);
  // A page before an item ends right before it, even when fewer than `size` items precede it.
  const end = typeof req?.before === "string" ? position(req.before) : Math.min(count, start + size);
  return { items: all.slice(start, Math.max(start, end)), firstIndex: start, count };
}

/**
 * The `<set/>` describing a page: `<first index=…/>` and `<last/>` when it
 * holds items, `<count/>` always (an empty page carries no first/last, §2.2).
 */
export function rsmResult<T>(page: RsmPage<T>, uidOf: (item: T) => string): Element {
  const first = page.items[0];
  const last = page.items[page.items.length - 1];
  return xml(
    "set",
    { xmlns: RSM_NS },
    first !== undefined ? xml("first", { index: String(page.firstIndex) }, uidOf(first)) : undefined,
    last !== undefined ? xml("last", {}, uidOf(last)) : undefined,
    xml("count", {}, String(page.count)),
  );
}
