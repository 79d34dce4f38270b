/**
 * Sealing of secrets at rest (registration passwords, tokens) with
 * AES-256-GCM (NIST SP 800-38D): a fresh 96-bit random IV per seal, a 128-bit
 * tag, and an optional context bound as additional authenticated data so a
 * sealed value copied to another user's or field's slot does not open.
 *
 * Sealed format: `v1:` + base64url(iv ‖ tag ‖ ciphertext).
 *
 * The 32-byte key is given as hex (64 digits) or base64 (of 32 bytes), with an
 * optional explicit `hex:` / `base64:` / `passphrase:` prefix; anything else is
 * a passphrase stretched with scrypt (RFC 7914) and the store's own random
 * salt, so the same passphrase gives different keys in different stores.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from "node:crypto";
import { EstuaryError } from "../errors.ts";

const VERSION = "v1:";
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;
export const SALT_BYTES = 16;

/** scrypt cost: N=2^15, r=8 (RFC 7914 §2 guidance for interactive use, ~100 ms); needs 32 MiB, hence maxmem. */
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export interface Sealer {
  /** Encrypts `plain`; `context` (e.g. user, network and field) must be given again to open. */
  seal(plain: string, context?: string): string;
  /** Decrypts; a wrong key, wrong context or altered data throws `EstuaryError("internal")`. */
  open(sealed: string, context?: string): string;
}

export type KeySpec = { kind: "raw"; key: Buffer } | { kind: "passphrase"; passphrase: string };

function badKey(text: string): EstuaryError {
  return new EstuaryError("internal", text);
}

function decodeHex(s: string): Buffer | undefined {
  return /^[0-9a-fA-F]{64}$/.test(s) ? Buffer.from(s, "hex") : undefined;
}

function decodeBase64(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) return undefined;
  const buf = Buffer.from(s, s.includes("-") || s.includes("_") ? "base64url" : "base64");
  // Only a strict encoding of exactly 32 bytes counts; a passphrase that merely looks base64-ish does not.
  if (buf.length !== KEY_BYTES) return undefined;
  const canonical = s.includes("-") || s.includes("_") ? buf.toString("base64url") : buf.toString("base64");
  return canonical.replace(/=+$/, "") === s.replace(/=+$/, "") ? buf : undefined;
}

/** Reads a configured key: raw 32 bytes (hex or base64) or a passphrase. */
export function parseKeySpec(spec: string): KeySpec {
  const trimmed = spec.trim();
  if (trimmed.startsWith("hex:")) {
    const key = decodeHex(trimmed.slice(4));
    if (!key) throw badKey("The encryption key after 'hex:' must be 64 hexadecimal digits (32 bytes)");
    return { kind: "raw", key };
  }
  if (trimmed.startsWith("base64:")) {
    const key = decodeBase64(trimmed.slice(7));
    if (!key) throw badKey("The encryption key after 'base64:' must be the base64 of exactly 32 bytes");
    return { kind: "raw", key };
  }
  if (spec.startsWith("passphrase:")) {
    const passphrase = spec.slice("passphrase:".length);
    if (passphrase.length === 0) throw badKey("The encryption passphrase is empty");
    return { kind: "passphrase", passphrase };
  }
  const key = decodeHex(trimmed) ?? decodeBase64(trimmed);
  if (key) return { kind: "raw", key };
  if (spec.length === 0) throw badKey("The encryption key is empty");
  return { kind: "passphrase", passphrase: spec };
}

/** Stretches a passphrase into a 32-byte key (scrypt, RFC 7914). */
export function deriveKey(passphrase: string, salt: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(passphrase.normalize("NFC"), salt, KEY_BYTES, SCRYPT, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** A fresh random 32-byte key (for stores that live only in memory). */
export function randomKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

export function createSealer(key: Uint8Array): Sealer {
  if (key.length !== KEY_BYTES) throw badKey(`The encryption key must be ${KEY_BYTES} bytes`);
  const k = Buffer.from(key);
  return {
    seal(plain: string, context?: string): string {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", k, iv, { authTagLength: TAG_BYTES });
      if (context !== undefined) cipher.setAAD(Buffer.from(context, "utf8"));
      const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
      return VERSION + Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
    },
    open(sealed: string, context?: string): string {
      if (!sealed.startsWith(VERSION)) throw badKey("A stored secret is not in a known sealed format");
      const raw = Buffer.from(sealed.slice(VERSION.length), "base64url");
      if (raw.length < IV_BYTES + TAG_BYTES) throw badKey("A stored secret is truncated");
      const iv = raw.subarray(0, IV_BYTES);
      const tag = raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
      try {
        const decipher = createDecipheriv("aes-256-gcm", k, iv, { authTagLength: TAG_BYTES });
        decipher.setAuthTag(tag);
        if (context !== undefined) decipher.setAAD(Buffer.from(context, "utf8"));
        // update() output is only trusted once final() has checked the tag.
        const out = Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
        return out.toString("utf8");
      } catch (cause) {
        throw new EstuaryError(
          "internal",
          "A stored secret cannot be decrypted: wrong encryption key or altered data",
          { cause },
        );
      }
    },
  };
}
