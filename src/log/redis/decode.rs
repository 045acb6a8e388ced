//! What Redis hands back, decoded: stream entries, a published message or
//! presence notice, a presence snapshot, the rooms directory. Anything that is
//! not what picochat's scripts write comes out as `None`, for the caller to
//! log and skip. No I/O and no state here.

use super::resp::Value;
use crate::chat::protocol::RoomName;
use crate::chat::reactions::Reactions;
use crate::chat::record::{DirectoryEntry, Found, Record, RemotePresence, Stored};
use crate::log::format;
use std::rc::Rc;

/// A message as `publish.lua` publishes it on the room's channel.
#[derive(Debug)]
pub struct Published {
    pub epoch: u64,
    pub id: u64,
    pub time: u64,
    /// The message's own fields, one JSON object.
    pub fields: String,
}

/// One stream entry `[id, [field, value, ...]]` as the record it stores.
pub fn entry(room: &RoomName, e: &Value) -> Option<(Record, Option<String>)> {
    let Value::Array(parts) = e else { return None };
    let id = std::str::from_utf8(parts.first()?.as_bytes()?)
        .ok()?
        .split_once('-')?
        .0
        .parse()
        .ok()?;
    let Value::Array(kv) = parts.get(1)? else {
        return None;
    };
    let mut time = None;
    let mut fields = None;
    let mut tag = None;
    for pair in kv.chunks(2) {
        match (pair[0].as_bytes()?, pair.get(1)) {
            (b"t", Some(v)) => time = v.as_u64(),
            (b"f", Some(v)) => fields = std::str::from_utf8(v.as_bytes()?).ok(),
            (b"n", Some(v)) => tag = std::str::from_utf8(v.as_bytes()?).ok(),
            _ => {}
        }
    }
    let fields = fields.filter(|f| f.starts_with('{') && f.ends_with('}'))?;
    let (json, owner) = format::seal_stored(room, id, fields);
    let record = Record {
        room: room.clone(),
        id,
        json: json.into(),
        time: time?,
        sender: None,
        owner,
    };
    Some((record, tag.map(str::to_owned)))
}

fn text(v: &Value) -> Option<&str> {
    v.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
}

/// `page.lua`'s answer: `{exhausted, {{id, fields, edit fields or nil,
/// reactions or nil}...}}`
/// as the messages found and whether the range has no more.
pub fn page(room: &RoomName, reply: &Value) -> Option<(Vec<Found>, bool)> {
    let Value::Array(parts) = reply else {
        return None;
    };
    let exhausted = parts.first()?.as_u64()? == 1;
    let Value::Array(entries) = parts.get(1)? else {
        return None;
    };
    let mut found = Vec::with_capacity(entries.len());
    for e in entries {
        let Value::Array(e) = e else { return None };
        let id: u64 = text(e.first()?)?.split_once('-')?.0.parse().ok()?;
        let fields = text(e.get(1)?).filter(|f| f.starts_with('{') && f.ends_with('}'))?;
        let (json, owner) = format::seal_stored(room, id, fields);
        let edit = e
            .get(2)
            .and_then(text)
            .filter(|f| f.starts_with('{') && f.ends_with('}'))
            .map(|f| Rc::from(format::seal_stored(room, 0, f).0));
        let reactions = e.get(3).and_then(text).and_then(reactions);
        found.push(Found {
            message: Stored {
                id,
                json: json.into(),
                owner,
            },
            edit,
            reactions,
        });
    }
    Some((found, exhausted))
}

/// A message's reactions as `publish.lua` keeps them: `[[emoji, [name, ...]], ...]`.
fn reactions(json: &str) -> Option<Reactions> {
    let list: Vec<(String, Vec<String>)> = serde_json::from_str(json).ok()?;
    let list: Vec<_> = list.into_iter().filter(|(_, n)| !n.is_empty()).collect();
    (!list.is_empty()).then_some(Reactions(list))
}

/// `rooms.lua`'s answer: room, last message time (0: none), users online, ...
pub fn directory(reply: &Value) -> Option<Vec<DirectoryEntry>> {
    let Value::Array(flat) = reply else {
        return None;
    };
    flat.chunks(3)
        .map(|row| {
            let room = std::str::from_utf8(row.first()?.as_bytes()?).ok()?;
            // A score is a double; ours are whole milliseconds, which Redis
            // prints as integers (and "0" for a room without messages).
            let score = std::str::from_utf8(row.get(1)?.as_bytes()?).ok()?;
            let time: u64 = score.split('.').next()?.parse().ok()?;
            Some(DirectoryEntry {
                room: room.to_string(),
                online: row.get(2)?.as_u64()? as usize,
                last_message_time: (time > 0).then_some(time),
            })
        })
        .collect()
}

/// A room's presence hash (HGETALL: field, value, ...) without this node's entries.
pub fn presence_snapshot(room: &RoomName, flat: &Value, own: &str) -> Vec<RemotePresence> {
    let Value::Array(flat) = flat else {
        return Vec::new();
    };
    flat.chunks(2)
        .filter_map(|pair| {
            let field = pair.first()?.as_bytes()?;
            let avatar = std::str::from_utf8(pair.get(1)?.as_bytes()?).ok()?;
            let (node, username): (String, String) = serde_json::from_slice(field).ok()?;
            let (verified, avatar) = entry_value(avatar);
            (node != own).then(|| RemotePresence {
                room: room.clone(),
                node,
                username,
                avatar,
                verified,
                online: true,
            })
        })
        .collect()
}

/// A presence entry's value: the avatar (none when empty), after a `!` when
/// the name is verified (`--auth token`).
fn entry_value(value: &str) -> (bool, Option<String>) {
    let (verified, avatar) = match value.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    (verified, (!avatar.is_empty()).then(|| avatar.to_string()))
}

/// `{"n": node, "u": username, "a": avatar, "on": bool}`, as `presence.lua` publishes it.
pub fn parse_presence(room: &RoomName, json: &[u8]) -> Option<RemotePresence> {
    #[derive(serde::Deserialize)]
    struct Notice {
        n: String,
        u: String,
        #[serde(default)]
        a: String,
        on: bool,
    }
    let n: Notice = serde_json::from_slice(json).ok()?;
    let (verified, avatar) = entry_value(&n.a);
    Some(RemotePresence {
        room: room.clone(),
        node: n.n,
        username: n.u,
        avatar,
        verified,
        online: n.on,
    })
}

/// `"<epoch> <id> <time> <fields>"`, as `publish.lua` publishes it.
pub fn parse_published(payload: &[u8]) -> Option<Published> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.splitn(4, ' ');
    let epoch = parts.next()?.parse().ok()?;
    let id = parts.next()?.parse().ok()?;
    let time = parts.next()?.parse().ok()?;
    let fields = parts.next()?;
    if !(fields.starts_with('{') && fields.ends_with('}')) {
        return None;
    }
    Some(Published {
        epoch,
        id,
        time,
        fields: fields.to_string(),
    })
}

/// `"<key>\n<value>"`, as `setting.lua` publishes it.
pub fn setting(payload: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (key, value) = text.split_once('\n')?;
    Some((key.to_string(), value.to_string()))
}

/// `HGETALL` of the settings hash: field, value, field, value...
pub fn settings(reply: &Value) -> Option<Vec<(String, String)>> {
    let Value::Array(kv) = reply else {
        return None;
    };
    kv.chunks(2)
        .map(|pair| {
            let text =
                |v: Option<&Value>| std::str::from_utf8(v?.as_bytes()?).ok().map(str::to_string);
            Some((text(pair.first())?, text(pair.get(1))?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_name_is_marked_in_its_presence_entry() {
        let room: RoomName = "dev".into();
        let p = parse_presence(&room, br#"{"n":"x","u":"ann","a":"!abc","on":true}"#).unwrap();
        assert_eq!((p.verified, p.avatar.as_deref()), (true, Some("abc")));
        let p = parse_presence(&room, br#"{"n":"x","u":"bo","a":"!","on":true}"#).unwrap();
        assert_eq!((p.verified, p.avatar), (true, None));
        let p = parse_presence(&room, br#"{"n":"x","u":"cy","a":"","on":true}"#).unwrap();
        assert_eq!((p.verified, p.avatar), (false, None));
    }

    #[test]
    fn settings_notices_and_snapshots_decode() {
        assert_eq!(
            setting(b"room/dev\n{\"topic\":\"a\nb\"}"),
            Some(("room/dev".into(), "{\"topic\":\"a\nb\"}".into()))
        );
        assert_eq!(
            setting(b"ban/name/x\n"),
            Some(("ban/name/x".into(), String::new()))
        );
        assert_eq!(setting(b"no newline"), None);
        let reply = Value::Array(vec![Value::Bulk(b"k".to_vec()), Value::Bulk(b"v".to_vec())]);
        assert_eq!(settings(&reply), Some(vec![("k".into(), "v".into())]));
        assert_eq!(
            settings(&Value::Array(vec![Value::Bulk(b"k".to_vec())])),
            None
        );
    }

    #[test]
    fn published_payloads_parse_and_foreign_ones_do_not() {
        let p = parse_published(br#"17 5 1000 {"a":"b c"}"#).unwrap();
        assert_eq!(
            (p.epoch, p.id, p.time, &*p.fields),
            (17, 5, 1000, r#"{"a":"b c"}"#)
        );
        for bad in [&b"hello"[..], b"1 2 3 x", b"1 two 3 {}", b""] {
            assert!(parse_published(bad).is_none());
        }
    }
}
