//! The journal as the server sees it: [`MessageLog`] (appending a draft
//! and its image, committing a batch, reads, settings and read markers,
//! files, shutdown), delegating to the rest of this folder.

use super::*;

/// What the index notes of a draft: a message, or the message an edit or
/// delete is for (read from its fields once, as the Redis log does).
fn entry_of(draft: &Draft) -> Entry {
    use crate::chat::record::Kind;
    match (draft.kind, format::target(draft)) {
        (Kind::Edit, Some(target)) => Entry::Edit { target },
        (Kind::Delete, Some(target)) => Entry::Delete { target },
        (Kind::React, Some(target)) => Entry::React { target },
        _ => Entry::Message,
    }
}

impl MessageLog for Journal {
    fn append(&mut self, mut draft: Draft) {
        // The image first, with the segment the record goes to: a message
        // is never delivered without its file.
        if let Some(file) = draft.file.take() {
            let segment = self.files.current;
            if let Err(e) = self
                .uploads
                .store(segment, &file.name, &file.bytes, self.policy)
            {
                self.health.errors_total += 1;
                diag_error!(
                    "message log {}: cannot store an image ({e})",
                    self.dir.display()
                );
                self.refused.push((draft.room, draft.sender));
                return;
            }
        }
        let (id, undo) = self.sequence.next(&draft.room);
        let entry = entry_of(&draft);
        let record = draft.seal(id);
        let offset = self.pending.len();
        format::journal_line(&record.json, record.owner, &mut self.pending);
        let len = self.pending.len() - offset;
        self.pending.push(b'\n');
        self.batch.push(Appended {
            record,
            undo,
            entry,
            offset,
            len,
        });
    }

    fn commit(&mut self, now_ms: u64, out: &mut Vec<LogEvent>) {
        self.uploads.forget_sent();
        out.extend(
            self.refused
                .drain(..)
                .map(|(room, sender)| LogEvent::Refused { room, sender }),
        );
        let markers_due = self
            .markers_written_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= 1000);
        if !self.markers_set.is_empty() && (markers_due || !self.settings_set.is_empty()) {
            self.markers_written_ms = Some(now_ms);
            self.settings_set.append(&mut self.markers_set);
        }
        self.commit_settings(out);
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            match self.write_batch(now_ms) {
                Ok(base) => {
                    self.recovered();
                    let segment = self.files.current;
                    for a in batch {
                        let start = u32::try_from(base + a.offset as u64);
                        if let (Ok(start), Ok(len)) = (start, u32::try_from(a.len)) {
                            let at = Place {
                                segment,
                                start,
                                len,
                            };
                            self.index.add(&a.record.room, a.record.id, a.entry, at);
                            if let Entry::React { .. } = a.entry {
                                self.index.react(&a.record.room, &a.record.json);
                            }
                        }
                        out.push(LogEvent::Committed(a.record));
                    }
                }
                Err(e) => {
                    self.failed(&e);
                    let mut undos = Vec::with_capacity(batch.len());
                    for a in batch {
                        undos.push(a.undo);
                        out.push(LogEvent::Refused {
                            room: a.record.room,
                            sender: a.record.sender,
                        });
                    }
                    self.sequence.undo(undos.into_iter());
                }
            }
            self.pending.clear();
            if self.pending.capacity() > 1 << 16 {
                self.pending = Vec::new();
            }
            self.retain(now_ms, out);
        }
        if self.policy == FsyncPolicy::Interval
            && self.unsynced
            && now_ms.saturating_sub(self.last_sync_ms) >= SYNC_INTERVAL_MS
        {
            if let Err(e) = self.sync(now_ms) {
                self.failed(&e);
            }
        }
        let r = self.retention;
        let closed_expired = self
            .files
            .closed
            .front()
            .is_some_and(|c| expired(r, c.modified_ms, now_ms));
        if closed_expired || (self.size > 0 && expired(r, self.last_write_ms, now_ms)) {
            self.retain(now_ms, out);
        }
        self.serve_reads(out);
        self.compact_step();
    }

    fn read(&mut self, read: Read) {
        self.reads.push_back(read);
    }

    fn forget(&mut self, room: &str) {
        self.sequence.forget(room);
    }

    fn set(&mut self, key: String, value: String) {
        if key.starts_with("read/") {
            self.markers_set.push((key, value));
        } else {
            self.settings_set.push((key, value));
        }
    }

    fn health(&self) -> LogHealth {
        self.health
    }

    fn index_bytes(&self) -> Option<usize> {
        Some(self.index.bytes())
    }

    fn file(&self, name: &str) -> Option<std::rc::Rc<[u8]>> {
        self.uploads.get(name)
    }

    fn remove_file(&mut self, name: &str) {
        self.uploads.remove(name);
    }

    fn file_bytes(&self) -> usize {
        self.uploads.bytes() as usize
    }

    fn wake_in(&self, now_ms: u64) -> Option<u64> {
        if !self.reads.is_empty() || self.compacting.is_some() || !self.compact_queue.is_empty() {
            return Some(0);
        }
        if !self.markers_set.is_empty() {
            let since = self
                .markers_written_ms
                .map_or(1000, |t| now_ms.saturating_sub(t));
            return Some(1000u64.saturating_sub(since));
        }
        // A pending interval sync is done within a second.
        (self.unsynced && self.policy == FsyncPolicy::Interval).then_some(1000)
    }

    fn close(&mut self, now_ms: u64) {
        let mut ignored = Vec::new();
        self.settings_set.append(&mut self.markers_set);
        self.commit(now_ms, &mut ignored);
        if self.unsynced || self.policy != FsyncPolicy::Never {
            if let Err(e) = self.sync(now_ms) {
                self.failed(&e);
            }
        }
    }
}
