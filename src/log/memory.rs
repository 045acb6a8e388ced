//! The log without `--data-dir`: ids from a [`Sequence`], records handed back
//! in the turn they were appended, nothing kept (history lives in the core's
//! rooms). Its epoch is the process start, so pages reload after a restart.

use super::{Draft, LogEvent, LogHealth, MessageLog, Read, Record, Restored, Sequence};

#[derive(Debug, Default)]
pub struct MemoryLog {
    sequence: Sequence,
    pending: Vec<Record>,
    /// Moderation settings set this turn (kept nowhere else: a restart forgets them).
    settings: Vec<(String, String)>,
    /// Reads asked this turn: memory is all there is, so they find nothing.
    reads: Vec<u64>,
}

impl MemoryLog {
    pub fn new() -> MemoryLog {
        MemoryLog::default()
    }

    /// Continues the sequences of `restored` (tests; a memory log has nothing to restore).
    pub fn restored(restored: &Restored) -> MemoryLog {
        MemoryLog {
            sequence: Sequence::new(restored),
            pending: Vec::new(),
            settings: Vec::new(),
            reads: Vec::new(),
        }
    }
}

impl MessageLog for MemoryLog {
    fn append(&mut self, draft: Draft) {
        let (id, _) = self.sequence.next(&draft.room);
        self.pending.push(draft.seal(id));
    }

    fn commit(&mut self, _now_ms: u64, out: &mut Vec<LogEvent>) {
        out.extend(self.pending.drain(..).map(LogEvent::Committed));
        let settings = self.settings.drain(..);
        out.extend(settings.map(|(key, value)| LogEvent::Setting { key, value }));
        out.extend(self.reads.drain(..).map(|ticket| LogEvent::Read {
            ticket,
            found: Vec::new(),
            exhausted: true,
        }));
    }

    fn read(&mut self, read: Read) {
        self.reads.push(read.ticket);
    }

    fn set(&mut self, key: String, value: String) {
        self.settings.push((key, value));
    }

    fn forget(&mut self, room: &str) {
        self.sequence.forget(room);
    }

    fn health(&self) -> LogHealth {
        LogHealth::default()
    }

    fn wake_in(&self, _now_ms: u64) -> Option<u64> {
        None
    }

    fn close(&mut self, _now_ms: u64) {}
}
