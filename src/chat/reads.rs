//! Read markers as data: how far each identity has read each room, only
//! ever moving forward, and which of them must still be stored. A marker is
//! stored as the log setting `read/<owner, 16 hex>/<room>` = `N`, at most
//! once per [`STORE_EVERY_MS`] per identity and room however often a page
//! reports (what is pending is stored at shutdown), and read back at start
//! and, with a shared log, from other processes. Who may set one and who
//! hears of it is the core's (`core/reads.rs`).

use super::protocol::{Owner, RoomName};
use std::collections::HashMap;

/// The least time between two stores of one identity's marker in one room.
pub const STORE_EVERY_MS: u64 = 1000;

/// Most markers kept; past it new ones are neither kept nor stored (the
/// memory a flood of identities and rooms can take stays bounded).
const MAX_MARKERS: usize = 200_000;

#[derive(Debug)]
struct Marker {
    id: u64,
    /// The id last stored (or read back from the store).
    stored: u64,
    /// When it was last stored (wall-clock ms).
    stored_at: u64,
}

#[derive(Debug, Default)]
pub struct ReadMarkers {
    markers: HashMap<(Owner, RoomName), Marker>,
    /// Markers moved since they were last stored, waiting for their second.
    dirty: Vec<(Owner, RoomName)>,
}

/// A setting to store: (key, value).
pub type Store = (String, String);

/// The setting key of `owner`'s marker in `room`.
pub fn key(owner: Owner, room: &str) -> String {
    format!("read/{owner:016x}/{room}")
}

/// The owner and room a setting key names, if it is a marker's.
pub fn parse_key(key: &str) -> Option<(Owner, &str)> {
    let rest = key.strip_prefix("read/")?;
    let (owner, room) = rest.split_once('/')?;
    Some((u64::from_str_radix(owner, 16).ok()?, room))
}

impl ReadMarkers {
    /// How far `owner` has read `room`.
    pub fn get(&self, owner: Owner, room: &str) -> Option<u64> {
        self.markers
            .get(&(owner, RoomName::from(room)))
            .map(|m| m.id)
    }

    /// `owner` has read `room` up to `id`: whether that moved its marker
    /// forward, and the setting to store now when its second has passed
    /// (otherwise it waits for [`due`](Self::due)).
    pub fn advance(
        &mut self,
        owner: Owner,
        room: &RoomName,
        id: u64,
        now: u64,
    ) -> (bool, Option<Store>) {
        let k = (owner, room.clone());
        if !self.markers.contains_key(&k) && self.markers.len() >= MAX_MARKERS {
            return (false, None);
        }
        let m = self.markers.entry(k).or_insert(Marker {
            id: 0,
            stored: 0,
            stored_at: 0,
        });
        if id <= m.id && m.id > 0 {
            return (false, None);
        }
        let was_dirty = m.id > m.stored;
        m.id = id;
        if now.saturating_sub(m.stored_at) >= STORE_EVERY_MS {
            m.stored = id;
            m.stored_at = now;
            return (true, Some((key(owner, room), id.to_string())));
        }
        if !was_dirty {
            self.dirty.push((owner, room.clone()));
        }
        (true, None)
    }

    /// A marker the log stored (here, before a restart, or by another
    /// process): returns the owner, room and id when it moved one forward.
    pub fn apply(&mut self, key: &str, value: &str) -> Option<(Owner, RoomName, u64)> {
        let (owner, room) = parse_key(key)?;
        let id: u64 = value.parse().ok()?;
        let k = (owner, RoomName::from(room));
        if !self.markers.contains_key(&k) && self.markers.len() >= MAX_MARKERS {
            return None;
        }
        let m = self.markers.entry(k.clone()).or_insert(Marker {
            id: 0,
            stored: 0,
            stored_at: 0,
        });
        m.stored = m.stored.max(id);
        if id <= m.id {
            return None;
        }
        m.id = id;
        Some((k.0, k.1, id))
    }

    /// Markers whose second has passed since they were last stored, to store now.
    pub fn due(&mut self, now: u64) -> Vec<Store> {
        let mut out = Vec::new();
        let markers = &mut self.markers;
        self.dirty.retain(|k| {
            let Some(m) = markers.get_mut(k) else {
                return false;
            };
            if m.id <= m.stored {
                return false;
            }
            if now.saturating_sub(m.stored_at) < STORE_EVERY_MS {
                return true;
            }
            m.stored = m.id;
            m.stored_at = now;
            out.push((key(k.0, &k.1), m.id.to_string()));
            false
        });
        out
    }

    /// Every marker not stored yet (at shutdown).
    pub fn pending(&mut self) -> Vec<Store> {
        self.due(u64::MAX)
    }

    pub fn len(&self) -> usize {
        self.markers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.markers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_moves_forward_only_and_is_stored_at_most_once_a_second() {
        let mut r = ReadMarkers::default();
        let room: RoomName = "dev".into();
        let (moved, store) = r.advance(7, &room, 10, 5_000);
        assert!(moved);
        assert_eq!(
            store,
            Some(("read/0000000000000007/dev".into(), "10".into()))
        );
        assert_eq!(r.advance(7, &room, 9, 5_001), (false, None), "never back");
        assert_eq!(
            r.advance(7, &room, 10, 5_001),
            (false, None),
            "nor the same"
        );
        assert_eq!(
            r.advance(7, &room, 12, 5_100),
            (true, None),
            "within its second"
        );
        assert_eq!(r.advance(7, &room, 15, 5_200), (true, None));
        assert_eq!(r.get(7, "dev"), Some(15), "forwarded at once all the same");
        assert!(r.due(5_999).is_empty());
        assert_eq!(
            r.due(6_000),
            vec![("read/0000000000000007/dev".into(), "15".into())],
            "the newest, once"
        );
        assert!(r.due(9_000).is_empty());
        r.advance(7, &room, 16, 6_500);
        assert_eq!(r.pending().len(), 1, "what is pending at shutdown");
        // Read back: a stored marker moves one forward, never back.
        let mut there = ReadMarkers::default();
        assert_eq!(
            there.apply("read/0000000000000007/dev", "16"),
            Some((7, room.clone(), 16))
        );
        assert_eq!(there.apply("read/0000000000000007/dev", "3"), None);
        assert_eq!(there.apply("read/nothex/dev", "3"), None);
        assert_eq!(there.apply("hold/ann", "3"), None);
        assert_eq!(parse_key(&key(u64::MAX, "@a-b")), Some((u64::MAX, "@a-b")));
        assert!(
            there.due(100_000).is_empty(),
            "what was read back is stored"
        );
    }
}
