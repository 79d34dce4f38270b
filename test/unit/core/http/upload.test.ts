import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { createUploadPublisher, parseSlot, slotError, UPLOAD_NS } from "../../../../core/http/upload.ts";
import { EstuaryError, fail } from "../../../../core/errors.ts";
import { IqCaller } from "../../../../core/iq-caller.ts";
import type { Network } from "../../../../core/network.ts";
import type { MediaPublisher } from "../../../../core/adapter.ts";

const result = (...slot: Element[]): Element => xml("iq", { type: "result", id: "1", from: "upload.example.org" }, xml("slot", { xmlns: UPLOAD_NS }, ...slot));
const errorAnswer = (...children: Element[]): Element => xml("iq", { type: "error", id: "1", from: "upload.example.org" }, xml("error", { type: "modify" }, ...children));

describe("parseSlot", () => {
  it("reads the PUT and GET URLs and keeps only the allowed headers, newlines removed", () => {
    const slot = parseSlot(
      result(
        xml(
          "put",
          { url: "https://up.example.org/put/abc/rose.png" },
          xml("header", { name: "Authorization" }, "Bearer x\r\ny"),
          xml("header", { name: "Cookie" }, "a=b"),
          xml("header", { name: "Expires" }, "Sun, 22 Nov 2026 00:00:00 GMT"),
          xml("header", { name: "Host" }, "evil.example"),
          xml("header", { name: "X-Other" }, "1"),
        ),
        xml("get", { url: "https://up.example.org/get/abc/rose.png" }),
      ),
    );
    expect(slot).toEqual({
      putUrl: "https://up.example.org/put/abc/rose.png",
      getUrl: "https://up.example.org/get/abc/rose.png",
      headers: { Authorization: "Bearer xy", Cookie: "a=b", Expires: "Sun, 22 Nov 2026 00:00:00 GMT" },
    });
  });

  it("refuses a slot without a usable PUT or GET URL", () => {
    for (const el of [
      result(xml("get", { url: "https://up.example.org/g" })),
      result(xml("put", { url: "https://up.example.org/p" })),
      result(xml("put", { url: "ftp://up.example.org/p" }), xml("get", { url: "https://up.example.org/g" })),
      result(xml("put", { url: "https://up.example.org/p" }), xml("get", { url: "not a url" })),
      xml("iq", { type: "result", id: "1" }),
    ]) {
      expect(() => parseSlot(el)).toThrow(expect.objectContaining({ kind: "unavailable" }));
    }
  });
});

describe("slotError", () => {
  it("maps <file-too-large/> to too-large, with the service's limit", () => {
    const e = slotError(Object.assign(fail("unavailable", "error answer"), { element: errorAnswer(xml("not-acceptable", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }), xml("file-too-large", { xmlns: UPLOAD_NS }, xml("max-file-size", {}, "1024"))) }));
    expect(e.kind).toBe("too-large");
    expect(e.message).toContain("1024");
  });

  it("maps any other refusal and silence to unavailable", () => {
    const refused = slotError(Object.assign(fail("unavailable", "error answer"), { element: errorAnswer(xml("forbidden", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" })) }));
    expect(refused.kind).toBe("unavailable");
    expect(refused.message).toContain("forbidden");
    const silent = slotError(fail("timeout", "no answer"));
    expect(silent.kind).toBe("unavailable");
    expect(silent.message).toContain("did not answer");
  });
});

describe("createUploadPublisher", () => {
  let server: Server;
  let base = "";
  const puts: { url: string; headers: IncomingHttpHeaders; body: Buffer }[] = [];
  let putStatus = 201;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        puts.push({ url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks) });
        res.statusCode = putStatus;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  /** A network whose stream answers slot requests with `answer(request)` (undefined: silence). */
  function fakeNet(answer: (req: Element) => Element | undefined): { net: Network; sent: Element[] } {
    const sent: Element[] = [];
    const iq: IqCaller = new IqCaller((el) => {
      sent.push(el);
      const reply = answer(el);
      if (reply) queueMicrotask(() => iq.take(Object.assign(reply, { attrs: { ...reply.attrs, id: el.attrs.id, from: el.attrs.to } })));
    });
    return { net: { domain: "tg.example.org", iq } as unknown as Network, sent };
  }

  const slotFor = (name: string): Element =>
    result(xml("put", { url: `${base}/put/${name}` }, xml("header", { name: "Authorization" }, "Bearer t0k"), xml("header", { name: "X-Evil" }, "1")), xml("get", { url: `${base}/get/${name}` }));

  it("requests a slot from its own domain, PUTs the bytes with the allowed headers, returns the GET URL", async () => {
    putStatus = 201;
    const { net, sent } = fakeNet(() => slotFor("rose.png"));
    const publisher = createUploadPublisher(() => net, "upload.example.org", { maxBytes: 1000, timeoutMs: 2000 });
    const bytes = new TextEncoder().encode("a rose");
    const url = await publisher.publish(bytes, { mediaType: "image/png", name: "dir/rose.png" });
    expect(url).toBe(`${base}/get/rose.png`);
    const req = sent[0]!;
    expect(req.attrs).toMatchObject({ type: "get", from: "tg.example.org", to: "upload.example.org" });
    expect(req.getChild("request", UPLOAD_NS)!.attrs).toMatchObject({ filename: "rose.png", size: "6", "content-type": "image/png" });
    const put = puts.at(-1)!;
    expect(put.url).toBe("/put/rose.png");
    expect(put.headers.authorization).toBe("Bearer t0k");
    expect(put.headers["x-evil"]).toBeUndefined();
    expect(put.headers["content-type"]).toBe("image/png");
    expect(new Uint8Array(put.body)).toEqual(bytes);
  });

  it("refuses a file over its own limit before asking the service", async () => {
    const { net, sent } = fakeNet(() => slotFor("big"));
    const publisher = createUploadPublisher(() => net, "upload.example.org", { maxBytes: 3, timeoutMs: 2000 });
    await expect(publisher.publish(new Uint8Array(4), {})).rejects.toMatchObject({ kind: "too-large" });
    expect(sent).toHaveLength(0);
  });

  it("throws too-large when the service refuses the size, and unavailable when it is silent", async () => {
    const big = fakeNet(() => errorAnswer(xml("not-acceptable", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }), xml("file-too-large", { xmlns: UPLOAD_NS })));
    await expect(createUploadPublisher(() => big.net, "upload.example.org", { maxBytes: 100, timeoutMs: 2000 }).publish(new Uint8Array(4), {})).rejects.toMatchObject({ kind: "too-large" });
    const silent = fakeNet(() => undefined);
    const err = await createUploadPublisher(() => silent.net, "upload.example.org", { maxBytes: 100, timeoutMs: 50 }).publish(new Uint8Array(4), {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EstuaryError);
    expect((err as EstuaryError).kind).toBe("unavailable");
  });

  it("throws unavailable when the PUT is refused", async () => {
    putStatus = 403;
    const { net } = fakeNet(() => slotFor("refused"));
    await expect(createUploadPublisher(() => net, "upload.example.org", { maxBytes: 100, timeoutMs: 2000 }).publish(new Uint8Array(4), {})).rejects.toMatchObject({ kind: "unavailable" });
    putStatus = 201;
  });

  it("falls back to the gateway's own store when the service fails", async () => {
    const stored: Uint8Array[] = [];
    const fallback: MediaPublisher = {
      publish: async (data) => {
        stored.push(data);
        return "https://gw.example.org/media/x/file";
      },
    };
    const { net } = fakeNet(() => errorAnswer(xml("forbidden", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" })));
    const url = await createUploadPublisher(() => net, "upload.example.org", { maxBytes: 100, timeoutMs: 2000, fallback }).publish(new Uint8Array([1, 2]), {});
    expect(url).toBe("https://gw.example.org/media/x/file");
    expect(stored).toEqual([new Uint8Array([1, 2])]);
  });
});
