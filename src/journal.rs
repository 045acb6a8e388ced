//! The durable message log behind `--data-dir`: JSON lines, two segments, group commit.
//!
//! Layout in the data directory:
//! - `messages.jsonl`: the segment being appended to, one broadcast JSON object per line;
//! - `messages.1.jsonl`: the previous segment. When the current one would pass
//!   `--log-segment` bytes it becomes the previous one (replacing it), so the log
//!   never holds more than two segments: disk use is bounded by 2x `--log-segment`;
//! - `epoch`: a number fixed when the directory is first used; it names the id sequence.
//!
//! Appends are buffered during a loop turn and written (and, with
//! `--fsync always`, synced) by [`Journal::commit`] *before* the server flushes
//! any socket, so a client can only ever receive a message the log already has:
//! one `write` (and one fsync) per turn, however many messages it carried.
//!
//! On start the tail is reloaded into history and the id sequence continues. A
//! torn last record (a crash mid-write) is cut off with a warning; a corrupt
//! line elsewhere is skipped with a warning. Neither stops the server starting.
//! The e-mail is never here: only the broadcast JSON (avatar hash, not address).

use crate::chat::Stored;
use crate::config::FsyncPolicy;
use crate::{log_error, log_info, log_warn};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

const CURRENT: &str = "messages.jsonl";
const PREVIOUS: &str = "messages.1.jsonl";
const EPOCH: &str = "epoch";
/// Interval policy: sync at most this often.
const SYNC_INTERVAL_MS: u64 = 1000;

pub struct Journal {
    dir: PathBuf,
    file: File,
    size: u64,
    segment_max: u64,
    policy: FsyncPolicy,
    /// Lines appended this turn, not yet written.
    pending: Vec<u8>,
    /// Written but not yet synced (interval policy).
    unsynced: bool,
    last_sync_ms: u64,
    /// A write failed: keep serving from memory, say so once.
    failed: bool,
}

/// What a journal held when opened.
pub struct Loaded {
    /// The newest messages, oldest first, at most the history size.
    pub history: Vec<Stored>,
    /// The newest id in the log (0 if empty).
    pub last_id: u64,
    pub epoch: u64,
}

#[derive(serde::Deserialize)]
struct IdOnly {
    id: u64,
}

impl Journal {
    /// Opens (creating if needed) the log in `dir` and reloads its newest `keep` messages.
    pub fn open(
        dir: &Path,
        segment_max: u64,
        policy: FsyncPolicy,
        keep: usize,
        wall_ms: u64,
    ) -> io::Result<(Journal, Loaded)> {
        fs::create_dir_all(dir)?;
        let epoch = load_or_create_epoch(dir, wall_ms)?;
        let mut tail: VecDeque<Stored> = VecDeque::with_capacity(keep.min(4096));
        let mut last_id = 0;
        for name in [PREVIOUS, CURRENT] {
            let path = dir.join(name);
            let good_len = match fs::read(&path) {
                Ok(bytes) => scan(&path, &bytes, keep, &mut tail, &mut last_id),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if name == CURRENT {
                let len = fs::metadata(&path)?.len();
                if good_len < len {
                    log_warn!(
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
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(CURRENT))?;
        let size = file.metadata()?.len();
        log_info!(
            "message log {}: {} message{} reloaded, last id {last_id}",
            dir.display(),
            tail.len(),
            if tail.len() == 1 { "" } else { "s" }
        );
        let journal = Journal {
            dir: dir.to_path_buf(),
            file,
            size,
            segment_max,
            policy,
            pending: Vec::new(),
            unsynced: false,
            last_sync_ms: 0,
            failed: false,
        };
        Ok((
            journal,
            Loaded {
                history: tail.into(),
                last_id,
                epoch,
            },
        ))
    }

    /// Buffers one message line; it reaches the file at the next [`commit`](Self::commit).
    pub fn append(&mut self, json: &str) {
        self.pending.extend_from_slice(json.as_bytes());
        self.pending.push(b'\n');
    }

    /// Writes what was appended this turn; with `--fsync always`, syncs it too.
    /// Called before any socket is flushed.
    pub fn commit(&mut self, now_ms: u64) {
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            if let Err(e) = self.write_batch(&batch) {
                self.report(&e);
            }
            self.pending = batch;
            self.pending.clear();
            if self.pending.capacity() > 1 << 16 {
                self.pending = Vec::new();
            }
        }
        let due = match self.policy {
            FsyncPolicy::Always => self.unsynced,
            FsyncPolicy::Interval => {
                self.unsynced && now_ms.saturating_sub(self.last_sync_ms) >= SYNC_INTERVAL_MS
            }
            FsyncPolicy::Never => false,
        };
        if due {
            self.sync(now_ms);
        }
    }

    /// Whether an interval sync is waiting (the loop must wake up for it).
    pub fn sync_pending(&self) -> bool {
        self.unsynced && self.policy == FsyncPolicy::Interval
    }

    /// Flushes everything to stable storage (shutdown).
    pub fn close(&mut self, now_ms: u64) {
        self.commit(now_ms);
        if self.unsynced || self.policy != FsyncPolicy::Never {
            self.sync(now_ms);
        }
    }

    fn sync(&mut self, now_ms: u64) {
        if let Err(e) = self.file.sync_data() {
            self.report(&e);
        }
        self.unsynced = false;
        self.last_sync_ms = now_ms;
    }

    fn write_batch(&mut self, batch: &[u8]) -> io::Result<()> {
        if self.size > 0 && self.size + batch.len() as u64 > self.segment_max {
            self.rotate()?;
        }
        self.file.write_all(batch)?;
        self.size += batch.len() as u64;
        self.unsynced = true;
        Ok(())
    }

    /// The current segment becomes the previous one; a fresh one starts.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        fs::rename(self.dir.join(CURRENT), self.dir.join(PREVIOUS))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(CURRENT))?;
        self.size = 0;
        // Make the rename and the new file durable.
        File::open(&self.dir).and_then(|d| d.sync_all())?;
        log_info!("message log rotated in {}", self.dir.display());
        Ok(())
    }

    fn report(&mut self, e: &io::Error) {
        if !self.failed {
            log_error!(
                "message log {}: {e}; messages are kept in memory only until it works again",
                self.dir.display()
            );
        }
        self.failed = true;
    }
}

/// Parses one segment's lines into `tail`. Returns the length of the valid
/// prefix: everything up to the last complete, parseable line.
fn scan(
    path: &Path,
    bytes: &[u8],
    keep: usize,
    tail: &mut VecDeque<Stored>,
    last_id: &mut u64,
) -> u64 {
    let mut good = 0usize;
    let mut pos = 0usize;
    while pos < bytes.len() {
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            // No newline: a record the crash cut short.
            break;
        };
        let line = &bytes[pos..pos + nl];
        let next = pos + nl + 1;
        match std::str::from_utf8(line)
            .ok()
            .and_then(|s| serde_json::from_str::<IdOnly>(s).ok().map(|m| (s, m.id)))
        {
            Some((text, id)) if id > *last_id => {
                *last_id = id;
                if keep > 0 {
                    if tail.len() == keep {
                        tail.pop_front();
                    }
                    tail.push_back(Stored {
                        id,
                        json: Rc::from(text),
                    });
                }
                good = next;
            }
            _ if next == bytes.len() => {
                // The very last line is unreadable: torn, cut it.
                break;
            }
            _ => {
                log_warn!(
                    "{}: skipping an unreadable record at byte {pos}",
                    path.display()
                );
                good = next;
            }
        }
        pos = next;
    }
    good as u64
}

fn load_or_create_epoch(dir: &Path, wall_ms: u64) -> io::Result<u64> {
    let path = dir.join(EPOCH);
    if let Ok(text) = fs::read_to_string(&path) {
        if let Ok(epoch) = text.trim().parse() {
            return Ok(epoch);
        }
        log_warn!("{}: unreadable, starting a new epoch", path.display());
    }
    let tmp = dir.join("epoch.tmp");
    fs::write(&tmp, format!("{wall_ms}\n"))?;
    File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, &path)?;
    Ok(wall_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("picochat-journal-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn msg(id: u64) -> String {
        format!(r#"{{"type":"message","id":{id},"time":0,"username":"u","message":"m{id}"}}"#)
    }

    #[test]
    fn reload_continues_ids_and_keeps_the_epoch() {
        let dir = tmpdir("reload");
        let (mut j, loaded) = Journal::open(&dir, 1 << 20, FsyncPolicy::Always, 3, 42).unwrap();
        assert_eq!((loaded.last_id, loaded.epoch), (0, 42));
        for id in 1..=5 {
            j.append(&msg(id));
        }
        j.commit(0);
        drop(j);
        let (_, loaded) = Journal::open(&dir, 1 << 20, FsyncPolicy::Always, 3, 99).unwrap();
        assert_eq!(loaded.last_id, 5);
        assert_eq!(loaded.epoch, 42);
        assert_eq!(
            loaded.history.iter().map(|s| s.id).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_torn_last_record_is_cut_and_the_rest_survives() {
        let dir = tmpdir("torn");
        fs::create_dir_all(&dir).unwrap();
        let good = format!("{}\n{}\n", msg(1), msg(2));
        fs::write(
            dir.join(CURRENT),
            format!("{good}{{\"type\":\"message\",\"id\":3,\"ti"),
        )
        .unwrap();
        let (mut j, loaded) = Journal::open(&dir, 1 << 20, FsyncPolicy::Never, 10, 1).unwrap();
        assert_eq!(loaded.last_id, 2);
        assert_eq!(
            fs::read_to_string(dir.join(CURRENT)).unwrap(),
            good,
            "torn tail removed"
        );
        j.append(&msg(3));
        j.commit(0);
        drop(j);
        let (_, loaded) = Journal::open(&dir, 1 << 20, FsyncPolicy::Never, 10, 1).unwrap();
        assert_eq!(loaded.history.len(), 3);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rotation_bounds_the_log_to_two_segments() {
        let dir = tmpdir("rotate");
        let (mut j, _) = Journal::open(&dir, 4096, FsyncPolicy::Never, 1000, 1).unwrap();
        for id in 1..=500 {
            j.append(&msg(id));
            j.commit(0);
        }
        let total: u64 = [CURRENT, PREVIOUS]
            .iter()
            .map(|n| fs::metadata(dir.join(n)).unwrap().len())
            .sum();
        assert!(total <= 2 * 4096, "{total}");
        drop(j);
        let (_, loaded) = Journal::open(&dir, 4096, FsyncPolicy::Never, 1000, 1).unwrap();
        assert_eq!(loaded.last_id, 500, "ids continue past rotation");
        fs::remove_dir_all(dir).unwrap();
    }
}
