/** Deep copy of an element (ltx 3, under xmpp.js, has no clone method). */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";

export function cloneElement(el: Element): Element {
  return xml(
    el.name,
    { ...el.attrs },
    ...el.children.map((c) => (typeof c === "string" ? c : cloneElement(c))),
  );
}
