/**
 * irc-framework builds, for every Client, its own table of command handlers
 * (IrcCommandHandler.handlers, src/commands/handler.js: an Array used as a
 * dictionary of ~200 names, plus one closure per "generic" numeric from
 * handlers/generics.js). The handlers hold no per-client state: each gets the
 * command and the IrcCommandHandler as arguments. One table is kept and every
 * Client uses it, which saves ~8 KB of heap per connection (bench/irc heap
 * snapshots: the largest per-user item after the socket). The per-client
 * table built by the constructor becomes garbage at once.
 */
import type { Client } from "irc-framework";

interface WithHandlers {
  command_handler: { handlers: unknown };
}

let shared: unknown;

export function shareCommandTable(client: Client): void {
  const handler = (client as unknown as WithHandlers).command_handler;
  shared ??= handler.handlers;
  handler.handlers = shared;
}
