/**
 * In-band registration (XEP-0077, with XEP-0004 forms) and the XEP-0100 flow:
 * after registering, the gateway asks to subscribe to the user's presence so
 * it can log them in when they come online; unregistering logs them out and
 * removes everything kept for them. Also jabber:iq:gateway (XEP-0100 §6.3).
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { fail } from "../errors.ts";
import type { Network } from "../network.ts";
import { NS } from "../stanzas/ns.ts";
import { checkFields, readForm, renderForm } from "../stanzas/form.ts";
import { escapeLocal } from "../jid.ts";
import { removeContacts } from "../contacts.ts";
import { gatewayPresence } from "./presence.ts";

export async function registerGet(net: Network, user: string): Promise<Element> {
  const current = await net.store.registrations.get(user, net.name);
  const { fields, instructions } = net.adapter.registration;
  return xml(
    "query",
    { xmlns: NS.register },
    current ? xml("registered") : undefined,
    xml("instructions", {}, instructions),
    renderForm(fields, { title: `Register with ${net.adapter.displayName}`, instructions, values: current, formType: NS.register }),
  );
}

/** Validates and stores a registration; returns true if it was new. */
export async function register(net: Network, user: string, submitted: Record<string, string>): Promise<boolean> {
  const { fields } = net.adapter.registration;
  const previous = await net.store.registrations.get(user, net.name);
  // Secret fields left empty on an edit keep their stored value (we never echo secrets in forms).
  const merged = { ...submitted };
  for (const f of fields) if (f.secret && !merged[f.var] && previous?.[f.var]) merged[f.var] = previous[f.var]!;
  const checked = checkFields(fields, merged);
  const values = await net.adapter.validateRegistration(checked);
  await net.store.registrations.set(user, net.name, values, fields.filter((f) => f.secret).map((f) => f.var));
  if (previous) {
    // New credentials: reconnect with them. The old session's rooms are gone
    // with it: each joined resource is told (XEP-0045 status 333), or its
    // client would keep showing rooms the gateway no longer relays.
    leaveAllRooms(net, user, "Registration changed");
    await net.sessions.close(user, "Registration changed");
    // The closed session's status is not relayed any more: the gateway contact shows the change itself.
    net.send(gatewayPresence(net, user));
  }
  // XEP-0100 §4.4: a user online to the gateway is logged in (again), whether
  // they registered with jabber:iq:register or the ad-hoc command.
  if (net.sessions.isOnline(user) && net.adapter.registration.required) {
    void net.sessions.get(user).catch((err: unknown) => net.log.warn({ err }, "login after registration failed"));
  }
  return !previous;
}

/** Every room of the user ends for each joined resource (status 333), then is forgotten without telling the network. */
function leaveAllRooms(net: Network, user: string, reason: string): void {
  net.rooms.closeAll(user, reason);
  net.rooms.forgetUser(user);
}

export async function unregister(net: Network, user: string): Promise<void> {
  leaveAllRooms(net, user, "Unregistered from the gateway");
  await net.sessions.close(user, "Unregistered");
  // The contacts the gateway put in the user's roster go too (before the store forgets which).
  await removeContacts(net, user);
  await net.store.purgeUser(user, net.name);
  await net.archive?.purgeUser(user, net.name);
  // XEP-0077 §3.2 / XEP-0100 §4.3: the gateway cancels both subscriptions.
  net.send(xml("presence", { from: net.domain, to: user, type: "unsubscribe" }));
  net.send(xml("presence", { from: net.domain, to: user, type: "unsubscribed" }));
  net.send(xml("presence", { from: net.domain, to: user, type: "unavailable" }));
}

export async function registerSet(net: Network, stanza: Element, user: string): Promise<void> {
  const query = stanza.getChild("query", NS.register)!;
  if (query.getChild("remove")) {
    // XEP-0077 §3.2: <remove/> must be the only child (bad-request), and
    // cancelling a registration that does not exist is registration-required.
    if (query.getChildElements().length !== 1) throw fail("bad-request", "<remove/> must be the only element of the query");
    const current = await net.store.registrations.get(user, net.name);
    if (!current) throw fail("registration-required", "You are not registered");
    await unregister(net, user);
    return;
  }
  const form = query.getChild("x", NS.data);
  let submitted: Record<string, string>;
  if (form) submitted = readForm(form);
  else {
    // XEP-0077 §3 legacy fields: children named like the adapter's fields.
    submitted = {};
    for (const f of net.adapter.registration.fields) {
      const v = query.getChildText(f.var);
      if (v !== null) submitted[f.var] = v;
    }
    if (Object.keys(submitted).length === 0 && net.adapter.registration.fields.length > 0) {
      throw fail("bad-request", "Submit the registration form");
    }
  }
  const isNew = await register(net, user, submitted);
  if (isNew) net.send(xml("presence", { from: net.domain, to: user, type: "subscribe" }));
}

/** XEP-0100 §6.3: the prompt names the legacy address; the answer is its JID. */
export function gatewayGet(net: Network): Element {
  return xml(
    "query",
    { xmlns: NS.gateway },
    xml("desc", {}, `Enter the ${net.adapter.displayName} address of a contact or room`),
    xml("prompt", {}, `${net.adapter.displayName} address`),
  );
}

export function gatewaySet(net: Network, stanza: Element): Element {
  const prompt = stanza.getChild("query", NS.gateway)?.getChildText("prompt")?.trim() ?? "";
  if (!prompt) throw fail("bad-request", "Empty address");
  const local = escapeLocal(prompt);
  if (!net.addressOf(local)) throw fail("not-acceptable", `Not a valid ${net.adapter.displayName} address: ${prompt}`);
  return xml("query", { xmlns: NS.gateway }, xml("jid", {}, `${local}@${net.domain}`));
}
