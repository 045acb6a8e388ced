//! The message log: the seam between the chat core and where messages are
//! stored. **The log is the sequencer**: it assigns each room's ids, and only
//! records it has committed are handed back to the core to deliver, so nothing
//! reaches a client that was not stored.
//!
//! The core asks for [`Draft`]s to be appended; the server calls
//! [`MessageLog::commit`] once per loop turn, before any socket is flushed,
//! and passes what comes out ([`LogEvent`]s) back to the core. A backend may
//! hand a record back in the same turn (memory, file journal) or turns later
//! (a remote log): the core does not care.
//!
//! Backends: [`memory::MemoryLog`], [`journal::Journal`] (`--data-dir`) and
//! [`redis::RedisLog`] (`--redis`: many processes, one set of rooms; its
//! sockets are polled by the server's loop like any connection, and rooms are
//! loaded from it when first joined, see [`MessageLog::watch`]).
//! What is common to both, numbering records per room, is [`Sequence`]. The
//! types that cross the seam belong to the core (`chat/record.rs`): a log
//! serves the core, the core does not depend on any log.

pub mod journal;
pub mod memory;
pub mod redis;

use crate::chat::protocol::RoomName;
pub use crate::chat::record::{Draft, LogEvent, Record, RemotePresence, Restored};
use mio::Token;
use std::collections::HashMap;

/// Whether the log is taking messages, for `/healthz` and `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogHealth {
    /// The last attempt to store failed; messages are refused until one succeeds.
    pub degraded: bool,
    /// Writes or syncs that failed since start.
    pub errors_total: u64,
}

/// A place messages are stored, numbered and handed back once committed.
pub trait MessageLog {
    /// Asks for `draft` to be stored. Its outcome comes out of a later
    /// [`commit`](Self::commit) (the same turn's, for local backends).
    fn append(&mut self, draft: Draft);
    /// Makes this turn's appends durable as the backend promises, then hands
    /// out every outcome known so far, in order. Called once per loop turn,
    /// before any socket is flushed.
    fn commit(&mut self, now_ms: u64, out: &mut Vec<LogEvent>);
    /// The core dropped every trace of `room` (no members, no history): the
    /// log may drop its sequence too. A later record there starts above the high water.
    fn forget(&mut self, room: &str);
    fn health(&self) -> LogHealth;
    /// A log that loads rooms on demand ([`Restored::on_demand`]): the core
    /// has a member in `room` now; its history comes back as
    /// [`LogEvent::Loaded`], then its records as `Committed`, until `forget`.
    fn watch(&mut self, _room: &RoomName) {}
    /// The poll reported readiness for one of this log's own sockets.
    fn ready(&mut self, _token: Token, _readable: bool, _writable: bool) {}
    /// The loop must call [`commit`](Self::commit) within this many ms even
    /// if nothing happens (a sync or a reconnect is due).
    fn wake_in(&self, _now_ms: u64) -> Option<u64> {
        None
    }
    /// A shared log: `username`'s first connection in `room` on this process
    /// came (`online`) or its last one went; other processes hear of it.
    fn presence(
        &mut self,
        _room: &RoomName,
        _username: &str,
        _avatar: Option<&str>,
        _verified: bool,
        _online: bool,
    ) {
    }
    /// Something was asked of the log after this turn's commit (by what the
    /// commit's own events caused) that a commit could send now: the loop
    /// commits again before it sleeps.
    fn wants_commit(&self) -> bool {
        false
    }
    /// Hands what was asked of the log since its commit to the kernel now,
    /// before the turn's replies leave (a presence change before the welcome
    /// that follows from it). Never blocks; replies are read at the next commit.
    fn flush(&mut self) {}
    /// Stores a moderation setting (`value` empty: removed). Once stored it
    /// comes out of a commit as [`LogEvent::Setting`], on every process
    /// sharing the log; if it cannot be stored it is logged and dropped.
    fn set(&mut self, key: String, value: String);
    /// A shared log: tells the other processes `key` = `value` now, storing
    /// nothing; they hear it as [`LogEvent::Notice`]. Local logs have no one to tell.
    fn notify(&mut self, _key: &str, _value: &str) {}
    /// Backend-specific lines for `/metrics` (Prometheus text format).
    fn metrics(&self, _out: &mut String) {}
    /// Shutdown: write and sync everything.
    fn close(&mut self, now_ms: u64);
}

/// Per-room id sequences. A room seen for the first time continues from the
/// high water (the highest id used in any room), so ids in one room only
/// ever grow within an epoch, even for a room that was forgotten and made again.
#[derive(Debug, Default)]
pub struct Sequence {
    last: HashMap<RoomName, u64>,
    high_water: u64,
}

/// What [`Sequence::next`] changed, so a failed batch can be undone.
#[derive(Debug)]
pub struct Undo {
    room: RoomName,
    before: Option<u64>,
    high_water: u64,
}

impl Sequence {
    pub fn new(restored: &Restored) -> Sequence {
        Sequence {
            last: restored
                .rooms
                .iter()
                .map(|(room, last, _)| (room.clone(), *last))
                .collect(),
            high_water: restored.high_water,
        }
    }

    /// The next id in `room`.
    pub fn next(&mut self, room: &RoomName) -> (u64, Undo) {
        let undo = Undo {
            room: room.clone(),
            before: self.last.get(room).copied(),
            high_water: self.high_water,
        };
        let id = undo.before.unwrap_or(self.high_water) + 1;
        self.last.insert(room.clone(), id);
        self.high_water = self.high_water.max(id);
        (id, undo)
    }

    /// Takes back ids that were not committed; `undos` in the order they were made.
    pub fn undo(&mut self, undos: impl DoubleEndedIterator<Item = Undo>) {
        for u in undos.rev() {
            match u.before {
                Some(id) => self.last.insert(u.room, id),
                None => self.last.remove(&u.room),
            };
            self.high_water = u.high_water;
        }
    }

    pub fn forget(&mut self, room: &str) {
        self.last.remove(room);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_grow_per_room_and_a_new_room_starts_above_the_high_water() {
        let mut seq = Sequence::default();
        let (a, b): (RoomName, RoomName) = ("a".into(), "b".into());
        assert_eq!(seq.next(&a).0, 1);
        assert_eq!(seq.next(&a).0, 2);
        assert_eq!(seq.next(&b).0, 3, "b starts above a's ids");
        assert_eq!(seq.next(&b).0, 4);
        assert_eq!(seq.next(&a).0, 3, "a continues its own sequence");
        seq.forget("a");
        assert_eq!(
            seq.next(&a).0,
            5,
            "a forgotten room comes back above everything"
        );
    }

    #[test]
    fn an_undone_batch_gives_its_ids_back() {
        let mut seq = Sequence::default();
        let a: RoomName = "a".into();
        seq.next(&a);
        let undos = vec![seq.next(&a).1, seq.next(&"b".into()).1];
        seq.undo(undos.into_iter());
        assert_eq!(seq.next(&a).0, 2);
        assert_eq!(seq.next(&"b".into()).0, 3);
    }
}
