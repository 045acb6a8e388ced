//! What goes in and out of the core: the rules it is given ([`Limits`]),
//! what happens to it ([`Event`]), what it wants done ([`Command`], with
//! its [`Audience`], [`Farewell`] and [`Report`]), and an admin's [`Kick`].

use crate::chat::access::Secret;
use crate::chat::protocol::{Owner, RoomName};
use crate::chat::record::{Draft, LogEvent, Read};
use crate::chat::session::ClientId;
use crate::chat::token::{Refusal, TokenKey};
use std::net::IpAddr;
use std::rc::Rc;

/// The rules the core enforces; taken from the server's `Config`.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest chat text in bytes.
    pub max_text: usize,
    /// Largest WebSocket message (told to the page so it can check before sending).
    pub max_message: usize,
    /// Messages per second per client; burst is twice this. 0 = unlimited.
    pub msg_rate: u32,
    /// Messages a welcome shows (`--history`).
    pub history: usize,
    /// The most messages one history page holds (`--page-max`).
    pub page_max: usize,
    /// Bytes of history kept across all rooms (see [`super::room::charge`]).
    pub history_bytes: usize,
    /// Most bytes of history one welcome may carry: it is one frame on the
    /// joiner's output queue, so it must stay well under that queue's limit.
    pub welcome_bytes: usize,
    /// Rooms one connection may be in at once.
    pub max_rooms_per_client: usize,
    /// Rooms with members at once (rooms nobody is in do not count).
    pub max_rooms: usize,
    /// Where frames without `"room"` go, and where a connection starts.
    pub default_room: RoomName,
    /// `--rooms`: the only rooms that exist (the default room always among
    /// them). `None`: rooms are made by joining.
    pub fixed_rooms: Option<Vec<RoomName>>,
    /// `--auth password`: the shared password a connection joins with.
    pub password: Option<Secret>,
    /// Keep each connection's address (for the admin API's listing).
    pub keep_addresses: bool,
    /// How long a name stays held for its secret after its last connection (`--name-hold`).
    pub name_hold_ms: u64,
    /// Holds are stored in the log (`--data-dir`, `--redis`): kept across
    /// restarts and shared between processes.
    pub store_holds: bool,
    /// How long after sending a message its sender may still edit it (`--edit-window`).
    pub edit_window_ms: u64,
    /// `--auth token`: the key tokens are signed with.
    pub token_key: Option<Rc<TokenKey>>,
    /// Largest image one upload may announce (`--max-upload`).
    pub max_upload: usize,
    /// Uploads in flight across all connections (`--upload-memory`).
    pub upload_memory: usize,
    /// The most bytes an upload of `n` may take while it arrives, what it
    /// counts against `upload_memory`: with permessage-deflate on, a
    /// deflated image is a little longer on the wire than announced (the
    /// shell's framing says how much); else `n`.
    pub upload_wire: fn(usize) -> usize,
}

impl Limits {
    /// Defaults for tests and benchmarks: the server's own come from `Config`.
    pub fn new(history: usize) -> Limits {
        Limits {
            max_text: 8 * 1024,
            max_message: 16 * 1024,
            msg_rate: 0,
            history,
            page_max: 200,
            history_bytes: 32 << 20,
            welcome_bytes: 1 << 20,
            max_rooms_per_client: 32,
            max_rooms: 1000,
            default_room: "lobby".into(),
            fixed_rooms: None,
            password: None,
            keep_addresses: false,
            name_hold_ms: 0,
            store_holds: false,
            edit_window_ms: 15 * 60_000,
            token_key: None,
            max_upload: 5 << 20,
            upload_memory: 16 << 20,
            upload_wire: std::convert::identity,
        }
    }
}

/// What happens to the core.
#[derive(Debug)]
pub enum Event<'a> {
    /// A chat WebSocket opened: it is in the default room until it joins one.
    /// `addr` is the client's address (failed passwords are limited per address).
    Connected {
        client: ClientId,
        now: u64,
        addr: Option<IpAddr>,
    },
    /// One complete text message from a client.
    Text {
        client: ClientId,
        text: &'a [u8],
        now: u64,
    },
    /// One complete binary message from a client: an announced upload's
    /// image, else refused (the protocol is JSON text). `nonce`: 128 random
    /// bits from the shell, the name an accepted image is stored under.
    Binary {
        client: ClientId,
        data: &'a [u8],
        nonce: u128,
    },
    /// The connection is gone.
    Gone { client: ClientId, now: u64 },
    /// Time passed (the server ticks about once a second).
    Tick { now: u64 },
    /// The log committed a record, or refused a draft.
    Log(LogEvent),
}

/// What the core wants done, in order.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Store this message; its outcome comes back as an [`Event::Log`].
    Append(Draft),
    /// Read older records (a history page, a search); the answer comes back
    /// as an [`Event::Log`] ([`LogEvent::Read`]).
    Read(Read),
    /// A chat message the log committed: to every member of its room.
    Deliver { room: RoomName, json: Rc<str> },
    /// Send this JSON frame (a reply, a welcome, a presence notice).
    Send { to: Audience, json: Rc<str> },
    /// Close this client's connection.
    Close { client: ClientId, reason: Farewell },
    /// The client announced an upload: its next message, if binary, is at
    /// most `bytes`, let through when `keep` (then it comes back as
    /// [`Event::Binary`]), else dropped as it arrives. The shell must apply
    /// it before the client's next frame.
    ExpectUpload {
        client: ClientId,
        bytes: usize,
        keep: bool,
    },
    /// The message carrying image `name` is gone: the log drops the file.
    RemoveFile(String),
    /// The core dropped this room entirely; the log may drop its sequence
    /// (a shared log stops watching it).
    Forget(RoomName),
    /// A shared log: load this room, and hand its records over until `Forget`.
    Watch(RoomName),
    /// Store this moderation setting in the log (see `moderation.rs`); it
    /// takes effect when the log hands it back.
    Set { key: String, value: String },
    /// A shared log: tell the other processes (see [`LogEvent::Notice`]).
    Notify { key: String, value: String },
    /// A shared log: an identity's first connection on this process came
    /// (`on`) or its last went: its direct messages are to be heard here, or no more.
    WatchIdentity { owner: Owner, on: bool },
    /// A shared log: this user's first connection in `room` on this process
    /// came (`online`), or its last one went; other processes are told.
    Presence {
        room: RoomName,
        username: Rc<str>,
        avatar: Option<Rc<str>>,
        /// The name came from a signed token (`--auth token`).
        verified: bool,
        online: bool,
    },
    /// Something worth a line in the server's diagnostics: the core never
    /// writes them itself.
    Report(Report),
}

/// What the core tells the operator (the server writes it at debug level).
#[derive(Debug, PartialEq)]
pub enum Report {
    /// A join's token was refused (the client only hears `bad_token`);
    /// `why` is `None` when the join carried no token.
    TokenRefused { addr: IpAddr, why: Option<Refusal> },
}

#[derive(Debug, PartialEq)]
pub enum Audience {
    One(ClientId),
    /// Every connection of one identity (an owner tag), optionally but one,
    /// whatever rooms they are in: direct messages and read markers.
    Identity {
        owner: Owner,
        except: Option<ClientId>,
    },
    /// Every member of the room, optionally but one.
    Room {
        room: RoomName,
        except: Option<ClientId>,
    },
}

/// Why the core closes a client. The server picks the close code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Farewell {
    /// Kept sending past the rate limit after being told to slow down.
    Flooding,
    /// An admin removed the connection (or every connection of its user).
    Kicked,
    /// Its name or its address is banned.
    Banned,
}

impl Farewell {
    pub fn text(self) -> &'static str {
        match self {
            Farewell::Flooding => "message rate limit exceeded",
            Farewell::Kicked => "removed by a moderator",
            Farewell::Banned => "banned by a moderator",
        }
    }
}

/// Whom the admin API's kick is for.
#[derive(Debug)]
pub enum Kick {
    /// A connection, by the id `GET /api/admin/rooms` lists.
    Connection(String),
    /// Every connection of a username.
    User(String),
}
