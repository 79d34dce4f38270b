/**
 * Reads the YAML configuration, substitutes `${VAR}` from the environment,
 * validates it against schema.ts and reads `store.keyFile`.
 *
 * Every problem found is reported at once, as `key.path: problem` lines in
 * one ConfigError, so an operator fixes the file in one go. Messages never
 * include a secret's value (only variable names, paths and non-secret values).
 *
 * Substitution rules (applied to string values only, never to keys):
 * - `${VAR}`: the variable's value; an unset variable is an error (an empty
 *   one yields an empty string, as in POSIX sh).
 * - `${VAR:-default}`: the default when VAR is unset or empty (POSIX sh).
 *   The default is literal text (no nested `${…}`).
 * - `$${` is a literal `${` (escape); any other `$` is left alone.
 */
import { readFileSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parseDocument } from "yaml";
import { z } from "zod";
import { configSchema, MIN_ENCRYPTION_KEY_LENGTH, type Config } from "./schema.ts";

export type { Config } from "./schema.ts";

export class ConfigError extends Error {
  /** One `key.path: problem` line per problem. */
  readonly problems: string[];

  constructor(problems: string[], options?: { cause?: unknown }) {
    super(problems.join("\n"), options);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

type Path = ReadonlyArray<PropertyKey>;
type Env = Record<string, string | undefined>;

export interface ParseOptions {
  /** Directory a relative `store.keyFile` is resolved against (default: the working directory). */
  baseDir?: string;
}

export async function loadConfig(path: string, env: Env = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ConfigError([`config: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`], { cause: e });
  }
  return parseConfig(text, env, { baseDir: dirname(resolve(path)) });
}

export function parseConfig(yamlText: string, env: Env = process.env, options: ParseOptions = {}): Config {
  const raw = parseYaml(yamlText);

  const substituted = substitute(raw, [], env);
  const problems = substituted.problems.map((p) => `${formatPath(p.path)}: ${p.message}`);
  // A value whose substitution failed would also fail validation; report only the cause.
  const failed = substituted.problems.map((p) => formatPath(p.path));

  const result = configSchema.safeParse(substituted.value, { error: errorMap });
  if (!result.success) {
    for (const line of formatIssues(result.error.issues)) {
      if (!failed.some((f) => line.startsWith(`${f}:`))) problems.push(line);
    }
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);

  const config = result.data;
  if (config.store.keyFile !== undefined) {
    config.store.encryptionKey = readKeyFile(resolve(options.baseDir ?? process.cwd(), config.store.keyFile));
  }
  return config;
}

function parseYaml(text: string): unknown {
  // uniqueKeys: a key given twice is almost always a mistake (YAML 1.2 §3.2.1.1
  // forbids it); the default maxAliasCount bounds alias expansion ("billion laughs").
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        // Only the first line: the pretty form quotes the source line, which may hold a secret.
        const what = e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
        return pos ? `yaml (line ${pos.line}, column ${pos.col}): ${what}` : `yaml: ${what}`;
      }),
    );
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) throw new ConfigError(["config: the file is empty"]);
  if (typeof value !== "object" || Array.isArray(value)) throw new ConfigError(["config: expected a mapping of keys at the top level"]);
  return value;
}

interface Problem {
  path: Path;
  message: string;
}

/** Walks the parsed document and substitutes every string value; collects every failure. */
function substitute(value: unknown, path: Path, env: Env): { value: unknown; problems: Problem[] } {
  if (typeof value === "string") {
    const r = substituteString(value, env);
    return { value: r.value, problems: r.errors.map((message) => ({ path, message })) };
  }
  if (Array.isArray(value)) {
    const problems: Problem[] = [];
    const out = value.map((v, i) => {
      const r = substitute(v, [...path, i], env);
      problems.push(...r.problems);
      return r.value;
    });
    return { value: out, problems };
  }
  if (value !== null && typeof value === "object") {
    const problems: Problem[] = [];
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const r = substitute(v, [...path, k], env);
      problems.push(...r.problems);
      out[k] = r.value;
    }
    return { value: out, problems };
  }
  return { value, problems: [] };
}

const VAR_REF = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

export function substituteString(text: string, env: Env): { value: string; errors: string[] } {
  const errors: string[] = [];
  let out = "";
  let i = 0;
  for (;;) {
    const start = text.indexOf("${", i);
    if (start === -1) break;
    if (start > 0 && text[start - 1] === "$") {
      // `$${` → literal `${`: drop the escaping `$`.
      out += text.slice(i, start - 1) + "${";
      i = start + 2;
      continue;
    }
    out += text.slice(i, start);
    const end = text.indexOf("}", start + 2);
    if (end === -1) {
      errors.push("unterminated ${ (write $${ for a literal ${)");
      return { value: text, errors };
    }
    const ref = text.slice(start + 2, end);
    const m = VAR_REF.exec(ref);
    if (!m) {
      errors.push(`invalid variable reference \${${ref}} (expected \${NAME} or \${NAME:-default})`);
    } else {
      const name = m[1]!;
      const fallback = m[2];
      const v = env[name];
      if (fallback !== undefined) out += v === undefined || v === "" ? fallback : v;
      else if (v !== undefined) out += v;
      else errors.push(`environment variable ${name} is not set (use \${${name}:-default} for a fallback)`);
    }
    i = end + 1;
  }
  out += text.slice(i);
  return { value: errors.length > 0 ? text : out, errors };
}

/**
 * Reads the store key. A key file readable or writable by group or others is
 * refused outright, not merely warned about (as OpenSSH refuses such private
 * keys): a warning in a log is easily missed, and the file protects every
 * user's stored network credentials. The check is skipped on Windows, where
 * POSIX mode bits mean nothing.
 */
function readKeyFile(file: string): string {
  const fail = (problem: string, cause?: unknown): never => {
    throw new ConfigError([`store.keyFile: ${problem}`], { cause });
  };
  let key: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) fail(`${file} is not a regular file`);
    if (process.platform !== "win32" && (st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, "0");
      fail(`${file} is accessible by group or others (mode ${mode}); run: chmod 600 ${file}`);
    }
    // Surrounding whitespace (the newline `echo` or an editor adds) is not part of the key.
    key = readFileSync(file, "utf8").trim();
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    return fail(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, e);
  }
  if (key.length === 0) fail(`${file} is empty`);
  if (key.length < MIN_ENCRYPTION_KEY_LENGTH) fail(`the key in ${file} must be at least ${MIN_ENCRYPTION_KEY_LENGTH} characters`);
  return key;
}

/** Per-parse error map: a missing key reads "required" rather than "expected string, received undefined". */
const errorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === "invalid_type" && iss.input === undefined) return "required";
  return undefined;
};

function formatPath(path: Path): string {
  if (path.length === 0) return "config";
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out === "" ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

function formatIssues(issues: z.core.$ZodIssue[]): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const hint = suggest(key, knownKeysAt(issue.path));
        lines.push(`${formatPath([...issue.path, key])}: unknown key${hint ? ` (did you mean ${hint}?)` : ""}`);
      }
    } else {
      lines.push(`${formatPath(issue.path)}: ${issue.message}`);
    }
  }
  return lines;
}

/** Keys of the strict object at `path` in the schema, for "did you mean" hints. */
function knownKeysAt(path: Path): string[] {
  let schema: z.core.$ZodType | undefined = configSchema;
  const unwrap = (s: z.core.$ZodType): z.core.$ZodType => {
    const def = s._zod.def as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType; out?: z.core.$ZodType };
    if (def.innerType) return unwrap(def.innerType);
    // z.preprocess is a pipe whose `out` holds the real type.
    if (def.type === "pipe" && def.out) return unwrap(def.out);
    return s;
  };
  for (const seg of path) {
    if (!schema) return [];
    const s = unwrap(schema);
    const def = s._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType; valueType?: z.core.$ZodType };
    if (def.type === "object" && def.shape) schema = def.shape[String(seg)];
    else if (def.type === "array") schema = def.element;
    else if (def.type === "record") schema = def.valueType;
    else return [];
  }
  if (!schema) return [];
  const def = unwrap(schema)._zod.def as { type: string; shape?: Record<string, unknown> };
  return def.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

/** The closest known key within edit distance 2, if any. */
function suggest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** Damerau–Levenshtein (optimal string alignment): a swapped pair such as `secrte` counts as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
