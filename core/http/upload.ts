/**
 * Network media published through the XMPP server's own upload service
 * (XEP-0363 HTTP File Upload, urn:xmpp:http:upload:0) when the admin names
 * one: the component asks for a slot from its own domain (§4), PUTs the bytes
 * to the slot's PUT URL (§6), and the XMPP user receives the GET URL, served
 * by their own server rather than by the gateway.
 *
 * A service that does not answer or refuses hands the file to the gateway's
 * own media store (./media.ts) when one is configured; otherwise the error is
 * thrown, and adapters turn it into a text note (never a silent drop).
 */
import { randomBytes } from "node:crypto";
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import type { Logger } from "pino";
import type { MediaPublisher } from "../adapter.ts";
import { EstuaryError, fail } from "../errors.ts";
import type { Network } from "../network.ts";
import { sanitizeFilename } from "./filename.ts";
import { sanitizeMediaType } from "./media.ts";

export const UPLOAD_NS = "urn:xmpp:http:upload:0";

/** XEP-0363 §4: the only headers a client may pass on from the slot to its PUT request. */
const ALLOWED_HEADERS = new Set(["authorization", "cookie", "expires"]);

export interface UploadSlot {
  putUrl: string;
  getUrl: string;
  /** The allowed slot headers (§4), newlines removed (§8). */
  headers: Record<string, string>;
}

export interface UploadPublisherOptions {
  /** Largest file offered to the service, in bytes (larger: `too-large` before any request). */
  maxBytes: number;
  /** Deadline for the slot request and, separately, for the PUT. */
  timeoutMs: number;
  /** The gateway's own store, used when the service does not answer or refuses. */
  fallback?: MediaPublisher;
  log?: Logger;
}

function httpUrl(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  try {
    const u = new URL(raw);
    // §4 asks for https; plain http is accepted for services on a trusted local network (and tests).
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : undefined;
  } catch {
    return undefined;
  }
}

/** Reads the `<slot/>` of a slot request's result (§4); throws `unavailable` when it is unusable. */
export function parseSlot(result: Element): UploadSlot {
  const slot = result.getChild("slot", UPLOAD_NS);
  const put = slot?.getChild("put");
  const putUrl = httpUrl(put?.attrs.url);
  const getUrl = httpUrl(slot?.getChild("get")?.attrs.url);
  if (putUrl === undefined || getUrl === undefined) throw fail("unavailable", "The upload service gave no usable slot");
  const headers: Record<string, string> = {};
  for (const h of put?.getChildren("header") ?? []) {
    const name = h.attrs.name ?? "";
    // §4: other headers are ignored; §8: newlines stripped so a value cannot inject a header.
    if (!ALLOWED_HEADERS.has(name.toLowerCase())) continue;
    headers[name] = h.getText().replace(/[\r\n]/g, "");
  }
  return { putUrl, getUrl, headers };
}

/**
 * The typed error for a failed slot request: `too-large` when the service
 * answers `<file-too-large/>` (§5), `unavailable` for any other refusal or
 * for silence.
 */
export function slotError(err: unknown): EstuaryError {
  const element = (err as { element?: Element } | undefined)?.element;
  const error = element?.getChild("error");
  if (error?.getChild("file-too-large", UPLOAD_NS)) {
    const max = error.getChild("file-too-large", UPLOAD_NS)!.getChildText("max-file-size");
    return fail("too-large", max ? `The file is larger than the upload service's limit of ${max} bytes` : "The file is larger than the upload service accepts", { cause: err });
  }
  if (element) {
    const condition = error?.getChildElements().find((c) => c.name !== "text")?.name ?? "unknown";
    return fail("unavailable", `The upload service refused the file (${condition})`, { cause: err });
  }
  return fail("unavailable", "The upload service did not answer", { cause: err });
}

/** A publisher that uploads through `service` (a JID, e.g. `upload.example.org`) on behalf of `net()`'s domain. */
export function createUploadPublisher(net: () => Network, service: string, options: UploadPublisherOptions): MediaPublisher {
  const { maxBytes, timeoutMs, fallback, log } = options;

  async function requestSlot(size: number, filename: string, contentType: string): Promise<UploadSlot> {
    const n = net();
    const iq = xml(
      "iq",
      { type: "get", id: `upload-${randomBytes(9).toString("base64url")}`, from: n.domain, to: service },
      xml("request", { xmlns: UPLOAD_NS, filename, size: String(size), "content-type": contentType }),
    );
    let result: Element;
    try {
      result = await n.iq.request(iq, timeoutMs);
    } catch (err) {
      throw slotError(err);
    }
    return parseSlot(result);
  }

  async function upload(data: Uint8Array, meta: { mediaType?: string; name?: string }): Promise<string> {
    const filename = sanitizeFilename(meta.name) ?? "file";
    const contentType = sanitizeMediaType(meta.mediaType);
    const slot = await requestSlot(data.byteLength, filename, contentType);
    let status: number;
    try {
      const res = await fetch(slot.putUrl, {
        method: "PUT",
        // §6: Content-Type as announced in the request (the service may check it); Content-Length comes from the body.
        headers: { ...slot.headers, "content-type": contentType },
        body: data,
        // The slot's URL is the place to put it; a redirect could carry the Authorization elsewhere.
        redirect: "error",
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body?.cancel();
      status = res.status;
    } catch (err) {
      throw fail("unavailable", "The upload service could not be reached", { cause: err });
    }
    // §6: 201 Created on success. 413 is what services answer to a size they will not take.
    if (status === 413) throw fail("too-large", "The upload service refused the file as too large");
    if (status < 200 || status >= 300) throw fail("unavailable", `The upload service refused the file (HTTP ${status})`);
    return slot.getUrl;
  }

  return {
    async publish(data, meta) {
      if (data.byteLength > maxBytes) throw fail("too-large", `The file is larger than the gateway's limit of ${maxBytes} bytes`);
      try {
        return await upload(data, meta);
      } catch (err) {
        if (fallback === undefined) throw err;
        log?.warn({ err: (err as Error).message, service }, "upload service failed; serving the file from the gateway");
        return fallback.publish(data, meta);
      }
    },
  };
}
