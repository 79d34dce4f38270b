/**
 * Room bridging: one conversation across an XMPP MUC, an IRC channel, a
 * Matrix room and a Telegram group (any two or more of them).
 *
 * ## Configuration (`bridges:` in the config file, core/bridge/config.ts)
 *
 *   bridges:
 *     - name: lobby                      # unique; names the relay and the persisted id map
 *       paused: false
 *       xmpp:     { room: lobby@conference.example.org, network: irc, relayNick: relay, puppets: speakers }
 *       irc:      { server: irc.libera.chat, channel: "#lobby", nick: lobby-bridge, noPing: false, relayFormat: "<{nick}> " }
 *       matrix:   { homeserver: https://matrix.org, userId: "@bridge:matrix.org", accessToken: …, room: "#lobby:matrix.org" }
 *       telegram: { token: "123:AA…", chat: -1001234567890 }
 *       joinPartRelay: { irc: false }    # legs that get "* bob joined on matrix" lines
 *
 * A network leg needs that network enabled in `networks:` (its adapter, and
 * for IRC the server allowed by the IRC options).
 *
 * ## Network legs (adapter-leg.ts)
 * Each relays through a relay identity: an `AdapterSession` of the network's
 * adapter opened for the synthetic user `bridge:<name>`, with registration
 * values from the leg (IRC: none; Matrix: homeserver, userId, deviceId,
 * accessToken as the Matrix registration produces them; Telegram: token,
 * botId, botUsername from `adapter.validateRegistration`), the ScopedStore
 * `store.scoped("bridge:<name>", net)` (sync tokens, offsets persist), and an
 * `emit` that feeds the bridge. Text from elsewhere arrives as `<alice> text`
 * on IRC (relayFormat; noPing puts U+200B in the name), with the name in bold
 * on Matrix (formatted_body) and Telegram (entities).
 *
 * ## XMPP leg (xmpp-leg.ts): real occupants
 * Each remote person joins the MUC as their own occupant ("puppet") from
 * their contact JID under the gateway's domain for their network, resource
 * `bridge` (e.g. `bob%irc.libera.chat@irc.example.org/bridge`), with their
 * nick; a taken nick becomes `bob [irc]` (then numbered). Puppets join when
 * first seen speaking (`puppets: present`: also when they join their room),
 * leave when the person leaves, and change nick with display-name changes.
 * ONE relay occupant (`bridge@<domain of xmpp.network>/<name>`, nick
 * `relay`) reads the room; interceptors on every involved network take every
 * stanza from the room to the relay or a puppet, so the core never answers
 * them; the relay's copy is used and the puppets' copies are ignored.
 *
 * MUC configuration needed: the component domains must be allowed to join
 * (no `restrict_room_creation`/server-to-component blocks); in members-only
 * rooms the puppets' JIDs must be members (the room's owner can affiliate
 * `*@irc.example.org`-style JIDs one by one; if the relay is owner/admin the
 * gateway could do it, not done yet); rooms with a join rate limit should
 * exempt the component domains. The relay needs no privilege; as owner (it
 * created the room) it sees real JIDs, which the bridge uses to tell its own
 * occupants apart even before their self-presence.
 *
 * ## No echo, no loops, no duplicates (loop.ts)
 * Every message is relayed once to every other leg and never back to its
 * origin: MUC reflections are recognised by the occupant nick (a puppet or
 * the relay) and by the origin-id the bridge set; network legs drop the relay
 * account's own messages (adapters already drop the echoes of what their
 * session sent: IRC echo-message, Matrix transaction ids; Telegram bots never
 * see their own messages); a replayed event (reconnect, restart) is
 * recognised by its id, in memory and in the persistent id map.
 *
 * ## Edits, retractions, replies, reactions (ids.ts)
 * Through the persisted id map (`store.idmap`, scope `bridge\n<name>\n<leg>`;
 * survives restarts, 30-day TTL). Where a leg cannot express one (IRC), a
 * readable line: `* correction: <alice> new text`, `bob: reply`,
 * `* alice deleted a message`, `* alice reacted 👍 to bob's message` —
 * never a second full copy.
 *
 * ## Moderation (XEP-0425)
 * A removal by a moderator — announced by the MUC from its bare room JID
 * (v0.3 `<retract><moderated/>`, or v0.2 `<apply-to><moderated>` as
 * Prosody's mod_muc_moderation sends it), or a Matrix redaction by someone
 * other than the sender — becomes a `moderate` event: the other legs remove
 * their copy (posted by the relay: always allowed) or the original (Matrix
 * power level, Telegram admin bot; in the MUC the relay asks with a XEP-0425
 * request, granted only if it is a moderator there; a puppet's copy is
 * retracted by the puppet). IRC cannot delete and says nothing. The bridge
 * remembers removed messages, so a removal coming back (the relay's own
 * redaction in the sync, the MUC announcing the relay's request) stops. The
 * Telegram Bot API reports no deletions: nothing starts from Telegram.
 *
 * ## Failures (bridge.ts)
 * A failing leg never blocks the others: one bounded serial queue per leg
 * (`maxQueuedPerLeg`), the adapters' own queues, flood control and reconnects
 * underneath, a delivery timeout per message. What could not be delivered is
 * logged, counted (`estuary_bridge_undelivered_total{from,to,kind}`) and
 * reported as a notice to the origin leg (at most one per 30 s per pair).
 *
 * ## At run time (manager.ts, admin.ts)
 * Admins (access.admins) manage bridges with XEP-0050 commands on the domain
 * of every network of the gateway: `admin/bridges` (list, per-leg state),
 * `admin/bridge-create` (a form validated by the config file's schema),
 * `admin/bridge-pause`, `admin/bridge-resume`, `admin/bridge-remove`. Changes
 * apply at once. Run-time bridges are kept in `store.scoped("~gateway",
 * "bridges")` (sealed at rest) and start again with the gateway; config-file
 * bridges can be paused (kept across restarts) but only removed from the file.
 *
 * ## Not done
 * Attachments travel as URLs (the gateway's HTTP listener republishes
 * network media; on IRC a file alone reads `<carol> URL`). A puppet message the MUC refuses after it was
 * sent (error bounce) is logged and the puppet rejoins, but that message is
 * not re-sent. Reactions from several people of one leg share the relay
 * account's reaction set on Matrix/Telegram.
 */
import type { Logger } from "pino";
import type { Config } from "../../config/schema.ts";
import { fail } from "../errors.ts";
import type { Gateway } from "../gateway.ts";
import type { Network } from "../network.ts";
import { AdapterLeg } from "./adapter-leg.ts";
import { Bridge } from "./bridge.ts";
import { legsOf, type BridgeConfig, type LegName } from "./config.ts";
import { XmppLeg } from "./xmpp-leg.ts";
import { registerAdminCommands } from "../xmpp/commands.ts";
import { commandProvider } from "./admin.ts";
import { BridgeManager } from "./manager.ts";

export { bridgeSchema, bridgesSchema, type BridgeConfig } from "./config.ts";
export { Bridge } from "./bridge.ts";
export { BridgeManager, type BridgeInfo } from "./manager.ts";

export interface RunningBridges {
  /** The bridges running now. */
  readonly bridges: Bridge[];
  readonly manager: BridgeManager;
  stop(): Promise<void>;
}

/**
 * Starts every configured, unpaused bridge (the config file's only: no admin
 * commands, nothing persisted is loaded). Call after `startGateway`; stop the
 * bridges before the gateway. A leg whose network is down keeps retrying in
 * the background; a bridge whose config names a network the gateway does not
 * run is refused (throws, and nothing is left running).
 */
export async function startBridges(gateway: Gateway, config: Config, deps: { log: Logger }): Promise<RunningBridges> {
  const manager = new BridgeManager(gateway, config.bridges ?? [], { log: deps.log, build: buildBridge });
  await manager.start({ persisted: false });
  const failed = manager.failures()[0];
  if (failed) {
    await manager.stop();
    throw fail("not-acceptable", failed.error);
  }
  return { get bridges() { return manager.bridges; }, manager, stop: () => manager.stop() };
}

/**
 * The gateway's bridge service (core/gateway.ts): the admin commands are
 * registered at once on every network's domain (admin.ts); `start()` — once
 * every component stream is up — starts the config file's bridges and those
 * created at run time (persisted), each on its own: one that cannot start is
 * logged and listed as failed, the others run.
 */
export function openBridges(gateway: Gateway, config: Config, deps: { log: Logger }): RunningBridges & { start(): Promise<void> } {
  const manager = new BridgeManager(gateway, config.bridges ?? [], { log: deps.log, build: buildBridge });
  const unregister = registerAdminCommands(commandProvider(gateway, manager));
  return {
    get bridges() {
      return manager.bridges;
    },
    manager,
    start: () => manager.start({ persisted: true }),
    async stop() {
      unregister();
      await manager.stop();
    },
  };
}

function networkFor(gateway: Gateway, leg: string, bridge: string): Network {
  const net = gateway.networks.get(leg);
  if (!net) throw fail("not-acceptable", `bridge ${bridge}: the ${leg} leg needs networks.${leg} enabled`);
  return net;
}

export async function buildBridge(gateway: Gateway, bc: BridgeConfig, log: Logger): Promise<Bridge> {
  const bridge = new Bridge({ name: bc.name, store: gateway.store, log, maxQueuedPerLeg: bc.maxQueuedPerLeg, deliveryTimeoutMs: bc.deliveryTimeoutMs });
  const sink = (leg: LegName, ev: Parameters<Bridge["inbound"]>[1]): void => bridge.inbound(leg, ev);
  const joinPart = (leg: LegName): boolean => bc.joinPartRelay[leg] ?? false;
  const legNets = new Map<string, Network>();
  for (const leg of legsOf(bc)) if (leg !== "xmpp") legNets.set(leg, networkFor(gateway, leg, bc.name));

  if (bc.irc) {
    const net = legNets.get("irc")!;
    const room = net.adapter.ids.parse(`${bc.irc.channel}%${bc.irc.server}`);
    if (room?.kind !== "room") throw fail("not-acceptable", `bridge ${bc.name}: ${bc.irc.channel} on ${bc.irc.server} is not an IRC channel this gateway serves`);
    bridge.add(
      new AdapterLeg({
        name: "irc",
        bridge: bc.name,
        net,
        room: room.room,
        nick: bc.irc.nick,
        registration: {},
        style: { format: bc.irc.relayFormat, bold: false, noPing: bc.irc.noPing },
        joinPart: joinPart("irc"),
        ids: bridge.ids("irc"),
        sink,
        log,
      }),
    );
  }
  if (bc.matrix) {
    const m = bc.matrix;
    bridge.add(
      new AdapterLeg({
        name: "matrix",
        bridge: bc.name,
        net: legNets.get("matrix")!,
        room: m.room,
        nick: m.userId,
        registration: { homeserver: m.homeserver, userId: m.userId, accessToken: m.accessToken, ...(m.deviceId ? { deviceId: m.deviceId } : {}) },
        style: { format: m.relayFormat, bold: true },
        joinPart: joinPart("matrix"),
        ids: bridge.ids("matrix"),
        sink,
        log,
      }),
    );
  }
  if (bc.telegram) {
    const t = bc.telegram;
    const net = legNets.get("telegram")!;
    const room = net.adapter.ids.parse(`group${Math.abs(t.chat)}`);
    if (room?.kind !== "room") throw fail("not-acceptable", `bridge ${bc.name}: ${t.chat} is not a Telegram group id`);
    // botId and botUsername come from getMe, as a user's registration would have them.
    const registration = await net.adapter.validateRegistration({ token: t.token });
    bridge.add(
      new AdapterLeg({
        name: "telegram",
        bridge: bc.name,
        net,
        room: room.room,
        nick: registration.botUsername ?? "bridge",
        registration,
        style: { format: t.relayFormat, bold: true },
        joinPart: joinPart("telegram"),
        ids: bridge.ids("telegram"),
        sink,
        log,
      }),
    );
  }
  if (bc.xmpp) {
    const relayNet = bc.xmpp.network ? networkFor(gateway, bc.xmpp.network, bc.name) : ([...legNets.values()][0] ?? [...gateway.networks.values()][0]);
    if (!relayNet) throw fail("not-acceptable", `bridge ${bc.name}: no network to host the XMPP relay`);
    bridge.add(
      new XmppLeg({
        bridge: bc.name,
        room: bc.xmpp.room,
        relayNet,
        networks: legNets,
        relayNick: bc.xmpp.relayNick,
        puppets: bc.xmpp.puppets,
        ...(bc.xmpp.password ? { password: bc.xmpp.password } : {}),
        joinPart: joinPart("xmpp"),
        ids: bridge.ids("xmpp"),
        sink,
        log,
      }),
    );
  }
  return bridge;
}
