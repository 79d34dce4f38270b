/**
 * Network contacts in the user's XMPP roster.
 *
 * The first time a contact shows up for a user (a named presence, a 1:1
 * message), the core makes sure it is in the user's roster, once per
 * (user, contact):
 * - when the user's server granted this component roster `set`/`both`
 *   (XEP-0356, core/xmpp/privilege.ts), with a roster push: subscription
 *   `both`, the contact's name, a group named after the network;
 * - otherwise as XEP-0100 §6.2 says: the contact asks to subscribe to the
 *   user (`subscribe` with a XEP-0172 nick), the user's client asks the user;
 *   when the user approves (`subscribed`), the core answers `subscribed` and
 *   sends the contact's current presence. The user's own `subscribe` to the
 *   contact is approved by core/xmpp/presence.ts.
 *
 * What was done is remembered in the user's scoped store (a capped list,
 * oldest dropped first), so unregistering can undo it: pushed items are
 * removed, subscriptions cancelled.
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { splitJid } from "./jid.ts";
import type { Show } from "./model.ts";
import type { Network } from "./network.ts";
import { NS } from "./stanzas/ns.ts";
import { setRosterItem } from "./xmpp/privilege.ts";

/** Contacts remembered per user and network; beyond it the oldest are forgotten (and could be offered again). */
export const MAX_CONTACTS_PER_USER = 1000;
/** (network, user, contact) triples known to be handled, kept in memory so a busy chat does not read the store per event. */
const RECENT_MAX = 10_000;
/** How long a roster push may take before falling back to a subscription request. */
const PUSH_TIMEOUT_MS = 5_000;
export const LEDGER_KEY = "roster:contacts";

/** How a contact reached the roster: a XEP-0356 push, or a subscription request. */
export type Via = "roster" | "subscription";
/** Oldest first. */
export type Ledger = [contact: string, via: Via][];

export function ledgerHas(ledger: Ledger, contact: string): boolean {
  return ledger.some(([c]) => c === contact);
}

/** The ledger with `contact` added last (or moved there), at most `cap` entries: the oldest go first. */
export function ledgerAdd(ledger: Ledger, contact: string, via: Via, cap = MAX_CONTACTS_PER_USER): Ledger {
  const next: Ledger = [...ledger.filter(([c]) => c !== contact), [contact, via]];
  return next.length > cap ? next.slice(next.length - cap) : next;
}

/** A stored value that is not a well-formed ledger (an older format, a bug) counts as empty. */
export function readLedger(raw: unknown): Ledger {
  if (!Array.isArray(raw)) return [];
  return raw.filter(
    (e): e is [string, Via] => Array.isArray(e) && typeof e[0] === "string" && (e[1] === "roster" || e[1] === "subscription"),
  );
}

/** Insertion-ordered map that forgets its oldest entries beyond `max`. */
class Recent<V> {
  private readonly map = new Map<string, V>();
  private readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
  deleteWhere(pred: (key: string) => boolean): void {
    for (const key of [...this.map.keys()]) if (pred(key)) this.map.delete(key);
  }
}

interface LastPresence {
  show: Show;
  status?: string;
  name?: string;
}

/** Per network: what is known handled, and each contact's last presence (sent when the user approves). */
interface State {
  handled: Recent<true>;
  presence: Recent<LastPresence>;
}
const states = new WeakMap<Network, State>();
function stateOf(net: Network): State {
  let s = states.get(net);
  if (!s) {
    s = { handled: new Recent(RECENT_MAX), presence: new Recent(RECENT_MAX) };
    states.set(net, s);
  }
  return s;
}
const keyOf = (user: string, contact: string): string => `${user}\n${contact}`;

/** Remembers a contact's presence so it can be sent when the user approves a subscription. */
export function notePresence(net: Network, user: string, contact: string, presence: LastPresence): void {
  stateOf(net).presence.set(keyOf(user, contact), presence);
}

/**
 * Puts `contact` in the user's roster unless that was done before. Never
 * throws: a refused push falls back to a subscription request, a store
 * failure is logged. Callers serialise calls per user (core/events.ts runs a user's
 * events in order).
 */
export async function ensureContact(net: Network, user: string, contact: string, name?: string): Promise<void> {
  try {
    await ensure(net, user, contact, name);
  } catch (err) {
    // The roster is a convenience: a store failure must not cost the event that triggered it.
    net.log.warn({ err }, "could not add a contact to the user's roster");
  }
}

async function ensure(net: Network, user: string, contact: string, name: string | undefined): Promise<void> {
  const state = stateOf(net);
  const key = keyOf(user, contact);
  if (state.handled.get(key)) return;
  const store = net.store.scoped(user, net.name);
  const ledger = readLedger(await store.get(LEDGER_KEY));
  if (ledgerHas(ledger, contact)) {
    state.handled.set(key, true);
    return;
  }
  const jid = net.jidOf({ kind: "contact", contact });
  let via: Via = "subscription";
  if (net.privileges.canSetRoster(user)) {
    try {
      await setRosterItem(net, user, { jid, ...(name ? { name } : {}), subscription: "both", groups: [net.adapter.displayName] }, PUSH_TIMEOUT_MS);
      via = "roster";
    } catch (err) {
      const condition = (err as { element?: Element }).element?.getChild("error")?.getChildElements()[0]?.name;
      net.log.warn({ condition, err: condition ? undefined : err }, "XEP-0356 roster push failed; asking the user to subscribe instead");
      // A refusal means the grant we hold is stale (the server no longer grants it): stop pushing.
      if (condition === "forbidden") net.privileges.revokeSet(user.slice(user.indexOf("@") + 1));
    }
  }
  if (via === "subscription") {
    // XEP-0100 §6.2: the legacy contact asks to see the user's presence; XEP-0172 carries its name.
    net.send(xml("presence", { from: jid, to: user, type: "subscribe" }, name ? xml("nick", { xmlns: NS.nick }, name) : undefined));
  }
  await store.set(LEDGER_KEY, ledgerAdd(ledger, contact, via));
  state.handled.set(key, true);
}

/**
 * The user approved a contact's subscription request (`subscribed` from the
 * user to a contact JID): the contact answers in kind and shows its presence.
 */
export function onSubscribed(net: Network, user: string, contact: string): void {
  const jid = net.jidOf({ kind: "contact", contact });
  net.send(xml("presence", { from: jid, to: user, type: "subscribed" }));
  const last = lastPresence(net, user, contact, user);
  if (last) net.send(last); // nothing known yet: the next presence event tells
}

/** The contact's last known presence, addressed to `to` (a probe's answer), or undefined if none is known. */
export function lastPresence(net: Network, user: string, contact: string, to: string): Element | undefined {
  const jid = net.jidOf({ kind: "contact", contact });
  const last = stateOf(net).presence.get(keyOf(user, contact));
  if (!last) return undefined;
  return (
    last.show === "offline"
      ? xml("presence", { from: jid, to, type: "unavailable" }, last.status ? xml("status", {}, last.status) : undefined)
      : xml(
          "presence",
          { from: jid, to },
          last.show !== "available" ? xml("show", {}, last.show) : undefined,
          last.status ? xml("status", {}, last.status) : undefined,
          last.name ? xml("nick", { xmlns: NS.nick }, last.name) : undefined,
        )
  );
}

/**
 * Interceptor (Network.interceptors) taking `subscribed` presences from
 * allowed users to contact JIDs: core/xmpp/presence.ts ignores them, and the
 * answer needs the contact state kept here.
 */
export function takeSubscribed(net: Network, stanza: Element): boolean {
  if (stanza.name !== "presence" || stanza.attrs.type !== "subscribed") return false;
  const from = splitJid(stanza.attrs.from ?? "");
  const to = splitJid(stanza.attrs.to ?? "");
  if (!from?.local || !to?.local || to.domain.toLowerCase() !== net.domain) return false;
  const user = `${from.local}@${from.domain}`.toLowerCase();
  if (!net.access.allows(user)) return false;
  const address = net.addressOf(to.local);
  if (address?.kind !== "contact") return false;
  onSubscribed(net, user, address.contact);
  return true;
}

/**
 * Undoes what ensureContact did for a user (on unregister, before the user's
 * store is purged): pushed items are removed while the grant lasts, other
 * contacts cancel both subscriptions (RFC 6121 §3.2, §3.3). Best effort:
 * failures are logged.
 */
export async function removeContacts(net: Network, user: string): Promise<void> {
  const store = net.store.scoped(user, net.name);
  const ledger = readLedger(await store.get(LEDGER_KEY));
  const state = stateOf(net);
  state.handled.deleteWhere((k) => k.startsWith(`${user}\n`));
  state.presence.deleteWhere((k) => k.startsWith(`${user}\n`));
  for (const [contact, via] of ledger) {
    const jid = net.jidOf({ kind: "contact", contact });
    if (via === "roster" && net.privileges.canSetRoster(user)) {
      try {
        await setRosterItem(net, user, { jid, subscription: "remove" }, PUSH_TIMEOUT_MS);
        continue;
      } catch (err) {
        net.log.warn({ err }, "XEP-0356 roster removal failed; cancelling the subscriptions instead");
      }
    }
    net.send(xml("presence", { from: jid, to: user, type: "unsubscribed" }));
    net.send(xml("presence", { from: jid, to: user, type: "unsubscribe" }));
  }
  await store.delete(LEDGER_KEY);
}
