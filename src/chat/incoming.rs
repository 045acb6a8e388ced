//! What clients send on `/ws`: one JSON object per text message, parsed
//! once into a typed [`Frame`] (the room it names and what it asks for), so
//! the core matches on [`Incoming`] and never on a `"type"` string.
//!
//! Protocol v1 stays valid: a frame without `"room"` means the default room,
//! and one without `"type"` (the Go tutorial's `{"email","username","message"}`)
//! is a chat message.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

/// One client frame: the room it names and what it asks for.
#[derive(Debug, PartialEq)]
pub struct Frame<'a> {
    pub room: RoomField<'a>,
    pub what: Incoming<'a>,
}

/// What a client frame asks for, by its `"type"`.
#[derive(Debug, PartialEq)]
pub enum Incoming<'a> {
    /// `"join"`: into a room, with who the client is the first time.
    Join(Join<'a>),
    /// `"leave"`: out of a room.
    Leave,
    /// `"message"`, or no type: a chat message.
    Message(Said<'a>),
    /// `"edit"`: one's own message `id` now reads `message`.
    Edit {
        id: Option<u64>,
        message: Option<Cow<'a, str>>,
    },
    /// `"delete"`: one's own message `id` is gone.
    Delete { id: Option<u64> },
    /// `"history"`: a page of the room's retained messages.
    History(PageFields),
    /// `"search"`: the room's messages containing `q`, newest first.
    Search {
        q: StrField<'a>,
        limit: Number,
        before: Number,
    },
    /// `"typing"`: the sender is typing in the room (forwarded, never stored).
    Typing,
    /// `"react"`: toggle the sender's reaction `emoji` on message `id`.
    React {
        id: Option<u64>,
        emoji: StrField<'a>,
    },
    /// `"read"`: the sender's identity has read the room up to message `id`.
    Read { id: Option<u64> },
    /// `"upload"`: the next binary message is an image of `bytes` bytes,
    /// sent with the caption `message`.
    Upload {
        bytes: Number,
        message: Option<Cow<'a, str>>,
    },
    /// Any other type: refused with `bad_type` (once the client is admitted).
    Unknown,
}

/// A join's fields: the identity (the first join, or the same again), the
/// credentials `--auth` asks for, and where a reconnecting page left off.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Join<'a> {
    pub username: Option<Cow<'a, str>>,
    pub email: Option<Cow<'a, str>>,
    /// The page's own random secret: the name it uses is held for it.
    pub secret: Option<Cow<'a, str>>,
    /// `--auth password`: the shared password.
    pub password: Option<Cow<'a, str>>,
    /// `--auth token`: the signed token.
    pub token: Option<Cow<'a, str>>,
    pub since: Option<u64>,
    pub epoch: Option<u64>,
}

impl Join<'_> {
    /// The same join, owning its text (a join that waits for its room).
    pub fn into_owned(self) -> Join<'static> {
        let own = |c: Option<Cow<str>>| c.map(|c| Cow::Owned(c.into_owned()));
        Join {
            username: own(self.username),
            email: own(self.email),
            secret: own(self.secret),
            password: own(self.password),
            token: own(self.token),
            since: self.since,
            epoch: self.epoch,
        }
    }
}

/// A chat message: its text, and the name (and e-mail) a client that never
/// joined gives itself in each message, as the Go tutorial's page does.
#[derive(Debug, Default, PartialEq)]
pub struct Said<'a> {
    pub message: Option<Cow<'a, str>>,
    pub username: Option<Cow<'a, str>>,
    pub email: Option<Cow<'a, str>>,
}

/// A history request's fields as sent (checked by `scrollback.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PageFields {
    pub before: Number,
    pub after: Number,
    pub around: Number,
    pub limit: Number,
}

/// A number field as sent: absent (or `null`), an integer from 0, or
/// anything else, which the request refuses with its own error code rather
/// than failing the whole frame as `bad_json`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Number {
    #[default]
    Absent,
    Int(u64),
    Bad,
}

/// Parses one client frame. `None`: not a JSON object of this shape.
pub fn parse(text: &[u8]) -> Option<Frame<'_>> {
    let w: Wire = serde_json::from_slice(text).ok()?;
    let what = match w.kind.as_deref() {
        Some("join") => Incoming::Join(Join {
            username: w.username,
            email: w.email,
            secret: w.secret,
            password: w.password,
            token: w.token,
            since: w.since,
            epoch: w.epoch,
        }),
        Some("leave") => Incoming::Leave,
        None | Some("message") => Incoming::Message(Said {
            message: w.message,
            username: w.username,
            email: w.email,
        }),
        Some("edit") => Incoming::Edit {
            id: w.id,
            message: w.message,
        },
        Some("delete") => Incoming::Delete { id: w.id },
        Some("history") => Incoming::History(PageFields {
            before: w.before,
            after: w.after,
            around: w.around,
            limit: w.limit,
        }),
        Some("search") => Incoming::Search {
            q: w.q,
            limit: w.limit,
            before: w.before,
        },
        Some("typing") => Incoming::Typing,
        Some("react") => Incoming::React {
            id: w.id,
            emoji: w.emoji,
        },
        Some("read") => Incoming::Read { id: w.id },
        Some("upload") => Incoming::Upload {
            bytes: w.bytes,
            message: w.message,
        },
        Some(_) => Incoming::Unknown,
    };
    Some(Frame { room: w.room, what })
}

/// A client frame as it arrives. Unknown fields are ignored.
#[derive(Deserialize, Debug, Default)]
struct Wire<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    room: RoomField<'a>,
    #[serde(borrow, default)]
    username: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    email: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    /// `--auth password`: the shared password, on a join.
    #[serde(borrow, default)]
    password: Option<Cow<'a, str>>,
    /// The page's own random secret, on a join: the name it uses is held for it.
    #[serde(borrow, default)]
    secret: Option<Cow<'a, str>>,
    /// `--auth token`: the signed token, on a join.
    #[serde(borrow, default)]
    token: Option<Cow<'a, str>>,
    #[serde(default)]
    since: Option<u64>,
    #[serde(default)]
    epoch: Option<u64>,
    /// An edit or a delete: the id of the message it is for.
    #[serde(default)]
    id: Option<u64>,
    /// History and search: where a page starts, and how many messages.
    #[serde(default)]
    before: Number,
    #[serde(default)]
    after: Number,
    #[serde(default)]
    around: Number,
    #[serde(default)]
    limit: Number,
    /// Search: the text to find.
    #[serde(borrow, default)]
    q: StrField<'a>,
    /// A reaction: which emoji.
    #[serde(borrow, default)]
    emoji: StrField<'a>,
    /// An upload: the size of the image that follows.
    #[serde(default)]
    bytes: Number,
}

/// A text field as sent: absent, a string, or anything else, which is
/// refused with the request's own error code (`bad_room` for `"room"`,
/// checked later by `room_name`) rather than failing the whole frame as `bad_json`.
#[derive(Debug, Default, PartialEq)]
pub enum StrField<'a> {
    #[default]
    Absent,
    Name(Cow<'a, str>),
    NotAString,
}

/// The `"room"` field: absent means the default room.
pub type RoomField<'a> = StrField<'a>;

impl<'de: 'a, 'a> Deserialize<'de> for StrField<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Field;
        impl<'de> Visitor<'de> for Field {
            type Value = StrField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(StrField::Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrField::Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(StrField::Name(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(StrField::NotAString)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(StrField::NotAString)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(StrField::NotAString)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(StrField::NotAString)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StrField::NotAString)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StrField::NotAString)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(StrField::NotAString)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(StrField::NotAString)
            }
        }
        d.deserialize_any(Field)
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Field;
        impl<'de> Visitor<'de> for Field {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number::Int(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(u64::try_from(v).map_or(Number::Bad, Number::Int))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Number, E> {
                Ok(Number::Bad)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Number, E> {
                Ok(Number::Bad)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Number, E> {
                Ok(Number::Bad)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Number, E> {
                Ok(Number::Absent)
            }
            fn visit_none<E: de::Error>(self) -> Result<Number, E> {
                Ok(Number::Absent)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Number, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Number::Bad)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Number, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Number::Bad)
            }
        }
        d.deserialize_any(Field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_parses_into_its_own_request() {
        fn what(json: &str) -> Option<Incoming<'_>> {
            parse(json.as_bytes()).map(|f| f.what)
        }
        assert_eq!(
            what(r#"{"email":"a@b.c","username":"gopher","message":"hi"}"#),
            Some(Incoming::Message(Said {
                message: Some("hi".into()),
                username: Some("gopher".into()),
                email: Some("a@b.c".into()),
            }))
        );
        let Some(Incoming::Join(j)) = what(
            r#"{"type":"join","room":"dev","username":"ann","secret":"s","since":4,"epoch":9,"token":"t","password":"p"}"#,
        ) else {
            panic!("a join");
        };
        assert_eq!(
            (j.username.as_deref(), j.secret.as_deref(), j.since, j.epoch),
            (Some("ann"), Some("s"), Some(4), Some(9))
        );
        assert_eq!(
            (j.token.as_deref(), j.password.as_deref()),
            (Some("t"), Some("p"))
        );
        assert_eq!(
            what(r#"{"type":"leave","room":"dev"}"#),
            Some(Incoming::Leave)
        );
        assert_eq!(
            what(r#"{"type":"edit","id":3,"message":"x"}"#),
            Some(Incoming::Edit {
                id: Some(3),
                message: Some("x".into())
            })
        );
        assert_eq!(
            what(r#"{"type":"delete","id":3}"#),
            Some(Incoming::Delete { id: Some(3) })
        );
        assert_eq!(what(r#"{"type":"dance"}"#), Some(Incoming::Unknown));
        assert_eq!(what(r#"{"type":7}"#), None, "a type that is not a string");
        assert_eq!(what("[1]"), None);
    }

    #[test]
    fn a_room_field_that_is_not_a_string_is_told_apart() {
        fn field(json: &str) -> Option<RoomField<'_>> {
            parse(json.as_bytes()).map(|f| f.room)
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
}
