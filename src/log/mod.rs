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
//! loaded from it when first joined). What only a shared log does is
//! [`SharedLog`]; the server holds either kind as a [`Backend`]. How records
//! are stored (a journal line, a stream entry) is `format.rs`.
//! What is common to both, numbering records per room, is [`Sequence`]. The
//! types that cross the seam belong to the core (`chat/record.rs`): a log
//! serves the core, the core does not depend on any log.

pub mod files;
pub mod format;
pub mod journal;
pub mod memory;
pub mod redis;

use crate::chat::protocol::RoomName;
pub use crate::chat::record::{Draft, Fetched, LogEvent, Read, Record, RemotePresence, Restored};
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
    /// Asks for older records (a history page, a search chunk); the answer
    /// comes out of a later commit as [`LogEvent::Read`], in bounded work
    /// per turn. A log that keeps nothing beyond the core's memory
    /// ([`Restored::readable`] false) answers with nothing.
    fn read(&mut self, read: Read);
    /// The core dropped every trace of `room` (no members, no history): the
    /// log may drop its sequence too. A later record there starts above the high water.
    fn forget(&mut self, room: &str);
    fn health(&self) -> LogHealth;
    /// Bytes of an in-memory index of what is stored (the journal's), for `/metrics`.
    fn index_bytes(&self) -> Option<usize> {
        None
    }
    /// The loop must call [`commit`](Self::commit) within this many ms even
    /// if nothing happens (a sync or a reconnect is due); `None`: never.
    fn wake_in(&self, now_ms: u64) -> Option<u64>;
    /// Stores a moderation setting (`value` empty: removed). Once stored it
    /// comes out of a commit as [`LogEvent::Setting`], on every process
    /// sharing the log; if it cannot be stored it is logged and dropped.
    fn set(&mut self, key: String, value: String);
    /// Shutdown: write and sync everything.
    fn close(&mut self, now_ms: u64);
    /// An uploaded image this log stored under `name` ([`Draft::file`]), if
    /// it still has it (`--upload-quota` may have removed the oldest).
    fn file(&self, _name: &str) -> Option<std::rc::Rc<[u8]>> {
        None
    }
    /// The message carrying image `name` was deleted: the file goes at once.
    fn remove_file(&mut self, _name: &str) {}
    /// Bytes of uploaded images stored, for `/metrics`.
    fn file_bytes(&self) -> usize {
        0
    }
}

/// Which of a shared log's two connections the poll reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Commands,
    Subscriptions,
}

/// What only a log shared by several processes needs besides
/// [`MessageLog`]: rooms loaded when first joined, presence and notices for
/// the other processes, and sockets of its own in the server's poll, whose
/// replies come turns later.
pub trait SharedLog: MessageLog {
    /// The core has a member in `room` now ([`Restored::on_demand`]): its
    /// history comes back as [`LogEvent::Loaded`], then its records as
    /// `Committed`, until `forget`.
    fn watch(&mut self, room: &RoomName);
    /// `username`'s first connection in `room` on this process came
    /// (`online`) or its last one went; other processes hear of it.
    fn presence(
        &mut self,
        room: &RoomName,
        username: &str,
        avatar: Option<&str>,
        verified: bool,
        online: bool,
    );
    /// An identity's first connection here came (`on`) or its last went:
    /// its direct messages (records of conversations this process may not
    /// watch) are handed over as `Committed` from now on, or no more.
    fn watch_identity(&mut self, owner: crate::chat::protocol::Owner, on: bool);
    /// Tells the other processes `key` = `value` now, storing nothing; they
    /// hear it as [`LogEvent::Notice`].
    fn notify(&mut self, key: &str, value: &str);
    /// Reads the uploaded image `name` (any process may have stored it):
    /// the answer comes as [`LogEvent::File`].
    fn fetch_file(&mut self, name: &str);
    /// The poll reported readiness for one of this log's own sockets.
    fn ready(&mut self, link: Link, readable: bool, writable: bool);
    /// Something was asked of the log after this turn's commit (by what the
    /// commit's own events caused) that a commit could send now: the loop
    /// commits again before it sleeps.
    fn wants_commit(&self) -> bool;
    /// Hands what was asked of the log since its commit to the kernel now,
    /// before the turn's replies leave (a presence change before the welcome
    /// that follows from it). Never blocks; replies are read at the next commit.
    fn flush(&mut self);
    /// Backend-specific lines for `/metrics` (Prometheus text format).
    fn metrics(&self, out: &mut String);
}

/// The log a server runs: local to this process (memory, journal) or shared.
pub enum Backend {
    Local(Box<dyn MessageLog>),
    Shared(Box<dyn SharedLog>),
}

impl Backend {
    /// What only a shared log does; `None` for a local one.
    pub fn shared(&mut self) -> Option<&mut dyn SharedLog> {
        match self {
            Backend::Local(_) => None,
            Backend::Shared(s) => Some(&mut **s),
        }
    }

    pub fn append(&mut self, draft: Draft) {
        match self {
            Backend::Local(l) => l.append(draft),
            Backend::Shared(s) => s.append(draft),
        }
    }

    pub fn commit(&mut self, now_ms: u64, out: &mut Vec<LogEvent>) {
        match self {
            Backend::Local(l) => l.commit(now_ms, out),
            Backend::Shared(s) => s.commit(now_ms, out),
        }
    }

    pub fn read(&mut self, read: Read) {
        match self {
            Backend::Local(l) => l.read(read),
            Backend::Shared(s) => s.read(read),
        }
    }

    pub fn forget(&mut self, room: &str) {
        match self {
            Backend::Local(l) => l.forget(room),
            Backend::Shared(s) => s.forget(room),
        }
    }

    pub fn health(&self) -> LogHealth {
        match self {
            Backend::Local(l) => l.health(),
            Backend::Shared(s) => s.health(),
        }
    }

    pub fn index_bytes(&self) -> Option<usize> {
        match self {
            Backend::Local(l) => l.index_bytes(),
            Backend::Shared(s) => s.index_bytes(),
        }
    }

    pub fn wake_in(&self, now_ms: u64) -> Option<u64> {
        match self {
            Backend::Local(l) => l.wake_in(now_ms),
            Backend::Shared(s) => s.wake_in(now_ms),
        }
    }

    pub fn set(&mut self, key: String, value: String) {
        match self {
            Backend::Local(l) => l.set(key, value),
            Backend::Shared(s) => s.set(key, value),
        }
    }

    pub fn close(&mut self, now_ms: u64) {
        match self {
            Backend::Local(l) => l.close(now_ms),
            Backend::Shared(s) => s.close(now_ms),
        }
    }

    pub fn file(&self, name: &str) -> Option<std::rc::Rc<[u8]>> {
        match self {
            Backend::Local(l) => l.file(name),
            Backend::Shared(s) => s.file(name),
        }
    }

    pub fn remove_file(&mut self, name: &str) {
        match self {
            Backend::Local(l) => l.remove_file(name),
            Backend::Shared(s) => s.remove_file(name),
        }
    }

    pub fn file_bytes(&self) -> usize {
        match self {
            Backend::Local(l) => l.file_bytes(),
            Backend::Shared(s) => s.file_bytes(),
        }
    }

    /// `/metrics` lines of a shared log (a local one has none of its own).
    pub fn metrics(&self, out: &mut String) {
        if let Backend::Shared(s) = self {
            s.metrics(out);
        }
    }

    /// A shared log wants another commit before the loop sleeps.
    pub fn wants_commit(&self) -> bool {
        matches!(self, Backend::Shared(s) if s.wants_commit())
    }
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

    /// The highest id used in any room.
    pub fn high_water(&self) -> u64 {
        self.high_water
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
