/**
 * Everything the core knows about one enabled network: its adapter, its
 * component stream, its users' sessions and rooms. Handlers in core/xmpp/
 * (XMPP → network) and core/events.ts (network → XMPP) work on this object.
 */
import type { Element } from "@xmpp/xml";
import type { Logger } from "pino";
import type { Adapter, MediaPublisher, SafeFetch } from "./adapter.ts";
import type { ComponentLink } from "./component.ts";
import { addressFor, localpartFor } from "./jid.ts";
import type { Address } from "./model.ts";
import type { Store } from "./store/index.ts";
import type { SessionManager } from "./sessions.ts";
import type { RoomRegistry } from "./rooms.ts";
import type { Access } from "./access.ts";
import type { IqCaller } from "./iq-caller.ts";
import type { Archive } from "./history/archive.ts";
import type { Privileges } from "./xmpp/privilege.ts";

export interface Limits {
  maxBodyBytes: number;
  maxRoomsPerUser: number;
  maxUsers: number;
}

export interface Network {
  readonly name: string;
  readonly domain: string;
  readonly adapter: Adapter;
  readonly link: ComponentLink;
  readonly store: Store;
  readonly access: Access;
  readonly limits: Limits;
  readonly log: Logger;
  readonly sessions: SessionManager;
  readonly rooms: RoomRegistry;
  readonly startedAt: Date;
  /** Present when the HTTP listener is configured. */
  readonly media?: MediaPublisher;
  readonly fetch: SafeFetch;
  /** Every network of this gateway (this one included): a ban applies to all of them. */
  peers(): Network[];
  /**
   * Handlers that see every inbound stanza before access control and routing
   * (room bridging: stanzas from bridged MUCs to puppet JIDs). One that returns
   * true has taken the stanza; the normal path never sees it.
   */
  readonly interceptors: ((stanza: Element) => boolean)[];
  /** The room archive (XEP-0313, join history); absent when history is disabled. */
  readonly archive?: Archive;
  /** history.directMessages: 1:1 chats with contacts go into the archive too (only with `archive`). */
  readonly archiveDirect?: boolean;
  /** IQs the gateway sends itself (XEP-0199 pings to users' resources). */
  readonly iq: IqCaller;
  /** What the user's server granted this component (XEP-0356: roster access), by server domain. */
  readonly privileges: Privileges;
  /** Sends a stanza; a full offline buffer is logged (the stanza's recipient cannot be told: the link is down). */
  send(stanza: Element): void;
  jidOf(address: Address): string;
  addressOf(local: string): Address | undefined;
}

export function addressHelpers(adapter: Adapter, domain: string): Pick<Network, "jidOf" | "addressOf"> {
  return {
    jidOf: (address) => `${localpartFor(adapter.ids, address)}@${domain}`,
    addressOf: (local) => addressFor(adapter.ids, local),
  };
}
