/**
 * Entry point of every inbound stanza: checks addresses and access, routes
 * to the iq/presence/message handlers, and turns whatever they throw into
 * the error reply (core/stanzas/error.ts is the only place that decides its
 * shape). A handler bug is logged and answered, never a crash.
 */
import type { Element } from "@xmpp/xml";
import { asEstuaryError, fail } from "../errors.ts";
import { splitJid } from "../jid.ts";
import { metrics } from "../metrics.ts";
import type { Network } from "../network.ts";
import { errorReply } from "../stanzas/error.ts";
import { handleIq } from "./iq.ts";
import { handleMessage } from "./message.ts";
import { handlePresence } from "./presence.ts";
import { takePrivilegeMessage } from "./privilege.ts";

const STANZAS = new Set(["iq", "presence", "message"]);

export async function dispatch(net: Network, stanza: Element): Promise<void> {
  try {
    await route(net, stanza);
  } catch (err) {
    replyWithError(net, stanza, err);
  }
}

/** Answers a stanza with the error `err` stands for (if it may be answered at all). */
export function replyWithError(net: Network, stanza: Element, err: unknown): void {
  {
    const e = asEstuaryError(err);
    // A message that could not be delivered is a delivery failure, whoever refused it.
    if (stanza.name === "message" && stanza.getChild("body")) metrics.deliveryFailures.inc({ network: net.name, direction: "out", kind: e.kind });
    if (e.kind === "internal") net.log.error({ err, stanza: stanza.name }, "handler failed");
    else net.log.debug({ kind: e.kind, text: e.message }, "refused stanza");
    // Only a stanza with a parseable sender can be answered.
    if (stanza.attrs.from && splitJid(stanza.attrs.from)) {
      const reply = errorReply(stanza, e, stanza.attrs.to);
      if (reply) {
        reply.attrs.from = stanza.attrs.to ?? net.domain;
        net.send(reply);
      }
    }
  }
}

async function route(net: Network, stanza: Element): Promise<void> {
  if (!STANZAS.has(stanza.name)) return;
  if (net.iq.take(stanza)) return;
  // XEP-0356 §4.2: the server advertises our privileges from its bare domain, which access control would refuse.
  if (takePrivilegeMessage(net, stanza)) return;
  for (const intercept of net.interceptors) if (intercept(stanza)) return;
  const fromJid = splitJid(stanza.attrs.from ?? "");
  const toJid = splitJid(stanza.attrs.to ?? "");
  if (!fromJid) {
    net.log.warn({ from: stanza.attrs.from }, "stanza with an invalid sender dropped");
    return;
  }
  if (!toJid || toJid.domain.toLowerCase() !== net.domain) throw fail("bad-request", "Invalid recipient address");
  if (fromJid.local === undefined) {
    // Servers and components are not users; only answer what must be answered.
    throw fail("forbidden", "Only users may use this gateway");
  }
  const bare = `${fromJid.local}@${fromJid.domain}`.toLowerCase();
  const full = fromJid.resource === undefined ? bare : `${bare}/${fromJid.resource}`;
  if (!net.access.allows(bare)) {
    const type = stanza.attrs.type;
    if (type === "error" || type === "result") return;
    if (stanza.name === "presence" && type !== undefined && type !== "subscribe" && type !== "probe") return;
    throw fail("forbidden", net.access.isBanned(bare) ? "You are banned from this gateway" : net.access.refusal);
  }
  const from = { bare, full };
  net.sessions.touch(bare);
  const to = { local: toJid.local, resource: toJid.resource };
  switch (stanza.name) {
    case "iq":
      return handleIq(net, stanza, from, to);
    case "presence":
      return handlePresence(net, stanza, from, to);
    case "message":
      return handleMessage(net, stanza, from, to);
  }
}
