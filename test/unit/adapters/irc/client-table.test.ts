import { Client } from "irc-framework";
import { describe, expect, it } from "vitest";
import { shareCommandTable } from "../../../../adapters/irc/client-table.ts";

type Internals = { command_handler: { handlers: Record<string, unknown>; dispatch(m: unknown): void } };

describe("shareCommandTable", () => {
  it("gives every client one command table that still dispatches to that client", () => {
    const a = new Client() as unknown as Client & Internals;
    const b = new Client() as unknown as Client & Internals;
    shareCommandTable(a);
    shareCommandTable(b);
    expect(b.command_handler.handlers).toBe(a.command_handler.handlers);
    expect(typeof a.command_handler.handlers.PRIVMSG).toBe("function");
    const got: { a: string[]; b: string[] } = { a: [], b: [] };
    a.on("privmsg", (ev: { message: string }) => got.a.push(ev.message));
    b.on("privmsg", (ev: { message: string }) => got.b.push(ev.message));
    const line = (text: string) => ({ command: "PRIVMSG", params: ["#c", text], prefix: "n!u@h", nick: "n", ident: "u", hostname: "h", tags: {} });
    a.command_handler.dispatch(line("to a"));
    b.command_handler.dispatch(line("to b"));
    expect(got).toEqual({ a: ["to a"], b: ["to b"] });
  });
});
