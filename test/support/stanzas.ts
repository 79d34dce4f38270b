/** Stanza pieces the integration tests build or read again and again. */
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";

export const NS_DATA = "jabber:x:data";
export const NS_REGISTER = "jabber:iq:register";
export const NS_MUC = "http://jabber.org/protocol/muc";
export const NS_MUC_USER = "http://jabber.org/protocol/muc#user";

/** A submitted XEP-0004 form. */
export function submitForm(values: Record<string, string>): Element {
  return xml("x", { xmlns: NS_DATA, type: "submit" }, ...Object.entries(values).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))));
}

/** An XEP-0077 registration with a submitted form. */
export function registerIq(to: string, values: Record<string, string>): Element {
  return xml("iq", { type: "set", to }, xml("query", { xmlns: NS_REGISTER }, submitForm(values)));
}

/** The XEP-0045 status codes of a MUC presence. */
export function mucStatusCodes(p: Element): string[] {
  return (p.getChild("x", NS_MUC_USER)?.getChildren("status") ?? []).map((s) => s.attrs.code ?? "");
}

/** A message from `from` (full or bare, as given), with that body when one is named. */
export function isMessage(s: Element, from: string, body?: string): boolean {
  return s.name === "message" && s.attrs.from === from && (body === undefined || s.getChildText("body") === body);
}
