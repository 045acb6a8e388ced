//! Reading a room's retained messages again: what a `history` or `search`
//! request asks for once checked ([`PageAsk`], [`SearchAsk`]), how a message
//! found in the log is shown (its latest edit applied), how a search matches,
//! and the answer frames. Which messages come from memory and which from the
//! log, and the jobs that wait for the log, are `core/scrollback.rs`.

use super::incoming::{Number, PageFields, StrField};
use super::protocol::{self, ErrorCode};
use super::record::Found;
use std::rc::Rc;

/// A page when the request names no `limit`.
pub const PAGE_DEFAULT: usize = 50;
/// Search results when the request names no `limit`, and the most it may ask for.
pub const SEARCH_DEFAULT: usize = 20;
pub const SEARCH_MAX: usize = 50;
/// The shortest and longest search text, in characters.
pub const QUERY_MIN_CHARS: usize = 2;
pub const QUERY_MAX_CHARS: usize = 100;

/// Where a page is, relative to a message id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    Newest,
    Before(u64),
    After(u64),
    Around(u64),
}

/// A checked `history` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageAsk {
    pub anchor: Anchor,
    pub limit: usize,
}

impl PageAsk {
    /// At most one of `before`/`after`/`around`, ids and a limit that are
    /// integers (a limit from 1; past `page_max` it is clamped).
    pub fn check(f: &PageFields, page_max: usize) -> Result<PageAsk, ErrorCode> {
        let limit = limit(f.limit, PAGE_DEFAULT, page_max).ok_or(ErrorCode::BadHistory)?;
        let mut anchor = Anchor::Newest;
        let mut named = 0;
        for (field, make) in [
            (f.before, Anchor::Before as fn(u64) -> Anchor),
            (f.after, Anchor::After),
            (f.around, Anchor::Around),
        ] {
            match field {
                Number::Absent => {}
                Number::Int(id) => {
                    named += 1;
                    anchor = make(id);
                }
                Number::Bad => return Err(ErrorCode::BadHistory),
            }
        }
        if named > 1 {
            return Err(ErrorCode::BadHistory);
        }
        Ok(PageAsk { anchor, limit })
    }
}

/// A checked `search` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchAsk {
    /// The text as sent (echoed in the answer).
    pub q: Rc<str>,
    /// The text as matched: lower-cased.
    pub needle: String,
    pub limit: usize,
    pub before: Option<u64>,
}

impl SearchAsk {
    pub fn check(
        q: &StrField,
        limit_field: Number,
        before: Number,
    ) -> Result<SearchAsk, ErrorCode> {
        let StrField::Name(q) = q else {
            return Err(ErrorCode::BadSearch);
        };
        let chars = q.chars().count();
        if !(QUERY_MIN_CHARS..=QUERY_MAX_CHARS).contains(&chars) {
            return Err(ErrorCode::BadSearch);
        }
        let limit = limit(limit_field, SEARCH_DEFAULT, SEARCH_MAX).ok_or(ErrorCode::BadSearch)?;
        let before = match before {
            Number::Absent => None,
            Number::Int(id) => Some(id),
            Number::Bad => return Err(ErrorCode::BadSearch),
        };
        Ok(SearchAsk {
            needle: q.to_lowercase(),
            q: Rc::from(&**q),
            limit,
            before,
        })
    }

    /// Whether a message frame's text contains the needle, ignoring case
    /// (Unicode lower-casing): the text only, never names or field names.
    pub fn matches(&self, frame: &str) -> bool {
        protocol::message_text(frame).is_some_and(|text| {
            text.len() * 3 >= self.needle.len() && text.to_lowercase().contains(&self.needle)
        })
    }
}

/// A limit as sent: absent is `default`, past `max` is `max`, 0 or not an
/// integer is refused.
fn limit(field: Number, default: usize, max: usize) -> Option<usize> {
    match field {
        Number::Absent => Some(default.min(max)),
        Number::Int(0) | Number::Bad => None,
        Number::Int(n) => Some(usize::try_from(n).unwrap_or(usize::MAX).min(max)),
    }
}

/// A message the log found, as a page shows it: with its latest edit and
/// its reactions applied.
pub fn shown(found: &Found) -> Rc<str> {
    let mut json = found.message.json.clone();
    if let Some(edit) = &found.edit {
        if let protocol::RecordKind::Edit { message, .. } = protocol::record_kind(edit) {
            if let Some(edited) = protocol::edited(&json, &message) {
                json = edited.into();
            }
        }
    }
    if let Some(reactions) = found.reactions.as_ref().filter(|r| !r.is_empty()) {
        if let Some(with) = protocol::with_reactions(&json, reactions) {
            json = with.into();
        }
    }
    json
}

/// `{"type":"history","room":R,"messages":[...],"older":B,"newer":B}`.
pub fn page_json<'m>(
    room: &str,
    messages: impl Iterator<Item = &'m str> + Clone,
    older: bool,
    newer: bool,
) -> String {
    let mut out = String::with_capacity(messages.clone().map(|m| m.len() + 1).sum::<usize>() + 80);
    out.push_str("{\"type\":\"history\",\"room\":\"");
    out.push_str(room);
    out.push_str("\",\"messages\":");
    protocol::frames_list(&mut out, messages);
    out.push_str(if older {
        ",\"older\":true"
    } else {
        ",\"older\":false"
    });
    out.push_str(if newer {
        ",\"newer\":true}"
    } else {
        ",\"newer\":false}"
    });
    out
}

/// `{"type":"search","room":R,"q":Q,"messages":[...],"older":B}`.
pub fn search_json<'m>(
    room: &str,
    q: &str,
    messages: impl Iterator<Item = &'m str> + Clone,
    older: bool,
) -> String {
    let mut out = String::with_capacity(messages.clone().map(|m| m.len() + 1).sum::<usize>() + 80);
    out.push_str("{\"type\":\"search\",\"room\":\"");
    out.push_str(room);
    out.push_str("\",\"q\":");
    out.push_str(&serde_json::to_string(q).unwrap_or_else(|_| "\"\"".into()));
    out.push_str(",\"messages\":");
    protocol::frames_list(&mut out, messages);
    out.push_str(if older {
        ",\"older\":true}"
    } else {
        ",\"older\":false}"
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::record::Stored;

    fn fields(json: &str) -> PageFields {
        match crate::chat::incoming::parse(json.as_bytes()).map(|f| f.what) {
            Some(crate::chat::incoming::Incoming::History(f)) => f,
            other => panic!("{json}: {other:?}"),
        }
    }

    #[test]
    fn a_page_request_is_checked_and_clamped() {
        let ask = |json: &str| PageAsk::check(&fields(json), 200);
        assert_eq!(
            ask(r#"{"type":"history"}"#),
            Ok(PageAsk {
                anchor: Anchor::Newest,
                limit: 50
            })
        );
        assert_eq!(
            ask(r#"{"type":"history","before":7,"limit":1000}"#),
            Ok(PageAsk {
                anchor: Anchor::Before(7),
                limit: 200
            })
        );
        assert_eq!(
            ask(r#"{"type":"history","after":0,"limit":3}"#).map(|a| a.anchor),
            Ok(Anchor::After(0))
        );
        assert_eq!(
            ask(r#"{"type":"history","around":9,"before":null}"#).map(|a| a.anchor),
            Ok(Anchor::Around(9))
        );
        for bad in [
            r#"{"type":"history","limit":0}"#,
            r#"{"type":"history","limit":-1}"#,
            r#"{"type":"history","limit":2.5}"#,
            r#"{"type":"history","limit":"5"}"#,
            r#"{"type":"history","before":-3}"#,
            r#"{"type":"history","before":"3"}"#,
            r#"{"type":"history","after":[1]}"#,
            r#"{"type":"history","before":3,"after":1}"#,
            r#"{"type":"history","around":3,"after":1,"before":2}"#,
        ] {
            assert_eq!(ask(bad), Err(ErrorCode::BadHistory), "{bad}");
        }
    }

    #[test]
    fn a_search_is_checked_and_matches_text_only_ignoring_case() {
        let ask = |q: StrField, limit, before| SearchAsk::check(&q, limit, before);
        fn q(s: &str) -> StrField<'_> {
            StrField::Name(s.into())
        }
        let s = ask(q("ÜBER"), Number::Absent, Number::Absent).unwrap();
        assert_eq!((s.limit, s.before, &*s.needle), (20, None, "über"));
        assert!(s.matches(r#"{"type":"message","username":"x","message":"alles über uns"}"#));
        assert!(!s.matches(r#"{"type":"message","username":"über","message":"nichts"}"#));
        let amp = ask(q("a&b"), Number::Int(99), Number::Int(0)).unwrap();
        assert_eq!((amp.limit, amp.before), (50, Some(0)));
        assert!(amp.matches(r#"{"type":"message","message":"x a\u0026b y"}"#));
        let escape = ask(q("u00"), Number::Absent, Number::Absent).unwrap();
        assert!(!escape.matches(r#"{"type":"message","message":"\u00e9t\u00e9"}"#));
        assert!(!ask(q("username"), Number::Absent, Number::Absent)
            .unwrap()
            .matches(r#"{"type":"message","username":"a","message":"b"}"#));
        for (field, limit, before) in [
            (q("a"), Number::Absent, Number::Absent),
            (q(&"x".repeat(101)), Number::Absent, Number::Absent),
            (StrField::NotAString, Number::Absent, Number::Absent),
            (StrField::Absent, Number::Absent, Number::Absent),
            (q("ok"), Number::Int(0), Number::Absent),
            (q("ok"), Number::Bad, Number::Absent),
            (q("ok"), Number::Absent, Number::Bad),
        ] {
            assert_eq!(ask(field, limit, before), Err(ErrorCode::BadSearch));
        }
        assert!(ask(q(&"é".repeat(100)), Number::Absent, Number::Absent).is_ok());
    }

    #[test]
    fn a_found_message_shows_its_latest_edit_and_its_reactions() {
        let message = Stored {
            id: 3,
            json: r#"{"type":"message","room":"r","id":3,"time":1,"username":"a","message":"old"}"#
                .into(),
            owner: None,
        };
        let plain = Found {
            message: message.clone(),
            edit: None,
            reactions: None,
        };
        assert_eq!(&*shown(&plain), &*message.json);
        let edit = r#"{"type":"edit","room":"r","id":9,"target":3,"time":2,"username":"a","message":"new"}"#;
        let mut reactions = crate::chat::reactions::Reactions::default();
        reactions.set("👍", "bo", true);
        let edited = shown(&Found {
            message,
            edit: Some(edit.into()),
            reactions: Some(reactions),
        });
        let v: serde_json::Value = serde_json::from_str(&edited).unwrap();
        assert_eq!(
            (
                v["message"].as_str(),
                v["edited"].as_bool(),
                v["id"].as_u64()
            ),
            (Some("new"), Some(true), Some(3))
        );
        assert!(
            edited.starts_with(r#"{"type":"message","room":"r","id":3,"#),
            "{edited}"
        );
        assert_eq!(v["reactions"], serde_json::json!({"👍":["bo"]}), "{edited}");
    }

    #[test]
    fn answers_are_the_frames_the_protocol_names() {
        let m = [r#"{"id":1}"#, r#"{"id":2}"#];
        assert_eq!(
            page_json("dev", m.iter().copied(), false, true),
            r#"{"type":"history","room":"dev","messages":[{"id":1},{"id":2}],"older":false,"newer":true}"#
        );
        assert_eq!(
            search_json("dev", "a\"b", [].iter().copied(), true),
            r#"{"type":"search","room":"dev","q":"a\"b","messages":[],"older":true}"#
        );
    }
}
