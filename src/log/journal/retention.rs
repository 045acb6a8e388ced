//! What the journal keeps: whole segments removed past `--retain` or
//! `--retain-days` (the highest id stored first, so ids never repeat, and the
//! core told what went), and closed segments compacted by room, one bounded
//! step per commit (`compact.rs`).

use super::compact::{Compaction, Progress};
use super::settings::store_high_water;
use super::{Journal, LogEvent, Retention};
use crate::{diag_debug, diag_error, diag_info, diag_warn};

impl Journal {
    /// Removes the oldest segments past `--retain` (and `--retain-days`),
    /// telling the core which rooms lost records.
    pub(super) fn retain(&mut self, now_ms: u64, out: &mut Vec<LogEvent>) {
        let r = self.retention;
        if r.days > 0 && self.size > 0 && expired(r, self.last_write_ms, now_ms) {
            if let Err(e) = self.rotate() {
                return self.failed(&e);
            }
        }
        while self.files.closed_bytes() + self.size > r.bytes
            || self
                .files
                .closed
                .front()
                .is_some_and(|c| expired(r, c.modified_ms, now_ms))
        {
            // Ids must never repeat, also for rooms whose every record goes.
            if let Err(e) = store_high_water(&self.dir, self.sequence.high_water()) {
                diag_error!(
                    "message log {}: cannot store the highest id ({e}); nothing removed",
                    self.dir.display()
                );
                break;
            }
            match self.files.remove_oldest() {
                Ok(Some(gone)) => {
                    self.compact_queue.retain(|&n| n != gone.number);
                    if let Some(c) = self.compacting.take_if(|c| c.segment == gone.number) {
                        c.abandon();
                    }
                    diag_info!(
                        "message log {}: segment {} ({} bytes) removed by retention",
                        self.dir.display(),
                        gone.number,
                        gone.size
                    );
                    self.uploads.drop_segment(gone.number);
                    for (room, below) in self.index.drop_segment(gone.number) {
                        out.push(LogEvent::Dropped { room, below });
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    diag_error!(
                        "message log {}: cannot remove a segment: {e}",
                        self.dir.display()
                    );
                    break;
                }
            }
        }
    }

    /// One bounded step of compacting a closed segment, if one is due.
    pub(super) fn compact_step(&mut self) {
        if self.compacting.is_none() {
            let Some(number) = self.compact_queue.pop_front() else {
                return;
            };
            let Some(closed) = self.files.closed.iter().find(|c| c.number == number) else {
                return;
            };
            self.compacting = Some(Compaction::new(number, closed.size));
        }
        let Some(c) = self.compacting.as_mut() else {
            return;
        };
        let step = c.step(&mut self.files, &self.default_room);
        let finished = match step {
            Ok(Progress::More) => return,
            Ok(Progress::Ready { temp, size }) => self.files.replace(c.segment, &temp, size),
            Err(e) => Err(e),
        };
        let Some(c) = self.compacting.take() else {
            return;
        };
        match finished {
            Ok(()) => {
                self.index.replace_segment(c.segment, c.moved());
                diag_debug!("message log: segment {} compacted", c.segment);
            }
            Err(e) => {
                self.health.errors_total += 1;
                diag_warn!(
                    "message log {}: cannot compact segment {} ({e}); it stays as it is",
                    self.dir.display(),
                    c.segment
                );
                c.abandon();
            }
        }
    }
}

/// Whether something last written at `written_ms` is past `--retain-days`.
pub fn expired(r: Retention, written_ms: u64, now_ms: u64) -> bool {
    r.days > 0 && now_ms.saturating_sub(written_ms) > u64::from(r.days) * 86_400_000
}
