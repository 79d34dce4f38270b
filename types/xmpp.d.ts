// Types for the parts of xmpp.js we use. xmpp.js 0.13/0.14 ships no
// declarations; these follow its source (ltx Element, @xmpp/connection).

declare module "@xmpp/xml" {
  export interface Element {
    name: string;
    attrs: Record<string, string | undefined>;
    children: (Element | string)[];
    parent: Element | null;
    is(name: string, xmlns?: string): boolean;
    getName(): string;
    getNS(): string | undefined;
    attr(name: string): string | undefined;
    attr(name: string, value: string | undefined): this;
    getAttr(name: string, xmlns?: string): string | undefined;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildByAttr(attr: string, value: string, xmlns?: string, recursive?: boolean): Element | undefined;
    getChildText(name: string, xmlns?: string): string | null;
    getText(): string;
    text(): string;
    text(value: string): this;
    getChildElements(): Element[];
    cnode(child: Element | string): Element;
    append(...nodes: (Element | string)[]): this;
    prepend(...nodes: (Element | string)[]): this;
    remove(el: Element | string, xmlns?: string): this;
    c(name: string, attrs?: Record<string, string | undefined>): Element;
    t(text: string): this;
    up(): Element;
    root(): Element;
    toString(): string;
  }
  export type Node = Element | string | null | undefined | false;
  interface XmlFactory {
    (name: string, attrs?: Record<string, string | number | undefined> | null, ...children: (Node | Node[])[]): Element;
    Element: new (name: string, attrs?: Record<string, string | undefined>) => Element;
    escapeXML(s: string): string;
    escapeXMLText(s: string): string;
  }
  const xml: XmlFactory;
  export default xml;
}

declare module "@xmpp/jid" {
  export interface JID {
    local: string;
    domain: string;
    resource: string;
    bare(): JID;
    toString(unescape?: boolean): string;
    equals(other: JID): boolean;
    getLocal(unescape?: boolean): string;
  }
  export function jid(address: string): JID;
  export function jid(local: string | undefined, domain: string, resource?: string): JID;
  export default jid;
}

declare module "@xmpp/connection" {
  import type { EventEmitter } from "node:events";
  import type { Element } from "@xmpp/xml";
  import type { JID } from "@xmpp/jid";
  export type Status =
    | "offline"
    | "connecting"
    | "connect"
    | "opening"
    | "open"
    | "online"
    | "closing"
    | "close"
    | "disconnecting"
    | "disconnect";
  export interface Connection extends EventEmitter {
    status: Status;
    jid: JID | null;
    timeout: number;
    start(): Promise<JID>;
    stop(): Promise<void>;
    disconnect(): Promise<void>;
    send(element: Element): Promise<void>;
    write(data: string): Promise<void>;
    on(event: "stanza" | "element" | "nonza", listener: (el: Element) => void): this;
    on(event: "online", listener: (jid: JID) => void): this;
    on(event: "offline" | "connect", listener: () => void): this;
    on(event: "disconnect", listener: (info: { clean: boolean; reason?: unknown }) => void): this;
    on(event: "status", listener: (status: Status, value?: unknown) => void): this;
    on(event: "error", listener: (err: Error & { condition?: string; element?: Element }) => void): this;
    on(event: "input" | "output", listener: (data: string) => void): this;
    on(event: string, listener: (...args: never[]) => void): this;
  }
  export interface Reconnect extends EventEmitter {
    delay: number;
    start(): void;
    stop(): void;
  }
  export interface IqCaller {
    request(el: Element, timeout?: number): Promise<Element>;
    get(child: Element, to?: string, timeout?: number): Promise<Element>;
    set(child: Element, to?: string, timeout?: number): Promise<Element>;
  }
}

declare module "@xmpp/component" {
  import type { Connection, Reconnect, IqCaller } from "@xmpp/connection";
  import xml from "@xmpp/xml";
  import jid from "@xmpp/jid";
  export interface Component extends Connection {
    reconnect: Reconnect;
    iqCaller: IqCaller;
  }
  export function component(options: { service: string; domain: string; password: string }): Component;
  export { xml, jid };
}

declare module "@xmpp/component-core" {
  import type { Connection } from "@xmpp/connection";
  export interface Component extends Connection {
    authenticate(streamId: string, secret: string): Promise<void>;
    on(event: "open", listener: (el: import("@xmpp/xml").Element) => void): this;
    on(event: "stanza", listener: (el: import("@xmpp/xml").Element) => void): this;
    on(event: "error", listener: (err: Error & { condition?: string }) => void): this;
    on(event: "disconnect" | "offline", listener: () => void): this;
    emit(event: string, ...args: unknown[]): boolean;
  }
  const core: { Component: new (options: { service: string; domain: string }) => Component };
  export default core;
}

declare module "@xmpp/client" {
  import type { Connection, Reconnect, IqCaller } from "@xmpp/connection";
  import xml from "@xmpp/xml";
  import jid from "@xmpp/jid";
  export interface Client extends Connection {
    reconnect: Reconnect;
    iqCaller: IqCaller;
  }
  export interface ClientOptions {
    service: string;
    domain?: string;
    resource?: string;
    username?: string;
    password?: string;
    credentials?: (
      authenticate: (creds: { username: string; password: string }, mechanism: string) => Promise<void>,
      mechanisms: string[],
    ) => Promise<void>;
    timeout?: number;
  }
  export function client(options: ClientOptions): Client;
  export { xml, jid };
}
