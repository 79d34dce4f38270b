/**
 * File names crossing the HTTP boundary: read from a Content-Disposition
 * header or a URL path, cleaned so they are only a name (no directories, no
 * control characters), and written back into a Content-Disposition header
 * (RFC 6266 §4, with the RFC 8187 `filename*` form for non-ASCII names).
 */

const MAX_NAME_LENGTH = 200;

/** A display-safe file name, or undefined when nothing usable is left. */
export function sanitizeFilename(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  // Only the last path component: a name must never steer a path.
  const base = raw.split(/[/\\]/).pop() ?? "";
  // C0/C1 controls and bidi overrides (which can disguise an extension, "exe.txt" shown for "txt.exe").
  const cleaned = base
    .replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, "")
    .trim();
  if (cleaned === "" || cleaned === "." || cleaned === "..") return undefined;
  return [...cleaned].slice(0, MAX_NAME_LENGTH).join("");
}

/** The file name a Content-Disposition header gives (RFC 6266 §4.1: `filename*` wins over `filename`). */
export function filenameFromContentDisposition(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const params = new Map<string, string>();
  const re = /;\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g;
  for (const m of header.matchAll(re)) {
    const key = m[1]!.toLowerCase();
    let value = m[2]!.trim();
    if (value.startsWith('"')) value = value.slice(1, -1).replace(/\\(.)/g, "$1");
    if (!params.has(key)) params.set(key, value);
  }
  const extended = params.get("filename*");
  if (extended !== undefined) {
    const decoded = decodeExtValue(extended);
    if (decoded !== undefined) return sanitizeFilename(decoded);
  }
  return sanitizeFilename(params.get("filename"));
}

/** RFC 8187 §3.2.1 ext-value: charset'language'pct-encoded. */
function decodeExtValue(value: string): string | undefined {
  const m = /^([^']*)'[^']*'(.*)$/.exec(value);
  if (!m) return undefined;
  const charset = m[1]!.toLowerCase();
  try {
    if (charset === "utf-8") return decodeURIComponent(m[2]!);
    if (charset === "iso-8859-1") {
      return m[2]!.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** The last segment of the URL's path, percent-decoded. */
export function filenameFromUrl(url: URL): string | undefined {
  const last = url.pathname.split("/").pop() ?? "";
  let decoded: string;
  try {
    decoded = decodeURIComponent(last);
  } catch {
    decoded = last;
  }
  return sanitizeFilename(decoded);
}

/**
 * `inline; filename="<ASCII fallback>"; filename*=UTF-8''<name>` — old
 * clients read the quoted fallback, current ones the exact UTF-8 name.
 */
export function contentDisposition(name: string, type: "inline" | "attachment" = "inline"): string {
  const safe = sanitizeFilename(name) ?? "file";
  const fallback = safe.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  // RFC 8187 attr-char leaves only ALPHA / DIGIT / "!#$&+-.^_`|~" unencoded.
  const encoded = encodeURIComponent(safe).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${type}; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
