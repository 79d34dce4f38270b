/**
 * The one place where typed errors become stanza errors (RFC 6120 §8.3).
 * Everything else throws an EstuaryError and lets this table decide the
 * condition and type, so every sender hears the same thing for the same failure.
 */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { asEstuaryError, fail, type ErrorKind, type EstuaryError } from "../errors.ts";
import { NS } from "./ns.ts";
import { cloneElement } from "./clone.ts";

type ErrorType = "auth" | "cancel" | "continue" | "modify" | "wait";

const TABLE: Record<ErrorKind, { condition: string; type: ErrorType }> = {
  "bad-request": { condition: "bad-request", type: "modify" },
  "not-acceptable": { condition: "not-acceptable", type: "modify" },
  forbidden: { condition: "forbidden", type: "auth" },
  "registration-required": { condition: "registration-required", type: "auth" },
  "not-found": { condition: "item-not-found", type: "cancel" },
  conflict: { condition: "conflict", type: "cancel" },
  unsupported: { condition: "feature-not-implemented", type: "cancel" },
  "service-unavailable": { condition: "service-unavailable", type: "cancel" },
  "not-allowed": { condition: "not-allowed", type: "cancel" },
  unavailable: { condition: "recipient-unavailable", type: "wait" },
  "queue-full": { condition: "resource-constraint", type: "wait" },
  "rate-limited": { condition: "resource-constraint", type: "wait" },
  "too-large": { condition: "policy-violation", type: "modify" },
  timeout: { condition: "remote-server-timeout", type: "wait" },
  internal: { condition: "internal-server-error", type: "cancel" },
};

export function stanzaErrorFor(kind: ErrorKind): { condition: string; type: ErrorType } {
  return TABLE[kind];
}

/**
 * An application-specific condition (RFC 6120 §8.3.4) a protocol adds to the
 * defined one, e.g. XEP-0050's `<bad-sessionid/>`: carried as the error's
 * cause, so the neutral error kinds stay as they are.
 */
interface AppCondition {
  name: string;
  xmlns: string;
}

function isAppCondition(c: unknown): c is AppCondition {
  return typeof c === "object" && c !== null && typeof (c as AppCondition).name === "string" && typeof (c as AppCondition).xmlns === "string";
}

/** An error whose stanza error also carries the application-specific condition `<name xmlns=.../>`. */
export function failWithCondition(kind: ErrorKind, text: string, condition: AppCondition): EstuaryError {
  return fail(kind, text, { cause: condition });
}

/** `<error>` child for an error of the given kind, with a human text. */
export function errorElement(kind: ErrorKind, text: string, by?: string, app?: AppCondition): Element {
  const { condition, type } = TABLE[kind];
  return xml(
    "error",
    { type, by },
    xml(condition, { xmlns: NS.stanzas }),
    text ? xml("text", { xmlns: NS.stanzas, "xml:lang": "en" }, text) : undefined,
    app ? xml(app.name, { xmlns: app.xmlns }) : undefined,
  );
}

/**
 * The error reply to a stanza (RFC 6120 §8.3.1: same name and id, from/to
 * swapped, type="error"). Returns undefined for stanzas that must never be
 * answered with an error (errors themselves, iq results), to avoid loops.
 */
export function errorReply(stanza: Element, error: unknown, by?: string): Element | undefined {
  const type = stanza.attrs.type;
  if (type === "error" || (stanza.name === "iq" && type === "result")) return undefined;
  const e = asEstuaryError(error);
  const children: Element[] = [];
  // RFC 6120 §8.3.1: a message error may include the original payload; we keep
  // the body so clients can show which message failed.
  if (stanza.name === "message") {
    const body = stanza.getChild("body");
    if (body) children.push(cloneElement(body));
  }
  return xml(
    stanza.name,
    { type: "error", id: stanza.attrs.id, from: stanza.attrs.to, to: stanza.attrs.from },
    ...children,
    errorElement(e.kind, e.kind === "internal" ? "Internal gateway error" : e.message, by, isAppCondition(e.cause) ? e.cause : undefined),
  );
}
