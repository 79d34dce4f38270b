import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { contactOf, parseContact, parseRoom, roomOf, telegramCodec } from "../../../../adapters/telegram/ids.ts";

const userId = fc.integer({ min: 1, max: 2 ** 52 });
const groupId = fc.integer({ min: 1, max: 2 ** 52 }).map((n) => -n);
const thread = fc.integer({ min: 1, max: 2 ** 31 });

describe("Telegram addressing", () => {
  it("maps users to their decimal id and back", () => {
    fc.assert(
      fc.property(userId, (id) => {
        const local = telegramCodec.format({ kind: "contact", contact: contactOf(id) });
        expect(local).toBe(String(id));
        expect(telegramCodec.parse(local)).toEqual({ kind: "contact", contact: local });
        expect(parseContact(local)).toBe(id);
      }),
    );
  });

  it("maps groups and forum topics to group<abs>[~thread] and back", () => {
    fc.assert(
      fc.property(groupId, fc.option(thread, { nil: undefined }), (chatId, t) => {
        const room = roomOf(chatId, t);
        expect(room).toBe(`group${-chatId}${t === undefined ? "" : `~${t}`}`);
        const local = telegramCodec.format({ kind: "room", room });
        expect(telegramCodec.parse(local)).toEqual({ kind: "room", room });
        expect(parseRoom(local)).toEqual(t === undefined ? { chatId } : { chatId, thread: t });
      }),
    );
    expect(roomOf(-1001234)).toBe("group1001234");
  });

  it("rejects everything else", () => {
    for (const bad of ["", "bot", "-1001234", "0", "0123", "+5", "12a", "group", "group0", "group-5", "group012", "group5~", "group5~0", "group5~x", "group5~1~2", "Group5", "12 3", "99999999999999999999"]) {
      expect(telegramCodec.parse(bad), bad).toBeUndefined();
    }
    fc.assert(
      fc.property(fc.string(), (s) => {
        const parsed = telegramCodec.parse(s);
        // Whatever parses formats back to the very same localpart (canonical forms only).
        if (parsed !== undefined) expect(telegramCodec.format(parsed)).toBe(s);
      }),
    );
  });
});
