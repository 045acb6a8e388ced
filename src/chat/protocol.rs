//! The JSON protocol of `/ws`, as plain data: the frames the server sends,
//! error codes, and the rules for usernames, e-mails and room names (a
//! record's own fields and frame are `record_frames.rs`, re-exported here). What clients send is `incoming.rs`. No state lives here and nothing here knows about rooms' contents,
//! sockets or the log; the core (`core.rs`) decides which frame goes where.
//!
//! Protocol v1 stays valid: a frame without `"room"` means the default room,
//! and the Go tutorial's `{"email","username","message"}` is a chat message.

pub use super::record_frames::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::rc::Rc;

pub const MAX_USERNAME_CHARS: usize = 32;
pub const MAX_ROOM_CHARS: usize = 32;
const MAX_EMAIL_BYTES: usize = 254;

/// A valid room name (see [`room_name`]): lower-case `a-z 0-9 - _`, 1 to 32
/// characters. Shared, because every member, record and frame names its room.
pub type RoomName = Rc<str>;

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
    NotFound,
    NotYours,
    EditWindow,
    Banned,
    SlowMode,
    ReadOnly,
    BadToken,
    ForbiddenRoom,
    BadHistory,
    BadSearch,
    BadEmoji,
    ReactionLimit,
    NeedsIdentity,
    NoSuchUser,
    BadUpload,
    UploadTooLarge,
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
            ErrorCode::NotFound => "not_found",
            ErrorCode::NotYours => "not_yours",
            ErrorCode::EditWindow => "edit_window",
            ErrorCode::Banned => "banned",
            ErrorCode::SlowMode => "slow_mode",
            ErrorCode::ReadOnly => "read_only",
            ErrorCode::BadToken => "bad_token",
            ErrorCode::ForbiddenRoom => "forbidden_room",
            ErrorCode::BadHistory => "bad_history",
            ErrorCode::BadSearch => "bad_search",
            ErrorCode::BadEmoji => "bad_emoji",
            ErrorCode::ReactionLimit => "reaction_limit",
            ErrorCode::NeedsIdentity => "needs_identity",
            ErrorCode::NoSuchUser => "no_such_user",
            ErrorCode::BadUpload => "bad_upload",
            ErrorCode::UploadTooLarge => "upload_too_large",
        }
    }

    fn sentence(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "expected one JSON object",
            ErrorCode::BadType => "type must be join, leave, message, edit, delete, history, search, typing, react or read",
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
            ErrorCode::NotFound => "no such message here (deleted, or older than the history kept)",
            ErrorCode::NotYours => "only the page that sent a message may change it",
            ErrorCode::EditWindow => "this message is too old to edit",
            ErrorCode::Banned => "this name is banned here by a moderator",
            ErrorCode::SlowMode => "slow mode: wait a little before your next message in this room",
            ErrorCode::ReadOnly => "this room is read-only: only moderators post here",
            ErrorCode::BadToken => {
                "this chat needs a valid sign-in token (missing, expired, not yet valid or forged)"
            }
            ErrorCode::ForbiddenRoom => "your sign-in token does not allow this room",
            ErrorCode::BadHistory => {
                "history takes at most one of before, after, around (ids, integers from 0) and a limit from 1"
            }
            ErrorCode::BadSearch => {
                "search takes q of 2 to 100 characters, a limit from 1 and before (an id, an integer from 0)"
            }
            ErrorCode::BadEmoji => "emoji must be one emoji (a single Unicode emoji, not a shortcode)",
            ErrorCode::ReactionLimit => "this message already has 20 different reactions",
            ErrorCode::NeedsIdentity => {
                "this needs a held name (join with the page's secret) or a sign-in token"
            }
            ErrorCode::NoSuchUser => "nobody holds that name (now or lately)",
            ErrorCode::BadUpload => {
                "an upload is one PNG, JPEG, GIF or WebP image, whole, of exactly the bytes announced"
            }
            ErrorCode::UploadTooLarge => "this image is larger than the server's max_upload",
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

pub(super) fn to_json(value: &impl Serialize) -> String {
    // Serializing these plain structs into a String cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// A member as others see them: the e-mail is never sent, only its hash.
#[derive(Serialize, Debug)]
pub struct UserView<'a> {
    pub username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar: Option<&'a str>,
    /// The name came from a token the operator signed (`--auth token`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub verified: bool,
}

#[derive(Serialize)]
struct PresenceNotice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room: &'a str,
    username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    avatar: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    verified: bool,
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
        verified: who.verified,
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

/// `{"type":"typing","room":R,"username":U}`: U is typing in R.
pub fn typing_json(room: &str, username: &str) -> String {
    #[derive(Serialize)]
    struct Frame<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        room: &'a str,
        username: &'a str,
    }
    to_json(&Frame {
        kind: "typing",
        room,
        username,
    })
}

/// `{"type":"read","room":R,"id":N}`: the identity has read R up to N.
pub fn read_json(room: &str, id: u64) -> String {
    #[derive(Serialize)]
    struct Frame<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        room: &'a str,
        id: u64,
    }
    to_json(&Frame {
        kind: "read",
        room,
        id,
    })
}

/// What the page needs to know of the server's limits.
#[derive(Serialize, Clone, Copy, Debug)]
pub struct LimitsView {
    pub max_text: usize,
    pub max_message: usize,
    pub msg_rate: u32,
    pub max_rooms_per_client: usize,
    /// How long after sending a message its sender may edit it (ms; 0 = never).
    pub edit_window_ms: u64,
    /// Largest image an upload may announce (0: this server takes none).
    pub max_upload: usize,
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
    /// The room's moderation settings, when it has any.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub topic: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    pub slow_mode: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// How far the joining identity has read the room (its read marker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<u64>,
    /// With `--auth`: the key to uploaded images, for the page's
    /// `picochat_files` cookie (images are served only with it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_key: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `{"type":"room","room":R,"topic":T,"slow_mode":S,"read_only":B}`: a
/// moderator changed the room's settings (all of them are sent).
pub fn room_settings_json(room: &str, topic: &str, slow_mode: u32, read_only: bool) -> String {
    #[derive(Serialize)]
    struct Frame<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        room: &'a str,
        topic: &'a str,
        slow_mode: u32,
        read_only: bool,
    }
    to_json(&Frame {
        kind: "room",
        room,
        topic,
        slow_mode,
        read_only,
    })
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
    out.push_str(",\"history\":");
    frames_list(&mut out, history);
    out.push('}');
    out
}

/// Appends frames (each one JSON object) as a JSON array.
pub fn frames_list<'m>(out: &mut String, frames: impl Iterator<Item = &'m str>) {
    out.push('[');
    for (i, m) in frames.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(m);
    }
    out.push(']');
}

/// Lowercase hex SHA-256 of the trimmed, lower-cased e-mail: Gravatar's hash.
pub fn gravatar_hash(email: &str) -> String {
    hex(&Sha256::digest(email.trim().to_lowercase().as_bytes()))
}

/// Bytes as lowercase hex (digests, keys).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
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
    fn gravatar_hash_matches_the_documented_sha256() {
        // echo -n "myemailaddress@example.com" | sha256sum
        assert_eq!(
            gravatar_hash(" MyEmailAddress@example.com "),
            "84059b07d4be67b806386c0aad8070a23f18836bbaae342275dc0a83414c32ee"
        );
    }
}
