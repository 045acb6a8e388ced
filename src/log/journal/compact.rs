//! Compacting a closed segment: its lines rewritten grouped by room (each
//! room's in their order), so the index needs a few dense blocks per room
//! there instead of up to one per record when many rooms wrote at once.
//! Only the order of lines between rooms changes, which nothing reads: ids
//! are per room, and retention removes whole segments.
//!
//! Done in bounded steps between other work, never all at once: reading
//! the segment to list each room's lines, then writing them to
//! `messages.<n>.jsonl.compact`, then syncing it and renaming it over the
//! segment (a crash before the rename leaves the segment as it was, and the
//! leftover file is removed at the next start). Reads meanwhile use the
//! segment as it was; the index switches to the new places at the rename.

use super::index::{self, Moved, Segments as _};
use super::segments::Files;
use crate::chat::protocol::RoomName;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// What one step may read or write.
pub const STEP_BYTES: u64 = 64 * 1024;

/// The suffix of a segment being rewritten.
pub const SUFFIX: &str = ".compact";

/// One segment being compacted.
pub struct Compaction {
    pub segment: u32,
    size: u64,
    /// Reading: how far, and a line cut by the last read.
    read_at: u64,
    carry: Vec<u8>,
    /// Each room's lines, in file order (their new places once written).
    rooms: Vec<(RoomName, Vec<Moved>)>,
    by_name: HashMap<RoomName, usize>,
    /// Writing: the next line to copy, and where the copy is.
    next: (usize, usize),
    out: Option<(PathBuf, File)>,
    written: u32,
}

/// What a step came to.
pub enum Progress {
    More,
    /// The copy is complete and synced: rename it over the segment.
    Ready {
        temp: PathBuf,
        size: u64,
    },
}

impl Compaction {
    pub fn new(segment: u32, size: u64) -> Compaction {
        Compaction {
            segment,
            size,
            read_at: 0,
            carry: Vec::new(),
            rooms: Vec::new(),
            by_name: HashMap::new(),
            next: (0, 0),
            out: None,
            written: 0,
        }
    }

    /// The lines moved, per room, for the index (after [`Progress::Ready`]).
    pub fn moved(&self) -> &[(RoomName, Vec<Moved>)] {
        &self.rooms
    }

    /// One bounded step: a chunk read and its lines listed, or lines copied.
    pub fn step(&mut self, files: &mut Files, default_room: &str) -> io::Result<Progress> {
        if self.read_at < self.size {
            self.read_step(files, default_room)?;
            return Ok(Progress::More);
        }
        self.write_step(files)
    }

    fn read_step(&mut self, files: &mut Files, default_room: &str) -> io::Result<()> {
        let len = (self.size - self.read_at).min(STEP_BYTES) as usize;
        let start = self.read_at - self.carry.len() as u64;
        let mut buf = std::mem::take(&mut self.carry);
        let have = buf.len();
        buf.resize(have + len, 0);
        files.read_at(self.segment, self.read_at, &mut buf[have..])?;
        self.read_at += len as u64;
        let mut pos = 0;
        while let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') {
            let line = &buf[pos..pos + nl];
            let at = start + pos as u64;
            pos += nl + 1;
            let head = std::str::from_utf8(line)
                .ok()
                .and_then(|text| index::head(text, default_room));
            let (Some((room, id, entry)), Ok(old_start), Ok(len)) =
                (head, u32::try_from(at), u32::try_from(nl))
            else {
                continue; // unreadable: it was skipped when read at start too
            };
            let i = match self.by_name.get(&*room) {
                Some(&i) => i,
                None => {
                    let name: RoomName = room.as_ref().into();
                    self.rooms.push((name.clone(), Vec::new()));
                    self.by_name.insert(name, self.rooms.len() - 1);
                    self.rooms.len() - 1
                }
            };
            let lines = &mut self.rooms[i].1;
            if lines.last().is_some_and(|l| l.id >= id) {
                continue; // as at start: a room's ids only grow
            }
            lines.push(Moved {
                id,
                entry,
                old_start,
                new_start: 0,
                len,
            });
        }
        buf.drain(..pos);
        self.carry = buf;
        Ok(())
    }

    fn write_step(&mut self, files: &mut Files) -> io::Result<Progress> {
        if self.out.is_none() {
            let temp = files
                .path(self.segment)
                .with_extension(format!("jsonl{SUFFIX}"));
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&temp)?;
            self.out = Some((temp, file));
        }
        let mut buf = Vec::new();
        while (buf.len() as u64) < STEP_BYTES {
            let (room, line) = self.next;
            let Some((_, lines)) = self.rooms.get_mut(room) else {
                break;
            };
            let Some(first) = lines.get(line).copied() else {
                self.next = (room + 1, 0);
                continue;
            };
            // Lines that follow each other in the segment are read at once.
            let mut end = line + 1;
            let mut bytes = first.len as u64 + 1;
            while let Some(l) = lines.get(end) {
                let contiguous = u64::from(l.old_start) == u64::from(first.old_start) + bytes;
                if !contiguous || bytes + u64::from(l.len) + 1 > STEP_BYTES {
                    break;
                }
                bytes += u64::from(l.len) + 1;
                end += 1;
            }
            let at = buf.len();
            buf.resize(at + bytes as usize, 0);
            files.read_at(self.segment, u64::from(first.old_start), &mut buf[at..])?;
            let mut new_start = self.written + at as u32;
            for l in &mut lines[line..end] {
                l.new_start = new_start;
                new_start += l.len + 1;
            }
            self.next = (room, end);
        }
        let Some((temp, out)) = self.out.as_mut() else {
            return Ok(Progress::More);
        };
        out.write_all_at(&buf, u64::from(self.written))?;
        self.written += buf.len() as u32;
        if self.next.0 < self.rooms.len() {
            return Ok(Progress::More);
        }
        out.sync_all()?;
        Ok(Progress::Ready {
            temp: temp.clone(),
            size: u64::from(self.written),
        })
    }

    /// Gives up (the segment was removed): the copy goes.
    pub fn abandon(self) {
        if let Some((temp, _)) = self.out {
            let _ = fs::remove_file(temp);
        }
    }
}

/// Whether a segment's index is fragmented enough to be worth compacting:
/// more than twice the blocks a compacted one would take.
pub fn worth_it(blocks: usize, rooms: usize, size: u64) -> bool {
    let dense = rooms + (size / index::BLOCK_SPAN) as usize + 1;
    blocks > 2 * dense
}

/// Removes copies a crash left unfinished.
pub fn clean(dir: &std::path::Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(SUFFIX) {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}
