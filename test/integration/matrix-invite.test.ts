/**
 * Matrix invitations both ways (XEP-0045 §7.8.2 mediated invitations):
 * a real XMPP client ↔ Prosody ↔ Estuary (core + Matrix adapter) ↔ the test
 * homeserver. Romeo invites Matrix people into a room he is in; Matrix
 * people invite Romeo into theirs, which reaches him as an invitation from
 * the room's JID, and joining that MUC joins the Matrix room.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js";
import { submitForm } from "../support/stanzas.ts";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway } from "../support/gateway.ts";
import { TestHomeserver } from "../support/test-homeserver.ts";
import { waitFor } from "../support/wait.ts";
import type { Gateway } from "../../core/gateway.ts";
import { createMatrixAdapter } from "../../adapters/matrix/index.ts";
import { formatMatrixId } from "../../adapters/matrix/ids.ts";

const root = sdkGlobalLogger as unknown as { methodFactory: () => () => void; rebuild(): void };
root.methodFactory = () => () => {};
root.rebuild();

const GW = "matrix.localhost";
const NS_REGISTER = "jabber:iq:register";
const NS_MUC = "http://jabber.org/protocol/muc";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

const jidOf = (id: string): string => `${formatMatrixId(id)}@${GW}`;
const codes = (p: Element): string[] => (p.getChild("x", NS_MUC_USER)?.getChildren("status") ?? []).map((s) => s.attrs.code ?? "");
const invitation = (to: string, invitee: string, reason?: string) =>
  xml("message", { to, id: `inv-${invitee}` }, xml("x", { xmlns: NS_MUC_USER }, xml("invite", { to: invitee }, reason ? xml("reason", {}, reason) : undefined)));

describe("Matrix invitations both ways", () => {
  let prosody: ProsodyHandle;
  let hs: TestHomeserver;
  let gateway: Gateway;
  let romeo: TestClient;
  let dir: string;
  let me: string;
  let bob: string;
  let carol: string;
  let dave: string;
  let mallory: string;
  let club: string;
  const CLUB = `#club%hs.test@${GW}`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-matrix-invite-"));
    hs = await TestHomeserver.start({ serverName: "hs.test" });
    me = hs.addUser({ localpart: "romeo", password: "romeo-pw", displayname: "Romeo" });
    bob = hs.addUser({ localpart: "bob", password: "pw", displayname: "Bob" });
    carol = hs.addUser({ localpart: "carol", password: "pw", displayname: "Carol" });
    dave = hs.addUser({ localpart: "dave", password: "pw", displayname: "Dave" });
    mallory = hs.addUser({ localpart: "mallory", password: "pw", displayname: "Mallory" });
    club = hs.createRoom(bob, { name: "Club", room_alias_name: "club", preset: "public_chat" });
    prosody = await startProsody({ components: [{ domain: GW, secret: "s3cret" }], users: [{ username: "romeo", password: "pw" }] });
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: { matrix: { domain: GW, secret: "s3cret", options: { retryWindowMs: 3000, syncTimeoutMs: 5000 } } },
      adapters: { matrix: createMatrixAdapter },
      storeUrl: `sqlite:${join(dir, "estuary.sqlite")}`,
    });
    romeo = await connectClient(prosody, "romeo", "pw");
    await romeo.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: NS_REGISTER }, submitForm({ homeserver: hs.url, user: "romeo", password: "romeo-pw" }))));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.type === "subscribe" && s.attrs.from === GW);
    await romeo.send(xml("presence", { to: GW, type: "subscribed" }));
    await romeo.send(xml("presence", { to: GW }));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === GW && s.attrs.type === undefined, 10_000);
    await waitFor(() => (hs.waitingSyncs > 0 ? true : undefined), { what: "the adapter's sync", timeout: 10_000 });
    await romeo.send(xml("presence", { to: `${CLUB}/romeo` }, xml("x", { xmlns: NS_MUC })));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${CLUB}/Romeo` && codes(s).includes("110"), 10_000);
  }, 60_000);

  afterAll(async () => {
    await romeo?.stop();
    await gateway?.stop();
    await prosody?.stop();
    await hs?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("Romeo invites @carol into the room: the homeserver records the invitation with its reason", async () => {
    await romeo.send(invitation(CLUB, jidOf(carol), "we are planning the party"));
    await waitFor(() => (hs.membership(club, carol) === "invite" ? true : undefined), { what: "Carol's invitation", timeout: 10_000 });
    expect(hs.state(club, "m.room.member", carol)).toMatchObject({ membership: "invite", reason: "we are planning the party" });
    const memberEvent = hs.events(club).findLast((e) => e.type === "m.room.member" && e.state_key === carol);
    expect(memberEvent?.sender).toBe(me);
    expect(hs.unknownRequests).toEqual([]);
  });

  it("an invitation the server refuses comes back to Romeo as an error: a banned person, a member already in", async () => {
    hs.asUser(bob).ban(club, mallory, "spam");
    await romeo.send(invitation(CLUB, jidOf(mallory)));
    const refused = await romeo.waitFor((s) => s.name === "message" && s.attrs.type === "error" && s.attrs.id === `inv-${jidOf(mallory)}`, 10_000);
    expect(refused.getChild("error")?.getChild("forbidden", NS_STANZAS)).toBeDefined();
    expect(hs.membership(club, mallory)).toBe("ban");

    await romeo.send(invitation(CLUB, jidOf(bob)));
    const already = await romeo.waitFor((s) => s.name === "message" && s.attrs.type === "error" && s.attrs.id === `inv-${jidOf(bob)}`, 10_000);
    expect(already.getChild("error")?.getChild("conflict", NS_STANZAS)).toBeDefined();
  });

  let secret: string;
  let secretJid: string;

  it("@dave invites Romeo into #secret: Romeo gets the mediated invitation from the room's JID, once", async () => {
    secret = hs.createRoom(dave, { name: "Secret", room_alias_name: "secret", preset: "private_chat" });
    secretJid = jidOf(secret);
    hs.asUser(dave).invite(secret, me, "a surprise");
    const inv = await romeo.waitFor((s) => s.name === "message" && s.getChild("x", NS_MUC_USER)?.getChild("invite") !== undefined, 10_000);
    expect(inv.attrs.from).toBe(secretJid);
    const invite = inv.getChild("x", NS_MUC_USER)!.getChild("invite")!;
    expect(invite.attrs.from).toBe(jidOf(dave));
    expect(invite.getChildText("reason")).toBe("a surprise");
    // Not joined on Romeo's behalf: the invitation waits for him.
    expect(hs.membership(secret, me)).toBe("invite");
    // Later syncs do not repeat it.
    hs.asUser(bob).send(club, "marker after the invitation");
    await romeo.waitFor((s) => s.name === "message" && s.getChildText("body") === "marker after the invitation", 10_000);
    expect(romeo.inbox.filter((s) => s.getChild("x", NS_MUC_USER)?.getChild("invite") !== undefined)).toEqual([]);
  });

  it("Romeo joins that MUC: he is in the Matrix room", async () => {
    await romeo.send(xml("presence", { to: `${secretJid}/romeo` }, xml("x", { xmlns: NS_MUC })));
    const self = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from?.startsWith(`${secretJid}/`) === true && codes(s).includes("110"), 10_000);
    expect(self.attrs.type).toBeUndefined();
    expect(hs.membership(secret, me)).toBe("join");
    hs.asUser(dave).send(secret, "welcome romeo");
    await romeo.waitFor((s) => s.name === "message" && s.attrs.from === `${secretJid}/Dave` && s.getChildText("body") === "welcome romeo", 10_000);
  });
});
