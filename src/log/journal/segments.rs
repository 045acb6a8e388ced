//! The journal's files: the segment being appended to (`messages.jsonl`)
//! and the closed ones (`messages.<n>.jsonl`, a higher `n` is newer), which
//! are listed, read at an offset, and removed whole, oldest first, by
//! retention. A data directory of the two-segment layout (`messages.1.jsonl`
//! beside `messages.jsonl`) is this layout with one closed segment.
//! What is in the files is `mod.rs` and `index.rs`.

use super::index;
use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const CURRENT: &str = "messages.jsonl";

/// The largest segment: what the index of the segment being written (whose
/// rooms' lines are interleaved until it is compacted) can cost is bounded
/// by it, and so is one compaction's work.
pub const SEGMENT_MAX: u64 = 4 << 20;

/// How much the journal keeps on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Bytes across all segments (`--retain`); a segment is an eighth of
    /// it, and at most [`SEGMENT_MAX`].
    pub bytes: u64,
    /// Days a closed segment is kept after its last write (`--retain-days`, 0 = no limit).
    pub days: u32,
}

impl Retention {
    pub fn segment_max(&self) -> u64 {
        (self.bytes / 8).clamp(4096, SEGMENT_MAX)
    }
}

/// A closed segment.
#[derive(Clone, Copy, Debug)]
pub struct Closed {
    pub number: u32,
    pub size: u64,
    /// Wall-clock ms of its last write.
    pub modified_ms: u64,
}

/// The segment files of one data directory.
#[derive(Debug)]
pub struct Files {
    dir: PathBuf,
    /// The number the current segment gets when it is closed.
    pub current: u32,
    pub closed: VecDeque<Closed>,
    readers: HashMap<u32, File>,
}

impl Files {
    /// Lists the closed segments of `dir`, oldest first.
    pub fn open(dir: &Path) -> io::Result<Files> {
        let mut closed = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(number) = name
                .to_str()
                .and_then(|n| n.strip_prefix("messages."))
                .and_then(|n| n.strip_suffix(".jsonl"))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let meta = entry.metadata()?;
            let modified_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as u64);
            closed.push(Closed {
                number,
                size: meta.len(),
                modified_ms,
            });
        }
        closed.sort_unstable_by_key(|c| c.number);
        Ok(Files {
            dir: dir.to_path_buf(),
            current: closed.last().map_or(1, |c| c.number + 1),
            closed: closed.into(),
            readers: HashMap::new(),
        })
    }

    pub fn path(&self, number: u32) -> PathBuf {
        if number == self.current {
            self.dir.join(CURRENT)
        } else {
            self.dir.join(format!("messages.{number}.jsonl"))
        }
    }

    /// The current segment is closed under its number, dated by its last
    /// write; a new one starts. The caller has synced it.
    pub fn close_current(&mut self, size: u64, written_ms: u64) -> io::Result<()> {
        let number = self.current;
        fs::rename(
            self.dir.join(CURRENT),
            self.dir.join(format!("messages.{number}.jsonl")),
        )?;
        self.readers.remove(&number);
        self.closed.push_back(Closed {
            number,
            size,
            modified_ms: written_ms,
        });
        self.current += 1;
        Ok(())
    }

    /// Puts a compacted copy of closed segment `number` in its place, dated
    /// as the segment was.
    pub fn replace(&mut self, number: u32, copy: &Path, size: u64) -> io::Result<()> {
        let path = self.path(number);
        let Some(closed) = self.closed.iter_mut().find(|c| c.number == number) else {
            return Err(io::ErrorKind::NotFound.into());
        };
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(closed.modified_ms);
        File::options().write(true).open(copy)?.set_modified(when)?;
        fs::rename(copy, path)?;
        closed.size = size;
        self.readers.remove(&number);
        self.sync_dir()
    }

    /// Removes the oldest closed segment, if any, and returns its number.
    pub fn remove_oldest(&mut self) -> io::Result<Option<Closed>> {
        let Some(oldest) = self.closed.front().copied() else {
            return Ok(None);
        };
        match fs::remove_file(self.path(oldest.number)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.closed.pop_front();
        self.readers.remove(&oldest.number);
        Ok(Some(oldest))
    }

    /// Bytes in the closed segments.
    pub fn closed_bytes(&self) -> u64 {
        self.closed.iter().map(|c| c.size).sum()
    }

    pub fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

impl index::Segments for Files {
    fn read_at(&mut self, segment: u32, start: u64, buf: &mut [u8]) -> io::Result<()> {
        if !self.readers.contains_key(&segment) {
            let file = File::open(self.path(segment))?;
            self.readers.insert(segment, file);
        }
        match self.readers.get(&segment) {
            Some(file) => file.read_exact_at(buf, start),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }
}
