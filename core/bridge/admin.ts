/**
 * Admin ad-hoc commands (XEP-0050) for bridges, on the domain of EVERY
 * network of the gateway (bridges belong to the gateway, not to one network:
 * an admin finds them wherever they browse commands). Registered through
 * core/xmpp/commands.ts `registerAdminCommands`, so the core refuses them to
 * non-admins (`forbidden`) and hides them from their disco#items.
 *
 *   admin/bridges         list: name, source, state, legs, per-leg state
 *   admin/bridge-create   form → bridgeSchema (the config file's schema) → started and persisted
 *   admin/bridge-pause    by name (config-file bridges too)
 *   admin/bridge-resume   by name
 *   admin/bridge-remove   by name, with a confirmation box; config-file bridges are refused
 *
 * Secrets (Matrix access token, Telegram bot token) are `text-private`
 * fields (XEP-0004 §3.3), never echoed in a form or a listing, and never
 * quoted in an error text.
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import type { z } from "zod";
import { fail } from "../errors.ts";
import type { Gateway } from "../gateway.ts";
import type { Network } from "../network.ts";
import { NS } from "../stanzas/ns.ts";
import type { Command, Step } from "../xmpp/commands.ts";
import { bridgeSchema, type BridgeConfig } from "./config.ts";
import type { BridgeInfo, BridgeManager } from "./manager.ts";

/** Form field → where it goes in a bridge definition (`bridgeSchema` input). */
const FIELDS = [
  { var: "name", label: "Bridge name (letters, digits, _ . -)", type: "text-single", required: true, path: ["name"] },
  { var: "xmpp_room", label: "XMPP room JID (room@conference.example.org)", type: "text-single", path: ["xmpp", "room"] },
  { var: "xmpp_network", label: "Network whose domain hosts the XMPP relay (default: the first network leg's)", type: "text-single", path: ["xmpp", "network"] },
  { var: "irc_server", label: "IRC server", type: "text-single", path: ["irc", "server"] },
  { var: "irc_channel", label: "IRC channel (#name)", type: "text-single", path: ["irc", "channel"] },
  { var: "irc_nick", label: "IRC nick of the relay", type: "text-single", path: ["irc", "nick"] },
  { var: "matrix_homeserver", label: "Matrix homeserver URL", type: "text-single", path: ["matrix", "homeserver"] },
  { var: "matrix_user", label: "Matrix user id of the relay (@bridge:example.org)", type: "text-single", path: ["matrix", "userId"] },
  { var: "matrix_token", label: "Matrix access token of the relay", type: "text-private", path: ["matrix", "accessToken"] },
  { var: "matrix_room", label: "Matrix room (#alias:server or !id:server)", type: "text-single", path: ["matrix", "room"] },
  { var: "telegram_token", label: "Telegram bot token", type: "text-private", path: ["telegram", "token"] },
  { var: "telegram_chat", label: "Telegram group chat id (negative number)", type: "text-single", path: ["telegram", "chat"] },
  { var: "join_part", label: "Legs that get join/part lines (comma-separated: xmpp, irc, matrix, telegram)", type: "text-single", path: ["joinPartRelay"] },
] as const;

/**
 * A bridge definition from the create form's values, validated by the same
 * zod schema as the config file. A leg is present when any of its fields is
 * filled. Throws not-acceptable naming the fields at fault (never their values).
 */
export function definitionFromForm(values: Record<string, string>): BridgeConfig {
  const input: Record<string, unknown> = {};
  const legs: Record<string, Record<string, unknown>> = {};
  for (const f of FIELDS) {
    const v = (values[f.var] ?? "").trim();
    if (v === "") continue;
    if (f.var === "name") input.name = v;
    else if (f.var === "join_part") input.joinPartRelay = Object.fromEntries(v.split(/[\s,]+/).filter(Boolean).map((leg) => [leg.toLowerCase(), true]));
    else if (f.var === "telegram_chat") (legs.telegram ??= {}).chat = /^-?\d+$/.test(v) ? Number(v) : v;
    else (legs[f.path[0]] ??= {})[f.path[1]] = v;
  }
  const parsed = bridgeSchema.safeParse({ ...input, ...legs });
  if (!parsed.success) throw fail("not-acceptable", describeIssues(parsed.error.issues));
  return parsed.data;
}

function describeIssues(issues: z.core.$ZodIssue[]): string {
  return issues
    .map((i) => {
      const field = FIELDS.find((f) => f.path.length === i.path.length && f.path.every((p, k) => p === i.path[k]))
        ?? FIELDS.find((f) => f.path[0] === i.path[0] && f.path.length === 1);
      const where = field ? field.label.replace(/ \(.*\)$/, "") : i.path.length > 0 ? i.path.join(".") : "bridge";
      return `${where}: ${i.message}`;
    })
    .join("; ");
}

function dataForm(title: string, ...fields: (Element | undefined)[]): Element {
  return xml("x", { xmlns: NS.data, type: "form" }, xml("title", {}, title), ...fields);
}

function nameChoice(names: string[]): Element {
  return xml(
    "field",
    { var: "name", type: "list-single", label: "Bridge" },
    xml("required"),
    ...names.map((n) => xml("option", { label: n }, xml("value", {}, n))),
  );
}

/** XEP-0004 §3.4: a table, one item per bridge. */
function listing(bridges: BridgeInfo[]): Element {
  const cols = [
    ["name", "Name"],
    ["source", "Source"],
    ["state", "State"],
    ["legs", "Legs"],
    ["details", "Per-leg state"],
  ] as const;
  return xml(
    "x",
    { xmlns: NS.data, type: "result" },
    xml("title", {}, "Bridges"),
    xml("reported", {}, ...cols.map(([v, label]) => xml("field", { var: v, label, type: "text-single" }))),
    ...bridges.map((b) => {
      const row: Record<(typeof cols)[number][0], string> = {
        name: b.name,
        source: b.source === "config" ? "configuration file" : "run time",
        state: b.error !== undefined ? `${b.state}: ${b.error}` : b.state,
        legs: b.legs.join(", "),
        details: Object.entries(b.legStates)
          .map(([leg, s]) => `${leg}: ${s}`)
          .join("; "),
      };
      return xml("item", {}, ...cols.map(([v]) => xml("field", { var: v }, xml("value", {}, row[v]))));
    }),
  );
}

const name = (values: Record<string, string>): string => {
  const n = (values.name ?? "").trim();
  if (n === "") throw fail("not-acceptable", "Choose a bridge");
  return n;
};

export function bridgeCommands(manager: BridgeManager): Command[] {
  const names = (pred: (b: BridgeInfo) => boolean) => manager.list().filter(pred).map((b) => b.name);
  const pick = (title: string, list: string[], none: string, extra?: Element): Step =>
    list.length === 0 ? { done: none } : { form: dataForm(title, nameChoice(list), extra) };
  return [
    {
      node: "admin/bridges",
      name: "List room bridges (admin)",
      admin: true,
      async start() {
        const all = manager.list();
        return { done: all.length === 0 ? "No bridges." : listing(all) };
      },
    },
    {
      node: "admin/bridge-create",
      name: "Create a room bridge (admin)",
      admin: true,
      async start() {
        return {
          form: dataForm(
            "Create a room bridge",
            xml("instructions", {}, "Fill in the legs to bridge (at least two). Secrets are stored encrypted and never shown again."),
            ...FIELDS.map((f) => xml("field", { var: f.var, type: f.type, label: f.label }, "required" in f && f.required ? xml("required") : undefined)),
          ),
        };
      },
      async submit(_net, _user, values) {
        const def = definitionFromForm(values);
        await manager.create(def);
        return { done: `Bridge ${def.name} created and started (${manager.list().find((b) => b.name === def.name)?.legs.join(", ")}).` };
      },
    },
    {
      node: "admin/bridge-pause",
      name: "Pause a room bridge (admin)",
      admin: true,
      async start() {
        return pick("Pause a bridge", names((b) => b.state !== "paused"), "No running bridge.");
      },
      async submit(_net, _user, values) {
        const n = name(values);
        await manager.pause(n);
        return { done: `Bridge ${n} paused: nothing crosses until it is resumed.` };
      },
    },
    {
      node: "admin/bridge-resume",
      name: "Resume a room bridge (admin)",
      admin: true,
      async start() {
        return pick("Resume a bridge", names((b) => b.state !== "running"), "No paused bridge.");
      },
      async submit(_net, _user, values) {
        const n = name(values);
        await manager.resume(n);
        return { done: `Bridge ${n} resumed.` };
      },
    },
    {
      node: "admin/bridge-remove",
      name: "Remove a room bridge (admin)",
      admin: true,
      async start() {
        return pick(
          "Remove a bridge",
          names(() => true),
          "No bridges.",
          xml("field", { var: "confirm", type: "boolean", label: "Remove it and forget its state" }, xml("required")),
        );
      },
      async submit(_net, _user, values) {
        const n = name(values);
        if (values.confirm !== "1" && values.confirm !== "true") return { done: "Nothing done." };
        await manager.remove(n);
        return { done: `Bridge ${n} removed.` };
      },
    },
  ];
}

/** The provider for core/xmpp/commands.ts: these commands on this gateway's networks only. */
export function commandProvider(gateway: Gateway, manager: BridgeManager): (net: Network) => Command[] {
  const commands = bridgeCommands(manager);
  return (net) => ([...gateway.networks.values()].includes(net) ? commands : []);
}
