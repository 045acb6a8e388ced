//! A record's fields and its frame: what a message, an edit, a delete and a
//! reaction carry (built by the core as a draft's fields), the frame the
//! log seals them into (`{"type","room","id",...}`), reading a frame's kind
//! back, and a message's frame amended by an edit or its reactions. Who may
//! do what is the core's; the rest of the protocol is `protocol.rs`.

use super::protocol::{to_json, UserView};
use super::reactions::Reactions;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Who may edit or delete a message: a tag derived from the sending page's
/// secret. Stored with the record (the journal line, the Redis entry) but
/// never sent to anyone.
pub type Owner = u64;

/// The owner tag of a page secret (not the hash that holds its name, so
/// neither can be told from the other).
pub fn owner_of(secret: &str) -> Owner {
    let digest = Sha256::new()
        .chain_update(b"picochat owner\0")
        .chain_update(secret.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The fields of a chat message frame that the sender decides; the log adds
/// the rest (`room` and the `id` it assigns) when it commits the record.
#[derive(Serialize)]
struct MessageFields<'a> {
    time: u64,
    username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    avatar: Option<&'a str>,
    message: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    verified: bool,
    /// `"admin"`: posted by a moderator through the admin API.
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<&'static str>,
    /// A direct message: its recipient's name (so either side can be named).
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    /// An image sent with the message (its caption is `message`).
    #[serde(skip_serializing_if = "Option::is_none")]
    attachment: Option<&'a Attachment>,
}

/// An image a message carries: where it is served and what it is.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// `/u/<name>`.
    pub url: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Its size as stored (after stripping).
    pub bytes: usize,
    pub width: u32,
    pub height: u32,
}

/// `{"time":T,"username":U,["avatar":A,]"message":M}`: what a
/// [`super::record::Draft`] carries until the log seals it with an id.
pub fn message_fields(time: u64, who: &UserView, message: &str) -> String {
    sent_fields(time, who, message, None)
}

/// A direct message's fields: a message's, and `"to":NAME`, its recipient.
pub fn direct_message_fields(time: u64, who: &UserView, message: &str, to: &str) -> String {
    sent_fields(time, who, message, Some(to))
}

fn sent_fields(time: u64, who: &UserView, message: &str, to: Option<&str>) -> String {
    to_json(&MessageFields {
        time,
        username: who.username,
        avatar: who.avatar,
        message,
        verified: who.verified,
        by: None,
        to,
        attachment: None,
    })
}

/// A message carrying an image: a message's fields and `"attachment"`
/// (`to` as for a direct message).
pub fn upload_fields(
    time: u64,
    who: &UserView,
    caption: &str,
    to: Option<&str>,
    attachment: &Attachment,
) -> String {
    to_json(&MessageFields {
        time,
        username: who.username,
        avatar: who.avatar,
        message: caption,
        verified: who.verified,
        by: None,
        to,
        attachment: Some(attachment),
    })
}

/// A moderator's message: `{..., "by":"admin"}`, owned by no page.
pub fn admin_message_fields(time: u64, username: &str, message: &str) -> String {
    to_json(&MessageFields {
        time,
        username,
        avatar: None,
        message,
        verified: false,
        by: Some("admin"),
        to: None,
        attachment: None,
    })
}

/// An edit or a delete of message `target`, as a record of its own.
#[derive(Serialize)]
struct ChangeFields<'a> {
    target: u64,
    time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    /// `"admin"` when a moderator deleted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<&'static str>,
}

/// `{"target":N,"time":T,"username":U,"message":M}` (a `Kind::Edit`):
/// message `target` now reads `message`.
pub fn edit_fields(time: u64, who: &str, target: u64, message: &str) -> String {
    to_json(&ChangeFields {
        target,
        time,
        username: Some(who),
        message: Some(message),
        by: None,
    })
}

/// `{"target":N,"time":T,"username":U}` (a `Kind::Delete`: its sender
/// deleted it) or `{...,"by":"admin"}` (a moderator did).
pub fn delete_fields(time: u64, who: Option<&str>, target: u64) -> String {
    to_json(&ChangeFields {
        target,
        time,
        username: who,
        message: None,
        by: who.is_none().then_some("admin"),
    })
}

/// A reaction toggled on message `target`, as a record of its own.
#[derive(Serialize)]
struct ReactFields<'a> {
    target: u64,
    time: u64,
    emoji: &'a str,
    username: &'a str,
    on: bool,
}

/// `{"target":N,"time":T,"emoji":E,"username":U,"on":B}` (a `Kind::React`):
/// U's reaction E on message `target` is there (`on`) or no more.
pub fn react_fields(time: u64, who: &str, target: u64, emoji: &str, on: bool) -> String {
    to_json(&ReactFields {
        target,
        time,
        emoji,
        username: who,
        on,
    })
}

/// What a record does to its room's history.
#[derive(Debug, PartialEq)]
pub enum RecordKind {
    Message,
    /// Message `target` now reads `message`.
    Edit {
        target: u64,
        message: String,
    },
    /// Message `target` is gone.
    Delete {
        target: u64,
    },
    /// `username`'s reaction `emoji` on message `target` is there (`on`) or no more.
    React {
        target: u64,
        emoji: String,
        username: String,
        on: bool,
    },
}

/// Reads a record's kind from its frame (a chat message without parsing it).
pub fn record_kind(frame: &str) -> RecordKind {
    if frame.starts_with("{\"type\":\"message\"") {
        return RecordKind::Message;
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Type {
        Edit,
        Delete,
        React,
        #[serde(other)]
        Other,
    }
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "type")]
        kind: Option<Type>,
        target: Option<u64>,
        message: Option<String>,
        emoji: Option<String>,
        username: Option<String>,
        on: Option<bool>,
    }
    let Ok(head) = serde_json::from_str::<Head>(frame) else {
        return RecordKind::Message;
    };
    match (head.kind, head.target, head.message) {
        (Some(Type::Edit), Some(target), Some(message)) => RecordKind::Edit { target, message },
        (Some(Type::Delete), Some(target), _) => RecordKind::Delete { target },
        (Some(Type::React), Some(target), _) => RecordKind::React {
            target,
            emoji: head.emoji.unwrap_or_default(),
            username: head.username.unwrap_or_default(),
            on: head.on.unwrap_or(false),
        },
        _ => RecordKind::Message,
    }
}

/// A message frame with its text replaced and `"edited":true`, still led
/// by `"type","room","id"` like every record (so its kind reads at a glance).
pub fn edited(frame: &str, message: &str) -> Option<String> {
    rebuilt(frame, None, |v| {
        v.insert("message".into(), message.into());
        v.insert("edited".into(), true.into());
    })
}

/// A message frame carrying `reactions` (none: no `"reactions"` field).
pub fn with_reactions(frame: &str, reactions: &Reactions) -> Option<String> {
    rebuilt(frame, Some(reactions), |_| {})
}

/// A message frame changed by `change`, its `"reactions"` (in their order,
/// which a JSON map would lose) replaced by `reactions` when given, kept otherwise.
fn rebuilt(
    frame: &str,
    reactions: Option<&Reactions>,
    change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Option<String> {
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(frame).ok()?;
    if !v.contains_key("room") {
        // A line from before rooms (and reactions): kept as it is.
        change(&mut v);
        return serde_json::to_string(&v).ok();
    }
    let kept;
    let reactions = match (reactions, v.remove("reactions")) {
        (Some(r), _) => r,
        (None, found) => {
            kept = found.map_or_else(Reactions::default, |_| Reactions::of(frame));
            &kept
        }
    };
    change(&mut v);
    let (kind, room, id) = (v.remove("type")?, v.remove("room")?, v.remove("id")?);
    let mut members = serde_json::to_string(&v).ok()?;
    members.pop(); // the closing brace
    if !reactions.is_empty() {
        if members.len() > 1 {
            members.push(',');
        }
        members.push_str("\"reactions\":");
        members.push_str(&reactions.to_json());
    }
    Some(frame_with(
        kind.as_str()?,
        room.as_str()?,
        id.as_u64()?,
        &members[1..],
    ))
}

/// The complete frame of a record: `{"type":K,"room":R,"id":N,` and the
/// members of `fields` (one JSON object). Room names need no escaping
/// (`a-z 0-9 - _` only).
pub fn frame(kind: &str, room: &str, id: u64, fields: &str) -> String {
    let members = fields.strip_prefix('{').unwrap_or(fields);
    frame_with(kind, room, id, members.strip_suffix('}').unwrap_or(members))
}

/// [`frame`] from the members of the fields' object, without its braces.
pub fn frame_with(kind: &str, room: &str, id: u64, members: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(members.len() + room.len() + 48);
    let _ = write!(out, "{{\"type\":\"{kind}\",\"room\":\"{room}\",\"id\":{id}");
    if !members.is_empty() {
        out.push(',');
        out.push_str(members);
    }
    out.push('}');
    out
}

/// Whether a record's frame is a chat message (not an edit, a delete or a reaction).
pub fn is_message(frame: &str) -> bool {
    if frame.starts_with("{\"type\":\"message\"") {
        return true;
    }
    if frame.starts_with("{\"type\":\"edit\"")
        || frame.starts_with("{\"type\":\"delete\"")
        || frame.starts_with("{\"type\":\"react\"")
    {
        return false;
    }
    record_kind(frame) == RecordKind::Message
}

/// A message frame's text (its `"message"` field, unescaped).
pub fn message_text(frame: &str) -> Option<std::borrow::Cow<'_, str>> {
    #[derive(Deserialize)]
    struct Text<'a> {
        #[serde(borrow)]
        message: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Text>(frame).ok()?.message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_message_is_valid_json_with_room_and_id() {
        let who = UserView {
            username: "a\"b",
            avatar: None,
            verified: false,
        };
        let fields = message_fields(5, &who, "hi \"there\"\n");
        let v: serde_json::Value =
            serde_json::from_str(&frame("message", "general", 42, &fields)).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["room"], "general");
        assert_eq!(v["id"], 42);
        assert_eq!(v["username"], "a\"b");
        assert_eq!(v["message"], "hi \"there\"\n");
    }

    #[test]
    fn edits_and_deletes_are_sealed_with_their_own_type_and_read_back() {
        let edit = frame("edit", "general", 9, &edit_fields(7, "ann", 3, "new"));
        let v: serde_json::Value = serde_json::from_str(&edit).unwrap();
        assert_eq!(
            (v["type"].as_str(), v["room"].as_str(), v["id"].as_u64()),
            (Some("edit"), Some("general"), Some(9))
        );
        assert_eq!(
            record_kind(&edit),
            RecordKind::Edit {
                target: 3,
                message: "new".into()
            }
        );
        let delete = frame("delete", "general", 10, &delete_fields(7, None, 3));
        assert!(
            delete.starts_with(r#"{"type":"delete","room":"general","id":10,"target":3"#),
            "{delete}"
        );
        assert!(delete.contains(r#""by":"admin""#));
        assert_eq!(record_kind(&delete), RecordKind::Delete { target: 3 });
        let message = frame(
            "message",
            "general",
            1,
            r#"{"time":1,"username":"a","message":"x"}"#,
        );
        assert_eq!(record_kind(&message), RecordKind::Message);
        let e: serde_json::Value = serde_json::from_str(&edited(&message, "y").unwrap()).unwrap();
        assert_eq!(
            (
                e["message"].as_str(),
                e["edited"].as_bool(),
                e["id"].as_u64()
            ),
            (Some("y"), Some(true), Some(1))
        );
    }
}
