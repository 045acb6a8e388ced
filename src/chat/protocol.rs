//! The JSON protocol of `/ws`, as plain data: what clients send, the frames the
//! server sends, error codes, and the rules for usernames, e-mails and room
//! names. No state lives here and nothing here knows about rooms' contents,
//! sockets or the log; the core (`core.rs`) decides which frame goes where.
//!
//! Protocol v1 stays valid: a frame without `"room"` means the default room,
//! and the Go tutorial's `{"email","username","message"}` is a chat message.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::rc::Rc;

pub const MAX_USERNAME_CHARS: usize = 32;
pub const MAX_ROOM_CHARS: usize = 32;
const MAX_EMAIL_BYTES: usize = 254;

/// A valid room name (see [`room_name`]): lower-case `a-z 0-9 - _`, 1 to 32
/// characters. Shared, because every member, record and frame names its room.
pub type RoomName = Rc<str>;

/// What a client sends. Unknown fields are ignored; `type` defaults to a chat
/// message so the Go tutorial's `{"email","username","message"}` works.
#[derive(Deserialize, Debug, Default)]
pub struct Incoming<'a> {
    #[serde(borrow, rename = "type", default)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub room: RoomField<'a>,
    #[serde(borrow, default)]
    pub username: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub email: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
    /// `--auth password`: the shared password, on a join.
    #[serde(borrow, default)]
    pub password: Option<Cow<'a, str>>,
    /// The page's own random secret, on a join: the name it uses is held for it.
    #[serde(borrow, default)]
    pub secret: Option<Cow<'a, str>>,
    #[serde(default)]
    pub since: Option<u64>,
    #[serde(default)]
    pub epoch: Option<u64>,
}

/// The `"room"` field as sent: absent (the default room), a string (checked
/// later by [`room_name`]), or anything else, which is refused with `bad_room`
/// rather than failing the whole frame as `bad_json`.
#[derive(Debug, Default, PartialEq)]
pub enum RoomField<'a> {
    #[default]
    Absent,
    Name(Cow<'a, str>),
    NotAString,
}

impl<'de: 'a, 'a> Deserialize<'de> for RoomField<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Field;
        impl<'de> Visitor<'de> for Field {
            type Value = RoomField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a room name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RoomField::Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RoomField::Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(RoomField::Name(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RoomField::NotAString)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(RoomField::NotAString)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(RoomField::NotAString)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RoomField::NotAString)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RoomField::NotAString)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RoomField::NotAString)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RoomField::NotAString)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(RoomField::NotAString)
            }
        }
        d.deserialize_any(Field)
    }
}

/// Parses one client frame. `None`: not a JSON object of this shape.
pub fn parse(text: &[u8]) -> Option<Incoming<'_>> {
    serde_json::from_slice(text).ok()
}

/// Every error code a client can receive, with the sentence shown to people.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    BadJson,
    BadType,
    BadUsername,
    BadEmail,
    BadMessage,
    MessageTooLong,
    BadRoom,
    NotJoined,
    AlreadyJoined,
    RoomLimit,
    RateLimited,
    Unavailable,
    BinaryUnsupported,
    BadPassword,
    NameTaken,
}

impl ErrorCode {
    pub fn code(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::BadType => "bad_type",
            ErrorCode::BadUsername => "bad_username",
            ErrorCode::BadEmail => "bad_email",
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::MessageTooLong => "message_too_long",
            ErrorCode::BadRoom => "bad_room",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::RoomLimit => "room_limit",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::BinaryUnsupported => "binary_unsupported",
            ErrorCode::BadPassword => "bad_password",
            ErrorCode::NameTaken => "name_taken",
        }
    }

    fn sentence(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "expected one JSON object",
            ErrorCode::BadType => "type must be join, leave or message",
            ErrorCode::BadUsername => "username must be 1 to 32 characters, no control characters",
            ErrorCode::BadEmail => {
                "email must look like name@host (it is only used for the avatar)"
            }
            ErrorCode::BadMessage => "message must not be empty",
            ErrorCode::MessageTooLong => "message is longer than the server's max_text",
            ErrorCode::BadRoom => {
                "room names are 1 to 32 of a-z 0-9 - _ (and this server may fix its rooms)"
            }
            ErrorCode::NotJoined => "join this room first",
            ErrorCode::AlreadyJoined => "this connection has joined under another name",
            ErrorCode::RoomLimit => "too many rooms (for this connection or this server)",
            ErrorCode::RateLimited => "slow down: too many messages per second",
            ErrorCode::Unavailable => "the message log cannot store messages right now; not sent",
            ErrorCode::BinaryUnsupported => "send JSON text frames",
            ErrorCode::BadPassword => "this chat needs its password: join with the right one first",
            ErrorCode::NameTaken => {
                "this name is someone else's (in use, or used lately): choose another"
            }
        }
    }
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a str>,
    message: &'static str,
}

/// An `{"type":"error"}` frame for one client, naming the room it concerns.
pub fn error_json(code: ErrorCode, room: Option<&str>) -> String {
    to_json(&ErrorFrame {
        kind: "error",
        code: code.code(),
        room,
        message: code.sentence(),
    })
}

fn to_json(value: &impl Serialize) -> String {
    // Serializing these plain structs into a String cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// A member as others see them: the e-mail is never sent, only its hash.
#[derive(Serialize, Debug)]
pub struct UserView<'a> {
    pub username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar: Option<&'a str>,
}

#[derive(Serialize)]
struct PresenceNotice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room: &'a str,
    username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    avatar: Option<&'a str>,
    time: u64,
    online: usize,
}

/// `{"type":"join"|"leave","room",...}`: someone arrived in or left a room.
pub fn presence_json(
    kind: &'static str,
    room: &str,
    who: &UserView,
    time: u64,
    online: usize,
) -> String {
    to_json(&PresenceNotice {
        kind,
        room,
        username: who.username,
        avatar: who.avatar,
        time,
        online,
    })
}

#[derive(Serialize)]
struct Left<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room: &'a str,
}

/// The answer to a leave: `{"type":"left","room":R}`.
pub fn left_json(room: &str) -> String {
    to_json(&Left { kind: "left", room })
}

/// What the page needs to know of the server's limits.
#[derive(Serialize, Clone, Copy, Debug)]
pub struct LimitsView {
    pub max_text: usize,
    pub max_message: usize,
    pub msg_rate: u32,
    pub max_rooms_per_client: usize,
}

/// Everything in a welcome but its history.
#[derive(Serialize)]
pub struct WelcomeHead<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub room: &'a str,
    pub you: UserView<'a>,
    pub users: Vec<UserView<'a>>,
    pub online: usize,
    pub epoch: u64,
    pub last_id: u64,
    pub truncated: bool,
    pub limits: LimitsView,
}

/// The welcome: the head serialized by serde, then `"history"`, whose entries
/// are the exact JSON frames that were broadcast (already valid JSON, so they
/// are spliced in rather than parsed and serialized again per joiner).
pub fn welcome_json<'h>(
    head: &WelcomeHead,
    history: impl Iterator<Item = &'h str> + Clone,
) -> String {
    let mut out = to_json(head);
    let extra: usize = history.clone().map(|m| m.len() + 1).sum();
    out.reserve(extra + 16);
    out.pop(); // the head's closing brace
    out.push_str(",\"history\":[");
    for (i, m) in history.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(m);
    }
    out.push_str("]}");
    out
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
}

/// `{"time":T,"username":U,["avatar":A,]"message":M}`: what a
/// [`super::record::Draft`] carries until the log seals it with an id.
pub fn message_fields(time: u64, who: &UserView, message: &str) -> String {
    to_json(&MessageFields {
        time,
        username: who.username,
        avatar: who.avatar,
        message,
    })
}

/// The complete message frame: `{"type":"message","room":R,"id":N,` and the
/// rest of the [`message_fields`] object. Room names need no escaping (`a-z
/// 0-9 - _` only).
pub fn seal_message(room: &str, id: u64, fields: &str) -> String {
    let rest = fields.strip_prefix('{').unwrap_or(fields);
    let mut out = String::with_capacity(fields.len() + room.len() + 48);
    let _ = write!(
        out,
        "{{\"type\":\"message\",\"room\":\"{room}\",\"id\":{id},{rest}"
    );
    out
}

/// Lowercase hex SHA-256 of the trimmed, lower-cased e-mail: Gravatar's hash.
pub fn gravatar_hash(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Trims and checks a username: 1-32 characters, no control characters.
pub fn username(raw: &str) -> Result<&str, ErrorCode> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_USERNAME_CHARS || name.chars().any(char::is_control) {
        return Err(ErrorCode::BadUsername);
    }
    Ok(name)
}

/// The Gravatar hash for an optional e-mail; a present but implausible one is refused.
pub fn avatar(email: Option<&str>) -> Result<Option<Rc<str>>, ErrorCode> {
    match email.map(str::trim) {
        None | Some("") => Ok(None),
        Some(e)
            if e.len() > MAX_EMAIL_BYTES || !e.contains('@') || e.chars().any(char::is_control) =>
        {
            Err(ErrorCode::BadEmail)
        }
        Some(e) => Ok(Some(gravatar_hash(e).into())),
    }
}

/// Trims and lower-cases a room name; 1-32 of `a-z 0-9 - _`, else `None`.
pub fn room_name(raw: &str) -> Option<String> {
    let name = raw.trim().to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= MAX_ROOM_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    ok.then_some(name)
}

/// One line of `GET /api/rooms`.
#[derive(Serialize, Debug)]
pub struct RoomSummary<'a> {
    pub room: &'a str,
    /// Distinct usernames in the room now.
    pub online: usize,
    /// Wall-clock ms of the newest message kept, if any.
    pub last_message_time: Option<u64>,
}

/// The body of `GET /api/rooms`.
pub fn rooms_json(rooms: &[RoomSummary]) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        rooms: &'a [RoomSummary<'a>],
    }
    to_json(&Body { rooms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_trimmed_lowercased_and_checked() {
        assert_eq!(room_name("  General ").as_deref(), Some("general"));
        assert_eq!(room_name("home-work_2").as_deref(), Some("home-work_2"));
        for bad in ["", "   ", "a b", "café", "a/b", &"x".repeat(33), "<b>"] {
            assert_eq!(room_name(bad), None, "{bad:?}");
        }
        assert_eq!(room_name(&"x".repeat(32)).map(|s| s.len()), Some(32));
    }

    #[test]
    fn a_room_field_that_is_not_a_string_is_told_apart() {
        fn field(json: &str) -> Option<RoomField<'_>> {
            parse(json.as_bytes()).map(|m| m.room)
        }
        assert_eq!(field(r#"{"message":"x"}"#), Some(RoomField::Absent));
        assert_eq!(
            field(r#"{"room":"a"}"#),
            Some(RoomField::Name(Cow::Borrowed("a")))
        );
        for other in ["1", "null", "true", "[1,[2]]", r#"{"a":{"b":1}}"#, "1.5"] {
            assert_eq!(
                field(&format!(r#"{{"room":{other},"message":"x"}}"#)),
                Some(RoomField::NotAString),
                "{other}"
            );
        }
    }

    #[test]
    fn a_sealed_message_is_valid_json_with_room_and_id() {
        let who = UserView {
            username: "a\"b",
            avatar: None,
        };
        let fields = message_fields(5, &who, "hi \"there\"\n");
        let v: serde_json::Value =
            serde_json::from_str(&seal_message("general", 42, &fields)).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["room"], "general");
        assert_eq!(v["id"], 42);
        assert_eq!(v["username"], "a\"b");
        assert_eq!(v["message"], "hi \"there\"\n");
    }

    #[test]
    fn gravatar_hash_matches_the_documented_sha256() {
        // echo -n "myemailaddress@example.com" | sha256sum
        assert_eq!(
            gravatar_hash(" MyEmailAddress@example.com "),
            "84059b07d4be67b806386c0aad8070a23f18836bbaae342275dc0a83414c32ee"
        );
    }
}
