/**
 * Media methods of the fake Bot API: sendPhoto, sendDocument, sendVoice,
 * sendVideo, sendAudio, sendAnimation and getFile.
 *
 * A file may be given three ways (https://core.telegram.org/bots/api#sending-files):
 * a multipart upload (directly or via "attach://<name>"), an HTTP URL that
 * Telegram downloads (the fake really fetches it, so tests can serve files
 * from loopback), or a file_id the server already knows.
 */
import type { Message } from "grammy/types";
import { sendTarget, type Call, type Handler, type SentMedia } from "./context.ts";
import { CAPTION_LIMIT, createBotMessage, formatted, recordSent } from "./messages.ts";
import { badRequest } from "./protocol.ts";
import { imageSize, type FileKind, type StoredFile } from "./world.ts";

/** Telegram's download limit for bots (https://core.telegram.org/bots/api#getfile). */
const DOWNLOAD_LIMIT = 20 * 1024 * 1024;

const MIME: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  pdf: "application/pdf",
  txt: "text/plain",
  mp4: "video/mp4",
  ogg: "audio/ogg",
  oga: "audio/ogg",
  opus: "audio/ogg",
  mp3: "audio/mpeg",
  zip: "application/zip",
};

function mimeFor(name: string | undefined, given: string | undefined): string | undefined {
  const ext = name?.match(/\.([A-Za-z0-9]+)$/)?.[1]?.toLowerCase();
  const byExt = ext === undefined ? undefined : MIME[ext];
  // grammY always labels parts application/octet-stream; Telegram guesses from the name.
  return byExt ?? (given === "application/octet-stream" ? undefined : given);
}

const capitalised = (kind: string): string => kind[0]?.toUpperCase() + kind.slice(1);

async function download(url: string): Promise<Uint8Array> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(String(res.status));
    return new Uint8Array(await res.arrayBuffer());
  } catch {
    throw badRequest("failed to get HTTP URL content");
  }
}

/** Resolves the InputFile parameter `field` into a stored file and how it was given. */
async function inputFile(call: Call, field: string, kind: FileKind): Promise<{ file: StoredFile; media: Omit<SentMedia, "kind" | "file_id" | "file_unique_id" | "file_size" | "bytes"> }> {
  const { world } = call.env;
  let upload = call.params.uploads.get(field);
  const value = call.params.str(field);
  if (upload === undefined && value?.startsWith("attach://")) {
    upload = call.params.uploads.get(value.slice("attach://".length));
    if (upload === undefined) throw badRequest(`wrong HTTP URL specified`);
  }
  let bytes: Uint8Array;
  let name: string | undefined;
  let contentType: string | undefined;
  let media: { source: SentMedia["source"]; url?: string };
  if (upload !== undefined) {
    ({ bytes, filename: name, contentType } = upload);
    media = { source: "upload" };
  } else if (value !== undefined && /^https?:\/\//i.test(value)) {
    bytes = await download(value);
    name = decodeURIComponent(new URL(value).pathname.split("/").pop() ?? "") || undefined;
    media = { source: "url", url: value };
  } else if (value !== undefined && value !== "") {
    const known = world.files.get(value);
    if (known === undefined) throw badRequest("wrong file identifier/HTTP URL specified");
    if (known.kind !== kind) throw badRequest(`can't use file of type ${capitalised(known.kind)} as ${capitalised(kind)}`);
    return { file: known, media: { source: "file_id" } };
  } else {
    throw badRequest(`there is no ${field} in the request`);
  }
  const extra: Partial<StoredFile> = {};
  if (kind === "photo") {
    const size = imageSize(bytes);
    if (size === undefined) throw badRequest("IMAGE_PROCESS_FAILED");
    Object.assign(extra, size);
  } else {
    if (name !== undefined && name !== "") extra.file_name = name;
    const mime = mimeFor(name, contentType);
    if (mime !== undefined) extra.mime_type = mime;
  }
  const file = world.addFile(kind, bytes, extra);
  return { file, media: { ...media, ...(extra.file_name ? { file_name: extra.file_name } : {}), ...(extra.mime_type ? { mime_type: extra.mime_type } : {}) } };
}

/** The Message field describing the file (Photo is an array of sizes). */
function mediaField(call: Call, kind: FileKind, f: StoredFile): Partial<Message> {
  const base = { file_id: f.file_id, file_unique_id: f.file_unique_id, file_size: f.bytes.byteLength };
  const named = { ...(f.file_name ? { file_name: f.file_name } : {}), ...(f.mime_type ? { mime_type: f.mime_type } : {}) };
  const duration = call.params.int("duration") ?? 0;
  switch (kind) {
    case "photo":
      return { photo: [{ ...base, width: f.width ?? 0, height: f.height ?? 0 }] };
    case "document":
      return { document: { ...base, ...named } };
    case "voice":
      return { voice: { ...base, duration, mime_type: f.mime_type ?? "audio/ogg" } };
    case "audio":
      return { audio: { ...base, ...named, duration } };
    case "video":
    case "animation": {
      const width = call.params.int("width") ?? f.width ?? 0;
      const height = call.params.int("height") ?? f.height ?? 0;
      return { [kind]: { ...base, ...named, width, height, duration } };
    }
    case "sticker":
      return { sticker: { ...base, type: "regular", width: f.width ?? 512, height: f.height ?? 512, is_animated: false, is_video: false } };
    case "video_note":
      return { video_note: { ...base, length: call.params.int("length") ?? f.width ?? 240, duration } };
  }
}

function sendMedia(kind: FileKind): Handler {
  return async (call) => {
    const chat = sendTarget(call);
    const { text: caption, entities } = formatted(call.params, "caption");
    if (caption.length > CAPTION_LIMIT) throw badRequest("message caption is too long");
    const { file, media } = await inputFile(call, kind, kind);
    const content: Partial<Message> = {
      ...mediaField(call, kind, file),
      ...(caption === "" ? {} : { caption }),
      ...(entities === undefined ? {} : { caption_entities: entities }),
    };
    const stored = createBotMessage(call, chat, content);
    recordSent(call, chat, stored, {
      media: {
        kind,
        file_id: file.file_id,
        file_unique_id: file.file_unique_id,
        file_size: file.bytes.byteLength,
        bytes: file.bytes,
        ...(file.file_name ? { file_name: file.file_name } : {}),
        ...(file.mime_type ? { mime_type: file.mime_type } : {}),
        ...media,
      },
    });
    return stored.message;
  };
}

const getFile: Handler = (call) => {
  const id = call.params.str("file_id");
  if (id === undefined || id === "") throw badRequest("file_id is empty");
  const file = call.env.world.files.get(id);
  if (file === undefined) throw badRequest("invalid file_id");
  if (file.bytes.byteLength > DOWNLOAD_LIMIT) throw badRequest("file is too big");
  return { file_id: file.file_id, file_unique_id: file.file_unique_id, file_size: file.bytes.byteLength, file_path: file.file_path };
};

export const mediaMethods: Record<string, Handler> = {
  sendPhoto: sendMedia("photo"),
  sendDocument: sendMedia("document"),
  sendVoice: sendMedia("voice"),
  sendVideo: sendMedia("video"),
  sendAudio: sendMedia("audio"),
  sendAnimation: sendMedia("animation"),
  getFile,
};
