/** XEP-0004 data forms: render an adapter's fields, read a submitted form. */
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import type { FormField } from "../adapter.ts";
import { fail } from "../errors.ts";
import { NS } from "./ns.ts";

export interface FormOptions {
  title?: string;
  instructions?: string;
  /** Current values; secret fields are never echoed back (they stay empty on edit). */
  values?: Record<string, string>;
  formType?: string;
}

export function renderForm(fields: FormField[], options: FormOptions = {}): Element {
  return xml(
    "x",
    { xmlns: NS.data, type: "form" },
    options.title ? xml("title", {}, options.title) : undefined,
    options.instructions ? xml("instructions", {}, options.instructions) : undefined,
    options.formType ? xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, options.formType)) : undefined,
    ...fields.map((f) => {
      const current = f.secret ? undefined : (options.values?.[f.var] ?? f.default);
      return xml(
        "field",
        { var: f.var, type: f.type, label: f.label },
        f.desc ? xml("desc", {}, f.desc) : undefined,
        f.required ? xml("required") : undefined,
        current !== undefined ? xml("value", {}, current) : undefined,
        ...(f.options ?? []).map((o) => xml("option", { label: o.label }, xml("value", {}, o.value))),
      );
    }),
  );
}

export function resultForm(title: string, rows: Record<string, string>): Element {
  return xml(
    "x",
    { xmlns: NS.data, type: "result" },
    xml("title", {}, title),
    ...Object.entries(rows).map(([k, v]) => xml("field", { var: k, label: k, type: "text-single" }, xml("value", {}, v))),
  );
}

/** Values of a submitted form (XEP-0004 §3.3), multi-values joined by newlines. */
export function readForm(x: Element): Record<string, string> {
  if (x.attrs.type !== "submit") throw fail("bad-request", "Expected a submitted data form");
  const values: Record<string, string> = {};
  for (const field of x.getChildren("field")) {
    const name = field.attrs.var;
    if (!name || name === "FORM_TYPE") continue;
    values[name] = field.getChildren("value").map((v) => v.getText()).join("\n");
  }
  return values;
}

/** Checks required fields and booleans; the text names every problem. */
export function checkFields(fields: FormField[], values: Record<string, string>): Record<string, string> {
  const problems: string[] = [];
  const out: Record<string, string> = {};
  for (const f of fields) {
    let v = values[f.var] ?? "";
    if (f.type === "boolean" && v !== "") {
      if (!["0", "1", "true", "false"].includes(v)) problems.push(`${f.label}: must be true or false`);
      v = v === "1" || v === "true" ? "true" : "false";
    }
    if (f.type === "list-single" && v !== "" && f.options && !f.options.some((o) => o.value === v)) {
      problems.push(`${f.label}: not one of the choices`);
    }
    if (f.required && v.trim() === "") problems.push(`${f.label} is required`);
    if (v !== "") out[f.var] = v;
  }
  if (problems.length > 0) throw fail("not-acceptable", problems.join("; "));
  return out;
}
