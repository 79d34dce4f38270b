/**
 * Test control API: a simulated person acting directly on the server state,
 * through the same authorisation rules as HTTP clients (a forbidden action
 * throws MatrixHttpError).
 */
import type { Json } from "./http.ts";
import type { CreateRoomOptions, Rooms } from "./rooms.ts";
import type { Accounts } from "./store.ts";

export class SimulatedUser {
  readonly userId: string;
  private readonly rooms: Rooms;
  private readonly accounts: Accounts;

  constructor(userId: string, rooms: Rooms, accounts: Accounts) {
    accounts.get(userId);
    this.userId = userId;
    this.rooms = rooms;
    this.accounts = accounts;
  }

  /** Sends a room event; a string is shorthand for an m.text message. Returns the event ID. */
  send(roomId: string, content: Json | string, type = "m.room.message"): string {
    const body = typeof content === "string" ? { msgtype: "m.text", body: content } : content;
    return this.rooms.sendEvent(this.userId, roomId, type, body).event_id;
  }

  sendState(roomId: string, type: string, content: Json, stateKey = ""): string {
    return this.rooms.sendState(this.userId, roomId, type, stateKey, content).event_id;
  }

  /** An m.reaction annotation (spec: "Event annotations and reactions"). */
  react(roomId: string, eventId: string, key: string): string {
    return this.send(roomId, { "m.relates_to": { rel_type: "m.annotation", event_id: eventId, key } }, "m.reaction");
  }

  /** An m.replace edit with the `* ` fallback body (spec: "Event replacements"). */
  edit(roomId: string, eventId: string, newBody: string): string {
    const original = this.rooms.get(roomId).events.find((e) => e.event_id === eventId);
    const msgtype = typeof original?.content.msgtype === "string" ? original.content.msgtype : "m.text";
    return this.send(roomId, {
      msgtype,
      body: `* ${newBody}`,
      "m.new_content": { msgtype, body: newBody },
      "m.relates_to": { rel_type: "m.replace", event_id: eventId },
    });
  }

  /** A reply (spec: "Rich replies"). */
  reply(roomId: string, eventId: string, body: string): string {
    return this.send(roomId, { msgtype: "m.text", body, "m.relates_to": { "m.in_reply_to": { event_id: eventId } } });
  }

  redact(roomId: string, eventId: string, reason?: string): string {
    return this.rooms.redact(this.userId, roomId, eventId, reason).event_id;
  }

  setTyping(roomId: string, typing = true, timeoutMs = 30_000): void {
    this.rooms.setTyping(this.userId, roomId, typing, timeoutMs);
  }

  readReceipt(roomId: string, eventId: string): void {
    this.rooms.addReceipt(this.userId, roomId, "m.read", eventId);
  }

  createRoom(opts: CreateRoomOptions = {}): string {
    return this.rooms.createRoom(this.userId, opts);
  }

  /** Joins by room ID or alias; returns the room ID. */
  join(roomIdOrAlias: string): string {
    const room = this.rooms.resolveRoom(roomIdOrAlias);
    if (room.membership(this.userId) !== "join") this.rooms.setMembership(this.userId, room.id, this.userId, "join");
    return room.id;
  }

  leave(roomId: string, reason?: string): void {
    this.rooms.setMembership(this.userId, roomId, this.userId, "leave", reason === undefined ? {} : { reason });
  }

  invite(roomId: string, userId: string, reason?: string): void {
    this.rooms.setMembership(this.userId, roomId, userId, "invite", reason === undefined ? {} : { reason });
  }

  kick(roomId: string, userId: string, reason?: string): void {
    this.rooms.setMembership(this.userId, roomId, userId, "leave", reason === undefined ? {} : { reason });
  }

  ban(roomId: string, userId: string, reason?: string): void {
    this.rooms.setMembership(this.userId, roomId, userId, "ban", reason === undefined ? {} : { reason });
  }

  setDisplayName(name: string): void {
    this.rooms.setProfile(this.userId, "displayname", name);
  }

  setPresence(presence: "online" | "offline" | "unavailable", statusMsg?: string): void {
    this.accounts.setPresence(this.userId, presence, statusMsg);
  }

  sendToDevice(type: string, messages: Record<string, Record<string, Json>>): void {
    this.accounts.sendToDevice(this.userId, type, messages);
  }
}
