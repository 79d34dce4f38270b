/**
 * Service discovery (XEP-0030) for the gateway domain and every JID under
 * it, and entity capabilities (XEP-0115) for presences the gateway sends.
 */
import { createHash } from "node:crypto";
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { fail } from "../errors.ts";
import type { Network } from "../network.ts";
import { NS } from "../stanzas/ns.ts";
import { roomInfoForm } from "../stanzas/muc.ts";
import { commandItems } from "./commands.ts";
import { MAM_FEATURES } from "../history/mam.ts";
import { archivesDirect } from "../history/direct.ts";
import { parseRsm, rsmPage, rsmResult, RSM_NS } from "../stanzas/rsm.ts";
import type { RoomInfo } from "../model.ts";

export const CAPS_NODE = "https://estuary.example/caps";

interface Info {
  identities: { category: string; type: string; name?: string }[];
  features: string[];
  /** XEP-0128 extended info (a room's muc#roominfo); not part of caps (rooms send none). */
  forms?: Element[];
}

function gatewayInfo(net: Network): Info {
  const identities = [{ category: "gateway", type: net.adapter.gatewayType, name: `Estuary ${net.adapter.displayName} gateway` }];
  if (net.adapter.capabilities.rooms) identities.push({ category: "conference", type: "text", name: `${net.adapter.displayName} rooms` });
  const features: string[] = [NS.discoInfo, NS.discoItems, NS.register, NS.gateway, NS.commands, NS.version, NS.ping, NS.caps];
  if (net.adapter.capabilities.rooms) features.push(NS.muc);
  return { identities, features };
}

function roomInfo(name: string, archived: boolean, moderation: boolean): Info {
  return {
    identities: [{ category: "conference", type: "text", name }],
    // XEP-0045 §6.4 features: gateway rooms are public, open, non-anonymous (we show contact JIDs), temporary.
    features: [
      NS.discoInfo,
      NS.muc,
      "muc_public",
      "muc_open",
      "muc_nonanonymous",
      "muc_temporary",
      "muc_unsecured",
      NS.sid,
      NS.styling,
      NS.occupantId,
      NS.ping,
      ...(archived ? MAM_FEATURES : []),
      // XEP-0425 §3: the room lets its moderators remove messages (where the network can).
      ...(moderation ? [NS.moderate] : []),
    ],
  };
}

/** A contact; with 1:1 archiving on (history.directMessages) its JID holds the user's archive of the chat (XEP-0313, XEP-0359). */
function contactInfo(archived: boolean): Info {
  return {
    identities: [{ category: "client", type: "pc" }],
    features: [NS.discoInfo, NS.chatStates, NS.styling, NS.ping, NS.vcard, ...(archived ? MAM_FEATURES : [])],
  };
}

/**
 * An occupant of a room (`room@gw/nick`): XEP-0045 §6.7 lets the service pass
 * the query to the occupant; the gateway speaks for the remote person, so it
 * answers as that person's client would, never with the room's identity (a
 * client would take the occupant for a room). Only for people the asker's
 * view of the room holds, as for XEP-0410 pings.
 */
function occupantInfo(net: Network, user: string, room: string, nick: string): Info {
  const state = net.rooms.get(user, room);
  if (!state || (nick !== state.nick && !state.occupants.has(nick))) throw fail("not-found", "No such occupant in this room");
  return { identities: [{ category: "client", type: "pc" }], features: [NS.discoInfo, NS.chatStates, NS.styling, NS.ping] };
}

function infoFor(net: Network, to: string, user: string): Info {
  const at = to.indexOf("@");
  if (at < 0) return gatewayInfo(net);
  const slash = to.indexOf("/", at);
  const address = net.addressOf(to.slice(0, at));
  if (!address) throw fail("not-found", "No such room or contact on this gateway");
  if (address.kind === "room" && slash >= 0) return occupantInfo(net, user, address.room, to.slice(slash + 1));
  if (address.kind === "room") {
    const info = roomInfo(address.room, net.archive !== undefined, net.adapter.capabilities.moderation === true);
    return { ...info, forms: [roomInfoForm(net.rooms.roomInfo(user, address.room))] };
  }
  if (address.kind === "service") {
    // disco#items on a service lists its public rooms (IRC LIST), paged with RSM (XEP-0059 §4).
    const features = [NS.discoInfo, NS.commands, ...(net.adapter.capabilities.rooms ? [NS.discoItems, RSM_NS] : [])];
    return { identities: [{ category: "server", type: "im", name: address.service }], features };
  }
  return contactInfo(archivesDirect(net));
}

function infoElement(info: Info, node?: string): Element {
  return xml(
    "query",
    { xmlns: NS.discoInfo, node },
    ...info.identities.map((i) => xml("identity", i)),
    ...[...new Set(info.features)].map((f) => xml("feature", { var: f })),
    ...(info.forms ?? []),
  );
}

/** XEP-0115 §5.1 verification string, SHA-1, base64. */
export function capsVer(info: Info): string {
  const ids = info.identities.map((i) => `${i.category}/${i.type}//${i.name ?? ""}`).sort();
  const feats = [...new Set(info.features)].sort();
  const s = [...ids, ...feats].map((x) => `${x}<`).join("");
  return createHash("sha1").update(s, "utf8").digest("base64");
}

export function capsElement(net: Network, kind: "gateway" | "contact"): Element {
  const info = kind === "gateway" ? gatewayInfo(net) : contactInfo(archivesDirect(net));
  return xml("c", { xmlns: NS.caps, hash: "sha-1", node: CAPS_NODE, ver: capsVer(info) });
}

export function discoInfo(net: Network, stanza: Element, user: string): Element {
  const query = stanza.getChild("query", NS.discoInfo)!;
  const node = query.attrs.node;
  const to = stanza.attrs.to ?? "";
  let info: Info;
  if (node === NS.commands) info = { identities: [{ category: "automation", type: "command-list" }], features: [NS.discoInfo] };
  else if (node && node.startsWith(`${CAPS_NODE}#`)) {
    // A caps hash names either the gateway's or a contact's info (XEP-0115 §6.2).
    const ver = node.slice(CAPS_NODE.length + 1);
    const candidates = [gatewayInfo(net), contactInfo(archivesDirect(net))];
    const match = candidates.find((c) => capsVer(c) === ver);
    if (!match) throw fail("not-found", "Unknown caps node");
    info = match;
  } else if (node) {
    throw fail("not-found", "Unknown node");
  } else info = infoFor(net, to, user);
  void user;
  return infoElement(info, node);
}

export async function discoItems(net: Network, stanza: Element, user: string): Promise<Element> {
  const query = stanza.getChild("query", NS.discoItems)!;
  const node = query.attrs.node;
  const to = stanza.attrs.to ?? "";
  if (node === NS.commands) {
    return xml("query", { xmlns: NS.discoItems, node }, ...commandItems(net, user, to).map((c) => xml("item", c)));
  }
  if (node) throw fail("not-found", "Unknown node");
  if (to.includes("@")) {
    const at = to.indexOf("@");
    const address = to.includes("/", at) ? undefined : net.addressOf(to.slice(0, at));
    if (address?.kind === "service") return serviceItems(net, stanza, user, address.service);
    return xml("query", { xmlns: NS.discoItems });
  }
  // The domain's items (XEP-0045 §6.3 room listing, scoped to the asker): the rooms the user
  // joined here, and the rooms their network account is in (Matrix joined rooms), so a client
  // can offer them as bookmarks.
  const items = new Map(net.rooms.list(user).map((r) => [r.jid, r.room]));
  const session = net.sessions.peek(user);
  if (session?.listRooms) {
    try {
      for (const r of await session.listRooms()) {
        const jid = net.jidOf({ kind: "room", room: r.room });
        if (!items.has(jid)) items.set(jid, r.name ?? r.room);
      }
    } catch (err) {
      net.log.debug({ err }, "listing the network's rooms failed");
    }
  }
  return xml("query", { xmlns: NS.discoItems }, ...[...items].map(([jid, name]) => xml("item", { jid, name })));
}

/** Most rooms in one disco#items page of a service, also the page size when the request has no <max/>. */
export const ROOM_PAGE_MAX = 100;

/** Longest topic shown in an item's name: the name is a label in a room browser, not the topic's home. */
const TOPIC_IN_NAME = 80;

/**
 * An item's name for a listed room: the channel name, its user count and the
 * start of its topic (`#chan (12): topic`), which is what a client's room
 * browser shows to pick a room by (XEP-0045 §6.3 leaves the name to the
 * service; the JID stays the plain room address, as Biboumi's).
 */
export function roomItemName(r: RoomInfo): string {
  let name = r.name ?? r.room;
  if (r.members !== undefined) name += ` (${r.members})`;
  if (r.topic) name += `: ${r.topic.length > TOPIC_IN_NAME ? `${r.topic.slice(0, TOPIC_IN_NAME - 1)}…` : r.topic}`;
  return name;
}

/**
 * A service's public rooms (an IRC server's LIST), XEP-0045 §6.3 on the
 * service's JID, in pages (XEP-0059): sorted by JID so pages follow one
 * order even when the network's list is fetched again between two pages.
 * The session opens if needed, as for a join; the network's refusal is the
 * IQ's error.
 */
async function serviceItems(net: Network, stanza: Element, user: string, service: string): Promise<Element> {
  const query = stanza.getChild("query", NS.discoItems)!;
  const req = parseRsm(query.getChild("set", RSM_NS));
  const session = await net.sessions.get(user);
  if (!session.listRooms) throw fail("unsupported", `${net.adapter.displayName} does not list rooms`);
  // One item per JID (UIDs must be unique for paging), in JID order.
  const byJid = new Map<string, { jid: string; name: string }>();
  for (const r of await session.listRooms(service)) {
    const jid = net.jidOf({ kind: "room", room: r.room });
    if (!byJid.has(jid)) byJid.set(jid, { jid, name: roomItemName(r) });
  }
  const items = [...byJid.values()].sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0));
  const uid = (i: { jid: string }) => i.jid;
  const page = rsmPage(items, uid, req, { max: ROOM_PAGE_MAX });
  return xml("query", { xmlns: NS.discoItems }, ...page.items.map((i) => xml("item", i)), rsmResult(page, uid));
}
