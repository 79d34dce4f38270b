/**
 * Media both ways.
 *
 * Incoming: the file of a photo/document/voice/video/… is fetched with
 * getFile and the file download URL (https://core.telegram.org/bots/api#getfile:
 * `<apiRoot>/file/bot<token>/<file_path>`, at most 20 MB for bots) and
 * published through the gateway's MediaPublisher; the XMPP user gets its URL
 * (XEP-0066). When that is impossible the message says why in its text —
 * never a silent drop.
 *
 * Outgoing: attachment URLs are fetched through the SSRF-safe `ctx.fetch`
 * (at most 50 MB, the Bot API's upload limit) and uploaded as multipart
 * (sendPhoto for images Telegram renders, sendDocument for anything else).
 */
import type { Api } from "grammy";
import type { Message } from "grammy/types";
import type { MediaPublisher } from "../../core/adapter.ts";
import { isEstuaryError } from "../../core/errors.ts";
import { grammySignal } from "./signal.ts";
import type { Attachment } from "../../core/model.ts";

export const DOWNLOAD_LIMIT = 20 * 1024 * 1024;
export const UPLOAD_LIMIT = 50 * 1024 * 1024;

/** Image types sendPhoto takes (https://core.telegram.org/bots/api#sendphoto); others go as documents. */
export const PHOTO_TYPES: ReadonlySet<string> = new Set(["image/jpeg", "image/png", "image/webp"]);

export interface IncomingFile {
  /** What the text calls it: "photo", "voice message", … */
  label: string;
  fileId: string;
  size?: number;
  name?: string;
  mediaType?: string;
}

/** The file a message carries, if any (a photo is its largest size). */
export function fileOf(m: Message): IncomingFile | undefined {
  const sized = <T extends { file_id: string; file_size?: number }>(label: string, f: T, extra: { name?: string; mediaType?: string }): IncomingFile => ({
    label,
    fileId: f.file_id,
    ...(f.file_size === undefined ? {} : { size: f.file_size }),
    ...(extra.name === undefined ? {} : { name: extra.name }),
    ...(extra.mediaType === undefined ? {} : { mediaType: extra.mediaType }),
  });
  if (m.photo && m.photo.length > 0) return sized("photo", m.photo.at(-1)!, { mediaType: "image/jpeg" });
  if (m.sticker) {
    const s = m.sticker;
    const mediaType = s.is_animated ? "application/x-tgsticker" : s.is_video ? "video/webm" : "image/webp";
    return sized(s.emoji ? `sticker ${s.emoji}` : "sticker", s, { mediaType });
  }
  if (m.voice) return sized("voice message", m.voice, { mediaType: m.voice.mime_type ?? "audio/ogg" });
  if (m.video_note) return sized("video message", m.video_note, { mediaType: "video/mp4" });
  if (m.video) return sized("video", m.video, { name: m.video.file_name, mediaType: m.video.mime_type ?? "video/mp4" });
  if (m.animation) return sized("animation", m.animation, { name: m.animation.file_name, mediaType: m.animation.mime_type ?? "video/mp4" });
  if (m.audio) return sized("audio", m.audio, { name: m.audio.file_name, mediaType: m.audio.mime_type });
  if (m.document) return sized("document", m.document, { name: m.document.file_name, mediaType: m.document.mime_type });
  return undefined;
}

function megabytes(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * Fetches and publishes a file. Resolves with the attachment, or with a note
 * for the text saying why there is none.
 */
export async function fetchIncoming(
  file: IncomingFile,
  deps: { api: Api; fileUrl: (path: string) => string; media: MediaPublisher | undefined; signal: AbortSignal },
): Promise<{ attachment: Attachment } | { note: string }> {
  if (deps.media === undefined) return { note: `[${file.label}: not available — the gateway has no HTTP listener]` };
  const tooBig = { note: `[${file.label}: too big to fetch (${megabytes(file.size ?? 0)}; bots can download at most 20 MB)]` };
  if (file.size !== undefined && file.size > DOWNLOAD_LIMIT) return tooBig;
  try {
    const info = await deps.api.getFile(file.fileId, grammySignal(deps.signal));
    if (info.file_path === undefined) return tooBig; // Telegram omits the path for files it will not serve
    const res = await fetch(deps.fileUrl(info.file_path), { signal: AbortSignal.any([deps.signal, AbortSignal.timeout(120_000)]) });
    if (!res.ok) return { note: `[${file.label}: could not be fetched from Telegram (HTTP ${res.status})]` };
    const data = new Uint8Array(await res.arrayBuffer());
    const name = file.name ?? info.file_path.split("/").pop();
    const url = await deps.media.publish(data, { ...(file.mediaType ? { mediaType: file.mediaType } : {}), ...(name ? { name } : {}) });
    return {
      attachment: { url, size: data.byteLength, ...(name ? { name } : {}), ...(file.mediaType ? { mediaType: file.mediaType } : {}) },
    };
  } catch (err) {
    if (isEstuaryError(err) && err.kind === "too-large") return { note: `[${file.label}: too large for this gateway]` };
    if (/too big/i.test(err instanceof Error ? err.message : "")) return tooBig;
    // The token is in the download URL: describe the failure without it.
    return { note: `[${file.label}: could not be fetched from Telegram]` };
  }
}
