/**
 * The part of irc-framework 4.14 (untyped CommonJS) still used: its line
 * parser (adapters/irc/wire/client.ts), and its Client, which plays people
 * on IRC in tests (test/support/irc-remote.ts) and is measured against ours
 * (bench/irc/client-cost.ts). Shapes follow node_modules/irc-framework/src
 * (irclineparser.js, client.js, connection.js).
 */
declare module "irc-framework" {
  import { EventEmitter } from "node:events";

  export interface ParsedMessage {
    command: string;
    params: string[];
    tags: Record<string, string>;
    prefix: string;
    nick: string;
    ident: string;
    hostname: string;
  }

  /** Parses one line (tags, prefix split into nick/ident/hostname, command upper-cased, params). */
  export function ircLineParser(line: string): ParsedMessage;

  export interface ClientOptions {
    host: string;
    port: number;
    tls?: boolean;
    rejectUnauthorized?: boolean;
    nick: string;
    username?: string;
    gecos?: string;
    password?: string;
    account?: { account: string; password: string };
    encoding?: string;
    auto_reconnect?: boolean;
    enable_echomessage?: boolean;
    ping_interval?: number;
    ping_timeout?: number;
    version?: string | null;
    webirc?: { password: string; username: string; hostname: string; address: string; options?: Record<string, string> };
  }

  export class Connection extends EventEmitter {
    connected: boolean;
    write(line: string, callback?: (err?: Error) => void): boolean;
    end(data?: string, hadError?: boolean): void;
  }

  export class Client extends EventEmitter {
    constructor(options?: Partial<ClientOptions>);
    connection: Connection;
    connected: boolean;
    user: { nick: string; username: string; host: string };
    network: {
      options: Record<string, unknown> & { PREFIX?: { symbol: string; mode: string }[]; CHANTYPES?: string[] };
      cap: { enabled: string[]; available: Map<string, string>; isEnabled(cap: string): boolean };
    };
    requestCap(cap: string | string[]): void;
    connect(options?: ClientOptions): void;
    raw(...args: (string | number)[]): void;
    quit(message?: string): void;
    caseLower(s: string): string;
  }
}

