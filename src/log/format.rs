//! How records are stored: the journal's line (`--data-dir`) and the
//! fields a Redis stream entry and a published message carry (`--redis`).
//! Both keep the record's owner, which is never delivered: a journal line is
//! the delivered frame with `,"owner":"<16 hex>"` before its closing brace;
//! stored fields are the draft's own fields, led by `"type":K` unless it is
//! a message, with the same owner suffix. These formats are what data
//! directories and Redis databases written by earlier versions hold: they
//! change only with a way to read the old ones.

use crate::chat::protocol::Owner;
use crate::chat::record::{frame_with, Draft, Kind};
use std::borrow::Cow;
use std::fmt::Write as _;

/// A draft's fields as a stream entry or a published message stores them.
pub fn stored_fields(draft: &Draft) -> String {
    let fields = match draft.kind {
        Kind::Message => draft.fields.clone(),
        kind => {
            let body = draft.fields.strip_prefix('{').unwrap_or(&draft.fields);
            let sep = if body == "}" { "" } else { "," };
            format!("{{\"type\":\"{}\"{sep}{body}", kind.name())
        }
    };
    with_owner(fields, draft.owner)
}

/// The message an edit or a delete draft is for (`None` for a message).
pub fn target(draft: &Draft) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Target {
        target: Option<u64>,
    }
    match draft.kind {
        Kind::Message => None,
        _ => serde_json::from_str::<Target>(&draft.fields).ok()?.target,
    }
}

/// A reaction draft's emoji, name and whether it is on (`None` for any other draft).
pub fn reaction(draft: &Draft) -> Option<(String, String, bool)> {
    #[derive(serde::Deserialize)]
    struct Reaction {
        emoji: String,
        username: String,
        on: bool,
    }
    if draft.kind != Kind::React {
        return None;
    }
    let r: Reaction = serde_json::from_str(&draft.fields).ok()?;
    Some((r.emoji, r.username, r.on))
}

/// `,"owner":"` + 16 hex digits + `"}`: how a stored record ends when it has an owner.
const OWNER_KEY: &str = ",\"owner\":\"";
const OWNER_SUFFIX_LEN: usize = OWNER_KEY.len() + 16 + 2;

/// Appends the owner to a JSON object (before its closing brace).
fn with_owner(mut json: String, owner: Option<Owner>) -> String {
    if let Some(o) = owner {
        json.pop();
        let _ = write!(json, "{OWNER_KEY}{o:016x}\"}}");
    }
    json
}

/// A stored object split into its body without the closing brace and owner
/// suffix, and the owner, when it ends with one.
fn split_owner(json: &str) -> (&str, Option<Owner>) {
    let body = json.strip_suffix('}').unwrap_or(json);
    if json.len() >= OWNER_SUFFIX_LEN {
        let at = json.len() - OWNER_SUFFIX_LEN;
        let owner = json
            .get(at..)
            .filter(|tail| tail.starts_with(OWNER_KEY) && tail.ends_with("\"}"))
            .and_then(|tail| tail.get(OWNER_KEY.len()..OWNER_KEY.len() + 16))
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok());
        if owner.is_some() {
            return (&json[..at], owner);
        }
    }
    (body, None)
}

/// A journal line as the frame delivered and its owner.
pub fn from_journal_line(stored: &str) -> (Cow<'_, str>, Option<Owner>) {
    match split_owner(stored) {
        (body, Some(o)) => (Cow::Owned(format!("{body}}}")), Some(o)),
        _ => (Cow::Borrowed(stored), None),
    }
}

/// A committed record as its journal line (without the newline): the
/// delivered frame with its owner before the closing brace.
pub fn journal_line(frame: &str, owner: Option<Owner>, out: &mut Vec<u8>) {
    match owner {
        Some(o) => {
            out.extend_from_slice(frame.strip_suffix('}').unwrap_or(frame).as_bytes());
            let _ = std::io::Write::write_fmt(out, format_args!("{OWNER_KEY}{o:016x}\"}}"));
        }
        None => out.extend_from_slice(frame.as_bytes()),
    }
}

/// A record read back from a stream entry or a published message: its
/// complete frame (`K` is `message` unless the stored fields name another
/// type), and the owner the fields carried, which the frame does not.
pub fn seal_stored(room: &str, id: u64, fields: &str) -> (String, Option<Owner>) {
    let (body, owner) = split_owner(fields);
    let body = body.strip_prefix('{').unwrap_or(body);
    let (kind, rest) = match body.strip_prefix("\"type\":\"") {
        Some(typed) => match typed.split_once('"') {
            Some((kind, rest)) => (kind, rest.strip_prefix(',').unwrap_or(rest)),
            None => ("message", body),
        },
        None => ("message", body),
    };
    (frame_with(kind, room, id, rest), owner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::protocol;

    fn draft(kind: Kind, fields: String, owner: Option<Owner>) -> Draft {
        Draft {
            room: "dev".into(),
            sender: None,
            time: 5,
            kind,
            fields,
            owner,
            file: None,
        }
    }

    #[test]
    fn what_is_stored_reads_back_as_the_record_the_draft_seals_to() {
        let who = protocol::UserView {
            username: "ann",
            avatar: None,
            verified: false,
        };
        for d in [
            draft(
                Kind::Message,
                protocol::message_fields(5, &who, "hi \"you\""),
                Some(0xabc),
            ),
            draft(
                Kind::Message,
                protocol::admin_message_fields(5, "mod", "hey"),
                None,
            ),
            draft(
                Kind::Edit,
                protocol::edit_fields(6, "ann", 3, "fixed"),
                Some(7),
            ),
            draft(Kind::Delete, protocol::delete_fields(7, None, 3), None),
        ] {
            let stored = stored_fields(&d);
            let (frame, owner) = seal_stored("dev", 9, &stored);
            let record = d.seal(9);
            assert_eq!(
                (&*record.json, record.owner),
                (frame.as_str(), owner),
                "{stored}"
            );
            let mut line = Vec::new();
            journal_line(&record.json, record.owner, &mut line);
            let line = String::from_utf8(line).unwrap();
            let (back, owner) = from_journal_line(&line);
            assert_eq!((&*back, owner), (&*record.json, record.owner), "{line}");
            assert!(!record.json.contains("owner"), "{}", record.json);
        }
    }

    #[test]
    fn an_owner_is_stored_with_a_record_and_never_sealed_into_its_frame() {
        let who = protocol::UserView {
            username: "ann",
            avatar: None,
            verified: false,
        };
        let owner = protocol::owner_of("secret");
        let text = r#"ends ,"owner":"0123456789abcdef"}"#;
        let d = draft(
            Kind::Message,
            protocol::message_fields(5, &who, text),
            Some(owner),
        );
        let (frame, got) = seal_stored("general", 3, &stored_fields(&d));
        assert_eq!(got, Some(owner));
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["message"], text);
        assert!(v.get("owner").is_none(), "{frame}");
        // A text that looks like the suffix is escaped, so it is no owner.
        let d = draft(
            Kind::Message,
            protocol::message_fields(5, &who, r#"","owner":"0123456789abcdef"#),
            None,
        );
        let (plain, none) = seal_stored("general", 4, &stored_fields(&d));
        assert_eq!(none, None, "{plain}");
        assert_eq!(from_journal_line(&plain).1, None);
    }

    #[test]
    fn the_formats_are_what_earlier_versions_wrote() {
        // A stream entry's fields and a journal line as written before the typed draft.
        let edit = draft(
            Kind::Edit,
            r#"{"target":3,"time":6,"username":"ann","message":"m"}"#.into(),
            Some(0x1f),
        );
        assert_eq!(
            stored_fields(&edit),
            r#"{"type":"edit","target":3,"time":6,"username":"ann","message":"m","owner":"000000000000001f"}"#
        );
        let mut line = Vec::new();
        journal_line(
            r#"{"type":"message","room":"a","id":1,"message":"x"}"#,
            Some(2),
            &mut line,
        );
        assert_eq!(
            String::from_utf8(line).unwrap(),
            r#"{"type":"message","room":"a","id":1,"message":"x","owner":"0000000000000002"}"#
        );
    }
}
