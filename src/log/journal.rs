//! The durable log behind `--data-dir`: JSON lines, two segments, group commit.
//!
//! Layout in the data directory:
//! - `messages.jsonl`: the segment being appended to, one message frame per
//!   line, exactly as delivered (`{"type":"message","room":R,"id":N,...}`);
//! - `messages.1.jsonl`: the previous segment. When the current one would pass
//!   `--log-segment` bytes it becomes the previous one (replacing it), so the log
//!   never holds more than two segments: disk use is bounded by 2x `--log-segment`;
//! - `epoch`: a number fixed when the directory is first used; it names the id
//!   sequences of every room;
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
//! On start each room's tail is reloaded into history and its ids continue. A
//! torn last record (a crash mid-write) is cut off with a warning; a corrupt
//! line elsewhere is skipped with a warning. Neither stops the server starting.
//! Lines written before rooms existed (no `"room"`) belong to the default room.
//! The e-mail is never here: only the broadcast JSON (avatar hash, not address).

use super::{Draft, LogEvent, LogHealth, MessageLog, Record, Restored, Sequence, Undo};
use crate::chat::protocol::{self, RoomName};
use crate::chat::record::Stored;
use crate::config::FsyncPolicy;
use crate::log::format;
use crate::{diag_error, diag_info, diag_warn};
use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

const CURRENT: &str = "messages.jsonl";
const PREVIOUS: &str = "messages.1.jsonl";
const EPOCH: &str = "epoch";
const SETTINGS: &str = "settings.json";
/// Interval policy: sync at most this often.
const SYNC_INTERVAL_MS: u64 = 1000;

pub struct Journal {
    dir: PathBuf,
    file: File,
    /// Bytes in the current segment that are known good: a failed write is cut back to this.
    size: u64,
    segment_max: u64,
    policy: FsyncPolicy,
    sequence: Sequence,
    /// Lines appended this turn, not yet written.
    pending: Vec<u8>,
    /// The records those lines hold, and how to take their ids back.
    batch: Vec<(Record, Undo)>,
    /// Written but not yet synced (interval policy).
    unsynced: bool,
    last_sync_ms: u64,
    health: LogHealth,
    /// Moderation settings as stored, and those set this turn.
    settings: std::collections::BTreeMap<String, String>,
    settings_set: Vec<(String, String)>,
}

#[derive(serde::Deserialize)]
struct RecordHead<'a> {
    #[serde(borrow, default)]
    room: Option<std::borrow::Cow<'a, str>>,
    id: u64,
}

/// Per room while scanning: last id and the newest `keep` records.
type Tails = HashMap<RoomName, (u64, VecDeque<Stored>)>;

impl Journal {
    /// Opens (creating if needed) the log in `dir` and reloads each room's newest `keep` messages.
    pub fn open(
        dir: &Path,
        segment_max: u64,
        policy: FsyncPolicy,
        keep: usize,
        default_room: &str,
        wall_ms: u64,
    ) -> io::Result<(Journal, Restored)> {
        fs::create_dir_all(dir)?;
        let epoch = load_or_create_epoch(dir, wall_ms)?;
        let mut tails = Tails::new();
        let default_room: RoomName = default_room.into();
        for name in [PREVIOUS, CURRENT] {
            let path = dir.join(name);
            let good_len = match fs::read(&path) {
                Ok(bytes) => scan(&path, &bytes, keep, &default_room, &mut tails),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if name == CURRENT {
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
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(CURRENT))?;
        let size = file.metadata()?.len();
        let settings = load_settings(dir)?;
        let mut restored = Restored {
            on_demand: false,
            epoch,
            high_water: 0,
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
        restored.rooms.sort_by(|a, b| a.0.cmp(&b.0));
        diag_info!(
            "message log {}: {messages} message{} in {} room{} reloaded, highest id {}",
            dir.display(),
            if messages == 1 { "" } else { "s" },
            restored.rooms.len(),
            if restored.rooms.len() == 1 { "" } else { "s" },
            restored.high_water
        );
        let journal = Journal {
            dir: dir.to_path_buf(),
            file,
            size,
            segment_max,
            policy,
            sequence: Sequence::new(&restored),
            pending: Vec::new(),
            batch: Vec::new(),
            unsynced: false,
            last_sync_ms: 0,
            health: LogHealth::default(),
            settings,
            settings_set: Vec::new(),
        };
        Ok((journal, restored))
    }

    fn sync(&mut self, now_ms: u64) -> io::Result<()> {
        self.unsynced = false;
        self.last_sync_ms = now_ms;
        self.file.sync_data()
    }

    /// Writes the batch (rotating first if it would overflow the segment) and,
    /// with `--fsync always`, syncs it. On failure the file is cut back to its
    /// last good length, so a short write never survives to be reloaded.
    fn write_batch(&mut self, now_ms: u64) -> io::Result<()> {
        if self.size > 0 && self.size + self.pending.len() as u64 > self.segment_max {
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
                self.size += self.pending.len() as u64;
                if self.policy != FsyncPolicy::Always {
                    self.unsynced = true;
                }
                Ok(())
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
        diag_info!("message log rotated in {}", self.dir.display());
        Ok(())
    }

    fn failed(&mut self, e: &io::Error) {
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

impl MessageLog for Journal {
    fn append(&mut self, draft: Draft) {
        let (id, undo) = self.sequence.next(&draft.room);
        let record = draft.seal(id);
        format::journal_line(&record.json, record.owner, &mut self.pending);
        self.pending.push(b'\n');
        self.batch.push((record, undo));
    }

    fn commit(&mut self, now_ms: u64, out: &mut Vec<LogEvent>) {
        self.commit_settings(out);
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            match self.write_batch(now_ms) {
                Ok(()) => {
                    self.recovered();
                    out.extend(batch.into_iter().map(|(r, _)| LogEvent::Committed(r)));
                }
                Err(e) => {
                    self.failed(&e);
                    let mut undos = Vec::with_capacity(batch.len());
                    for (record, undo) in batch {
                        undos.push(undo);
                        out.push(LogEvent::Refused {
                            room: record.room,
                            sender: record.sender,
                        });
                    }
                    self.sequence.undo(undos.into_iter());
                }
            }
            self.pending.clear();
            if self.pending.capacity() > 1 << 16 {
                self.pending = Vec::new();
            }
        }
        if self.policy == FsyncPolicy::Interval
            && self.unsynced
            && now_ms.saturating_sub(self.last_sync_ms) >= SYNC_INTERVAL_MS
        {
            if let Err(e) = self.sync(now_ms) {
                self.failed(&e);
            }
        }
    }

    fn forget(&mut self, room: &str) {
        self.sequence.forget(room);
    }

    fn set(&mut self, key: String, value: String) {
        self.settings_set.push((key, value));
    }

    fn health(&self) -> LogHealth {
        self.health
    }

    fn wake_in(&self, _now_ms: u64) -> Option<u64> {
        // A pending interval sync is done within a second.
        (self.unsynced && self.policy == FsyncPolicy::Interval).then_some(1000)
    }

    fn close(&mut self, now_ms: u64) {
        let mut ignored = Vec::new();
        self.commit(now_ms, &mut ignored);
        if self.unsynced || self.policy != FsyncPolicy::Never {
            if let Err(e) = self.sync(now_ms) {
                self.failed(&e);
            }
        }
    }
}

/// The moderation settings file, or none yet.
fn load_settings(dir: &Path) -> io::Result<std::collections::BTreeMap<String, String>> {
    match fs::read(dir.join(SETTINGS)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", dir.join(SETTINGS).display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(e),
    }
}

/// Replaces the settings file: a temporary file written and (unless
/// `--fsync never`) synced, renamed over the old one, the directory synced.
fn write_settings(
    dir: &Path,
    settings: &std::collections::BTreeMap<String, String>,
    policy: FsyncPolicy,
) -> io::Result<()> {
    let tmp = dir.join(format!("{SETTINGS}.tmp"));
    let bytes = serde_json::to_vec_pretty(settings).map_err(io::Error::other)?;
    let mut file = File::create(&tmp)?;
    file.write_all(&bytes)?;
    if policy != FsyncPolicy::Never {
        file.sync_all()?;
    }
    fs::rename(&tmp, dir.join(SETTINGS))?;
    if policy != FsyncPolicy::Never {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Parses one segment's lines into `tails`. Returns the length of the valid
/// prefix: everything up to the last complete, parseable line.
fn scan(path: &Path, bytes: &[u8], keep: usize, default_room: &RoomName, tails: &mut Tails) -> u64 {
    let mut good = 0usize;
    let mut pos = 0usize;
    while pos < bytes.len() {
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            // No newline: a record the crash cut short.
            break;
        };
        let line = &bytes[pos..pos + nl];
        let next = pos + nl + 1;
        let head = std::str::from_utf8(line).ok().and_then(|s| {
            let head: RecordHead = serde_json::from_str(s).ok()?;
            let room: RoomName = match head.room {
                None => default_room.clone(),
                Some(r) => match tails.get_key_value(&*r) {
                    Some((shared, _)) => shared.clone(),
                    None => protocol::room_name(&r)?.into(),
                },
            };
            Some((s, room, head.id))
        });
        match head {
            Some((text, room, id)) if tails.get(&room).is_none_or(|(last, _)| id > *last) => {
                let (last, tail) = tails.entry(room).or_default();
                *last = id;
                if keep > 0 {
                    if tail.len() == keep {
                        tail.pop_front();
                    }
                    let (json, owner) = format::from_journal_line(text);
                    tail.push_back(Stored {
                        id,
                        json: Rc::from(json),
                        owner,
                    });
                }
                good = next;
            }
            _ if next == bytes.len() => {
                // The very last line is unreadable: torn, cut it.
                break;
            }
            _ => {
                diag_warn!(
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
        diag_warn!("{}: unreadable, starting a new epoch", path.display());
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
    use crate::chat::session::ClientId;

    fn tmpdir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("picochat-journal-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn open(
        dir: &Path,
        segment: u64,
        policy: FsyncPolicy,
        keep: usize,
        wall: u64,
    ) -> (Journal, Restored) {
        Journal::open(dir, segment, policy, keep, "lobby", wall).unwrap()
    }

    fn draft(room: &str, text: &str) -> Draft {
        Draft {
            room: room.into(),
            sender: Some(ClientId::new(0, 1)),
            time: 0,
            kind: crate::chat::record::Kind::Message,
            fields: format!(r#"{{"time":0,"username":"u","message":"{text}"}}"#),
            owner: None,
        }
    }

    fn committed(j: &mut Journal) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        j.commit(0, &mut out);
        out.into_iter()
            .map(|e| match e {
                LogEvent::Committed(r) => (r.room.to_string(), r.id),
                LogEvent::Refused { room, .. } => (format!("refused {room}"), 0),
                other => unreachable!("a journal only commits or refuses: {other:?}"),
            })
            .collect()
    }

    fn ids(restored: &Restored, room: &str) -> Vec<u64> {
        restored
            .rooms
            .iter()
            .find(|(r, _, _)| &**r == room)
            .map(|(_, _, h)| h.iter().map(|s| s.id).collect())
            .unwrap_or_default()
    }

    #[test]
    fn reload_restores_every_room_its_ids_and_the_epoch() {
        let dir = tmpdir("reload");
        let (mut j, restored) = open(&dir, 1 << 20, FsyncPolicy::Always, 3, 42);
        assert_eq!((restored.high_water, restored.epoch), (0, 42));
        for i in 1..=5 {
            j.append(draft("general", &format!("g{i}")));
        }
        j.append(draft("random", "r1"));
        assert_eq!(
            committed(&mut j),
            [
                ("general", 1),
                ("general", 2),
                ("general", 3),
                ("general", 4),
                ("general", 5),
                ("random", 6)
            ]
            .map(|(r, i)| (r.to_string(), i))
        );
        drop(j);
        let (mut j, restored) = open(&dir, 1 << 20, FsyncPolicy::Always, 3, 99);
        assert_eq!(restored.epoch, 42);
        assert_eq!(restored.high_water, 6);
        assert_eq!(ids(&restored, "general"), [3, 4, 5]);
        assert_eq!(ids(&restored, "random"), [6]);
        j.append(draft("general", "after"));
        j.append(draft("new", "first"));
        assert_eq!(
            committed(&mut j),
            [("general".to_string(), 6), ("new".to_string(), 7)],
            "rooms continue; a new room starts above every id used"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lines_from_before_rooms_belong_to_the_default_room() {
        let dir = tmpdir("legacy");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(CURRENT),
            "{\"type\":\"message\",\"id\":1,\"time\":0,\"username\":\"u\",\"message\":\"old\"}\n",
        )
        .unwrap();
        let (_, restored) = open(&dir, 1 << 20, FsyncPolicy::Never, 10, 1);
        assert_eq!(ids(&restored, "lobby"), [1]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_torn_last_record_is_cut_and_the_rest_survives() {
        let dir = tmpdir("torn");
        fs::create_dir_all(&dir).unwrap();
        let line = |id| {
            format!("{{\"type\":\"message\",\"room\":\"lobby\",\"id\":{id},\"time\":0,\"username\":\"u\",\"message\":\"m\"}}\n")
        };
        let good = format!("{}{}", line(1), line(2));
        fs::write(
            dir.join(CURRENT),
            format!("{good}{{\"type\":\"message\",\"room\":\"lobby\",\"id\":3,\"ti"),
        )
        .unwrap();
        let (mut j, restored) = open(&dir, 1 << 20, FsyncPolicy::Never, 10, 1);
        assert_eq!(restored.high_water, 2);
        assert_eq!(
            fs::read_to_string(dir.join(CURRENT)).unwrap(),
            good,
            "torn tail removed"
        );
        j.append(draft("lobby", "m"));
        assert_eq!(committed(&mut j), [("lobby".to_string(), 3)]);
        drop(j);
        let (_, restored) = open(&dir, 1 << 20, FsyncPolicy::Never, 10, 1);
        assert_eq!(ids(&restored, "lobby"), [1, 2, 3]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rotation_bounds_the_log_to_two_segments() {
        let dir = tmpdir("rotate");
        let (mut j, _) = open(&dir, 4096, FsyncPolicy::Never, 1000, 1);
        for _ in 1..=500 {
            j.append(draft("lobby", "m"));
            committed(&mut j);
        }
        let total: u64 = [CURRENT, PREVIOUS]
            .iter()
            .map(|n| fs::metadata(dir.join(n)).unwrap().len())
            .sum();
        assert!(total <= 2 * 4096, "{total}");
        drop(j);
        let (_, restored) = open(&dir, 4096, FsyncPolicy::Never, 1000, 1);
        assert_eq!(restored.high_water, 500, "ids continue past rotation");
        fs::remove_dir_all(dir).unwrap();
    }
}
