//! The durable log behind `--data-dir`: JSON lines in segments, group
//! commit, an index for reading old records back, and retention.
//!
//! Layout in the data directory:
//! - `messages.jsonl`: the segment being appended to, one record per line,
//!   exactly as delivered (`{"type":"message","room":R,"id":N,...}`, edits and
//!   deletes likewise) with its owner tag before the closing brace;
//! - `messages.<n>.jsonl`: closed segments, a higher `n` newer. The current
//!   one is closed when it would pass an eighth of `--retain` (at most 4 MiB),
//!   then compacted in the background: its lines grouped by room
//!   (`compact.rs`), so the index stays small however many rooms wrote; past
//!   `--retain` bytes in all, or `--retain-days` after their last write, the
//!   oldest go whole (`segments.rs`), and what they held is gone from memory
//!   too ([`LogEvent::Dropped`]). Disk use stays within `--retain` plus one
//!   segment. Ids never repeat: they continue from the highest ever used.
//!   The two-segment layout of earlier versions (`messages.1.jsonl`) loads as is;
//! - `epoch`: a number fixed when the directory is first used; it names the id
//!   sequences of every room;
//! - `high-water`: the highest id used, written before retention removes a
//!   segment, so a room whose every record went still numbers on above it;
//! - `settings.json`: moderation settings (bans, room settings), one JSON
//!   object of keys to values, small and rarely changed: rewritten whole
//!   (a temporary file, synced, then renamed over it) in the turn a setting
//!   changes, before the change is applied.
//!
//! Appends are numbered at once (per room, see [`Sequence`]) and buffered;
//! [`MessageLog::commit`] writes the turn's batch in one `write` (and, with
//! `--fsync always`, syncs it) *before* the server flushes any socket, then hands
//! the records back to be delivered. If the write or sync fails (disk full, I/O
//! error) the batch is cut off the file again, its ids are taken back, and every
//! draft in it is refused: nothing is delivered that is not stored. The next
//! batch is tried at once: there is no backoff on the message path.
//!
//! Reads (history pages, searches) go through the in-memory index
//! (`index.rs`): each is a few reads of at most 32 KiB, and a commit serves at
//! most [`READ_TURN_BYTES`] of them, leaving the rest for the next turn.
//!
//! On start every segment is scanned once: each room's tail is reloaded into
//! history, its ids continue, and the index is built. A torn last record (a
//! crash mid-write) is cut off with a warning; a corrupt line elsewhere is
//! skipped with a warning. Neither stops the server starting.
//! Lines written before rooms existed (no `"room"`) belong to the default room.
//! The e-mail is never here: only the broadcast JSON (avatar hash, not address).

mod compact;
mod index;
mod interface;
mod reload;
mod retention;
mod segments;
mod settings;
#[cfg(test)]
mod tests;
mod uploads;

use self::compact::Compaction;
use self::index::{Entry, Index, Place};
use self::reload::{scan, Tails};
use self::retention::expired;
pub use self::segments::Retention;
use self::segments::{Files, CURRENT};
use self::settings::{
    load_high_water, load_or_create_epoch, load_settings, store_high_water, write_settings,
};
use super::{Draft, LogEvent, LogHealth, MessageLog, Record, Restored, Sequence, Undo};
use crate::chat::protocol::RoomName;
use crate::chat::record::Read;
use crate::config::FsyncPolicy;
use crate::log::format;
use crate::{diag_error, diag_info, diag_warn};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write};
use std::path::{Path, PathBuf};

/// Interval policy: sync at most this often.
const SYNC_INTERVAL_MS: u64 = 1000;
/// Bytes of reads (pages, search chunks) one commit serves; the rest wait a turn.
pub const READ_TURN_BYTES: u64 = 128 * 1024;
/// Bytes one read may take before it answers with what it has.
const READ_CAP: u64 = 64 * 1024;

/// One record appended this turn: itself, how to take its id back, what the
/// index notes of it, and where its line is in the pending bytes.
struct Appended {
    record: Record,
    undo: Undo,
    entry: Entry,
    offset: usize,
    len: usize,
}

pub struct Journal {
    dir: PathBuf,
    file: File,
    /// Bytes in the current segment that are known good: a failed write is cut back to this.
    size: u64,
    retention: Retention,
    files: Files,
    index: Index,
    default_room: RoomName,
    policy: FsyncPolicy,
    sequence: Sequence,
    /// Lines appended this turn, not yet written.
    pending: Vec<u8>,
    batch: Vec<Appended>,
    /// Written but not yet synced (interval policy).
    unsynced: bool,
    last_sync_ms: u64,
    /// Wall-clock ms of the current segment's last write (`--retain-days`).
    last_write_ms: u64,
    health: LogHealth,
    /// Moderation settings as stored, and those set this turn.
    settings: std::collections::BTreeMap<String, String>,
    settings_set: Vec<(String, String)>,
    /// Read markers to store: with the next settings write, or at most a
    /// second after the last one (`settings.json` is rewritten whole).
    markers_set: Vec<(String, String)>,
    markers_written_ms: Option<u64>,
    /// Reads asked for and not yet served.
    reads: VecDeque<Read>,
    /// Closed segments to compact (`compact.rs`), and the one under way.
    compact_queue: VecDeque<u32>,
    compacting: Option<Compaction>,
    /// Uploaded images (`DIR/uploads/`), and drafts whose image could not be written.
    uploads: uploads::Uploads,
    refused: Vec<(RoomName, Option<crate::chat::ClientId>)>,
}

impl Journal {
    /// Opens (creating if needed) the log in `dir`, applies retention, and
    /// reloads each room's newest `keep` records.
    pub fn open(
        dir: &Path,
        retention: Retention,
        policy: FsyncPolicy,
        keep: usize,
        default_room: &str,
        wall_ms: u64,
    ) -> io::Result<(Journal, Restored)> {
        fs::create_dir_all(dir.join(uploads::DIR))?;
        let epoch = load_or_create_epoch(dir, wall_ms)?;
        compact::clean(dir)?;
        let mut files = Files::open(dir)?;
        let current_meta = fs::metadata(dir.join(CURRENT)).ok();
        let current_size = current_meta.as_ref().map_or(0, |m| m.len());
        let last_write_ms = current_meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(wall_ms, |d| d.as_millis() as u64);
        let mut tails = Tails::new();
        let mut index = Index::default();
        let default_room: RoomName = default_room.into();
        let numbers: Vec<u32> = files
            .closed
            .iter()
            .map(|c| c.number)
            .chain([files.current])
            .collect();
        // One buffer for every segment, freed at the end: a fresh allocation
        // per segment would leave the allocator holding several megabytes.
        let mut buf = Vec::new();
        for number in numbers {
            let path = files.path(number);
            buf.clear();
            let read = File::open(&path).and_then(|mut f| f.read_to_end(&mut buf));
            let good_len = match read {
                Ok(_) => scan(
                    &path,
                    &buf,
                    number,
                    keep,
                    &default_room,
                    &mut tails,
                    &mut index,
                ),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if number == files.current {
                let len = fs::metadata(&path)?.len();
                if good_len < len {
                    diag_warn!(
                        "{}: cutting a torn last record ({} bytes) left by a crash",
                        path.display(),
                        len - good_len
                    );
                    OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .set_len(good_len)?;
                }
            }
        }
        drop(buf);
        // The highest id ever used, also in segments retention removed.
        let high_water = tails
            .values()
            .map(|(last, _)| *last)
            .max()
            .unwrap_or(0)
            .max(load_high_water(dir)?);
        // A smaller --retain than the files hold, or segments past
        // --retain-days: the oldest go now, and their records with them.
        while files.closed_bytes() + current_size > retention.bytes
            || files
                .closed
                .front()
                .is_some_and(|c| expired(retention, c.modified_ms, wall_ms))
        {
            store_high_water(dir, high_water)?;
            let Some(gone) = files.remove_oldest()? else {
                break;
            };
            diag_info!(
                "message log {}: segment {} removed by retention",
                dir.display(),
                gone.number
            );
            for (room, below) in index.drop_segment(gone.number) {
                if let Some((_, tail)) = tails.get_mut(&room) {
                    tail.retain(|s| s.id >= below);
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(CURRENT))?;
        let size = file.metadata()?.len();
        let settings = load_settings(dir)?;
        // Segments written before compaction existed, or closed just before a stop.
        let compact_queue = files
            .closed
            .iter()
            .filter(|c| {
                let (blocks, rooms) = index.shape(c.number);
                compact::worth_it(blocks, rooms, c.size)
            })
            .map(|c| c.number)
            .collect();
        let mut restored = Restored {
            on_demand: false,
            readable: true,
            files: true,
            epoch,
            high_water,
            rooms: Vec::new(),
            settings: settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let mut messages = 0;
        for (room, (last, tail)) in tails {
            restored.high_water = restored.high_water.max(last);
            messages += tail.len();
            restored.rooms.push((room, last, tail.into()));
        }
        restored.rooms.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        diag_info!(
            "message log {}: {messages} record{} in {} room{} reloaded, highest id {}, index {} KiB",
            dir.display(),
            if messages == 1 { "" } else { "s" },
            restored.rooms.len(),
            if restored.rooms.len() == 1 { "" } else { "s" },
            restored.high_water,
            index.bytes() / 1024
        );
        let journal = Journal {
            dir: dir.to_path_buf(),
            file,
            size,
            retention,
            files,
            index,
            default_room,
            policy,
            sequence: Sequence::new(&restored),
            pending: Vec::new(),
            batch: Vec::new(),
            unsynced: false,
            last_sync_ms: 0,
            last_write_ms,
            health: LogHealth::default(),
            settings,
            settings_set: Vec::new(),
            markers_set: Vec::new(),
            markers_written_ms: None,
            reads: VecDeque::new(),
            compact_queue,
            compacting: None,
            uploads: uploads::Uploads::open(dir)?,
            refused: Vec::new(),
        };
        Ok((journal, restored))
    }

    /// `--upload-quota`: the oldest images go now if they pass it.
    pub fn limit_uploads(&mut self, quota: u64) {
        self.uploads.limit(quota);
    }

    fn sync(&mut self, now_ms: u64) -> io::Result<()> {
        self.unsynced = false;
        self.last_sync_ms = now_ms;
        self.file.sync_data()
    }

    /// Writes the batch (closing the segment first if it would overflow) and,
    /// with `--fsync always`, syncs it. On failure the file is cut back to its
    /// last good length, so a short write never survives to be reloaded.
    /// Returns where in the current segment the batch starts.
    fn write_batch(&mut self, now_ms: u64) -> io::Result<u64> {
        if self.size > 0 && self.size + self.pending.len() as u64 > self.retention.segment_max() {
            self.rotate()?;
        }
        let written = self
            .file
            .write_all(&self.pending)
            .and_then(|()| match self.policy {
                FsyncPolicy::Always => self.sync(now_ms),
                _ => Ok(()),
            });
        match written {
            Ok(()) => {
                let base = self.size;
                self.size += self.pending.len() as u64;
                self.last_write_ms = now_ms;
                if self.policy != FsyncPolicy::Always {
                    self.unsynced = true;
                }
                Ok(base)
            }
            Err(e) => {
                // Cutting a file shorter needs no new space, so this works on a full disk.
                if let Err(cut) = self.file.set_len(self.size) {
                    diag_error!(
                        "message log {}: cannot cut a failed write: {cut}",
                        self.dir.display()
                    );
                }
                Err(e)
            }
        }
    }

    /// Writes the settings with this turn's changes, and hands the changes
    /// out once they are on disk (dropped, with a log line, if they cannot be).
    fn commit_settings(&mut self, out: &mut Vec<LogEvent>) {
        if self.settings_set.is_empty() {
            return;
        }
        let mut next = self.settings.clone();
        for (k, v) in &self.settings_set {
            if v.is_empty() {
                next.remove(k);
            } else {
                next.insert(k.clone(), v.clone());
            }
        }
        let set = std::mem::take(&mut self.settings_set);
        match write_settings(&self.dir, &next, self.policy) {
            Ok(()) => {
                self.settings = next;
                out.extend(
                    set.into_iter()
                        .map(|(key, value)| LogEvent::Setting { key, value }),
                );
            }
            Err(e) => {
                self.health.errors_total += 1;
                diag_error!(
                    "message log {}: cannot store moderation settings ({e}); {} change(s) dropped",
                    self.dir.display(),
                    set.len()
                );
            }
        }
    }

    /// The current segment is closed (dated by its last write); a fresh one starts.
    pub(super) fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        let number = self.files.current;
        self.files.close_current(self.size, self.last_write_ms)?;
        let (blocks, rooms) = self.index.shape(number);
        if compact::worth_it(blocks, rooms, self.size) {
            self.compact_queue.push_back(number);
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(CURRENT))?;
        self.size = 0;
        // Make the rename and the new file durable.
        self.files.sync_dir()?;
        diag_info!("message log: new segment in {}", self.dir.display());
        Ok(())
    }

    /// Serves waiting reads, about [`READ_TURN_BYTES`] of them.
    fn serve_reads(&mut self, out: &mut Vec<LogEvent>) {
        let mut spent = 0;
        while spent < READ_TURN_BYTES {
            let Some(read) = self.reads.pop_front() else {
                return;
            };
            let answer = self.index.read(
                &mut self.files,
                &read.room,
                &self.default_room,
                read.range,
                read.want,
                READ_CAP,
            );
            match answer {
                Ok((found, exhausted, bytes)) => {
                    spent += bytes.max(1);
                    out.push(LogEvent::Read {
                        ticket: read.ticket,
                        found,
                        exhausted,
                    });
                }
                Err(e) => {
                    spent += 1;
                    self.health.errors_total += 1;
                    diag_error!("message log {}: cannot read: {e}", self.dir.display());
                    out.push(LogEvent::ReadFailed {
                        ticket: read.ticket,
                    });
                }
            }
        }
    }

    pub(super) fn failed(&mut self, e: &io::Error) {
        self.health.errors_total += 1;
        if !self.health.degraded {
            diag_error!(
                "message log {}: {e}; messages are refused until it works again",
                self.dir.display()
            );
        }
        self.health.degraded = true;
    }

    fn recovered(&mut self) {
        if self.health.degraded {
            diag_info!("message log {}: writing again", self.dir.display());
        }
        self.health.degraded = false;
    }
}
