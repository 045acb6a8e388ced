//! What the chat core and a message log exchange, owned by the core: a
//! [`Draft`] it asks to have stored, the [`Record`] a log committed (with the
//! id the log gave it), the [`LogEvent`] that reports either outcome, and what
//! a log held when it was opened ([`Restored`]). Storage itself is `crate::log`.

pub use super::protocol::{frame, frame_with};
use super::protocol::{Owner, RoomName};
use super::reactions::Reactions;
use super::session::ClientId;
use std::rc::Rc;

/// A committed record held in a room's history: its id, the exact JSON that
/// was broadcast (a message's as last edited) and who may change it.
#[derive(Clone, Debug)]
pub struct Stored {
    pub id: u64,
    pub json: Rc<str>,
    pub owner: Option<Owner>,
}

/// What a record is: its frame's `"type"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Message,
    /// A change of message `target`'s text (`protocol::edit_fields`).
    Edit,
    /// Message `target` is gone (`protocol::delete_fields`).
    Delete,
    /// A reaction on message `target` toggled (`protocol::react_fields`).
    React,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::Edit => "edit",
            Kind::Delete => "delete",
            Kind::React => "react",
        }
    }
}

/// A record the core wants stored (a message, an edit, a delete): everything but its id.
#[derive(Debug, PartialEq)]
pub struct Draft {
    pub room: RoomName,
    /// Who is told if it cannot be stored (none for a moderator's delete).
    pub sender: Option<ClientId>,
    /// Wall-clock ms the message was sent.
    pub time: u64,
    pub kind: Kind,
    /// The frame's own fields (not its type, room or id) as one JSON object,
    /// see [`crate::chat::protocol::message_fields`].
    pub fields: String,
    /// Who may edit or delete it: stored with it, never delivered.
    pub owner: Option<Owner>,
    /// An uploaded image the message carries: stored by the log before the
    /// record, under its name (`/u/<name>` serves it).
    pub file: Option<Box<File>>,
}

/// An uploaded image to store: its name (random, with its extension) and bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl Draft {
    /// The record this draft becomes with the id the log gave it.
    pub fn seal(self, id: u64) -> Record {
        let json = frame(self.kind.name(), &self.room, id, &self.fields);
        Record {
            room: self.room,
            id,
            json: json.into(),
            time: self.time,
            sender: self.sender,
            owner: self.owner,
        }
    }
}

/// A record the log has committed: its room, the id the log gave it, and the
/// complete frame JSON to deliver and keep.
#[derive(Clone, Debug)]
pub struct Record {
    pub room: RoomName,
    pub id: u64,
    pub json: Rc<str>,
    pub time: u64,
    /// Who sent it, when it was sent through this process.
    pub sender: Option<ClientId>,
    /// Who may edit or delete it (stored, never delivered).
    pub owner: Option<Owner>,
}

/// A read of a room's retained records the core asks of the log (older
/// history than it keeps in memory, and search): answered by a later commit
/// as [`LogEvent::Read`] with the same `ticket`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    pub ticket: u64,
    pub room: RoomName,
    pub range: Range,
    /// Messages wanted (deleted ones are never counted or returned).
    pub want: usize,
}

/// Which records a [`Read`] is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// Messages with ids below this one, newest first.
    Before(u64),
    /// Messages with ids above `after` and below `until`, oldest first.
    After { after: u64, until: u64 },
}

/// A message a log read found: as stored, and the latest edit of it (its
/// frame), wherever in the log that edit is. A deleted message is never found.
#[derive(Clone, Debug)]
pub struct Found {
    pub message: Stored,
    pub edit: Option<Rc<str>>,
    /// Its reactions, as the log's records left them (`None`: none).
    pub reactions: Option<Reactions>,
}

/// What the log reports back to the core.
#[derive(Debug)]
pub enum LogEvent {
    Committed(Record),
    /// The answer to a [`Read`]: messages in the order its range asks for,
    /// at most `want`. `exhausted`: there are no more in that direction
    /// (otherwise the log stopped early to bound its work, and the core may
    /// read on from the last one).
    Read {
        ticket: u64,
        found: Vec<Found>,
        exhausted: bool,
    },
    /// The log could not answer read `ticket` (Redis unreachable, an I/O
    /// error): the asker is told `unavailable`, never an early end of history.
    ReadFailed {
        ticket: u64,
    },
    /// Retention removed `room`'s records below id `below` from the log:
    /// they are gone everywhere, memory included.
    Dropped {
        room: RoomName,
        below: u64,
    },
    /// The log could not store this draft (disk full, I/O error): it was not
    /// delivered, and its sender is told `unavailable`.
    Refused {
        room: RoomName,
        sender: Option<ClientId>,
    },
    /// A log that loads rooms on demand: `room`'s epoch, last id and newest
    /// records, oldest first. Sent when a watched room is first read, and
    /// again if its epoch changed (the log lost its data) or a hole appeared
    /// that the log can no longer fill: the room starts over from these.
    Loaded {
        room: RoomName,
        epoch: u64,
        last_id: u64,
        history: Vec<Record>,
        /// Who is online in the room on other processes.
        presence: Vec<RemotePresence>,
    },
    /// Another process sharing the log: a user came online in a room there,
    /// or went (its last connection closed, or that process stopped answering).
    Presence(RemotePresence),
    /// The log cannot read this room (what is stored under its name is not
    /// what picochat writes): the joins waiting for it are refused.
    Unreadable(RoomName),
    /// Rooms active on any process sharing the log, newest first (for `GET /api/rooms`).
    Directory(Vec<DirectoryEntry>),
    /// A moderation setting was stored (here or, with a shared log, by
    /// another process): `value` empty means removed. See `moderation.rs`.
    Setting {
        key: String,
        value: String,
    },
    /// Every setting the shared log holds, replacing what the core has (read
    /// when the log connects, so changes missed while away are not lost).
    Settings(Vec<(String, String)>),
    /// A passing word from another process sharing the log, not stored
    /// (a moderator there kicked a user: `kick/<name>`).
    Notice {
        key: String,
        value: String,
    },
    /// The answer to a shared log's [`fetch_file`](crate::log::SharedLog::fetch_file)
    /// (for the server, which serves images; the core never sees it).
    File {
        name: String,
        fetched: Fetched,
    },
}

/// An uploaded image a shared log was asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    Bytes(std::rc::Rc<[u8]>),
    /// Not stored (never, or removed: deleted, expired, over the quota).
    Missing,
    /// The log could not answer (Redis unreachable).
    Failed,
}

/// One room as the shared log lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub room: String,
    /// Distinct users online in it, on any process.
    pub online: usize,
    pub last_message_time: Option<u64>,
}

/// A user online (or no more) in a room on another process sharing the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemotePresence {
    pub room: RoomName,
    /// Which process (the log's own name for it).
    pub node: String,
    pub username: String,
    pub avatar: Option<String>,
    /// The name came from a signed token there (`--auth token`).
    pub verified: bool,
    pub online: bool,
}

/// What a log held when opened: the epoch of its id sequences and each room's
/// newest records.
#[derive(Debug, Default)]
pub struct Restored {
    pub epoch: u64,
    /// The highest id any room has used: a room the log has no record of starts above it.
    pub high_water: u64,
    /// Per room: its last id and its newest records, oldest first.
    pub rooms: Vec<(RoomName, u64, Vec<Stored>)>,
    /// Rooms are not restored but loaded when first joined (a shared log):
    /// the core asks with `Watch` and waits for [`LogEvent::Loaded`].
    pub on_demand: bool,
    /// Moderation settings stored (key, JSON value).
    pub settings: Vec<(String, String)>,
    /// The log keeps more than the core's memory and answers [`Read`]s
    /// (journal, Redis); without it, memory is all there is.
    pub readable: bool,
    /// The log stores uploaded images ([`Draft::file`]); without it uploads
    /// are refused `unavailable`.
    pub files: bool,
}
