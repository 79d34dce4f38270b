/**
 * Text a network sends may hold characters XML 1.0 cannot carry at all, even
 * escaped (§2.2: C0 controls other than tab/LF/CR, lone surrogates, U+FFFE/F).
 * One such character in a stanza makes the XMPP server close the component's
 * stream: a remote IRC user typing a bell character would cut everyone off.
 * So every stanza is cleaned at the one place they all leave (component.ts).
 */
import type { Element } from "@xmpp/xml";

const INVALID_SOURCE = "[\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\uFFFE\\uFFFF]|[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])|(?<![\\uD800-\\uDBFF])[\\uDC00-\\uDFFF]";
const HAS_INVALID = new RegExp(INVALID_SOURCE);
const ALL_INVALID = new RegExp(INVALID_SOURCE, "g");

/** The text with every character XML cannot carry replaced by U+FFFD (unchanged, and not copied, when clean). */
export function xmlSafeText(s: string): string {
  return HAS_INVALID.test(s) ? s.replace(ALL_INVALID, "\uFFFD") : s;
}

/**
 * A nick as a JID resourcepart: besides what XML cannot carry, the XMPP server
 * refuses (stringprep, RFC 3454 tables C.2–C.9) controls, private-use and
 * unassigned code points and U+FFF9–U+FFFD; such a `from` bounces, and the
 * bounce would read as the user leaving. They become "?".
 */
const NOT_IN_RESOURCE = /[\p{Cc}\p{Cs}\p{Co}\p{Cn}\uFFF9-\uFFFD]/gu;
export function resourceSafe(nick: string): string {
  const clean = xmlSafeText(nick).replace(NOT_IN_RESOURCE, "?");
  return clean === "" ? "?" : clean;
}

/** Replaces, in place, every character XML cannot carry in the element's text (U+FFFD) and attributes ("?": they are JIDs and ids). */
export function makeXmlSafe(el: Element): Element {
  for (const [k, v] of Object.entries(el.attrs)) if (typeof v === "string" && HAS_INVALID.test(v)) el.attrs[k] = v.replace(ALL_INVALID, "?");
  for (let i = 0; i < el.children.length; i++) {
    const c = el.children[i]!;
    if (typeof c === "string") el.children[i] = xmlSafeText(c);
    else makeXmlSafe(c);
  }
  return el;
}
