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
  /** Read-only outside this class: changes go through apply() and clearMembers(), which keep `names` in step. */
  readonly members = new Map<string, Member>();
  /**
   * How many joined members carry each display name: nickOf() asks it for a
   * clash in O(1). A scan of the members per call made a join of a room with
   * n members O(n²) (a 30 000-member room: ~10⁹ comparisons, seconds with the
   * event loop blocked).
   */
  private readonly names = new Map<string, number>();
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
        const next: Member = { membership: typeof c.membership === "string" ? c.membership : "leave", ...(displayname ? { displayname } : {}) };
        this.count(prev, -1);
        this.count(next, 1);
        this.members.set(ev.state_key, next);
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

  /** Forgets every member (before the full state is applied again). */
  clearMembers(): void {
    this.members.clear();
    this.names.clear();
  }

  private count(m: Member | undefined, delta: 1 | -1): void {
    if (m?.membership !== "join" || m.displayname === undefined) return;
    const n = (this.names.get(m.displayname) ?? 0) + delta;
    if (n > 0) this.names.set(m.displayname, n);
    else this.names.delete(m.displayname);
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
    const member = this.members.get(userId);
    const name = member?.displayname;
    if (!name) return userId;
    // Joined members with this name other than this one.
    const others = (this.names.get(name) ?? 0) - (member?.membership === "join" ? 1 : 0);
    return others > 0 ? `${name} (${userId})` : name;
  }

  occupant(userId: string): Occupant {
    return { nick: this.nickOf(userId), contact: userId, ...roleOf(this.level(userId)) };
  }
}
