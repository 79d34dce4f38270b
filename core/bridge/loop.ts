/**
 * Echo and duplicate suppression: a message is relayed once to every other
 * leg and never back to where it came from. What a leg sees of the bridge's
 * own output (MUC reflection, IRC echo-message, Matrix sync, a replay after a
 * reconnect) must be recognised and dropped:
 *
 * - `isOwnXmpp`: in the MUC, messages from an occupant the bridge plays (a
 *   puppet or the relay) or carrying an origin-id the bridge minted;
 * - `self`: network legs mark the relay account's own messages (the adapters
 *   already drop echoes of what the session sent; `self` catches the rest);
 * - `Recent`: the last ids seen per leg, so a replayed event is relayed once
 *   even before the persistent id map (ids.ts) has it; the id map then
 *   catches replays across restarts.
 */
import { OWN_ID_PREFIX } from "./ids.ts";

export function isOwnXmpp(o: { nick: string; ids: string[]; relayNick: string; puppetNicks: ReadonlySet<string> }): boolean {
  if (o.nick === o.relayNick || o.puppetNicks.has(o.nick)) return true;
  return o.ids.some((id) => id.startsWith(OWN_ID_PREFIX));
}

/** A bounded set of recently seen keys (insertion order eviction). */
export class Recent {
  readonly #seen = new Set<string>();
  readonly #max: number;

  constructor(max = 5000) {
    this.#max = max;
  }

  /** True when `key` was already seen; remembers it otherwise. */
  seen(key: string): boolean {
    if (this.#seen.has(key)) return true;
    this.#seen.add(key);
    if (this.#seen.size > this.#max) this.#seen.delete(this.#seen.values().next().value!);
    return false;
  }

  has(key: string): boolean {
    return this.#seen.has(key);
  }
}

/** Nick candidates for a puppet: the person's own, then with the network, then numbered. */
export function* nickCandidates(nick: string, network: string): Generator<string> {
  yield nick;
  yield `${nick} [${network}]`;
  for (let i = 2; i < 100; i++) yield `${nick} [${network}] ${i}`;
}
