/**
 * m.room.message content ↔ the neutral model (spec: "m.room.message
 * msgtypes", "Rich replies", "Event replacements").
 */
import { plain, toPlain, type RichText } from "../../core/format/model.ts";
import type { OutgoingMessage } from "../../core/model.ts";
import { hasFormatting, htmlToRich, richToHtml, stripReplyFallback } from "./html.ts";

export type Content = Record<string, unknown>;

export const MEDIA_MSGTYPES: Record<string, string> = { "m.image": "image", "m.file": "file", "m.audio": "audio", "m.video": "video" };

export function relatesTo(content: Content): { rel_type?: string; event_id?: string; key?: string; "m.in_reply_to"?: { event_id?: string } } | undefined {
  const rel = content["m.relates_to"];
  return rel && typeof rel === "object" ? (rel as never) : undefined;
}

/** The text of a message content: its HTML when it has some, else its plain body (reply fallbacks stripped). */
export function contentText(content: Content): RichText {
  const html = content.format === "org.matrix.custom.html" && typeof content.formatted_body === "string" ? content.formatted_body : undefined;
  if (html !== undefined) return htmlToRich(html);
  const body = typeof content.body === "string" ? content.body : "";
  return plain(relatesTo(content)?.["m.in_reply_to"] ? stripReplyFallback(body) : body);
}

export function incoming(content: Content): { text: RichText; action: boolean; notice: boolean; replyTo?: string } {
  const replyTo = relatesTo(content)?.["m.in_reply_to"]?.event_id;
  return {
    text: contentText(content),
    action: content.msgtype === "m.emote",
    notice: content.msgtype === "m.notice",
    ...(typeof replyTo === "string" ? { replyTo } : {}),
  };
}

/** The body/format part of an outgoing message (HTML only when the text has formatting). */
export function textContent(text: RichText, action = false): Content {
  const c: Content = { msgtype: action ? "m.emote" : "m.text", body: toPlain(text) };
  if (hasFormatting(text)) {
    c.format = "org.matrix.custom.html";
    c.formatted_body = richToHtml(text);
  }
  return c;
}

export function outgoingContent(msg: OutgoingMessage): Content {
  const c = textContent(msg.text, msg.action ?? false);
  if (msg.replyTo) c["m.relates_to"] = { "m.in_reply_to": { event_id: msg.replyTo } };
  return c;
}

/** An m.replace edit: `* ` fallback at the top, the new content in m.new_content. */
export function editContent(target: string, msg: OutgoingMessage): Content {
  const fresh = textContent(msg.text, msg.action ?? false);
  const c: Content = { ...fresh, body: `* ${String(fresh.body)}` };
  if (typeof fresh.formatted_body === "string") c.formatted_body = `* ${fresh.formatted_body}`;
  c["m.new_content"] = fresh;
  c["m.relates_to"] = { rel_type: "m.replace", event_id: target };
  return c;
}

/** The msgtype for an attachment's media type. */
export function msgtypeFor(mediaType: string | undefined): string {
  if (mediaType?.startsWith("image/")) return "m.image";
  if (mediaType?.startsWith("audio/")) return "m.audio";
  if (mediaType?.startsWith("video/")) return "m.video";
  return "m.file";
}
