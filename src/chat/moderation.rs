//! What moderators decided: bans (of a name or a client address, for a time
//! or for good) and per-room settings (topic, slow mode, read-only). Kept as
//! settings of the message log, so they are stored where the messages are
//! and reach every process sharing it: a key and a JSON value each, opaque
//! to the log. This file owns the keys, the values and the questions the core
//! asks ("is this name banned now?"); the core decides what follows (kicks,
//! refusals, the `room` frame). No sockets, clocks or storage here.

use super::protocol::RoomName;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// Longest room topic, in characters.
pub const MAX_TOPIC_CHARS: usize = 200;
/// Longest slow mode, in seconds (a day).
pub const MAX_SLOW_MODE_SECS: u32 = 86_400;

/// What a ban is of.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BanTarget {
    /// A username, compared without case.
    Name(String),
    Address(IpAddr),
}

impl BanTarget {
    pub fn name(name: &str) -> BanTarget {
        BanTarget::Name(name.to_lowercase())
    }

    /// The setting's key: `ban/name/<lower-case name>` or `ban/address/<ip>`.
    pub fn key(&self) -> String {
        match self {
            BanTarget::Name(n) => format!("ban/name/{n}"),
            BanTarget::Address(a) => format!("ban/address/{a}"),
        }
    }

    fn from_key(key: &str) -> Option<BanTarget> {
        let rest = key.strip_prefix("ban/")?;
        if let Some(name) = rest.strip_prefix("name/") {
            return Some(BanTarget::name(name));
        }
        rest.strip_prefix("address/")?
            .parse()
            .ok()
            .map(BanTarget::Address)
    }
}

/// One ban as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    /// Wall-clock ms it ends; `None`: until lifted.
    pub until: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Wall-clock ms it was made.
    #[serde(default)]
    pub since: u64,
}

impl Ban {
    pub fn active(&self, now: u64) -> bool {
        self.until.is_none_or(|u| now < u)
    }
}

/// A room's settings as stored (and as its `room` frame and welcome show them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSettings {
    #[serde(default)]
    pub topic: String,
    /// Seconds a user must wait between messages in the room; 0 = off.
    #[serde(default)]
    pub slow_mode: u32,
    /// Only moderators post (through the admin API).
    #[serde(default)]
    pub read_only: bool,
}

/// What a moderator asks to change in a room's settings, as given (the
/// admin API's query parameters); what is absent stays.
#[derive(Clone, Debug, Default)]
pub struct SettingsChange {
    pub topic: Option<String>,
    pub slow_mode: Option<String>,
    pub read_only: Option<String>,
}

/// What a moderator asks to ban or lift, as given.
#[derive(Clone, Debug, Default)]
pub struct BanRequest {
    pub name: Option<String>,
    pub address: Option<String>,
    /// How long, in ms (`None`: until lifted).
    pub for_ms: Option<u64>,
    pub reason: Option<String>,
}

impl BanRequest {
    /// The ban's target and, unless it is lifted, its stored value, made at
    /// wall-clock `now`; or why the request is not a ban.
    pub fn checked(self, now: u64, lift: bool) -> Result<(BanTarget, String), &'static str> {
        let target = match (self.name, self.address) {
            (Some(n), None) => {
                BanTarget::name(super::protocol::username(&n).map_err(|_| "not a username")?)
            }
            (None, Some(a)) => {
                BanTarget::Address(a.trim().parse().map_err(|_| "not an IP address")?)
            }
            _ => return Err("give name= or address= (one of them)"),
        };
        if lift {
            return Ok((target, String::new()));
        }
        if self
            .reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_TOPIC_CHARS)
        {
            return Err("a reason is at most 200 characters");
        }
        let ban = Ban {
            until: self.for_ms.map(|d| now.saturating_add(d)),
            reason: self.reason,
            since: now,
        };
        Ok((target, serde_json::to_string(&ban).unwrap_or_default()))
    }
}

impl RoomSettings {
    pub fn key(room: &str) -> String {
        format!("room/{room}")
    }

    /// These settings with `change` applied, or why it is refused.
    pub fn changed(mut self, change: SettingsChange) -> Result<RoomSettings, &'static str> {
        if let Some(topic) = change.topic {
            let topic = topic.trim();
            if topic.chars().count() > MAX_TOPIC_CHARS || topic.chars().any(char::is_control) {
                return Err("a topic is at most 200 characters, no control characters");
            }
            self.topic = topic.to_string();
        }
        if let Some(secs) = change.slow_mode {
            self.slow_mode = secs
                .parse()
                .ok()
                .filter(|&n| n <= MAX_SLOW_MODE_SECS)
                .ok_or("slow_mode is seconds between messages, 0 to 86400")?;
        }
        if let Some(on) = change.read_only {
            self.read_only = match on.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err("read_only is true or false"),
            };
        }
        Ok(self)
    }

    pub fn is_default(&self) -> bool {
        *self == RoomSettings::default()
    }
}

/// Every ban and room setting in force.
#[derive(Debug, Default)]
pub struct Moderation {
    bans: HashMap<BanTarget, Ban>,
    rooms: HashMap<String, RoomSettings>,
}

/// What applying one setting changed, for the core to act on.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// A ban made (or changed) on this target.
    Banned(BanTarget),
    /// A room's settings changed.
    Room(RoomName),
    /// Nothing the core must act on (a ban lifted, an unknown key).
    Nothing,
}

impl Moderation {
    /// One stored setting; an empty value removes it. Unreadable values are skipped.
    pub fn apply(&mut self, key: &str, value: &str) -> Applied {
        if let Some(target) = BanTarget::from_key(key) {
            if value.is_empty() {
                self.bans.remove(&target);
                return Applied::Nothing;
            }
            return match serde_json::from_str::<Ban>(value) {
                Ok(ban) => {
                    self.bans.insert(target.clone(), ban);
                    Applied::Banned(target)
                }
                Err(_) => Applied::Nothing,
            };
        }
        if let Some(room) = key.strip_prefix("room/") {
            let Some(room) = super::protocol::room_name(room) else {
                return Applied::Nothing;
            };
            let settings = match value {
                "" => RoomSettings::default(),
                v => match serde_json::from_str::<RoomSettings>(v) {
                    Ok(s) => s,
                    Err(_) => return Applied::Nothing,
                },
            };
            if settings.is_default() {
                self.rooms.remove(&room);
            } else {
                self.rooms.insert(room.clone(), settings);
            }
            return Applied::Room(room.into());
        }
        Applied::Nothing
    }

    /// Replaces everything with a snapshot; returns the rooms whose
    /// settings differ after it and the targets banned by it.
    pub fn replace(&mut self, all: &[(String, String)]) -> (Vec<RoomName>, Vec<BanTarget>) {
        let before = std::mem::take(&mut self.rooms);
        let bans_before = std::mem::take(&mut self.bans);
        for (k, v) in all {
            self.apply(k, v);
        }
        let mut rooms: Vec<RoomName> = before
            .keys()
            .chain(self.rooms.keys())
            .filter(|r| before.get(*r) != self.rooms.get(*r))
            .map(|r| RoomName::from(r.as_str()))
            .collect();
        rooms.sort_unstable();
        rooms.dedup();
        let banned = self
            .bans
            .iter()
            .filter(|(t, b)| bans_before.get(*t) != Some(b))
            .map(|(t, _)| t.clone())
            .collect();
        (rooms, banned)
    }

    pub fn name_banned(&self, name: &str, now: u64) -> bool {
        !self.bans.is_empty()
            && self
                .bans
                .get(&BanTarget::name(name))
                .is_some_and(|b| b.active(now))
    }

    pub fn address_banned(&self, addr: IpAddr, now: u64) -> bool {
        !self.bans.is_empty()
            && self
                .bans
                .get(&BanTarget::Address(addr))
                .is_some_and(|b| b.active(now))
    }

    pub fn room(&self, room: &str) -> Option<&RoomSettings> {
        self.rooms.get(room)
    }

    /// Bans in force, for `GET /api/admin/bans`.
    pub fn bans_json(&self, now: u64) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            address: Option<String>,
            #[serde(flatten)]
            ban: &'a Ban,
        }
        let mut lines: Vec<Line> = self
            .bans
            .iter()
            .filter(|(_, b)| b.active(now))
            .map(|(t, ban)| match t {
                BanTarget::Name(n) => Line {
                    name: Some(n),
                    address: None,
                    ban,
                },
                BanTarget::Address(a) => Line {
                    name: None,
                    address: Some(a.to_string()),
                    ban,
                },
            })
            .collect();
        lines.sort_unstable_by_key(|l| std::cmp::Reverse(l.ban.since));
        #[derive(Serialize)]
        struct Body<'a> {
            bans: Vec<Line<'a>>,
        }
        serde_json::to_string(&Body { bans: lines }).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_apply_by_key_expire_and_lift() {
        let mut m = Moderation::default();
        let ban = |until| {
            serde_json::to_string(&Ban {
                until,
                reason: None,
                since: 1,
            })
            .unwrap()
        };
        let key = BanTarget::name("Troll").key();
        assert_eq!(key, "ban/name/troll");
        assert_eq!(
            m.apply(&key, &ban(Some(100))),
            Applied::Banned(BanTarget::name("troll"))
        );
        assert!(m.name_banned("TROLL", 99));
        assert!(!m.name_banned("troll", 100), "expired");
        let addr: IpAddr = "10.0.0.9".parse().unwrap();
        m.apply(&BanTarget::Address(addr).key(), &ban(None));
        assert!(m.address_banned(addr, u64::MAX));
        m.apply(&BanTarget::Address(addr).key(), "");
        assert!(!m.address_banned(addr, 0), "lifted");
        assert_eq!(m.apply("ban/name/x", "not json"), Applied::Nothing);
        assert_eq!(m.apply("other/thing", "{}"), Applied::Nothing);
    }

    #[test]
    fn room_settings_and_a_snapshot_that_replaces_them() {
        let mut m = Moderation::default();
        let v = r#"{"topic":"homework","slow_mode":30,"read_only":false}"#;
        assert_eq!(m.apply("room/dev", v), Applied::Room("dev".into()));
        assert_eq!(m.room("dev").map(|s| s.slow_mode), Some(30));
        m.apply("room/ops", r#"{"read_only":true}"#);
        let (changed, banned) = m.replace(&[
            ("room/dev".into(), v.into()),
            ("ban/name/eve".into(), r#"{"until":null}"#.into()),
        ]);
        assert_eq!(changed, vec![RoomName::from("ops")], "only what differs");
        assert_eq!(banned, vec![BanTarget::name("eve")]);
        assert!(m.room("ops").is_none());
        assert_eq!(m.apply("room/Not A Room", v), Applied::Nothing);
    }
}
