/**
 * The thinnest gateway this stack can make: Node + @xmpp/component + one raw
 * TCP socket per user to the IRC server, and nothing else (no store, no
 * archive, no flood control, no formatting, no echo confirmation, no
 * reconnection, no occupant list). It is not a product: it measures what the
 * machine and the runtime allow, so Estuary's and Biboumi's figures can be
 * read against a floor:
 *  - throughput: how many messages/s Prosody, InspIRCd and the bench clients
 *    pass on this machine when the gateway does next to nothing;
 *  - memory: what one Node socket and a few strings per user cost, i.e. the
 *    least any Node gateway with a connection per user can use.
 *
 * Run as a child by run.ts (`--baseline`); its own entry point below reads
 * `--domain --secret --component-port --irc-port` from argv.
 */
import { connect, type Socket } from "node:net";
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { component, xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { spawnTracked, type Tracked } from "./procs.ts";
import { shippedRuntime } from "../shipped.ts";

const ROOT = resolve(import.meta.dirname, "../..");

export interface BaselineOptions {
  dir: string;
  domain: string;
  secret: string;
  componentPort: number;
  ircPort: number;
}

/** Starts the baseline as its own process, with the runtime flags Estuary ships with (bench/shipped.ts). */
export function startBaseline(o: BaselineOptions): Tracked {
  const shipped = shippedRuntime();
  const args = ["--domain", o.domain, "--secret", o.secret, "--component-port", String(o.componentPort), "--irc-port", String(o.ircPort)];
  return spawnTracked(join(ROOT, "node_modules/.bin/node"), [...shipped.flags, import.meta.filename, ...args], {
    cwd: o.dir,
    env: { ...process.env, ...shipped.env },
  });
}

/** One XMPP user's IRC connection: the socket and what a reply needs. */
interface IrcUser {
  socket: Socket;
  /** Full JID of the joined resource (the bench joins from one). */
  full: string;
  nick: string;
  /** Channel (lower case) → room JID. */
  rooms: Map<string, string>;
  pending: string[];
  registered: boolean;
  partial: string;
}

function run(o: { domain: string; secret: string; componentPort: number; ircPort: number }): void {
  const xmpp = component({ service: `xmpp://127.0.0.1:${o.componentPort}`, domain: o.domain, password: o.secret });
  const users = new Map<string, IrcUser>();
  const clean = (s: string): string => s.replace(/[\r\n\0]/g, " ");

  const selfPresence = (u: IrcUser, room: string): void => {
    void xmpp.send(
      xml("presence", { from: `${room}/${u.nick}`, to: u.full }, xml("x", { xmlns: "http://jabber.org/protocol/muc#user" }, xml("item", { affiliation: "none", role: "participant" }), xml("status", { code: "110" }))),
    );
  };

  const onLine = (u: IrcUser, line: string): void => {
    // :prefix COMMAND params… :trailing (RFC 1459 §2.3.1), tags ignored.
    const body = line.startsWith("@") ? line.slice(line.indexOf(" ") + 1) : line;
    const parts = body.split(" ");
    const prefix = parts[0]!.startsWith(":") ? parts.shift()!.slice(1) : "";
    const cmd = parts[0];
    if (cmd === "PING") return void u.socket.write(`PONG ${parts.slice(1).join(" ")}\r\n`);
    if (cmd === "001") {
      u.registered = true;
      for (const l of u.pending) u.socket.write(l);
      u.pending.length = 0;
      return;
    }
    if (cmd === "433") return void u.socket.write(`NICK ${(u.nick += "_")}\r\n`);
    if (cmd === "366") {
      const room = u.rooms.get(parts[2]!.toLowerCase());
      if (room) selfPresence(u, room);
      return;
    }
    if (cmd === "PRIVMSG") {
      const room = u.rooms.get(parts[1]!.toLowerCase());
      if (!room) return;
      const at = body.indexOf(" :");
      const text = at < 0 ? "" : body.slice(at + 2);
      const nick = prefix.slice(0, prefix.indexOf("!"));
      void xmpp.send(xml("message", { type: "groupchat", from: `${room}/${nick}`, to: u.full }, xml("body", {}, text)));
    }
  };

  const open = (bare: string, full: string, nick: string): IrcUser => {
    const socket = connect({ host: "127.0.0.1", port: o.ircPort });
    const u: IrcUser = { socket, full, nick, rooms: new Map(), pending: [], registered: false, partial: "" };
    socket.setEncoding("utf8");
    socket.write(`NICK ${nick}\r\nUSER ${nick} 0 * :${nick}\r\n`);
    socket.on("data", (chunk: string) => {
      const lines = (u.partial + chunk).split("\r\n");
      u.partial = lines.pop()!;
      for (const l of lines) if (l) onLine(u, l);
    });
    socket.on("error", () => socket.destroy());
    socket.on("close", () => users.delete(bare));
    users.set(bare, u);
    return u;
  };

  const send = (u: IrcUser, line: string): void => {
    if (u.registered) u.socket.write(line);
    else u.pending.push(line);
  };

  xmpp.on("stanza", (s: Element) => {
    const from = (s.attrs.from as string | undefined) ?? "";
    const to = (s.attrs.to as string | undefined) ?? "";
    const bare = from.split("/")[0]!;
    const [roomJid, nick] = [to.split("/")[0]!, to.split("/")[1]];
    const channel = roomJid.slice(0, roomJid.indexOf("%")).toLowerCase();
    if (s.is("presence") && nick && channel.startsWith("#")) {
      let u = users.get(bare);
      if (s.attrs.type === "unavailable") {
        u?.socket.end(`QUIT\r\n`);
        return;
      }
      u ??= open(bare, from, clean(nick));
      u.rooms.set(channel, roomJid);
      send(u, `JOIN ${clean(channel)}\r\n`);
      return;
    }
    if (s.is("message") && s.attrs.type === "groupchat") {
      const u = users.get(bare);
      const body = s.getChildText("body");
      if (!u || body === null) return;
      send(u, `PRIVMSG ${clean(channel)} :${clean(body)}\r\n`);
      // XEP-0045 §7.4 reflection, with the sender's id: the bench's window advances on it.
      void xmpp.send(xml("message", { type: "groupchat", from: `${roomJid}/${u.nick}`, to: from, id: s.attrs.id }, xml("body", {}, body)));
      return;
    }
    if (s.is("iq") && (s.attrs.type === "get" || s.attrs.type === "set")) {
      void xmpp.send(
        xml("iq", { type: "error", from: to, to: from, id: s.attrs.id }, xml("error", { type: "cancel" }, xml("service-unavailable", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }))),
      );
    }
  });
  xmpp.on("error", (err: Error) => process.stderr.write(`baseline: ${err.message}\n`));
  process.on("SIGTERM", () => process.exit(0));
  process.on("SIGINT", () => process.exit(0));
  void xmpp.start();
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { domain: { type: "string" }, secret: { type: "string" }, "component-port": { type: "string" }, "irc-port": { type: "string" } },
  });
  run({ domain: values.domain!, secret: values.secret!, componentPort: Number(values["component-port"]), ircPort: Number(values["irc-port"]) });
}
