import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { contentDisposition, filenameFromContentDisposition, filenameFromUrl, sanitizeFilename } from "../../../../core/http/filename.ts";

describe("sanitizeFilename", () => {
  it("keeps only the last path component", () => {
    expect(sanitizeFilename("../../etc/passwd")).toBe("passwd");
    expect(sanitizeFilename("C:\\Users\\x\\report.pdf")).toBe("report.pdf");
  });
  it("drops control and bidi-override characters", () => {
    expect(sanitizeFilename("a\r\nb\u0000c.txt")).toBe("abc.txt");
    expect(sanitizeFilename("invoice\u202Efdp.exe")).toBe("invoicefdp.exe");
  });
  it("answers undefined when nothing is left", () => {
    expect(sanitizeFilename("..")).toBeUndefined();
    expect(sanitizeFilename("dir/")).toBeUndefined();
    expect(sanitizeFilename(" \u0001 ")).toBeUndefined();
    expect(sanitizeFilename(undefined)).toBeUndefined();
  });
  it("never returns a separator, a control character or more than 200 code points", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 250 }), (s) => {
        const name = sanitizeFilename(s);
        if (name === undefined) return;
        expect(name).not.toMatch(/[/\\\u0000-\u001f\u007f]/);
        expect([...name].length).toBeLessThanOrEqual(200);
      }),
    );
  });
});

describe("filenameFromContentDisposition", () => {
  it("prefers filename* (RFC 8187) over filename", () => {
    expect(filenameFromContentDisposition(`attachment; filename="EURO rates"; filename*=utf-8''%e2%82%ac%20rates`)).toBe("€ rates");
  });
  it("reads a quoted filename with escapes and an unquoted one", () => {
    expect(filenameFromContentDisposition(`inline; filename="a \\"b\\".txt"`)).toBe('a "b".txt');
    expect(filenameFromContentDisposition("attachment; filename=plain.txt")).toBe("plain.txt");
  });
  it("decodes ISO-8859-1 ext-values", () => {
    expect(filenameFromContentDisposition("attachment; filename*=iso-8859-1'en'%E9t%E9.txt")).toBe("été.txt");
  });
  it("strips directories an attacker puts in the name", () => {
    expect(filenameFromContentDisposition(`attachment; filename="../../.ssh/authorized_keys"`)).toBe("authorized_keys");
  });
  it("answers undefined without a filename", () => {
    expect(filenameFromContentDisposition("inline")).toBeUndefined();
    expect(filenameFromContentDisposition(undefined)).toBeUndefined();
  });
});

describe("filenameFromUrl", () => {
  it("decodes the last path segment", () => {
    expect(filenameFromUrl(new URL("https://example.org/a/b%20c.png?x=1"))).toBe("b c.png");
    expect(filenameFromUrl(new URL("https://example.org/"))).toBeUndefined();
    expect(filenameFromUrl(new URL("https://example.org/a/%E0%A4%A"))).toBe("%E0%A4%A");
  });
});

describe("contentDisposition", () => {
  it("writes an ASCII fallback and the exact UTF-8 name", () => {
    expect(contentDisposition("€ rates (1).png")).toBe(`inline; filename="_ rates (1).png"; filename*=UTF-8''%E2%82%AC%20rates%20%281%29.png`);
  });
  it("round-trips through the parser for any name", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), (s) => {
        const name = sanitizeFilename(s) ?? "file";
        const header = contentDisposition(s);
        expect(header).toMatch(/^[\x20-\x7e]+$/); // header-safe
        expect(filenameFromContentDisposition(header)).toBe(name);
      }),
    );
  });
});
