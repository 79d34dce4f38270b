/**
 * What the adapter knows of each Matrix room it is in: members, power
 * levels, name, topic, encryption. Built from GET /rooms/{id}/state and kept
 * current from /sync state and timeline events.
 */
import type { Affiliation, Occupant, Role } from "../../core/model.ts";

export interface StateEvent {
  type: string;
  state_key?: string;
  sender: string;
  content: Record<string, unknown>;
  event_id?: string;
  unsigned?: { prev_content?: Record<string, unknown> };
}

export interface Member {
  membership: string;
  displayname?: string;
}

/** XEP-0045 role/affiliation of a Matrix power level (100 owner, ≥ 50 admin; both moderate). */
export function roleOf(level: number): { role: Role; affiliation: Affiliation } {
  if (level >= 100) return { role: "moderator", affiliation: "owner" };
  if (level >= 50) return { role: "moderator", affiliation: "admin" };
  return { role: "participant", affiliation: "none" };
}

export class MatrixRoom {
  readonly id: string;
  readonly members = new Map<string, Member>();
  power: Record<string, unknown> = {};
  name: string | undefined;
  topic: string | undefined;
  topicBy: string | undefined;
  encrypted = false;
  canonicalAlias: string | undefined;
  loaded = false;

  constructor(id: string) {
    this.id = id;
  }

  /** Applies one state event; returns the member's previous state for m.room.member. */
  apply(ev: StateEvent): Member | undefined {
    const c = ev.content ?? {};
    switch (ev.type) {
      case "m.room.member": {
        if (ev.state_key === undefined) return undefined;
        const prev = this.members.get(ev.state_key);
        const displayname = typeof c.displayname === "string" && c.displayname.trim() !== "" ? c.displayname : undefined;
        this.members.set(ev.state_key, { membership: typeof c.membership === "string" ? c.membership : "leave", ...(displayname ? { displayname } : {}) });
        return prev;
      }
      case "m.room.power_levels":
        this.power = c;
        return undefined;
      case "m.room.name":
        this.name = typeof c.name === "string" && c.name !== "" ? c.name : undefined;
        return undefined;
      case "m.room.topic":
        this.topic = typeof c.topic === "string" ? c.topic : undefined;
        this.topicBy = ev.sender;
        return undefined;
      case "m.room.encryption":
        this.encrypted = true;
        return undefined;
      case "m.room.canonical_alias":
        this.canonicalAlias = typeof c.alias === "string" ? c.alias : undefined;
        return undefined;
    }
    return undefined;
  }

  level(userId: string): number {
    const users = (this.power.users ?? {}) as Record<string, unknown>;
    const v = users[userId] ?? this.power.users_default ?? 0;
    return typeof v === "number" ? v : Number(v) || 0;
  }

  joined(): string[] {
    return [...this.members].filter(([, m]) => m.membership === "join").map(([id]) => id);
  }

  /**
   * The nick of a member: their display name, or their user ID without one;
   * a display name two joined members share gets ` (@user:server)` appended
   * (as the spec's "Calculating the display name for a user" asks).
   */
  nickOf(userId: string): string {
    const name = this.members.get(userId)?.displayname;
    if (!name) return userId;
    const clash = [...this.members].some(([id, m]) => id !== userId && m.membership === "join" && m.displayname === name);
    return clash ? `${name} (${userId})` : name;
  }

  occupant(userId: string): Occupant {
    return { nick: this.nickOf(userId), contact: userId, ...roleOf(this.level(userId)) };
  }
}
