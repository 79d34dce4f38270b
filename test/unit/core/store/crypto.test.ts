import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EstuaryError } from "../../../../core/errors.ts";
import { createSealer, deriveKey, parseKeySpec } from "../../../../core/store/crypto.ts";

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
}

describe("createSealer", () => {
  it("round-trips any text, with and without context", () => {
    const sealer = createSealer(randomBytes(32));
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.option(fc.string(), { nil: undefined }), (plain, ctx) => {
        expect(sealer.open(sealer.seal(plain, ctx), ctx)).toBe(plain);
      }),
    );
  });

  it("never shows the plaintext and never seals twice the same way", () => {
    const sealer = createSealer(randomBytes(32));
    const a = sealer.seal("hunter2-password");
    const b = sealer.seal("hunter2-password");
    expect(a).not.toBe(b);
    expect(a.startsWith("v1:")).toBe(true);
    expect(a).not.toContain("hunter2");
    expect(Buffer.from(a.slice(3), "base64url").toString("latin1")).not.toContain("hunter2");
  });

  it("fails with a typed internal error on a wrong key, without the plaintext", () => {
    const sealed = createSealer(randomBytes(32)).seal("s3cret-token");
    const err = caught(() => createSealer(randomBytes(32)).open(sealed));
    expect(err).toBeInstanceOf(EstuaryError);
    expect((err as EstuaryError).kind).toBe("internal");
    expect((err as EstuaryError).message).toMatch(/wrong encryption key/);
    expect(JSON.stringify(err) + String(err) + String((err as Error).cause)).not.toContain("s3cret-token");
  });

  it("refuses a value moved to another context, altered data and unknown formats", () => {
    const sealer = createSealer(randomBytes(32));
    const sealed = sealer.seal("pw", "reg\nalice\nirc\npassword");
    expect(() => sealer.open(sealed, "reg\nmallory\nirc\npassword")).toThrow(EstuaryError);
    expect(() => sealer.open(sealed)).toThrow(EstuaryError);
    const raw = Buffer.from(sealed.slice(3), "base64url");
    raw[raw.length - 1] = (raw[raw.length - 1] as number) ^ 1;
    expect(() => sealer.open(`v1:${raw.toString("base64url")}`, "reg\nalice\nirc\npassword")).toThrow(EstuaryError);
    expect(() => sealer.open("v1:AAAA")).toThrow(/truncated/);
    expect(() => sealer.open("plain text")).toThrow(/format/);
  });

  it("rejects keys that are not 32 bytes", () => {
    expect(() => createSealer(randomBytes(16))).toThrow(EstuaryError);
  });
});

describe("parseKeySpec", () => {
  const key = randomBytes(32);

  it("reads hex and base64 keys, with or without a prefix", () => {
    for (const spec of [
      key.toString("hex"),
      `hex:${key.toString("hex").toUpperCase()}`,
      key.toString("base64"),
      key.toString("base64").replace(/=+$/, ""),
      key.toString("base64url"),
      `base64:${key.toString("base64")}`,
    ]) {
      const parsed = parseKeySpec(spec);
      expect(parsed.kind, spec).toBe("raw");
      expect(parsed.kind === "raw" && parsed.key.equals(key), spec).toBe(true);
    }
  });

  it("takes anything else as a passphrase", () => {
    expect(parseKeySpec("correct horse battery staple")).toEqual({ kind: "passphrase", passphrase: "correct horse battery staple" });
    // 31 bytes of base64 and 63 hex digits are not keys.
    expect(parseKeySpec(randomBytes(31).toString("base64")).kind).toBe("passphrase");
    expect(parseKeySpec(key.toString("hex").slice(1)).kind).toBe("passphrase");
    expect(parseKeySpec(`passphrase:${key.toString("hex")}`)).toEqual({ kind: "passphrase", passphrase: key.toString("hex") });
  });

  it("rejects malformed prefixed keys and empty ones", () => {
    expect(() => parseKeySpec("hex:abcd")).toThrow(EstuaryError);
    expect(() => parseKeySpec("base64:abcd")).toThrow(EstuaryError);
    expect(() => parseKeySpec("")).toThrow(EstuaryError);
    expect(() => parseKeySpec("passphrase:")).toThrow(EstuaryError);
  });
});

describe("deriveKey", () => {
  it("is deterministic for a salt and differs across salts", async () => {
    const salt = randomBytes(16);
    const a = await deriveKey("pass phrase", salt);
    const b = await deriveKey("pass phrase", salt);
    const c = await deriveKey("pass phrase", randomBytes(16));
    expect(a).toHaveLength(32);
    expect(a.equals(b)).toBe(true);
    expect(a.equals(c)).toBe(false);
  });
});
