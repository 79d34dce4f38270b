/**
 * Ad-hoc commands (XEP-0050) on the gateway domain: for users, registration
 * and settings, unregistering, the state of their session; for admins
 * (access.admins), listing users, disconnecting one, statistics.
 * Every command acts on the requester's own bare JID unless it is an admin
 * command, which is refused to non-admins (forbidden).
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { fail } from "../errors.ts";
import type { Network } from "../network.ts";
import { NS } from "../stanzas/ns.ts";
import { readForm, renderForm, resultForm } from "../stanzas/form.ts";
import { failWithCondition } from "../stanzas/error.ts";
import { register, unregister } from "./register.ts";
import { metrics } from "../metrics.ts";
import { randomId } from "../ids.ts";
import { gatewayPresence } from "./presence.ts";

export interface Command {
  node: string;
  name: string;
  admin: boolean;
  /** First step: a form to fill, or the final result. */
  start(net: Network, user: string): Promise<Step>;
  /** Second step, with the submitted form. */
  submit?(net: Network, user: string, values: Record<string, string>): Promise<Step>;
}

export type Step = { form: Element } | { done: Element | string };

const userJidField = (): Element => xml("field", { var: "jid", type: "jid-single", label: "User's bare JID" }, xml("required"));

/** A XEP-0004 form with a title and the given fields (and instructions, if any). */
function simpleForm(title: string, ...children: Element[]): Element {
  return xml("x", { xmlns: NS.data, type: "form" }, xml("title", {}, title), ...children);
}

const COMMANDS: Command[] = [
  {
    node: "register",
    name: "Register or change settings",
    admin: false,
    async start(net, user) {
      const current = await net.store.registrations.get(user, net.name);
      const { fields, instructions } = net.adapter.registration;
      return { form: renderForm(fields, { title: `${net.adapter.displayName} account`, instructions, values: current }) };
    },
    async submit(net, user, values) {
      const isNew = await register(net, user, values);
      if (isNew) net.send(xml("presence", { from: net.domain, to: user, type: "subscribe" }));
      return { done: isNew ? "Registered." : "Settings saved." };
    },
  },
  {
    node: "unregister",
    name: "Unregister and delete my data",
    admin: false,
    async start(net, user) {
      if (!(await net.store.registrations.get(user, net.name))) return { done: "You are not registered." };
      return {
        form: simpleForm(
          "Unregister",
          xml("field", { var: "confirm", type: "boolean", label: "Delete my registration and all data kept for me" }, xml("required")),
        ),
      };
    },
    async submit(net, user, values) {
      if (values.confirm !== "1" && values.confirm !== "true") return { done: "Nothing done." };
      await unregister(net, user);
      return { done: "Unregistered; everything kept for you was deleted." };
    },
  },
  {
    node: "status",
    name: "My session status",
    admin: false,
    async start(net, user) {
      const st = net.sessions.state(user);
      const rooms = net.rooms.list(user).map((r) => r.room);
      return {
        done: resultForm("Session", {
          state: st ? st.state : "not connected",
          details: st?.text ?? "",
          rooms: rooms.join(", "),
          registered: (await net.store.registrations.get(user, net.name)) ? "yes" : "no",
        }),
      };
    },
  },
  {
    node: "admin/users",
    name: "List users (admin)",
    admin: true,
    async start(net) {
      const registered = await net.store.registrations.list(net.name);
      const active = net.sessions.users();
      return {
        done: resultForm("Users", {
          registered: registered.map((r) => r.user).sort().join("\n"),
          active: active.sort().join("\n"),
        }),
      };
    },
  },
  {
    node: "admin/disconnect",
    name: "Disconnect a user (admin)",
    admin: true,
    async start() {
      return {
        form: simpleForm("Disconnect a user", userJidField()),
      };
    },
    async submit(net, _user, values) {
      const target = (values.jid ?? "").trim().toLowerCase();
      if (!net.sessions.state(target)) return { done: `${target} has no session.` };
      net.rooms.closeAll(target, "Disconnected by an administrator");
      await net.sessions.close(target, "Disconnected by an administrator");
      // The closed session's own status change is not sent; without this the user's roster
      // keeps showing the gateway online (XEP-0100 §4.4: the gateway's presence is the session's).
      net.send(gatewayPresence(net, target));
      return { done: `${target} disconnected.` };
    },
  },
  {
    node: "admin/ban",
    name: "Ban or unban a user (admin)",
    admin: true,
    async start(net) {
      return {
        form: simpleForm(
          "Ban a user",
          xml("instructions", {}, `Banned now: ${net.access.banned().join(", ") || "nobody"}`),
          userJidField(),
          xml("field", { var: "unban", type: "boolean", label: "Lift the ban instead" }, xml("value", {}, "0")),
        ),
      };
    },
    async submit(net, user, values) {
      const target = (values.jid ?? "").trim().toLowerCase();
      if (!/^[^@/\s]+@[^@/\s]+$/.test(target)) throw fail("not-acceptable", "Give a bare JID (user@domain)");
      if (target === user) throw fail("not-acceptable", "You cannot ban yourself");
      const lift = values.unban === "1" || values.unban === "true";
      if (lift) net.access.unban(target);
      else net.access.ban(target);
      await net.store.scoped("~gateway", "core").set("banned", net.access.banned());
      if (lift) return { done: `${target} may use the gateway again.` };
      // A ban takes effect at once: the user's sessions on every network are closed.
      for (const n of net.peers()) {
        n.rooms.closeAll(target, "Banned by an administrator");
        n.rooms.forgetUser(target);
        await n.sessions.close(target, "Banned by an administrator");
        n.send(gatewayPresence(n, target));
      }
      return { done: `${target} is banned; their session was closed.` };
    },
  },
  {
    node: "admin/announce",
    name: "Send an announcement to every user (admin)",
    admin: true,
    async start() {
      return {
        form: simpleForm("Announcement", xml("field", { var: "text", type: "text-multi", label: "Text" }, xml("required"))),
      };
    },
    async submit(net, _user, values) {
      const text = (values.text ?? "").trim();
      if (!text) throw fail("not-acceptable", "The announcement is empty");
      const users = new Set([...(await net.store.registrations.list(net.name)).map((r) => r.user), ...net.sessions.users()]);
      for (const to of users) {
        net.send(xml("message", { type: "headline", from: net.domain, to, id: randomId() }, xml("subject", {}, "Gateway announcement"), xml("body", {}, text)));
      }
      return { done: `Sent to ${users.size} users.` };
    },
  },
  {
    node: "admin/stats",
    name: "Gateway statistics (admin)",
    admin: true,
    async start(net) {
      const mem = process.memoryUsage();
      const uptime = Math.max(1, (Date.now() - net.startedAt.getTime()) / 1000);
      const relayed = (await metrics.messages.get()).values.filter((v) => v.labels.network === net.name);
      const count = (direction: string): number => relayed.filter((v) => v.labels.direction === direction).reduce((n, v) => n + v.value, 0);
      const rate = (n: number): string => `${(n / uptime).toFixed(2)} msg/s (${n} since start)`;
      return {
        done: resultForm("Statistics", {
          uptime: `${Math.round(uptime)} s`,
          "messages to the network": rate(count("out")),
          "messages from the network": rate(count("in")),
          sessions: String(net.sessions.users().length),
          registered: String((await net.store.registrations.list(net.name)).length),
          rss: `${Math.round(mem.rss / 1048576)} MiB`,
          component: net.link.state,
        }),
      };
    },
  },
];

/**
 * Commands other modules add on a network's domain (room bridging's
 * admin/bridge-*): a provider returns the commands for a network (none for a
 * network of another gateway in the same process). Same contract and the same
 * admin check as the built-in ones. The returned function removes the provider.
 */
const providers = new Set<(net: Network) => Command[]>();

export function registerAdminCommands(provider: (net: Network) => Command[]): () => void {
  providers.add(provider);
  return () => void providers.delete(provider);
}

function commandsOf(net: Network): Command[] {
  return [...COMMANDS, ...[...providers].flatMap((p) => p(net))];
}

/** Commands on a service JID (an IRC server): the user's settings for it. */
const CONFIGURE: Command = {
  node: "configure",
  name: "Configure this server",
  admin: false,
  async start() {
    throw new Error("bound per service");
  },
};

function serviceOf(net: Network, to: string): string | undefined {
  const at = to.indexOf("@");
  if (at < 0 || to.slice(at + 1) !== net.domain) return undefined;
  const address = net.addressOf(to.slice(0, at));
  return address?.kind === "service" ? address.service : undefined;
}

function configureFor(net: Network, service: string): Command | undefined {
  const settings = net.adapter.serviceSettings;
  if (!settings) return undefined;
  return {
    ...CONFIGURE,
    name: `Configure ${service}`,
    async start(n, user) {
      const current = (await n.store.scoped(user, n.name).get<Record<string, unknown>>(settings.key(service))) ?? {};
      const values = Object.fromEntries(
        Object.entries(current).map(([k, v]) => [k, Array.isArray(v) ? v.join("\n") : String(v)]),
      );
      return { form: renderForm(settings.fields, { title: `Your settings for ${service}`, values }) };
    },
    async submit(n, user, values) {
      const store = n.store.scoped(user, n.name);
      const previous = (await store.get<Record<string, unknown>>(settings.key(service))) ?? {};
      // Secret fields left empty keep their stored value (secrets are never echoed in forms).
      const merged: Record<string, string> = { ...values };
      for (const f of settings.fields) {
        if (f.secret && !merged[f.var] && typeof previous[f.var] === "string") merged[f.var] = previous[f.var] as string;
      }
      const clean = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== ""));
      await store.set(settings.key(service), settings.validate(clean));
      return { done: `Saved; they apply the next time you connect to ${service}.` };
    },
  };
}

export function commandItems(net: Network, user: string, to: string): { jid: string; node: string; name: string }[] {
  const service = serviceOf(net, to);
  if (service !== undefined) {
    const cmd = configureFor(net, service);
    return cmd ? [{ jid: to, node: cmd.node, name: cmd.name }] : [];
  }
  if (to !== net.domain) return [];
  const admin = net.access.isAdmin(user);
  return commandsOf(net).filter((c) => admin || !c.admin).map((c) => ({ jid: net.domain, node: c.node, name: c.name }));
}

/** The actions XEP-0050 §3.4 defines. */
const ACTIONS = new Set(["execute", "cancel", "prev", "next", "complete"]);

/** Pending multi-step commands; bounded, oldest evicted. */
const pending = new Map<string, { node: string; user: string; network: string; to: string }>();
const MAX_PENDING = 1000;
const MAX_PENDING_PER_USER = 10;

export async function executeCommand(net: Network, stanza: Element, user: string): Promise<Element> {
  const cmdEl = stanza.getChild("command", NS.commands)!;
  const node = cmdEl.attrs.node ?? "";
  const to = stanza.attrs.to ?? "";
  const service = serviceOf(net, to);
  const command =
    service !== undefined
      ? node === CONFIGURE.node
        ? configureFor(net, service)
        : undefined
      : to === net.domain
        ? commandsOf(net).find((c) => c.node === node)
        : undefined;
  if (!command) throw fail("not-found", "No such command");
  if (command.admin && !net.access.isAdmin(user)) throw fail("forbidden", "Only gateway administrators may run this command");
  const action = cmdEl.attrs.action ?? "execute";
  const sessionId = cmdEl.attrs.sessionid;
  const reply = (status: string, sid: string, ...children: (Element | undefined)[]): Element =>
    xml("command", { xmlns: NS.commands, node, sessionid: sid, status }, ...children);

  if (sessionId) {
    const p = pending.get(sessionId);
    // A session id is only valid for the user and network that started it
    // (XEP-0050 §4.4: bad-request with <bad-sessionid/>).
    if (!p || p.user !== user || p.node !== node || p.network !== net.name || p.to !== to) {
      throw failWithCondition("bad-request", "Unknown or expired command session", { name: "bad-sessionid", xmlns: NS.commands });
    }
    if (action === "cancel") {
      pending.delete(sessionId);
      return reply("canceled", sessionId);
    }
    // XEP-0050 §4.4: an action that is not defined is <malformed-action/>; one the
    // stage does not offer (our forms have one stage: only complete) is <bad-action/>.
    // Either way the session stays, so the client can still complete or cancel it.
    if (!ACTIONS.has(action)) throw failWithCondition("bad-request", `Unknown action ${action}`, { name: "malformed-action", xmlns: NS.commands });
    if (action !== "execute" && action !== "complete") {
      throw failWithCondition("bad-request", `The ${action} action is not available here: complete or cancel`, { name: "bad-action", xmlns: NS.commands });
    }
    const x = cmdEl.getChild("x", NS.data);
    if (!x || !command.submit) throw failWithCondition("bad-request", "Submit the form", { name: "bad-payload", xmlns: NS.commands });
    const step = await command.submit(net, user, readForm(x));
    // Only a submission that went through ends the session: a refused one can be corrected and sent again.
    pending.delete(sessionId);
    return finish(reply, sessionId, step);
  }
  if (action === "cancel") throw fail("bad-request", "Nothing to cancel");
  const step = await command.start(net, user);
  const sid = randomId();
  if ("form" in step) {
    // Bounded per user first, so one user opening forms cannot push out everyone else's.
    const mine = [...pending].filter(([, p]) => p.user === user);
    if (mine.length >= MAX_PENDING_PER_USER) pending.delete(mine[0]![0]);
    else if (pending.size >= MAX_PENDING) pending.delete(pending.keys().next().value!);
    pending.set(sid, { node, user, network: net.name, to });
    return reply("executing", sid, xml("actions", { execute: "complete" }, xml("complete")), step.form);
  }
  return finish(reply, sid, step);
}

function finish(reply: (status: string, sid: string, ...c: (Element | undefined)[]) => Element, sid: string, step: Step): Element {
  if ("form" in step) return reply("executing", sid, xml("actions", { execute: "complete" }, xml("complete")), step.form);
  const done = step.done;
  return typeof done === "string" ? reply("completed", sid, xml("note", { type: "info" }, done)) : reply("completed", sid, done);
}
