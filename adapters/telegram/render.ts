/**
 * Readable texts for what a Telegram message carries besides text and files
 * (https://core.telegram.org/bots/api#message): locations, polls, dice…,
 * the service messages of groups (pins, video chats, topics…), and the
 * headers of forwards (MessageOrigin), inline bots (`via_bot`) and replies
 * to other chats (`external_reply`, `quote`).
 *
 * No XEP carries most of these (XEP-0080 geoloc is a PEP payload, not a
 * message), so they become text every client shows: nothing a group sends
 * may vanish on the way to XMPP. Anything unknown still becomes a line
 * naming its fields, so a new Bot API feature shows up instead of being lost.
 */
import type { ExternalReplyInfo, Message, MessageOrigin, User } from "grammy/types";
import { displayName } from "./members.ts";

type Content = Pick<
  Message,
  "location" | "venue" | "contact" | "poll" | "dice" | "game" | "story" | "invoice" | "giveaway" | "giveaway_winners" | "paid_media" | "checklist"
>;

/** geo: URI (RFC 5870): clients open it in a map. */
function geo(l: { latitude: number; longitude: number }): string {
  return `geo:${l.latitude},${l.longitude}`;
}

/** Lines describing non-file content, or undefined when there is none. */
export function contentLines(m: Content): string[] | undefined {
  if (m.venue) return [`[venue: ${m.venue.title}, ${m.venue.address} — ${geo(m.venue.location)}]`];
  if (m.location) return [`[${m.location.live_period ? "live location" : "location"}: ${geo(m.location)}]`];
  if (m.contact) {
    const c = m.contact;
    const name = [c.first_name, c.last_name].filter(Boolean).join(" ");
    return [`[contact: ${name}, ${c.phone_number}]`];
  }
  if (m.poll) {
    const p = m.poll;
    const kind = p.type === "quiz" ? "quiz" : "poll";
    const closed = p.is_closed ? " (closed)" : "";
    return [`[${kind}${closed}: ${p.question}]`, ...p.options.map((o) => `○ ${o.text}${p.is_closed || o.voter_count > 0 ? ` (${o.voter_count})` : ""}`), "(vote in Telegram)"];
  }
  if (m.dice) return [`[${m.dice.emoji} ${m.dice.value}]`];
  if (m.game) return [`[game: ${m.game.title} — ${m.game.description}; play it in Telegram]`];
  if (m.story) {
    const owner = "title" in m.story.chat && m.story.chat.title ? ` of ${m.story.chat.title}` : "";
    return [`[a story${owner}: open it in Telegram]`];
  }
  if (m.invoice) return [`[invoice: ${m.invoice.title} — ${m.invoice.total_amount} ${m.invoice.currency} (smallest units); pay in Telegram]`];
  if (m.giveaway) return [`[giveaway: ${m.giveaway.winner_count} winner(s); see it in Telegram]`];
  if (m.giveaway_winners) return [`[giveaway winners: ${m.giveaway_winners.winner_count}; see them in Telegram]`];
  if (m.paid_media) return [`[paid media (${m.paid_media.star_count} stars): open it in Telegram]`];
  if (m.checklist) return [`[checklist: ${m.checklist.title}]`, ...m.checklist.tasks.map((t) => `${t.completion_date ? "☑" : "☐"} ${t.text}`)];
  return undefined;
}

function names(users: readonly User[]): string {
  return users.map(displayName).join(", ");
}

function duration(s: number): string {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/**
 * The text of a service message, said by its actor ("/me" style: "Alice
 * pinned …"), or undefined when `m` is not one of these. Joins, leaves,
 * titles and migrations are handled as room events elsewhere.
 */
export function serviceAction(m: Message): string | undefined {
  if (m.group_chat_created) return `created the group${"title" in m.chat ? ` “${m.chat.title}”` : ""}`;
  if (m.supergroup_chat_created) return "created the supergroup";
  if (m.channel_chat_created) return "created the channel";
  if (m.migrate_from_chat_id !== undefined) return "upgraded the group to a supergroup";
  if (m.pinned_message) {
    const p = m.pinned_message;
    // date 0: an InaccessibleMessage (https://core.telegram.org/bots/api#inaccessiblemessage).
    const excerpt = p.date !== 0 && "message_id" in p ? ((p as Message).text ?? (p as Message).caption) : undefined;
    return excerpt ? `pinned “${excerpt.length > 80 ? `${excerpt.slice(0, 80)}…` : excerpt}”` : "pinned a message";
  }
  if (m.new_chat_photo) return "changed the group photo";
  if (m.delete_chat_photo) return "removed the group photo";
  if (m.message_auto_delete_timer_changed) {
    const t = m.message_auto_delete_timer_changed.message_auto_delete_time;
    return t === 0 ? "turned off auto-deletion of messages" : `set messages to be deleted after ${duration(t)}`;
  }
  if (m.video_chat_scheduled) return `scheduled a video chat for ${new Date(m.video_chat_scheduled.start_date * 1000).toISOString()}`;
  if (m.video_chat_started) return "started a video chat (join it in Telegram)";
  if (m.video_chat_ended) return `ended the video chat (${duration(m.video_chat_ended.duration)})`;
  if (m.video_chat_participants_invited) return `invited ${names(m.video_chat_participants_invited.users)} to the video chat`;
  if (m.forum_topic_created) return `created the topic “${m.forum_topic_created.name}”`;
  if (m.forum_topic_edited) return m.forum_topic_edited.name !== undefined ? `renamed the topic to “${m.forum_topic_edited.name}”` : "changed the topic's icon";
  if (m.forum_topic_closed) return "closed the topic";
  if (m.forum_topic_reopened) return "reopened the topic";
  if (m.general_forum_topic_hidden) return "hid the General topic";
  if (m.general_forum_topic_unhidden) return "unhid the General topic";
  if (m.boost_added) return `boosted the group${m.boost_added.boost_count > 1 ? ` ${m.boost_added.boost_count} times` : ""}`;
  if (m.chat_background_set) return "changed the chat background";
  if (m.proximity_alert_triggered) return `is within ${m.proximity_alert_triggered.distance} m of ${displayName(m.proximity_alert_triggered.watcher)}`;
  if (m.write_access_allowed) return "allowed the bot to write to them";
  if (m.users_shared) return `shared ${m.users_shared.users.length} user(s) with the bot`;
  if (m.chat_shared) return `shared the chat ${m.chat_shared.title ?? m.chat_shared.chat_id} with the bot`;
  if (m.giveaway_created) return "created a giveaway";
  if (m.giveaway_completed) return `completed a giveaway (${m.giveaway_completed.winner_count} winner(s))`;
  if (m.successful_payment) return `paid ${m.successful_payment.total_amount} ${m.successful_payment.currency} (smallest units)`;
  if (m.refunded_payment) return `was refunded ${m.refunded_payment.total_amount} ${m.refunded_payment.currency} (smallest units)`;
  if (m.gift || m.unique_gift) return "sent a gift";
  if (m.web_app_data) return `sent data from a web app: ${m.web_app_data.data}`;
  if (m.connected_website) return `logged in on ${m.connected_website}`;
  if (m.checklist_tasks_done) return "marked checklist tasks done";
  if (m.checklist_tasks_added) return "added checklist tasks";
  return undefined;
}

/** Fields of every Message that say nothing about its content. */
const ENVELOPE = new Set([
  "message_id", "message_thread_id", "direct_messages_topic", "from", "sender_chat", "sender_boost_count", "sender_business_bot", "sender_tag", "date",
  "business_connection_id", "chat", "forward_origin", "is_topic_message", "is_automatic_forward", "reply_to_message", "external_reply", "quote",
  "reply_to_story", "reply_to_checklist_task_id", "reply_to_poll_option_id", "via_bot", "edit_date", "has_protected_content", "is_from_offline",
  "is_paid_post", "media_group_id", "author_signature", "paid_star_count", "link_preview_options", "reply_markup", "effect_id",
  "show_caption_above_media", "has_media_spoiler", "entities", "caption_entities", "suggested_post_info",
]);

/** The last-resort line for a message nothing else could render: never a silent drop. */
export function unknownLine(m: Message): string {
  const fields = Object.keys(m).filter((k) => !ENVELOPE.has(k));
  return `[a Telegram message this gateway cannot show${fields.length > 0 ? ` (${fields.join(", ")})` : ""}: open it in Telegram]`;
}

/** Who a forwarded message is from (https://core.telegram.org/bots/api#messageorigin). */
export function originName(o: MessageOrigin): string {
  switch (o.type) {
    case "user":
      return displayName(o.sender_user);
    case "hidden_user":
      return o.sender_user_name;
    case "chat": {
      const title = "title" in o.sender_chat && o.sender_chat.title ? o.sender_chat.title : "a group";
      return o.author_signature ? `${title} (${o.author_signature})` : title;
    }
    case "channel": {
      const title = "title" in o.chat && o.chat.title ? o.chat.title : "a channel";
      const who = o.author_signature ? `${title} (${o.author_signature})` : title;
      // A public channel's post has a link anyone can open.
      const username = "username" in o.chat ? o.chat.username : undefined;
      return username ? `${who} https://t.me/${username}/${o.message_id}` : who;
    }
  }
}

/** "In reply to Bob in Other group: …" for a reply to a message of another chat. */
export function externalReplyLine(r: ExternalReplyInfo): string {
  const where = r.chat && "title" in r.chat && r.chat.title ? ` in ${r.chat.title}` : "";
  return `In reply to ${originName(r.origin)}${where}:`;
}
