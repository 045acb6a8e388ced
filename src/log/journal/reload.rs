//! Reading a segment back at start: each line checked (a torn last one
//! reported by the length of the good prefix), each room's newest records
//! kept for memory, and every record noted in the index.

use super::index::{self, Index, Place};
use crate::chat::protocol::{self, RoomName};
use crate::chat::record::Stored;
use crate::diag_warn;
use crate::log::format;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::rc::Rc;

/// Per room while scanning: last id and the newest `keep` records.
pub type Tails = HashMap<RoomName, (u64, VecDeque<Stored>)>;

/// Parses one segment's lines into `tails` and the index. Returns the
/// length of the valid prefix: everything up to the last complete, parseable line.
pub fn scan(
    path: &Path,
    bytes: &[u8],
    segment: u32,
    keep: usize,
    default_room: &RoomName,
    tails: &mut Tails,
    index: &mut Index,
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
        let head = std::str::from_utf8(line).ok().and_then(|s| {
            let (room, id, entry) = index::head(s, default_room)?;
            let room: RoomName = match tails.get_key_value(&*room) {
                Some((shared, _)) => shared.clone(),
                None if room == **default_room => default_room.clone(),
                None if crate::chat::direct::owners(&room).is_some() => room.as_ref().into(),
                None => protocol::room_name(&room)?.into(),
            };
            Some((s, room, id, entry))
        });
        match head {
            Some((text, room, id, entry))
                if tails.get(&room).is_none_or(|(last, _)| id > *last) =>
            {
                // Offsets past 4 GiB (a segment of an old --log-segment) are not indexed.
                if let (Ok(start), Ok(len)) = (u32::try_from(pos), u32::try_from(nl)) {
                    index.add(
                        &room,
                        id,
                        entry,
                        Place {
                            segment,
                            start,
                            len,
                        },
                    );
                    if let index::Entry::React { .. } = entry {
                        index.react(&room, text);
                    }
                }
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
