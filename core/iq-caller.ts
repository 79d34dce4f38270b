/**
 * IQs the gateway itself sends (pings to users' resources): matches the
 * result or error to the request by id and sender, with a deadline.
 */
import type { Element } from "@xmpp/xml";
import { fail } from "./errors.ts";

export class IqCaller {
  private readonly pending = new Map<string, { to: string; resolve: (el: Element) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly send: (el: Element) => void;

  constructor(send: (el: Element) => void) {
    this.send = send;
  }

  /** Sends an iq (which must have an id and a to) and resolves with the result; rejects on error or timeout. */
  request(iq: Element, timeoutMs = 10_000): Promise<Element> {
    const id = iq.attrs.id!;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(fail("timeout", "no answer"));
      }, timeoutMs);
      this.pending.set(id, { to: iq.attrs.to ?? "", resolve, reject, timer });
      this.send(iq);
    });
  }

  /** True when the stanza answered one of our requests (and was consumed). */
  take(stanza: Element): boolean {
    if (stanza.name !== "iq" || (stanza.attrs.type !== "result" && stanza.attrs.type !== "error")) return false;
    const p = this.pending.get(stanza.attrs.id ?? "");
    // The answer must come from whom we asked, or anyone could resolve our requests.
    if (!p || p.to !== stanza.attrs.from) return false;
    this.pending.delete(stanza.attrs.id!);
    clearTimeout(p.timer);
    if (stanza.attrs.type === "result") p.resolve(stanza);
    else p.reject(Object.assign(fail("unavailable", "error answer"), { element: stanza }));
    return true;
  }

  cancelAll(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(fail("unavailable", "gateway stopping"));
    }
    this.pending.clear();
  }
}
