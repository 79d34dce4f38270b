import { describe, expect, it } from "vitest";
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { deliverInvite, sendInvite } from "../../../../core/xmpp/invite.ts";
import { isEstuaryError } from "../../../../core/errors.ts";
import type { AdapterSession } from "../../../../core/adapter.ts";
import type { Address } from "../../../../core/model.ts";
import type { Network } from "../../../../core/network.ts";

const MUC_USER = "http://jabber.org/protocol/muc#user";
const DOMAIN = "gw.example";
const ROOM = "#chan%irc.test";
const USER = { bare: "romeo@example.org", full: "romeo@example.org/phone" };

/** The parts of a Network the invitation handlers use: addresses are `c.…` contacts and `#…` rooms. */
function fakeNet(o: { joined?: boolean; session?: Partial<AdapterSession> } = {}): { net: Network; sent: Element[] } {
  const sent: Element[] = [];
  const net = {
    domain: DOMAIN,
    adapter: { displayName: "Test" },
    rooms: { isJoined: (user: string, room: string, full: string) => (o.joined ?? true) && user === USER.bare && room === ROOM && full === USER.full },
    addressOf: (local: string): Address | undefined =>
      local.startsWith("c.") ? { kind: "contact", contact: local.slice(2) } : local.startsWith("#") ? { kind: "room", room: local } : undefined,
    jidOf: (a: Address) => `${a.kind === "room" ? a.room : a.kind === "contact" ? `c.${a.contact}` : a.service}@${DOMAIN}`,
    sessions: { get: async () => (o.session ?? {}) as AdapterSession },
    send: (el: Element) => void sent.push(el),
  } as unknown as Network;
  return { net, sent };
}

const invitation = (...invites: Element[]) => xml("message", { to: `${ROOM}@${DOMAIN}`, id: "inv1" }, xml("x", { xmlns: MUC_USER }, ...invites));
const kindOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => (isEstuaryError(e) ? e.kind : "not an EstuaryError"),
  );

describe("sending an invitation (XEP-0045 §7.8.2)", () => {
  it("a network contact's JID goes to the adapter, with the reason", async () => {
    const calls: unknown[][] = [];
    const { net, sent } = fakeNet({ session: { invite: async (...args) => void calls.push(args) } });
    await sendInvite(net, invitation(xml("invite", { to: `c.bob@${DOMAIN}` }, xml("reason", {}, "hi"))), USER, ROOM);
    expect(calls).toEqual([[ROOM, "bob", "hi"]]);
    expect(sent).toEqual([]);
  });

  it("any other JID gets the invitation from the room, naming the inviter's bare JID", async () => {
    const { net, sent } = fakeNet();
    await sendInvite(net, invitation(xml("invite", { to: "juliet@example.net" }, xml("reason", {}, "come"))), USER, ROOM);
    expect(sent).toHaveLength(1);
    const m = sent[0]!;
    expect(m.attrs.from).toBe(`${ROOM}@${DOMAIN}`);
    expect(m.attrs.to).toBe("juliet@example.net");
    const inv = m.getChild("x", MUC_USER)?.getChild("invite");
    expect(inv?.attrs.from).toBe(USER.bare);
    expect(inv?.getChildText("reason")).toBe("come");
    expect(m.getChildText("body")).toContain(`${ROOM}@${DOMAIN}`);
  });

  it("refuses: not in the room, no or bad address, a room as invitee, a network without invitations", async () => {
    expect(await kindOf(sendInvite(fakeNet({ joined: false }).net, invitation(xml("invite", { to: "juliet@example.net" })), USER, ROOM))).toBe("not-acceptable");
    expect(await kindOf(sendInvite(fakeNet().net, invitation(xml("invite")), USER, ROOM))).toBe("bad-request");
    expect(await kindOf(sendInvite(fakeNet().net, invitation(xml("invite", { to: "a@b@c" })), USER, ROOM))).toBe("bad-request");
    expect(await kindOf(sendInvite(fakeNet().net, invitation(xml("invite", { to: `#other@${DOMAIN}` })), USER, ROOM))).toBe("bad-request");
    expect(await kindOf(sendInvite(fakeNet().net, invitation(xml("invite", { to: `c.bob@${DOMAIN}` })), USER, ROOM))).toBe("unsupported");
  });

  it("nothing is sent when one invitation of several is malformed", async () => {
    const { net, sent } = fakeNet();
    const result = kindOf(sendInvite(net, invitation(xml("invite", { to: "juliet@example.net" }), xml("invite", { to: "" })), USER, ROOM));
    expect(await result).toBe("bad-request");
    expect(sent).toEqual([]);
  });
});

describe("delivering a network's invitation", () => {
  it("comes from the room JID to the user's bare JID, naming the inviter's contact JID", async () => {
    const { net, sent } = fakeNet();
    await deliverInvite(net, USER.bare, { type: "invite", room: ROOM, from: { nick: "Alice", contact: "alice" }, reason: "r" });
    const m = sent[0]!;
    expect(m.attrs).toMatchObject({ from: `${ROOM}@${DOMAIN}`, to: USER.bare });
    const inv = m.getChild("x", MUC_USER)!.getChild("invite")!;
    expect(inv.attrs.from).toBe(`c.alice@${DOMAIN}`);
    expect(inv.getChildText("reason")).toBe("r");
  });

  it("without a contact (a server, a service) the inviter is named by occupant JID", async () => {
    const { net, sent } = fakeNet();
    await deliverInvite(net, USER.bare, { type: "invite", room: ROOM, from: { nick: "ChanServ" } });
    const inv = sent[0]!.getChild("x", MUC_USER)!.getChild("invite")!;
    expect(inv.attrs.from).toBe(`${ROOM}@${DOMAIN}/ChanServ`);
    expect(inv.getChild("reason")).toBeUndefined();
  });
});
