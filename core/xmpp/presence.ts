/**
 * Inbound presence: subscriptions and availability towards the gateway
 * (XEP-0100 §4), MUC join / nick change / leave towards rooms (XEP-0045 §7),
 * and subscriptions to contacts (auto-approved: a gateway contact is public).
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { asEstuaryError, fail } from "../errors.ts";
import type { Network } from "../network.ts";
import type { Show } from "../model.ts";
import { NS } from "../stanzas/ns.ts";
import { capsElement } from "./disco.ts";
import { parseMucHistory } from "../history/mam.ts";
import { lastPresence } from "../contacts.ts";

/** The gateway's presence towards a user: reflects their session's state. */
export function gatewayPresence(net: Network, user: string, to: string = user): Element {
  const st = net.sessions.state(user);
  if (!st || st.state === "offline") {
    return xml("presence", { from: net.domain, to, type: "unavailable" }, st?.text ? xml("status", {}, st.text) : undefined);
  }
  const show = st.state === "online" ? undefined : st.state === "error" ? "xa" : "away";
  const defaultText = { online: undefined, connecting: "Connecting…", degraded: "Reconnecting…", error: "Error" }[st.state];
  const text = st.text ?? defaultText;
  return xml(
    "presence",
    { from: net.domain, to },
    show ? xml("show", {}, show) : undefined,
    text ? xml("status", {}, text) : undefined,
    capsElement(net, "gateway"),
  );
}

export async function handlePresence(net: Network, stanza: Element, from: { bare: string; full: string }, to: { local?: string; resource?: string }): Promise<void> {
  const type = stanza.attrs.type;
  if (to.local === undefined) return toGateway(net, stanza, from, type);
  const address = net.addressOf(to.local);
  if (!address) throw fail("not-found", "No such room or contact on this gateway");
  if (address.kind === "room") {
    if (type === "error") {
      // A delivery error from one of the user's resources: it is gone (XEP-0045 §7.14, no ghosts).
      await net.rooms.leave(from.bare, from.full, address.room, undefined, false);
      return;
    }
    if (type === "unavailable") {
      await net.rooms.leave(from.bare, from.full, address.room, stanza.getChildText("status") ?? undefined);
      return;
    }
    if (type !== undefined) return; // subscriptions to rooms mean nothing
    if (!to.resource) {
      // XEP-0045 §7.2.1: a join without a nickname is jid-malformed (modify), from the room's bare JID.
      // The error kinds have no jid-malformed, so the presence error is built here.
      const roomJid = net.jidOf(address);
      net.send(
        xml(
          "presence",
          { from: roomJid, to: from.full, type: "error", id: stanza.attrs.id },
          xml("x", { xmlns: NS.muc }),
          xml("error", { type: "modify", by: roomJid }, xml("jid-malformed", { xmlns: NS.stanzas }), xml("text", { xmlns: NS.stanzas, "xml:lang": "en" }, "Add a nickname to join a room (room@domain/nick)")),
        ),
      );
      return;
    }
    if (!net.adapter.capabilities.rooms) throw fail("unsupported", `${net.adapter.displayName} has no rooms`);
    const password = stanza.getChild("x", NS.muc)?.getChildText("password") ?? undefined;
    const showText = stanza.getChildText("show");
    const show: Show = showText === "away" || showText === "xa" || showText === "dnd" || showText === "chat" ? showText : "available";
    const rejoin = stanza.getChild("x", NS.muc) !== undefined;
    await net.rooms.join(from.bare, from.full, address.room, to.resource, password, { show, status: stanza.getChildText("status") ?? undefined }, parseMucHistory(stanza), rejoin);
    return;
  }
  const contactJid = `${to.local}@${net.domain}`;
  switch (type) {
    case "subscribe": {
      net.send(xml("presence", { from: contactJid, to: from.bare, type: "subscribed" }));
      // RFC 6121 §3.1.5: after approving, the contact's current presence follows, so the
      // new roster item is not shown offline until the network happens to say something.
      const current = address.kind === "contact" ? lastPresence(net, from.bare, address.contact, from.bare) : undefined;
      if (current) net.send(current);
      return;
    }
    case "unsubscribe":
      net.send(xml("presence", { from: contactJid, to: from.bare, type: "unsubscribed" }));
      return;
    case "probe":
      // RFC 6121 §4.3: the contact's current presence, or unavailable when the gateway knows none.
      net.send(
        address.kind === "contact"
          ? (lastPresence(net, from.bare, address.contact, from.full) ?? xml("presence", { from: contactJid, to: from.full, type: "unavailable" }))
          : xml("presence", { from: contactJid, to: from.full, type: "unavailable" }),
      );
      return;
    default:
      return;
  }
}

async function toGateway(net: Network, stanza: Element, from: { bare: string; full: string }, type: string | undefined): Promise<void> {
  switch (type) {
    case "subscribe":
      // XEP-0100 §4.1.1 step 8–9: approve the user's subscription to the gateway.
      net.send(xml("presence", { from: net.domain, to: from.bare, type: "subscribed" }));
      net.send(gatewayPresence(net, from.bare));
      return;
    case "unsubscribe":
      net.send(xml("presence", { from: net.domain, to: from.bare, type: "unsubscribed" }));
      return;
    case "subscribed":
    case "unsubscribed":
    case "error":
      return;
    case "probe":
      net.send(gatewayPresence(net, from.bare, from.full));
      return;
    case "unavailable":
      if (net.sessions.resourceUnavailable(from.bare, from.full)) {
        // XEP-0100 §4.5: the user's last resource left: log them out of the network.
        net.rooms.forgetUser(from.bare);
        await net.sessions.close(from.bare, "User went offline");
      }
      net.send(xml("presence", { from: net.domain, to: from.full, type: "unavailable" }));
      return;
    case undefined: {
      net.sessions.resourceAvailable(from.bare, from.full);
      const registered = await net.store.registrations.get(from.bare, net.name);
      // XEP-0100 §4.4: a registered user coming online is logged in to the network.
      if (registered && net.adapter.registration.required) {
        try {
          await net.sessions.get(from.bare);
        } catch (err) {
          // The user sees why in the gateway contact's status, rather than a gateway that stays grey.
          const e = asEstuaryError(err);
          net.log.warn({ kind: e.kind }, "login failed");
          net.send(xml("presence", { from: net.domain, to: from.full }, xml("show", {}, "xa"), xml("status", {}, `Login failed: ${e.kind === "internal" ? "internal error" : e.message}`)));
          return;
        }
      }
      net.send(gatewayPresence(net, from.bare, from.full));
      void stanza;
      return;
    }
    default:
      throw fail("bad-request", `Unknown presence type ${type}`);
  }
}
