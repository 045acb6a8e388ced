//! Where each room's records are in the journal's segments, kept in memory
//! so a history page or a search chunk is a few bounded reads instead of a
//! scan of the files.
//!
//! Per room, a list of **blocks**: a run of the room's records in one
//! segment whose bytes span at most [`BLOCK_SPAN`] (other rooms' lines may
//! sit between them). A block is 24 bytes; a room that writes alone packs
//! about 200 records into one (0.1 to 0.3 bytes per message), and a room
//! whose lines are spread thin among busy ones costs up to a block per
//! record, until its segment is closed and compacted (`compact.rs` groups
//! each room's lines together), after which every room's records in it are
//! dense again. Per room too, the **amendments**: which messages were deleted and
//! where the latest edit of each edited one is, so a page of old messages
//! shows them as they read now without looking for later records, and each
//! message's reactions as its reaction records left them (what they add up
//! to, not where they are: a hot message's thousands of toggles stay one entry).
//! Reading the files is here; which segments exist is `segments.rs`.

use crate::chat::protocol::{self, RecordKind, RoomName};
use crate::chat::reactions::Reactions;
use crate::chat::record::{Found, Range, Stored};
use crate::log::format;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::rc::Rc;

/// The most bytes one block's records span in their segment: one read.
pub const BLOCK_SPAN: u64 = 32 * 1024;

/// A run of one room's records in one segment: ids `first` to
/// `first + span_ids`, bytes `start` to `start + len` (newline included).
/// Segments are at most 4 MiB, so offsets fit in 32 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    first: u64,
    span_ids: u32,
    segment: u32,
    start: u32,
    len: u32,
}

impl Block {
    fn last(&self) -> u64 {
        self.first + u64::from(self.span_ids)
    }
}

/// Where a record's line is: its segment, offset and length (no newline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub segment: u32,
    pub start: u32,
    pub len: u32,
}

/// A record's line moved by compaction: its id and what it is, and where
/// it was and is now in its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moved {
    pub id: u64,
    pub entry: Entry,
    pub old_start: u32,
    pub new_start: u32,
    pub len: u32,
}

/// What later records did to a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Amend {
    Deleted,
    /// Its latest edit's line.
    Edited(Place),
}

/// What a record is, as far as the index cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Message,
    Edit { target: u64 },
    Delete { target: u64 },
    React { target: u64 },
}

#[derive(Debug, Default)]
struct RoomIndex {
    blocks: VecDeque<Block>,
    amended: HashMap<u64, Amend>,
    /// Messages with reactions, and what their reaction records add up to.
    reactions: HashMap<u64, Reactions>,
}

/// Every room's blocks and amendments.
#[derive(Debug, Default)]
pub struct Index {
    rooms: HashMap<RoomName, RoomIndex>,
}

/// Reads a line's bytes from a segment (the journal's open files).
pub trait Segments {
    fn read_at(&mut self, segment: u32, start: u64, buf: &mut [u8]) -> io::Result<()>;
}

/// Reads one journal line's head: its room (the default room when a line
/// from before rooms has none), id, and what it amends.
pub fn head<'a>(
    line: &'a str,
    default_room: &'a str,
) -> Option<(std::borrow::Cow<'a, str>, u64, Entry)> {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(borrow, default, rename = "type")]
        kind: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow, default)]
        room: Option<std::borrow::Cow<'a, str>>,
        id: u64,
        #[serde(default)]
        target: Option<u64>,
    }
    let h: Head = serde_json::from_str(line).ok()?;
    let entry = match (h.kind.as_deref(), h.target) {
        (Some("edit"), Some(target)) => Entry::Edit { target },
        (Some("delete"), Some(target)) => Entry::Delete { target },
        (Some("react"), Some(target)) => Entry::React { target },
        _ => Entry::Message,
    };
    Some((
        h.room.unwrap_or(std::borrow::Cow::Borrowed(default_room)),
        h.id,
        entry,
    ))
}

impl Index {
    /// Notes a record: where its line is and what it amends.
    pub fn add(&mut self, room: &RoomName, id: u64, entry: Entry, at: Place) {
        let r = match self.rooms.get_mut(room) {
            Some(r) => r,
            None => self.rooms.entry(room.clone()).or_default(),
        };
        extend(&mut r.blocks, id, at);
        amend(&mut r.amended, entry, at);
    }

    /// A reaction record (`json`, its frame) of `room`: added to what its
    /// message's reactions add up to.
    pub fn react(&mut self, room: &RoomName, json: &str) {
        let RecordKind::React {
            target,
            emoji,
            username,
            on,
        } = protocol::record_kind(json)
        else {
            return;
        };
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.amended.get(&target) == Some(&Amend::Deleted) {
            return;
        }
        let reactions = r.reactions.entry(target).or_default();
        reactions.set(&emoji, &username, on);
        if reactions.is_empty() {
            r.reactions.remove(&target);
        }
    }

    /// How many blocks segment `segment` takes, and in how many rooms.
    pub fn shape(&self, segment: u32) -> (usize, usize) {
        let mut blocks = 0;
        let mut rooms = 0;
        for r in self.rooms.values() {
            let n = r.blocks.iter().filter(|b| b.segment == segment).count();
            blocks += n;
            rooms += usize::from(n > 0);
        }
        (blocks, rooms)
    }

    /// Segment `segment` was compacted: each room's records in it now lie
    /// together (`moved`, in order), so its blocks there are rebuilt dense,
    /// and edits in it are found at their new places.
    pub fn replace_segment(&mut self, segment: u32, moved: &[(RoomName, Vec<Moved>)]) {
        for (room, lines) in moved {
            let Some(r) = self.rooms.get_mut(room) else {
                continue;
            };
            let from = r.blocks.partition_point(|b| b.segment < segment);
            let to = r.blocks.partition_point(|b| b.segment <= segment);
            let mut fresh = VecDeque::new();
            for m in lines {
                let at = Place {
                    segment,
                    start: m.new_start,
                    len: m.len,
                };
                extend(&mut fresh, m.id, at);
            }
            let after: Vec<Block> = r.blocks.drain(from..).skip(to - from).collect();
            r.blocks.extend(fresh);
            r.blocks.extend(after);
            for a in r.amended.values_mut() {
                if let Amend::Edited(at) = a {
                    if at.segment == segment {
                        if let Ok(i) = lines.binary_search_by_key(&at.start, |m| m.old_start) {
                            at.start = lines[i].new_start;
                        }
                    }
                }
            }
        }
    }
}

/// Adds a record to a room's blocks: to the last one when it is in the same
/// segment and the span stays within [`BLOCK_SPAN`], else as a new block.
fn extend(blocks: &mut VecDeque<Block>, id: u64, at: Place) {
    let end = u64::from(at.start) + u64::from(at.len) + 1;
    if let Some(b) = blocks.back_mut() {
        let span = end.saturating_sub(u64::from(b.start));
        let ids = id.checked_sub(b.first).and_then(|d| u32::try_from(d).ok());
        if let (true, true, Some(ids)) = (b.segment == at.segment, span <= BLOCK_SPAN, ids) {
            if id > b.last() {
                b.span_ids = ids;
                b.len = span as u32;
                return;
            }
        }
    }
    blocks.push_back(Block {
        first: id,
        span_ids: 0,
        segment: at.segment,
        start: at.start,
        len: at.len + 1,
    });
}

/// About what one message's reactions take in memory.
fn reactions_bytes(r: &Reactions) -> usize {
    8 + 32
        + r.0
            .iter()
            .map(|(e, names)| 48 + e.len() + names.iter().map(|n| 24 + n.len()).sum::<usize>())
            .sum::<usize>()
}

/// Notes what an edit or a delete does to the message it is for.
fn amend(amended: &mut HashMap<u64, Amend>, entry: Entry, at: Place) {
    {
        match entry {
            Entry::Message => {}
            Entry::Edit { target } => {
                if amended.get(&target) != Some(&Amend::Deleted) {
                    amended.insert(target, Amend::Edited(at));
                }
            }
            Entry::Delete { target } => {
                amended.insert(target, Amend::Deleted);
            }
            Entry::React { .. } => {}
        }
    }
}

impl Index {
    /// A segment was removed: its blocks go. Returns, per room that lost
    /// records, the id its retained records now start at.
    pub fn drop_segment(&mut self, segment: u32) -> Vec<(RoomName, u64)> {
        let mut changed = Vec::new();
        self.rooms.retain(|name, r| {
            let before = r.blocks.len();
            while r.blocks.front().is_some_and(|b| b.segment <= segment) {
                r.blocks.pop_front();
            }
            if r.blocks.len() == before {
                return true;
            }
            match r.blocks.front() {
                Some(b) => {
                    let first = b.first;
                    r.amended.retain(|&target, _| target >= first);
                    r.reactions.retain(|&target, _| target >= first);
                    changed.push((name.clone(), first));
                    true
                }
                None => {
                    changed.push((name.clone(), u64::MAX));
                    false
                }
            }
        });
        changed
    }

    /// Bytes the index takes in memory (for the docs and `/metrics`).
    pub fn bytes(&self) -> usize {
        self.rooms
            .iter()
            .map(|(name, r)| {
                name.len()
                    + 64
                    + r.blocks.capacity() * std::mem::size_of::<Block>()
                    + r.amended.capacity() * (8 + std::mem::size_of::<Amend>() + 8)
                    + r.reactions.values().map(reactions_bytes).sum::<usize>()
            })
            .sum()
    }

    /// Answers a read: messages of `room` in `range`, at most `want`, as they
    /// read now (deleted ones left out, edited ones with their latest edit),
    /// reading at most about `cap` bytes. Returns them and whether the range
    /// has no more (`false`: stopped at the cap).
    pub fn read(
        &self,
        files: &mut dyn Segments,
        room: &str,
        default_room: &str,
        range: Range,
        want: usize,
        cap: u64,
    ) -> io::Result<(Vec<Found>, bool, u64)> {
        let mut found = Vec::new();
        let mut read = 0u64;
        let Some(r) = self.rooms.get(room) else {
            return Ok((found, true, read));
        };
        let mut buf = Vec::new();
        let (blocks, backward): (Box<dyn Iterator<Item = &Block>>, bool) = match range {
            Range::Before(below) => {
                let n = r.blocks.partition_point(|b| b.first < below);
                (Box::new(r.blocks.range(..n).rev()), true)
            }
            Range::After { after, until } => {
                let n = r.blocks.partition_point(|b| b.last() <= after);
                let blocks = r.blocks.range(n..).take_while(move |b| b.first < until);
                (Box::new(blocks), false)
            }
        };
        for block in blocks {
            if found.len() >= want {
                return Ok((found, false, read));
            }
            if read >= cap {
                return Ok((found, false, read));
            }
            let len = block.len as usize;
            buf.resize(len, 0);
            files.read_at(block.segment, u64::from(block.start), &mut buf)?;
            read += len as u64;
            let mut messages = Vec::new();
            for line in buf.split(|&b| b == b'\n') {
                let Ok(text) = std::str::from_utf8(line) else {
                    continue;
                };
                let Some((line_room, id, Entry::Message)) = head(text, default_room) else {
                    continue;
                };
                let wanted = match range {
                    Range::Before(below) => id < below,
                    Range::After { after, until } => id > after && id < until,
                };
                if line_room != room || !wanted || id < block.first || id > block.last() {
                    continue;
                }
                let edit = match r.amended.get(&id) {
                    Some(Amend::Deleted) => continue,
                    Some(Amend::Edited(at)) => {
                        let mut line = vec![0; at.len as usize];
                        files.read_at(at.segment, u64::from(at.start), &mut line)?;
                        read += u64::from(at.len);
                        String::from_utf8(line)
                            .ok()
                            .map(|l| Rc::from(format::from_journal_line(&l).0))
                    }
                    None => None,
                };
                let (json, owner) = format::from_journal_line(text);
                messages.push(Found {
                    message: Stored {
                        id,
                        json: Rc::from(json),
                        owner,
                    },
                    edit,
                    reactions: r.reactions.get(&id).cloned(),
                });
            }
            if backward {
                messages.reverse();
            }
            for m in messages {
                if found.len() < want {
                    found.push(m);
                } else {
                    return Ok((found, false, read));
                }
            }
        }
        Ok((found, true, read))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_alone_packs_many_records_into_one_block_and_a_thin_one_gets_its_own() {
        let mut index = Index::default();
        let (busy, thin): (RoomName, RoomName) = ("busy".into(), "thin".into());
        let mut at = 0u32;
        for id in 1..=1000u64 {
            let room = if id % 100 == 0 { &thin } else { &busy };
            index.add(
                room,
                id,
                Entry::Message,
                Place {
                    segment: 1,
                    start: at,
                    len: 99,
                },
            );
            at += 100;
        }
        let blocks = |room: &str| index.rooms[room].blocks.len();
        // 990 busy records of 100 bytes: about 32 KiB (327 records) per block.
        assert_eq!(blocks("busy"), 4);
        // 10 thin ones, 10,000 bytes apart: four per block.
        assert_eq!(blocks("thin"), 3);
    }

    #[test]
    fn dropping_a_segment_reports_where_each_room_starts_now() {
        let mut index = Index::default();
        let room: RoomName = "r".into();
        index.add(
            &room,
            1,
            Entry::Message,
            Place {
                segment: 1,
                start: 0,
                len: 9,
            },
        );
        index.add(
            &room,
            2,
            Entry::Message,
            Place {
                segment: 2,
                start: 0,
                len: 9,
            },
        );
        index.add(
            &room,
            3,
            Entry::Delete { target: 1 },
            Place {
                segment: 2,
                start: 10,
                len: 9,
            },
        );
        let gone: RoomName = "gone".into();
        index.add(
            &gone,
            4,
            Entry::Message,
            Place {
                segment: 1,
                start: 10,
                len: 9,
            },
        );
        let mut changed = index.drop_segment(1);
        changed.sort();
        assert_eq!(changed, vec![(gone, u64::MAX), (room.clone(), 2)]);
        assert!(
            index.rooms[&room].amended.is_empty(),
            "amendments of dropped messages go too"
        );
    }

    #[test]
    fn a_million_records_of_a_thousand_rooms_taking_turns_index_in_under_2_mib() {
        // The worst layout for the index: 1,000 rooms writing in turn, so in
        // the segment being written each record of a room lies 1,000 lines
        // from its last. Closed segments (4 MiB) are compacted; the last one
        // is still being written.
        const RECORDS: u64 = 1_000_000;
        const ROOMS: u64 = 1_000;
        const LINE: u32 = 157;
        let names: Vec<RoomName> = (0..ROOMS).map(|r| format!("room{r}").into()).collect();
        let per_segment = super::super::segments::SEGMENT_MAX / u64::from(LINE);
        let mut index = Index::default();
        let mut lines: Vec<Vec<Moved>> = vec![Vec::new(); ROOMS as usize];
        for i in 0..RECORDS {
            let segment = (i / per_segment) as u32 + 1;
            let room = (i % ROOMS) as usize;
            let id = i / ROOMS + 1;
            let start = ((i % per_segment) * u64::from(LINE)) as u32;
            let at = Place {
                segment,
                start,
                len: LINE - 1,
            };
            index.add(&names[room], id, Entry::Message, at);
            lines[room].push(Moved {
                id,
                entry: Entry::Message,
                old_start: start,
                new_start: 0,
                len: LINE - 1,
            });
            if (i + 1) % per_segment == 0 {
                // The segment is closed and compacted: each room's lines together.
                let mut at = 0;
                let moved: Vec<(RoomName, Vec<Moved>)> = lines
                    .iter_mut()
                    .enumerate()
                    .map(|(r, l)| {
                        for m in l.iter_mut() {
                            m.new_start = at;
                            at += LINE;
                        }
                        (names[r].clone(), std::mem::take(l))
                    })
                    .collect();
                index.replace_segment(segment, &moved);
            }
        }
        let bytes = index.bytes();
        eprintln!(
            "index: {bytes} bytes, {:.2} per record",
            bytes as f64 / RECORDS as f64
        );
        assert!(
            bytes <= 2 << 20,
            "{bytes} bytes, {:.2} per record",
            bytes as f64 / RECORDS as f64
        );
        // Before compaction existed this layout cost a block per record.
        assert!(
            bytes as u64 > RECORDS,
            "{bytes}: the interleaved current segment still costs"
        );
    }
}
