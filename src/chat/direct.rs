//! Direct conversations as data: how one is named inside the server, and
//! how its frames are shown to each of its two people.
//!
//! Inside the server (history, the journal's lines, Redis's keys) a
//! conversation is the room `@<owner>-<owner>`: the two identities' owner
//! tags as 16 hex digits each, the lower first. So it belongs to the
//! identities, not to the names (a name held by someone else later never
//! opens it), and its name needs no escaping anywhere. On the wire it is
//! `"@NAME"`, NAME being the *other* person's held name: every frame about
//! it is shown to each side with its own `"room"`. Who may write to whom is
//! the core's (`core/direct.rs`).

use super::protocol::Owner;

/// The internal room of the conversation between `a` and `b`.
pub fn room(a: Owner, b: Owner) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("@{lo:016x}-{hi:016x}")
}

/// Whether `room` is a conversation's internal name (not a room's).
pub fn is_direct(room: &str) -> bool {
    room.starts_with('@')
}

/// The two identities of a conversation's internal room, lower first.
pub fn owners(room: &str) -> Option<(Owner, Owner)> {
    let rest = room.strip_prefix('@')?;
    let (a, b) = rest.split_once('-')?;
    if a.len() != 16 || b.len() != 16 {
        return None;
    }
    let parse = |h: &str| {
        h.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            .then(|| u64::from_str_radix(h, 16).ok())
            .flatten()
    };
    let (a, b) = (parse(a)?, parse(b)?);
    (a < b).then_some((a, b))
}

/// The other identity of a conversation, seen from `me`.
pub fn other(room: &str, me: Owner) -> Option<Owner> {
    let (a, b) = owners(room)?;
    if me == a {
        Some(b)
    } else if me == b {
        Some(a)
    } else {
        None
    }
}

/// A frame about conversation `room` as one side sees it: every
/// `"room":"<internal>"` becomes `"room":"@<name of the other>"`. Safe on
/// whole frames: inside a JSON string a quote is escaped, so the pattern can
/// only be a `"room"` member.
pub fn shown(frame: &str, room: &str, other_name: &str) -> String {
    let from = format!("\"room\":\"{room}\"");
    let to = format!(
        "\"room\":{}",
        serde_json::to_string(&format!("@{other_name}")).unwrap_or_default()
    );
    frame.replace(&from, &to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_is_named_by_its_two_identities_and_shown_by_the_other_name() {
        let r = room(0xbeef, 0x1);
        assert_eq!(r, "@0000000000000001-000000000000beef");
        assert_eq!(r, room(0x1, 0xbeef), "the same from either side");
        assert!(is_direct(&r) && !is_direct("general"));
        assert_eq!(owners(&r), Some((1, 0xbeef)));
        assert_eq!(other(&r, 1), Some(0xbeef));
        assert_eq!(other(&r, 0xbeef), Some(1));
        assert_eq!(other(&r, 2), None, "not a party");
        for bad in [
            "@ann",
            "@0000000000000001-0000000000000001",
            "@000000000000beef-0000000000000001",
            "@0000000000000001-000000000000BEEF",
            "@0000000000000001-000000000000beef-",
        ] {
            assert_eq!(owners(bad), None, "{bad}");
        }
        let frame =
            format!(r#"{{"type":"message","room":"{r}","id":3,"message":"\"room\":\"{r}\""}}"#);
        let v: serde_json::Value = serde_json::from_str(&shown(&frame, &r, "Bob \"B\"")).unwrap();
        assert_eq!(v["room"], "@Bob \"B\"");
        assert_eq!(
            v["message"],
            format!("\"room\":\"{r}\""),
            "text that looks like it is left alone"
        );
    }
}
