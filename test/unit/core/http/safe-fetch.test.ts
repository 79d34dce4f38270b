import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EstuaryError } from "../../../../core/errors.ts";
import { createSafeFetch, type Resolver } from "../../../../core/http/safe-fetch.ts";

/** A loopback server whose routes the tests script; it counts every request path. */
let server: Server;
let port: number;
const hits: string[] = [];
const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();

beforeAll(async () => {
  server = createServer((req, res) => {
    hits.push(req.url ?? "");
    const route = routes.get((req.url ?? "").split("?")[0]!);
    if (route) route(req, res);
    else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  port = (server.address() as AddressInfo).port;

  routes.set("/file", (_req, res) => {
    res.writeHead(200, { "content-type": "image/png", "content-disposition": `attachment; filename="fallback.png"; filename*=UTF-8''%E2%82%AC%20rates.png` });
    res.end(Buffer.from([1, 2, 3, 4]));
  });
  routes.set("/dir/plain%20name.txt", (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    res.end("hello");
  });
  routes.set("/secret", (_req, res) => {
    res.writeHead(200);
    res.end("internal data");
  });
  routes.set("/to-internal", (_req, res) => {
    res.writeHead(302, { location: `http://internal.test:${port}/secret` });
    res.end();
  });
  routes.set("/to-literal-loopback", (_req, res) => {
    res.writeHead(301, { location: `http://127.0.0.1:${port}/secret` });
    res.end();
  });
  routes.set("/to-relative", (_req, res) => {
    res.writeHead(307, { location: "/dir/plain%20name.txt" });
    res.end();
  });
  routes.set("/loop", (_req, res) => {
    res.writeHead(302, { location: "/loop" });
    res.end();
  });
  routes.set("/to-file-scheme", (_req, res) => {
    res.writeHead(302, { location: "file:///etc/passwd" });
    res.end();
  });
  routes.set("/big-declared", (_req, res) => {
    res.writeHead(200, { "content-length": "5000" });
    res.end(Buffer.alloc(5000));
  });
  routes.set("/big-chunked", (_req, res) => {
    res.writeHead(200); // no content-length: chunked, so only the streaming cap can stop it
    for (let i = 0; i < 10; i++) res.write(Buffer.alloc(500));
    res.end();
  });
  routes.set("/stall-body", (_req, res) => {
    res.writeHead(200, { "content-length": "100" });
    res.write(Buffer.alloc(10)); // and never the rest
  });
  routes.set("/stall-headers", () => {
    // never answers
  });
  routes.set("/forbidden", (_req, res) => {
    res.writeHead(403);
    res.end();
  });
  routes.set("/error", (_req, res) => {
    res.writeHead(500);
    res.end();
  });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** A resolver from a fixed table; unknown names fail like NXDOMAIN. */
function table(map: Record<string, string[]>): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const fn = async (hostname: string) => {
    calls.push(hostname);
    const addresses = map[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    return addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };
  return Object.assign(fn, { calls });
}

async function failure(promise: Promise<unknown>): Promise<EstuaryError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EstuaryError);
  return err as EstuaryError;
}

/** Files served by the test server under a name that the allow list exempts. */
const publicName = "files.test";
const lookup = table({ [publicName]: ["127.0.0.1"], "internal.test": ["127.0.0.1"] });
const exempt = createSafeFetch({ allowHosts: [publicName], lookup });
const base = (): string => `http://${publicName}:${port}`;

describe("createSafeFetch: refused addresses", () => {
  const ranges = [
    "127.0.0.1",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "0.0.0.0",
    "100.64.0.1",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fc00::1",
    "fe80::1",
    "::ffff:127.0.0.1",
    "64:ff9b::7f00:1",
  ];
  it.each(ranges)("refuses a name resolving to %s", async (address) => {
    const fetch = createSafeFetch({ lookup: table({ "evil.test": [address] }) });
    const err = await failure(fetch(`http://evil.test:${port}/secret`));
    expect(err.kind).toBe("forbidden");
    expect(err.message).toMatch(/refused: private address/);
  });

  it("refuses when any one of the addresses is private", async () => {
    const fetch = createSafeFetch({ lookup: table({ "mixed.test": ["93.184.216.34", "127.0.0.1"] }) });
    expect((await failure(fetch(`http://mixed.test:${port}/secret`))).kind).toBe("forbidden");
  });

  it("refuses IP literals, including odd IPv4 spellings and bracketed IPv6", async () => {
    const fetch = createSafeFetch({});
    for (const url of [`http://127.0.0.1:${port}/secret`, `http://2130706433:${port}/secret`, `http://0x7f.1:${port}/secret`, `http://[::1]:${port}/secret`, `http://[::ffff:7f00:1]:${port}/secret`]) {
      expect((await failure(fetch(url))).kind, url).toBe("forbidden");
    }
    expect(hits).not.toContain("/secret");
  });

  it("refuses schemes other than http and https", async () => {
    const fetch = createSafeFetch({});
    expect((await failure(fetch("file:///etc/passwd"))).kind).toBe("bad-request");
    expect((await failure(fetch("ftp://example.org/x"))).kind).toBe("bad-request");
    expect((await failure(fetch("not a url"))).kind).toBe("bad-request");
  });

  it("reports an unknown host as not-found", async () => {
    const fetch = createSafeFetch({ lookup: table({}) });
    expect((await failure(fetch("http://nowhere.test/x"))).kind).toBe("not-found");
  });
});

describe("createSafeFetch: allowHosts", () => {
  it("lets an exempted hostname reach a loopback server, with media type and name", async () => {
    const result = await exempt(`${base()}/file`);
    expect([...result.data]).toEqual([1, 2, 3, 4]);
    expect(result.mediaType).toBe("image/png");
    expect(result.name).toBe("€ rates.png");
  });

  it("takes the name from the URL path when there is no Content-Disposition", async () => {
    const result = await exempt(`${base()}/dir/plain%20name.txt?x=1`);
    expect(Buffer.from(result.data).toString()).toBe("hello");
    expect(result.mediaType).toBe("text/plain; charset=utf-8");
    expect(result.name).toBe("plain name.txt");
  });

  it("exempts addresses by CIDR", async () => {
    const fetch = createSafeFetch({ allowHosts: ["127.0.0.0/8"] });
    const result = await fetch(`http://127.0.0.1:${port}/file`);
    expect(result.data.length).toBe(4);
  });

  it("maps error statuses to error kinds", async () => {
    expect((await failure(exempt(`${base()}/nothing-here`))).kind).toBe("not-found");
    expect((await failure(exempt(`${base()}/forbidden`))).kind).toBe("forbidden");
    expect((await failure(exempt(`${base()}/error`))).kind).toBe("unavailable");
  });
});

describe("createSafeFetch: redirects", () => {
  it("follows a relative redirect on an allowed host", async () => {
    const result = await exempt(`${base()}/to-relative`);
    expect(Buffer.from(result.data).toString()).toBe("hello");
  });

  it("re-vets every hop: a redirect to a private name is refused", async () => {
    const before = hits.filter((h) => h === "/secret").length;
    const err = await failure(exempt(`${base()}/to-internal`));
    expect(err.kind).toBe("forbidden");
    expect(hits.filter((h) => h === "/secret").length).toBe(before);
    expect(lookup.calls).toContain("internal.test");
  });

  it("refuses a redirect to a loopback literal", async () => {
    const before = hits.filter((h) => h === "/secret").length;
    expect((await failure(exempt(`${base()}/to-literal-loopback`))).kind).toBe("forbidden");
    expect(hits.filter((h) => h === "/secret").length).toBe(before);
  });

  it("refuses a redirect to another scheme", async () => {
    expect((await failure(exempt(`${base()}/to-file-scheme`))).kind).toBe("bad-request");
  });

  it("stops after maxRedirects", async () => {
    const fetch = createSafeFetch({ allowHosts: [publicName], lookup, maxRedirects: 3 });
    const before = hits.filter((h) => h === "/loop").length;
    const err = await failure(fetch(`${base()}/loop`));
    expect(err.kind).toBe("not-acceptable");
    // the first request and 3 followed redirects
    expect(hits.filter((h) => h === "/loop").length - before).toBe(4);
  });
});

describe("createSafeFetch: caps", () => {
  it("refuses a body announced larger than maxBytes", async () => {
    const fetch = createSafeFetch({ allowHosts: [publicName], lookup, maxBytes: 1000 });
    expect((await failure(fetch(`${base()}/big-declared`))).kind).toBe("too-large");
  });

  it("stops a chunked body once it passes maxBytes", async () => {
    const fetch = createSafeFetch({ allowHosts: [publicName], lookup, maxBytes: 1000 });
    expect((await failure(fetch(`${base()}/big-chunked`))).kind).toBe("too-large");
  });

  it("lets a call lower the size cap but not raise it", async () => {
    const fetch = createSafeFetch({ allowHosts: [publicName], lookup, maxBytes: 1000 });
    expect((await failure(fetch(`${base()}/big-chunked`, { maxBytes: 100_000 }))).kind).toBe("too-large");
    expect((await failure(exempt(`${base()}/big-chunked`, { maxBytes: 2 }))).kind).toBe("too-large");
    expect((await exempt(`${base()}/big-chunked`, { maxBytes: 5000 })).data.length).toBe(5000);
  });

  it("times out when the headers never come", async () => {
    const fetch = createSafeFetch({ allowHosts: [publicName], lookup, timeoutMs: 200 });
    const started = Date.now();
    expect((await failure(fetch(`${base()}/stall-headers`))).kind).toBe("timeout");
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("times out when the body stalls", async () => {
    expect((await failure(exempt(`${base()}/stall-body`, { timeoutMs: 200 }))).kind).toBe("timeout");
  });

  it("times out when DNS never answers", async () => {
    const fetch = createSafeFetch({ lookup: () => new Promise(() => {}), timeoutMs: 100 });
    expect((await failure(fetch("http://slow-dns.test/x"))).kind).toBe("timeout");
  });
});

describe("createSafeFetch: DNS rebinding", () => {
  it("connects to the vetted address, never asking DNS again", async () => {
    // 127.0.0.2 plays a public address here (exempted); the server listens on 127.0.0.1 only.
    // The name answers 127.0.0.2 first and 127.0.0.1 afterwards: a second resolution
    // at connect time, by this resolver or by the system's (the name is "localhost"),
    // would reach the server.
    let calls = 0;
    const rebinding: Resolver = async () => {
      calls++;
      return [{ address: calls === 1 ? "127.0.0.2" : "127.0.0.1", family: 4 }];
    };
    const fetch = createSafeFetch({ allowHosts: ["127.0.0.2/32"], lookup: rebinding, timeoutMs: 2000 });
    const before = hits.filter((h) => h === "/secret?rebind").length;
    const err = await failure(fetch(`http://localhost:${port}/secret?rebind`));
    expect(err.kind).toBe("unavailable"); // connection refused on 127.0.0.2
    expect(calls).toBe(1);
    expect(hits.filter((h) => h === "/secret?rebind").length).toBe(before);
  });

  it("vets the answer given at the time, so a name rebound to loopback is refused", async () => {
    let calls = 0;
    const rebinding: Resolver = async () => {
      calls++;
      return [{ address: calls === 1 ? "127.0.0.2" : "127.0.0.1", family: 4 }];
    };
    const fetch = createSafeFetch({ allowHosts: ["127.0.0.2/32"], lookup: rebinding });
    await failure(fetch(`http://rebind.test:${port}/secret`));
    expect((await failure(fetch(`http://rebind.test:${port}/secret`))).kind).toBe("forbidden");
  });
});
