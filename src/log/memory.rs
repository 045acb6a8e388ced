//! The log without `--data-dir`: ids from a [`Sequence`], records handed back
//! in the turn they were appended, nothing kept (history lives in the core's
//! rooms) but uploaded images (`files.rs`, within `--upload-quota`). Its
//! epoch is the process start, so pages reload after a restart.

use super::files::MemoryFiles;
use super::{Draft, LogEvent, LogHealth, MessageLog, Read, Record, Restored, Sequence};

#[derive(Debug, Default)]
pub struct MemoryLog {
    sequence: Sequence,
    pending: Vec<Record>,
    /// Moderation settings set this turn (kept nowhere else: a restart forgets them).
    settings: Vec<(String, String)>,
    /// Reads asked this turn: memory is all there is, so they find nothing.
    reads: Vec<u64>,
    files: MemoryFiles,
    /// Drafts whose image could not be kept (larger than the quota).
    refused: Vec<(
        crate::chat::protocol::RoomName,
        Option<crate::chat::ClientId>,
    )>,
}

impl MemoryLog {
    /// A memory log keeping at most `upload_quota` bytes of images.
    pub fn new(upload_quota: usize) -> MemoryLog {
        MemoryLog {
            files: MemoryFiles::new(upload_quota),
            ..MemoryLog::default()
        }
    }

    /// Continues the sequences of `restored` (tests; a memory log has nothing to restore).
    pub fn restored(restored: &Restored) -> MemoryLog {
        MemoryLog {
            sequence: Sequence::new(restored),
            pending: Vec::new(),
            settings: Vec::new(),
            reads: Vec::new(),
            files: MemoryFiles::new(32 << 20),
            refused: Vec::new(),
        }
    }
}

impl MessageLog for MemoryLog {
    fn append(&mut self, mut draft: Draft) {
        // The image first: a message is never delivered without its file.
        if let Some(file) = draft.file.take() {
            if !self.files.put(file.name, file.bytes) {
                self.refused.push((draft.room, draft.sender));
                return;
            }
        }
        let (id, _) = self.sequence.next(&draft.room);
        self.pending.push(draft.seal(id));
    }

    fn commit(&mut self, _now_ms: u64, out: &mut Vec<LogEvent>) {
        out.extend(
            self.refused
                .drain(..)
                .map(|(room, sender)| LogEvent::Refused { room, sender }),
        );
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

    fn file(&self, name: &str) -> Option<std::rc::Rc<[u8]>> {
        self.files.get(name)
    }

    fn remove_file(&mut self, name: &str) {
        self.files.remove(name);
    }

    fn file_bytes(&self) -> usize {
        self.files.bytes()
    }
}
