/**
 * IQ routing by payload namespace. Anything we do not implement gets
 * `service-unavailable` (RFC 6120 §8.4), never silence.
 */
import { createRequire } from "node:module";
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { fail } from "../errors.ts";
import type { Network } from "../network.ts";
import { NS } from "../stanzas/ns.ts";
import { executeCommand } from "./commands.ts";
import { mucAdminSet } from "./muc-admin.ts";
import { vcardGet } from "./vcard.ts";
import { mamForm, mamMeta, mamQuery } from "./mam.ts";
import { MAM_NS } from "../history/mam.ts";
import { discoInfo, discoItems } from "./disco.ts";
import { moderateIq } from "./moderate.ts";
import { gatewayGet, gatewaySet, registerGet, registerSet } from "./register.ts";

const VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;

export async function handleIq(net: Network, stanza: Element, from: { bare: string; full: string }, to: { local?: string; resource?: string }): Promise<void> {
  const type = stanza.attrs.type;
  if (type === "result" || type === "error") return;
  if (type !== "get" && type !== "set") throw fail("bad-request", "IQ type must be get or set");
  const payloads = stanza.getChildElements();
  // RFC 6120 §8.2.3: an IQ get/set has exactly one payload.
  if (payloads.length !== 1) throw fail("bad-request", "An IQ request carries exactly one payload");
  const payload = payloads[0]!;
  const ns = payload.attrs.xmlns ?? "";
  const atDomain = to.local === undefined;
  const key = `${type} ${payload.name} ${ns}`;
  let result: Element | undefined;

  switch (key) {
    case `get query ${NS.discoInfo}`:
      result = discoInfo(net, stanza, from.bare);
      break;
    case `get query ${NS.discoItems}`:
      result = await discoItems(net, stanza, from.bare);
      break;
    case `get ping ${NS.ping}`:
      result = await ping(net, from, to);
      break;
    case `get query ${NS.version}`:
      result = xml("query", { xmlns: NS.version }, xml("name", {}, "Estuary"), xml("version", {}, VERSION));
      break;
    case `get query ${NS.register}`:
      if (!atDomain) throw fail("service-unavailable", "Register with the gateway domain");
      result = await registerGet(net, from.bare);
      break;
    case `set query ${NS.register}`:
      if (!atDomain) throw fail("service-unavailable", "Register with the gateway domain");
      await registerSet(net, stanza, from.bare);
      break;
    case `get query ${NS.gateway}`:
      if (!atDomain) throw fail("service-unavailable", "Ask the gateway domain");
      result = gatewayGet(net);
      break;
    case `set query ${NS.gateway}`:
      if (!atDomain) throw fail("service-unavailable", "Ask the gateway domain");
      result = gatewaySet(net, stanza);
      break;
    case `get query ${MAM_NS}`:
      result = mamForm(net, to.local);
      break;
    case `set query ${MAM_NS}`:
      // Results are sent one by one, then the IQ result with <fin/> (XEP-0313 §4.2).
      await mamQuery(net, stanza, from, to.local);
      return;
    case `get metadata ${MAM_NS}`:
      result = await mamMeta(net, from, to.local);
      break;
    case `get vCard ${NS.vcard}`:
      result = await vcardGet(net, from.bare, to.local, to.resource);
      break;
    case `set query ${NS.mucAdmin}`:
      await mucAdminSet(net, stanza, from, to.local);
      break;
    case `set moderate ${NS.moderate}`:
      await moderateIq(net, stanza, from, to);
      break;
    case `set command ${NS.commands}`:
      result = await executeCommand(net, stanza, from.bare);
      break;
    default:
      throw fail("service-unavailable", "This request is not supported here");
  }
  net.send(xml("iq", { type: "result", id: stanza.attrs.id, from: stanza.attrs.to, to: stanza.attrs.from }, result));
}

/** XEP-0199 ping; to room/nick it is XEP-0410 self-ping: answered only for a joined resource. */
async function ping(net: Network, from: { bare: string; full: string }, to: { local?: string; resource?: string }): Promise<undefined> {
  if (to.local === undefined) return undefined;
  const address = net.addressOf(to.local);
  if (!address) throw fail("not-found", "No such entity");
  if (address.kind === "room" && to.resource !== undefined) {
    const state = net.rooms.get(from.bare, address.room);
    // XEP-0410 §3: not-acceptable tells the client to rejoin.
    if (!state || !state.resources.has(from.full)) throw fail("not-acceptable", "You are not joined to this room");
    if (to.resource !== state.nick && !state.occupants.has(to.resource)) throw fail("not-found", "No such occupant");
  }
  return undefined;
}
