/**
 * Biboumi (Debian package `biboumi`, 9.0) as a child process, for comparison.
 * Config keys are those of biboumi(1) "Daemon configuration": option=value
 * lines, no spaces around "=".
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import type { TestClient } from "../../test/support/xmpp-client.ts";
import { spawnTracked, type Tracked } from "./procs.ts";

export const BIBOUMI_BINARY = "/usr/bin/biboumi";

export interface BiboumiOptions {
  dir: string;
  domain: string;
  secret: string;
  componentPort: number;
  admin: string;
}

export function startBiboumi(o: BiboumiOptions): Tracked {
  const cfg = join(o.dir, "biboumi.cfg");
  writeFileSync(
    cfg,
    [
      `hostname=${o.domain}`,
      `password=${o.secret}`,
      `xmpp_server_ip=127.0.0.1`,
      `port=${o.componentPort}`,
      `admin=${o.admin}`,
      `db_name=${join(o.dir, "biboumi.sqlite")}`,
      // 2 = warning: as quiet as Estuary's "warn", so neither pays for logging.
      `log_level=2`,
      `log_file=`,
      // No identd: port 113 needs privileges and InspIRCd here does not ask (useident="no").
      `identd_port=0`,
      `realname_customization=true`,
      `policy_directory=${o.dir}`,
      "",
    ].join("\n"),
  );
  return spawnTracked(BIBOUMI_BINARY, [cfg], { cwd: o.dir });
}

const COMMANDS = "http://jabber.org/protocol/commands";
const DATA = "jabber:x:data";

/**
 * Runs Biboumi's per-server "configure" ad-hoc command (XEP-0050) on
 * `<server>@<domain>` for this user: plain port = the test InspIRCd, no TLS
 * ports, and throttling off (biboumi user docs, "Throttle limit": a negative
 * value disables it). Field names are read from the form Biboumi returns.
 */
export async function configureBiboumiServer(c: TestClient, domain: string, server: string, port: number): Promise<void> {
  const to = `${server}@${domain}`;
  const first = await c.iq(xml("iq", { type: "set", to }, xml("command", { xmlns: COMMANDS, node: "configure", action: "execute" })));
  const cmd = first.getChild("command", COMMANDS);
  const form = cmd?.getChild("x", DATA);
  const sessionid = cmd?.attrs.sessionid;
  if (!cmd || !form || !sessionid) throw new Error(`biboumi configure: no form in ${first.toString()}`);
  const fields = form.getChildren("field") as Element[];
  const wanted: Record<string, string[]> = { ports: [String(port)], tls_ports: [], throttle_limit: ["-1"] };
  const seen = new Set(fields.map((f) => f.attrs.var as string));
  for (const k of Object.keys(wanted)) if (!seen.has(k)) throw new Error(`biboumi configure form has no field ${k}: ${form.toString()}`);
  const submitted = fields
    .filter((f) => f.attrs.var && f.attrs.type !== "fixed")
    .map((f) => {
      const v = f.attrs.var as string;
      const values = wanted[v] ?? (f.getChildren("value") as Element[]).map((x) => x.text());
      return xml("field", { var: v }, ...values.map((x) => xml("value", {}, x)));
    });
  const done = await c.iq(
    xml(
      "iq",
      { type: "set", to },
      xml("command", { xmlns: COMMANDS, node: "configure", sessionid, action: "complete" }, xml("x", { xmlns: DATA, type: "submit" }, ...submitted)),
    ),
  );
  const status = done.getChild("command", COMMANDS)?.attrs.status;
  if (status !== "completed") throw new Error(`biboumi configure did not complete: ${done.toString()}`);
}

/** The form Biboumi offers, for debugging. */
export async function biboumiServerForm(c: TestClient, domain: string, server: string): Promise<string> {
  const r = await c.iq(xml("iq", { type: "set", to: `${server}@${domain}` }, xml("command", { xmlns: COMMANDS, node: "configure", action: "execute" })));
  return r.toString();
}
