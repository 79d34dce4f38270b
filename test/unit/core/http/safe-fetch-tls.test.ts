/**
 * Pinning the connection to the vetted address must not weaken TLS: the
 * certificate is still checked against the URL's hostname, sent as SNI.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EstuaryError } from "../../../../core/errors.ts";
import { createSafeFetch, type Resolver } from "../../../../core/http/safe-fetch.ts";

let server: Server;
let port: number;
let cert: Buffer;
const servernames: Array<string | false | null | undefined> = [];

beforeAll(async () => {
  // A self-signed certificate for files.test only, made fresh for this run.
  const dir = mkdtempSync(join(tmpdir(), "estuary-tls-"));
  try {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=files.test", "-addext", "subjectAltName=DNS:files.test",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    cert = readFileSync(join(dir, "cert.pem"));
    const key = readFileSync(join(dir, "key.pem"));
    server = createServer({ cert, key }, (req, res) => {
      servernames.push((req.socket as TLSSocket).servername);
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(`host=${req.headers.host}`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const lookup: Resolver = async () => [{ address: "127.0.0.1", family: 4 }];

describe("createSafeFetch over https", () => {
  it("sends the hostname as SNI and Host and verifies the certificate against it", async () => {
    const fetch = createSafeFetch({ allowHosts: ["files.test", "other.test"], lookup, ca: cert });
    const result = await fetch(`https://files.test:${port}/x`);
    expect(Buffer.from(result.data).toString()).toBe(`host=files.test:${port}`);
    expect(servernames.at(-1)).toBe("files.test");
  });

  it("refuses a certificate for another name", async () => {
    const fetch = createSafeFetch({ allowHosts: ["files.test", "other.test"], lookup, ca: cert });
    const err = await fetch(`https://other.test:${port}/x`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EstuaryError);
    expect((err as EstuaryError).kind).toBe("unavailable");
    expect((err as EstuaryError).message).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  it("refuses a certificate not signed by a trusted root", async () => {
    const fetch = createSafeFetch({ allowHosts: ["files.test"], lookup });
    const err = await fetch(`https://files.test:${port}/x`).catch((e: unknown) => e);
    expect((err as EstuaryError).kind).toBe("unavailable");
  });
});
