//! The chat core: a state machine without sockets, clocks or storage.
//!
//! **In** ([`Event`]): a client connected, a client's text frame, a client
//! gone, a tick, and what the log reports (a record committed, or a draft it
//! refused). **Out** ([`Command`]): append a draft to the log, send a frame to
//! one client or to a room (optionally except one), close a client for a
//! reason of the core's own, forget a room's sequence, and deliver a committed
//! message to its room.
//!
//! A chat message is never delivered when it is received: it becomes an
//! `Append`, and only the record the log hands back (with the id the log gave
//! it) is remembered in history and sent to the room. So a page can never
//! see a message that was not stored, whether the log answers in the same
//! turn (memory, file journal) or later (a remote log). Edits and deletes
//! of one's own messages (and a moderator's delete) are records the same
//! way, with ids of their own; a room's history applies them when committed
//! (`room.rs`), so every later welcome, catch-up, restart and node agrees.
//!
//! With a shared log (Redis) rooms are not restored at start but loaded on
//! demand: the first join to a room this process does not hold sends
//! `Watch`, the join waits, and the log's `Loaded` (epoch, last id, newest
//! records) makes the room ready and answers the joins that waited. A room
//! this process no longer has members in is dropped and forgotten (`Forget`),
//! since its history would go stale without the subscription.
//!
//! Sessions (`session.rs`) hold who a client is and which rooms it is in;
//! rooms (`room.rs`) hold history, presence and members. The server reads a
//! room's members to deliver a `Send` to it, so a message costs the room's
//! members, not a scan of every connection. The wire format is `protocol.rs`.
//! Bans and settings coming into force, the admin API's views, kicks and a
//! moderator's post and delete are `core/admin.rs`.

use super::access::{Access, Check, Secret};
use super::moderation::{Applied, BanRequest, BanTarget, Moderation, RoomSettings, SettingsChange};
use super::names::{self, Names};
use super::protocol::{self, ErrorCode, Incoming, LimitsView, RoomField, RoomName, WelcomeHead};
use super::record::{DirectoryEntry, Draft, LogEvent, Record, RemotePresence, Restored, Stored};
use super::room::{Room, WaitingJoin};
use super::session::{ClientId, Identity, Session, TokenBucket, Verdict};
use super::token::{Refusal, TokenKey, TokenUser};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::rc::Rc;

mod admin;

pub use self::admin::Kicked;

/// The rules the core enforces; taken from the server's `Config`.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest chat text in bytes.
    pub max_text: usize,
    /// Largest WebSocket message (told to the page so it can check before sending).
    pub max_message: usize,
    /// Messages per second per client; burst is twice this. 0 = unlimited.
    pub msg_rate: u32,
    /// Messages kept per room for joiners.
    pub history: usize,
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
}

impl Limits {
    /// Defaults for tests and benchmarks: the server's own come from `Config`.
    pub fn new(history: usize) -> Limits {
        Limits {
            max_text: 8 * 1024,
            max_message: 16 * 1024,
            msg_rate: 0,
            history,
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
    /// One complete binary message from a client: the protocol is JSON text.
    Binary { client: ClientId },
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
    /// A chat message the log committed: to every member of its room.
    Deliver { room: RoomName, json: Rc<str> },
    /// Send this JSON frame (a reply, a welcome, a presence notice).
    Send { to: Audience, json: Rc<str> },
    /// Close this client's connection.
    Close { client: ClientId, reason: Farewell },
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

impl PartialEq for Draft {
    fn eq(&self, other: &Draft) -> bool {
        (&self.room, self.sender, self.time, &self.fields)
            == (&other.room, other.sender, other.time, &other.fields)
    }
}

/// The chat: every session and every room.
#[derive(Debug)]
pub struct Core {
    limits: Limits,
    /// Names the id sequences of this log: a page holding ids from another
    /// epoch gets the whole history instead of a meaningless `since` slice.
    epoch: u64,
    /// The highest id the log has used in any room: a new room starts above it.
    high_water: u64,
    /// Indexed by `ClientId::key`; the session's own id holds the generation.
    sessions: Vec<Option<Session>>,
    session_count: usize,
    rooms: HashMap<RoomName, Room>,
    /// Rooms made by joining (not fixed ones) that have members: what
    /// `--max-rooms` bounds.
    made_rooms_with_members: usize,
    /// The default room and `--rooms`: always there, never counted or dropped.
    fixed_count: usize,
    history_bytes: usize,
    /// Distinct joined usernames across all rooms, with their connection counts.
    users: BTreeMap<Rc<str>, u32>,
    /// Rooms are loaded from a shared log when first joined ([`Restored::on_demand`]).
    on_demand: bool,
    /// The newest wall-clock time an event brought (for what a log event causes).
    now: u64,
    /// Rooms a shared log lists as active on any process (`/api/rooms`).
    directory: Vec<DirectoryEntry>,
    /// `--auth`: the password check and its per-address failure counts.
    access: Access,
    /// With a password or the admin API: each connection's address, until it is gone.
    addresses: HashMap<ClientId, IpAddr>,
    /// Names held by page secrets.
    names: Names,
    /// When held names were last pruned (about once a minute).
    names_pruned: u64,
    /// Bans and room settings, as the log stored them.
    moderation: Moderation,
    /// `--auth token`: who a connection's token says it is, until its first join succeeds.
    tokens: HashMap<ClientId, Box<Identity>>,
}

type Out = Vec<Command>;

impl Core {
    /// A core continuing from what the log restored.
    pub fn new(limits: Limits, restored: Restored, now: u64) -> Core {
        let mut core = Core {
            epoch: restored.epoch,
            high_water: restored.high_water,
            sessions: Vec::new(),
            session_count: 0,
            rooms: HashMap::new(),
            made_rooms_with_members: 0,
            fixed_count: 0,
            history_bytes: 0,
            users: BTreeMap::new(),
            on_demand: restored.on_demand,
            now,
            directory: Vec::new(),
            access: Access::new(limits.password.clone(), limits.token_key.clone()),
            tokens: HashMap::new(),
            addresses: HashMap::new(),
            names: Names::new(limits.name_hold_ms, limits.store_holds),
            names_pruned: now,
            moderation: Moderation::default(),
            limits,
        };
        for (key, value) in &restored.settings {
            core.moderation.apply(key, value);
            core.names.apply(key, value);
        }
        let mut fixed: Vec<RoomName> = vec![core.limits.default_room.clone()];
        fixed.extend(core.limits.fixed_rooms.iter().flatten().cloned());
        for name in fixed {
            core.room_entry(&name, now);
        }
        core.fixed_count = core.rooms.len();
        for (name, last, history) in restored.rooms {
            let keep = core.limits.history;
            let room = core.room_entry(&name, now);
            room.base = 0;
            room.last_id = last;
            let skip = history.len().saturating_sub(keep);
            let (mut added, mut freed) = (0, 0);
            for stored in history.into_iter().skip(skip) {
                let time = message_time(&stored.json);
                let (a, f) = room.remember(stored, keep, time);
                added += a;
                freed += f;
            }
            core.history_bytes = core.history_bytes + added - freed;
        }
        let mut ignored = Vec::new();
        core.trim_history(&mut ignored);
        core
    }

    /// What must happen before the first event: with a shared log, the
    /// default room and `--rooms` are watched from the start.
    pub fn start(&mut self, out: &mut Out) {
        let mut names: Vec<&RoomName> = self
            .rooms
            .values()
            .filter(|r| !r.ready)
            .map(|r| &r.name)
            .collect();
        names.sort();
        out.extend(names.into_iter().map(|n| Command::Watch(n.clone())));
    }

    /// Handles one event, pushing what must be done onto `out`.
    pub fn handle(&mut self, event: Event, out: &mut Out) {
        if let Event::Connected { now, .. }
        | Event::Text { now, .. }
        | Event::Gone { now, .. }
        | Event::Tick { now } = event
        {
            self.now = self.now.max(now);
        }
        match event {
            Event::Connected { client, now, addr } => {
                let keep = self.access.required() || self.limits.keep_addresses;
                if let Some(a) = addr.filter(|_| keep) {
                    self.addresses.insert(client, a);
                }
                self.connect(client, now);
                if addr.is_some_and(|a| self.moderation.address_banned(a, now)) {
                    out.push(Command::Close {
                        client,
                        reason: Farewell::Banned,
                    });
                }
            }
            Event::Text { client, text, now } => self.text(client, text, now, out),
            Event::Binary { client } => {
                let json = protocol::error_json(ErrorCode::BinaryUnsupported, None);
                reply(out, client, json);
            }
            Event::Gone { client, now } => self.gone(client, now, out),
            Event::Tick { now } => {
                self.access.tick(now);
                if now.saturating_sub(self.names_pruned) >= 60_000 {
                    self.names_pruned = now;
                    for (key, value) in self.names.prune(now) {
                        out.push(Command::Set { key, value });
                    }
                }
                self.bound_idle_rooms(out)
            }
            Event::Log(LogEvent::Committed(record)) => self.committed(record, out),
            Event::Log(LogEvent::Refused { room, sender }) => {
                if let Some(sender) = sender {
                    let json = protocol::error_json(ErrorCode::Unavailable, Some(&room));
                    reply(out, sender, json);
                }
            }
            Event::Log(LogEvent::Loaded {
                room,
                epoch,
                last_id,
                history,
                presence,
            }) => self.loaded(room, epoch, last_id, history, presence, out),
            Event::Log(LogEvent::Presence(p)) => self.remote_presence(p, out),
            Event::Log(LogEvent::Unreadable(room)) => self.unreadable(&room, out),
            Event::Log(LogEvent::Directory(list)) => self.directory = list,
            Event::Log(LogEvent::Setting { key, value }) if key.starts_with("hold/") => {
                self.names.apply(&key, &value)
            }
            Event::Log(LogEvent::Setting { key, value }) => {
                match self.moderation.apply(&key, &value) {
                    Applied::Banned(target) => self.enforce_ban(&target, out),
                    Applied::Room(room) => self.announce_settings(&room, out),
                    Applied::Nothing => {}
                }
            }
            Event::Log(LogEvent::Notice { key, .. }) => {
                if let Some(name) = key.strip_prefix("kick/") {
                    self.kick(Kick::User(name.to_string()), out);
                }
            }
            Event::Log(LogEvent::Settings(all)) => {
                for (key, value) in all.iter().filter(|(k, _)| k.starts_with("hold/")) {
                    self.names.apply(key, value);
                }
                let (rooms, banned) = self.moderation.replace(&all);
                for target in &banned {
                    self.enforce_ban(target, out);
                }
                for room in &rooms {
                    self.announce_settings(room, out);
                }
            }
        }
    }

    pub fn clients(&self) -> usize {
        self.session_count
    }

    /// Wrong or blocked password attempts since start.
    pub fn auth_failures(&self) -> u64 {
        self.access.failures_total
    }

    /// Distinct joined usernames online, in any room.
    pub fn users_online(&self) -> usize {
        self.users.len()
    }

    /// Rooms somebody is in (fixed ones included).
    pub fn rooms_with_members(&self) -> usize {
        self.rooms.values().filter(|r| !r.is_empty()).count()
    }

    pub fn rooms(&self) -> usize {
        self.rooms.len()
    }

    pub fn history_len(&self) -> usize {
        self.rooms.values().map(|r| r.history.len()).sum()
    }

    pub fn history_bytes(&self) -> usize {
        self.history_bytes
    }

    /// The highest id committed in any room.
    pub fn last_id(&self) -> u64 {
        self.high_water
    }

    /// The connections that receive `room`'s frames.
    pub fn members(&self, room: &str) -> &[ClientId] {
        self.rooms.get(room).map_or(&[], |r| &r.members[..])
    }

    /// A room's history ids, oldest first (for tests and tools).
    pub fn history_ids(&self, room: &str) -> Vec<u64> {
        self.rooms
            .get(room)
            .map(|r| r.history.iter().map(|s| s.id).collect())
            .unwrap_or_default()
    }

    /// `GET /api/rooms`: rooms with people or history, the busiest first.
    /// With a shared log, rooms active on other processes too: those this
    /// process holds are counted here, the others as the log last listed them.
    pub fn rooms_json(&self) -> String {
        let mut list: Vec<protocol::RoomSummary> = self
            .rooms
            .values()
            .filter(|r| r.ready)
            .map(|r| protocol::RoomSummary {
                room: &r.name,
                online: r.online.len(),
                last_message_time: r.last_message_time,
            })
            .collect();
        list.extend(
            self.directory
                .iter()
                .filter(|d| !self.rooms.get(d.room.as_str()).is_some_and(|r| r.ready))
                .filter(|d| d.online > 0 || d.last_message_time.is_some())
                .map(|d| protocol::RoomSummary {
                    room: &d.room,
                    online: d.online,
                    last_message_time: d.last_message_time,
                }),
        );
        list.sort_by(|a, b| b.online.cmp(&a.online).then(a.room.cmp(b.room)));
        protocol::rooms_json(&list)
    }

    fn session(&self, client: ClientId) -> Option<&Session> {
        self.sessions
            .get(client.key as usize)
            .and_then(Option::as_ref)
            .filter(|s| s.gen == client.gen)
    }

    /// The session of a client that sends to `room`: `None` when the client
    /// is gone, `not_joined` when it is not in the room.
    fn session_in(&self, client: ClientId, room: &str) -> Result<Option<&Session>, ErrorCode> {
        match self.session(client) {
            Some(s) if !s.in_room(room, &self.limits.default_room) => Err(ErrorCode::NotJoined),
            found => Ok(found),
        }
    }

    fn session_mut(&mut self, client: ClientId) -> Option<&mut Session> {
        self.sessions
            .get_mut(client.key as usize)
            .and_then(Option::as_mut)
            .filter(|s| s.gen == client.gen)
    }

    fn room_entry(&mut self, name: &RoomName, now: u64) -> &mut Room {
        let base = self.high_water;
        let (epoch, ready) = (self.epoch, !self.on_demand);
        self.rooms
            .entry(name.clone())
            .or_insert_with(|| Room::new(name.clone(), base, epoch, ready, now))
    }

    fn is_fixed(&self, room: &str) -> bool {
        room == &*self.limits.default_room
            || self
                .limits
                .fixed_rooms
                .as_ref()
                .is_some_and(|f| f.iter().any(|r| &**r == room))
    }

    fn add_member(&mut self, room: &RoomName, client: ClientId, now: u64) {
        let counted = !self.is_fixed(room);
        let r = self.room_entry(room, now);
        let was_empty = r.is_empty();
        r.add_member(client);
        r.last_activity = r.last_activity.max(now);
        if was_empty && counted {
            self.made_rooms_with_members += 1;
        }
    }

    fn remove_member(&mut self, room: &str, client: ClientId) {
        let counted = !self.is_fixed(room);
        if let Some(r) = self.rooms.get_mut(room) {
            let had = !r.is_empty();
            r.remove_member(client);
            if had && r.is_empty() && counted {
                self.made_rooms_with_members -= 1;
            }
        }
    }

    fn connect(&mut self, client: ClientId, now: u64) {
        let key = client.key as usize;
        if self.sessions.len() <= key {
            self.sessions.resize_with(key + 1, || None);
        }
        if self.sessions[key].is_none() {
            self.session_count += 1;
        }
        let lobby = self.limits.default_room.clone();
        self.sessions[key] = Some(Session {
            gen: client.gen,
            joined: false,
            authed: false,
            holder: false,
            loading: 0,
            identity: None,
            bucket: TokenBucket::new(self.limits.msg_rate, now),
            rooms: Vec::new(),
        });
        self.add_member(&lobby, client, now);
    }

    fn gone(&mut self, client: ClientId, now: u64, out: &mut Out) {
        let Some(session) = self
            .sessions
            .get_mut(client.key as usize)
            .and_then(|s| s.take_if(|s| s.gen == client.gen))
        else {
            return;
        };
        self.session_count -= 1;
        self.addresses.remove(&client);
        self.tokens.remove(&client);
        if let Some(who) = session.identity.as_deref().filter(|_| session.holder) {
            if let Some((key, value)) = self.names.depart(&who.username, now) {
                out.push(Command::Set { key, value });
            }
        }
        if let Some(who) = &session.identity {
            if let Some(n) = self.users.get_mut(&who.username) {
                *n -= 1;
                if *n == 0 {
                    self.users.remove(&who.username);
                }
            }
        }
        let lobby = self.limits.default_room.clone();
        for room in session.rooms(&lobby) {
            self.depart(room, client, session.identity.as_deref(), now, out);
        }
        if session.loading > 0 {
            let waited: Vec<RoomName> = self
                .rooms
                .values_mut()
                .filter_map(|r| {
                    let before = r.waiting.len();
                    r.waiting.retain(|w| w.client != client);
                    (r.waiting.len() != before).then(|| r.name.clone())
                })
                .collect();
            for room in waited {
                self.release_if_unused(&room, out);
            }
        }
        self.bound_idle_rooms(out);
    }

    /// With a shared log, a room nobody here is in (or waits for) is dropped
    /// and no longer watched: without the subscription its history would go stale.
    fn release_if_unused(&mut self, room: &RoomName, out: &mut Out) {
        if !self.on_demand || self.is_fixed(room) {
            return;
        }
        if let Some(r) = self.rooms.get(room) {
            if r.is_empty() && r.waiting.is_empty() {
                self.history_bytes -= r.history_bytes;
                self.rooms.remove(room);
                out.push(Command::Forget(room.clone()));
            }
        }
    }

    /// Takes `client` out of `room`, announcing the leave if it was the
    /// user's last connection there, and drops the room if nothing is left of it.
    fn depart(
        &mut self,
        room: &RoomName,
        client: ClientId,
        who: Option<&Identity>,
        now: u64,
        out: &mut Out,
    ) {
        self.remove_member(room, client);
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if let Some(who) = who {
            let change = r.depart(who);
            if change.here && self.on_demand {
                out.push(presence_command(room, who, false));
            }
            if change.anywhere {
                let json = protocol::presence_json("leave", room, &who.view(), now, r.online.len());
                send_room(out, room, Some(client), json);
            }
        }
        if r.is_empty() && r.history.is_empty() && !self.is_fixed(room) {
            self.rooms.remove(room);
            out.push(Command::Forget(room.clone()));
        } else {
            self.release_if_unused(room, out);
        }
    }

    fn text(&mut self, client: ClientId, text: &[u8], now: u64, out: &mut Out) {
        let rate = self.limits.msg_rate;
        let Some(session) = self.session_mut(client) else {
            return;
        };
        match session.bucket.take(rate, now) {
            Verdict::Allowed => {}
            Verdict::Limited => {
                return reply(
                    out,
                    client,
                    protocol::error_json(ErrorCode::RateLimited, None),
                )
            }
            Verdict::Flooding => {
                return out.push(Command::Close {
                    client,
                    reason: Farewell::Flooding,
                })
            }
        }
        let Some(msg) = protocol::parse(text) else {
            return reply(out, client, protocol::error_json(ErrorCode::BadJson, None));
        };
        if let Err(code) = self.admit(client, &msg, now, out) {
            return reply(out, client, protocol::error_json(code, None));
        }
        let room = match self.room_of(&msg.room) {
            Ok(room) => room,
            Err(code) => return reply(out, client, protocol::error_json(code, None)),
        };
        let result = match msg.kind.as_deref() {
            Some("join") => self.join(client, &room, &msg, now, out),
            Some("leave") => self.leave(client, &room, now, out),
            None | Some("message") => self.message(client, &room, &msg, now, out),
            Some("edit" | "delete") => self.change(client, &room, &msg, now, out),
            Some(_) => Err(ErrorCode::BadType),
        };
        if let Err(code) = result {
            reply(out, client, protocol::error_json(code, Some(&room)));
        }
    }

    /// `--auth password|token`: nothing from a connection counts until it
    /// joined with the password or a valid token; a wrong one is counted
    /// against its address. A token's user waits in `tokens` for its join.
    fn admit(
        &mut self,
        client: ClientId,
        msg: &Incoming,
        now: u64,
        out: &mut Vec<Command>,
    ) -> Result<(), ErrorCode> {
        if !self.access.required() || self.session(client).is_none_or(|s| s.authed) {
            return Ok(());
        }
        let token = self.access.token_required();
        let wrong = if token {
            ErrorCode::BadToken
        } else {
            ErrorCode::BadPassword
        };
        if msg.kind.as_deref() != Some("join") {
            return Err(wrong);
        }
        let addr = self.addresses.get(&client).copied();
        let checked = if token {
            match self.access.check_token(msg.token.as_deref(), addr, now) {
                Ok(user) => {
                    self.tokens.insert(client, Box::new(token_identity(user)));
                    Check::Ok
                }
                Err((check, refused)) => {
                    if let Some((addr, why)) = refused {
                        out.push(Command::Report(Report::TokenRefused { addr, why }));
                    }
                    check
                }
            }
        } else {
            self.access.check(msg.password.as_deref(), addr, now)
        };
        match checked {
            Check::Ok => {
                if let Some(s) = self.session_mut(client) {
                    s.authed = true;
                }
                Ok(())
            }
            Check::Wrong => Err(wrong),
            Check::Blocked => Err(ErrorCode::RateLimited),
        }
    }

    /// The room a frame names (the default room when it names none), shared
    /// with the existing room's name when there is one.
    fn room_of(&self, field: &RoomField) -> Result<RoomName, ErrorCode> {
        let name = match field {
            RoomField::Absent => return Ok(self.limits.default_room.clone()),
            RoomField::NotAString => return Err(ErrorCode::BadRoom),
            RoomField::Name(raw) => protocol::room_name(raw).ok_or(ErrorCode::BadRoom)?,
        };
        Ok(match self.rooms.get_key_value(name.as_str()) {
            Some((shared, _)) => shared.clone(),
            None => name.into(),
        })
    }

    fn join(
        &mut self,
        client: ClientId,
        room: &RoomName,
        msg: &Incoming,
        now: u64,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        if !self.is_fixed(room) && self.limits.fixed_rooms.is_some() {
            return Err(ErrorCode::BadRoom);
        }
        if self.on_demand && !self.rooms.get(room).is_some_and(|r| r.ready) {
            return self.wait_for_room(client, room, msg, out);
        }
        let limits = &self.limits;
        let Some(session) = self.session(client) else {
            return Ok(());
        };
        let token_mode = self.access.token_required();
        let identity = match (&session.identity, msg.username.as_deref()) {
            // `--auth token`: the name is the token's, whatever the join says.
            (Some(known), _) if token_mode => (**known).clone(),
            (None, _) if token_mode => {
                let mut user = (**self.tokens.get(&client).ok_or(ErrorCode::BadToken)?).clone();
                user.avatar = protocol::avatar(msg.email.as_deref())?;
                if let Some((shared, _)) = self.users.get_key_value(&*user.username) {
                    user.username = shared.clone();
                }
                user
            }
            (None, None) => return Err(ErrorCode::BadUsername),
            (Some(known), None) => (**known).clone(),
            (known, Some(raw)) => {
                let username = protocol::username(raw)?;
                let avatar = protocol::avatar(msg.email.as_deref())?;
                match known {
                    Some(k)
                        if &*k.username != username
                            || (msg.email.is_some() && k.avatar != avatar) =>
                    {
                        return Err(ErrorCode::AlreadyJoined)
                    }
                    Some(k) => (**k).clone(),
                    None => Identity {
                        username: match self.users.get_key_value(username) {
                            Some((shared, _)) => shared.clone(),
                            None => username.into(),
                        },
                        avatar,
                        owner: msg.secret.as_deref().map(protocol::owner_of),
                        verified: false,
                        rooms: None,
                    },
                }
            }
        };
        if self.moderation.name_banned(&identity.username, now) {
            return Err(ErrorCode::Banned);
        }
        if identity
            .rooms
            .as_ref()
            .is_some_and(|r| !r.iter().any(|x| **x == **room))
        {
            return Err(ErrorCode::ForbiddenRoom);
        }
        let newly_identified = session.identity.is_none();
        // Names are held by page secrets; a token's name is the operator's to give.
        let secret = msg
            .secret
            .as_deref()
            .filter(|_| !token_mode)
            .map(names::hash_secret);
        if newly_identified && !self.names.may_use(&identity.username, secret.as_ref(), now) {
            return Err(ErrorCode::NameTaken);
        }
        let already_in = session.in_room(room, &limits.default_room);
        if !already_in {
            let joined_rooms = if session.joined {
                session.rooms.len()
            } else {
                0
            };
            if joined_rooms >= limits.max_rooms_per_client {
                return Err(ErrorCode::RoomLimit);
            }
            let has_members = self.rooms.get(room).is_some_and(|r| !r.is_empty());
            if !has_members
                && !self.is_fixed(room)
                && self.made_rooms_with_members >= limits.max_rooms
            {
                return Err(ErrorCode::RoomLimit);
            }
        }
        // From here on the join succeeds.
        if newly_identified {
            *self.users.entry(identity.username.clone()).or_insert(0) += 1;
        }
        let lobby = self.limits.default_room.clone();
        let Some(session) = self.session_mut(client) else {
            return Ok(());
        };
        session.identity = Some(Box::new(identity.clone()));
        if newly_identified {
            if let Some(secret) = &secret {
                let (holder, stored) = self.names.arrive(&identity.username, secret, now);
                if let Some((key, value)) = stored {
                    out.push(Command::Set { key, value });
                }
                if let Some(s) = self.session_mut(client) {
                    s.holder = holder;
                }
            }
        }
        let Some(session) = self.session_mut(client) else {
            return Ok(());
        };
        let first_join = !session.joined;
        session.joined = true;
        if first_join {
            // The implicit place in the default room ends with the first join,
            // unless that join is to the default room.
            if room == &lobby {
                session.rooms.push(lobby.clone());
            } else {
                self.remove_member(&lobby, client);
            }
        }
        if !already_in {
            if let Some(s) = self.session_mut(client) {
                s.rooms.push(room.clone());
            }
            self.add_member(room, client, now);
        }
        let r = self.room_entry(room, now);
        r.last_activity = r.last_activity.max(now);
        let change = if !already_in || newly_identified {
            r.arrive(&identity)
        } else {
            Default::default()
        };
        if change.here && self.on_demand {
            out.push(presence_command(room, &identity, true));
        }
        let arrived = change.anywhere;
        let room_epoch = self.rooms.get(room).map_or(self.epoch, |r| r.epoch);
        let since = if msg.epoch.is_some_and(|e| e != room_epoch) {
            None
        } else {
            msg.since
        };
        reply(out, client, self.welcome(room, &identity, since));
        if arrived {
            if let Some(r) = self.rooms.get(room) {
                let json =
                    protocol::presence_json("join", room, &identity.view(), now, r.online.len());
                send_room(out, room, Some(client), json);
            }
        }
        if first_join && room != &lobby {
            // The default room may now be empty of members: drop it if it is.
            self.bound_idle_rooms(out);
        }
        Ok(())
    }

    fn leave(
        &mut self,
        client: ClientId,
        room: &RoomName,
        now: u64,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        let lobby = self.limits.default_room.clone();
        let Some(session) = self.session_mut(client) else {
            return Ok(());
        };
        if !session.in_room(room, &lobby) {
            return Err(ErrorCode::NotJoined);
        }
        // Leaving the implicit default room (never joined) leaves it in none.
        session.rooms.retain(|r| r != room);
        session.joined = true;
        let who = session.identity.as_deref().cloned();
        reply(out, client, protocol::left_json(room));
        self.depart(room, client, who.as_ref(), now, out);
        Ok(())
    }

    fn message(
        &mut self,
        client: ClientId,
        room: &RoomName,
        msg: &Incoming,
        now: u64,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        let Some(session) = self.session_in(client, room)? else {
            return Ok(());
        };
        let identity = match &session.identity {
            Some(identity) => (**identity).clone(),
            // `--auth token`: a name comes only from a token, at a join.
            None if self.access.token_required() => return Err(ErrorCode::NotJoined),
            None => {
                let username = protocol::username(msg.username.as_deref().unwrap_or(""))?;
                // A client that never joined names itself in each message: not a held name.
                if !self.names.may_use(username, None, now) {
                    return Err(ErrorCode::NameTaken);
                }
                if self.moderation.name_banned(username, now) {
                    return Err(ErrorCode::Banned);
                }
                Identity {
                    username: username.into(),
                    avatar: protocol::avatar(msg.email.as_deref())?,
                    owner: None,
                    verified: false,
                    rooms: None,
                }
            }
        };
        if identity
            .rooms
            .as_ref()
            .is_some_and(|r| !r.iter().any(|x| **x == **room))
        {
            return Err(ErrorCode::ForbiddenRoom);
        }
        let text = self.text_of(msg)?;
        if let Some(s) = self.moderation.room(room) {
            if s.read_only {
                return Err(ErrorCode::ReadOnly);
            }
            if s.slow_mode > 0 {
                let wait = u64::from(s.slow_mode) * 1000;
                if let Some(r) = self.rooms.get_mut(room) {
                    if !r.slow_mode_allows(&identity.username, now, wait) {
                        return Err(ErrorCode::SlowMode);
                    }
                }
            }
        }
        out.push(Command::Append(Draft {
            room: room.clone(),
            sender: Some(client),
            time: now,
            fields: protocol::message_fields(now, &identity.view(), text, identity.owner),
        }));
        Ok(())
    }

    /// A message's or an edit's text: not blank, at most `--max-text` bytes.
    fn text_of<'m>(&self, msg: &'m Incoming) -> Result<&'m str, ErrorCode> {
        self.checked_text(msg.message.as_deref().unwrap_or(""))
    }

    fn checked_text<'t>(&self, text: &'t str) -> Result<&'t str, ErrorCode> {
        if text.trim().is_empty() {
            return Err(ErrorCode::BadMessage);
        }
        if text.len() > self.limits.max_text {
            return Err(ErrorCode::MessageTooLong);
        }
        Ok(text)
    }

    /// `{"type":"edit"|"delete","room":R,"id":N}`: a change to one's own
    /// message, appended as a record of its own (applied when committed).
    fn change(
        &mut self,
        client: ClientId,
        room: &RoomName,
        msg: &Incoming,
        now: u64,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        let Some(session) = self.session_in(client, room)? else {
            return Ok(());
        };
        let who = session.identity.as_deref();
        let target = self
            .rooms
            .get(room)
            .zip(msg.id)
            .and_then(|(r, id)| r.message(id))
            .ok_or(ErrorCode::NotFound)?;
        let Some(who) = who.filter(|w| w.owner.is_some() && w.owner == target.owner) else {
            return Err(ErrorCode::NotYours);
        };
        let fields = if msg.kind.as_deref() == Some("edit") {
            if self.moderation.room(room).is_some_and(|s| s.read_only) {
                return Err(ErrorCode::ReadOnly);
            }
            let text = self.text_of(msg)?;
            let sent = message_time(&target.json).unwrap_or(0);
            let window = self.limits.edit_window_ms;
            if window == 0 || now.saturating_sub(sent) > window {
                return Err(ErrorCode::EditWindow);
            }
            protocol::edit_fields(now, &who.username, target.id, text)
        } else {
            protocol::delete_fields(now, Some(&who.username), target.id)
        };
        out.push(Command::Append(Draft {
            room: room.clone(),
            sender: Some(client),
            time: now,
            fields,
        }));
        Ok(())
    }

    /// A join to a room a shared log has not loaded yet: it waits (counted
    /// against the client's and the server's room limits), and the room is watched.
    fn wait_for_room(
        &mut self,
        client: ClientId,
        room: &RoomName,
        msg: &Incoming,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        let max_per_client = self.limits.max_rooms_per_client;
        let lobby = self.limits.default_room.clone();
        let Some(session) = self.session_mut(client) else {
            return Ok(());
        };
        let joined = if session.joined {
            session.rooms.len()
        } else {
            0
        };
        let in_room = session.in_room(room, &lobby);
        if !in_room && joined + usize::from(session.loading) >= max_per_client {
            return Err(ErrorCode::RoomLimit);
        }
        let exists = self.rooms.contains_key(room);
        if !exists && self.rooms.len() - self.fixed_count >= self.limits.max_rooms {
            return Err(ErrorCode::RoomLimit);
        }
        let now = self.now;
        let r = self.room_entry(room, now);
        let known = r.waiting.iter().position(|w| w.client == client);
        let wait = WaitingJoin {
            client,
            username: msg.username.as_deref().map(str::to_owned),
            email: msg.email.as_deref().map(str::to_owned),
            since: msg.since,
            epoch: msg.epoch,
            secret: msg.secret.as_deref().map(str::to_owned),
        };
        match known {
            Some(i) => r.waiting[i] = wait,
            None => {
                r.waiting.push(wait);
                if let Some(s) = self.session_mut(client) {
                    s.loading += 1;
                }
            }
        }
        if !exists {
            out.push(Command::Watch(room.clone()));
        }
        Ok(())
    }

    /// A shared log loaded `room` (first read, or started over): its history
    /// is replaced, members already in it get a fresh welcome, and the joins
    /// that waited are answered.
    fn loaded(
        &mut self,
        room: RoomName,
        epoch: u64,
        last_id: u64,
        history: Vec<Record>,
        presence: Vec<RemotePresence>,
        out: &mut Out,
    ) {
        let keep = self.limits.history;
        let Some(r) = self.rooms.get_mut(&room) else {
            return; // forgotten meanwhile
        };
        r.clear_remote();
        for p in &presence {
            r.remote(p, true);
        }
        let was_ready = r.ready;
        let mut freed = r.clear_history();
        let mut added = 0;
        r.epoch = epoch;
        r.base = 0;
        r.last_id = last_id;
        r.ready = true;
        let skip = history.len().saturating_sub(keep);
        for record in history.into_iter().skip(skip) {
            let stored = Stored {
                id: record.id,
                json: record.json,
                owner: record.owner,
            };
            let (a, f) = r.remember(stored, keep, Some(record.time));
            added += a;
            freed += f;
        }
        while r.history.len() > keep {
            freed += r.forget_oldest();
        }
        r.last_id = r.last_id.max(last_id);
        let waiting = std::mem::take(&mut r.waiting);
        let members = if was_ready {
            r.members.clone()
        } else {
            Vec::new()
        };
        self.high_water = self.high_water.max(last_id);
        self.history_bytes = self.history_bytes + added - freed;
        for client in members {
            // A new epoch (the log lost its data): pages start this room over.
            if let Some(who) = self.session(client).and_then(|s| s.identity.as_deref()) {
                let json = self.welcome(&room, who, None);
                reply(out, client, json);
            }
        }
        for w in waiting {
            let Some(s) = self.session_mut(w.client) else {
                continue;
            };
            s.loading = s.loading.saturating_sub(1);
            let msg = Incoming {
                kind: Some("join".into()),
                room: RoomField::Name(room.to_string().into()),
                username: w.username.map(Into::into),
                email: w.email.map(Into::into),
                message: None,
                password: None,
                secret: w.secret.map(Into::into),
                token: None,
                since: w.since,
                epoch: w.epoch,
                id: None,
            };
            let now = self.now;
            if let Err(code) = self.join(w.client, &room, &msg, now, out) {
                reply(out, w.client, protocol::error_json(code, Some(&room)));
            }
        }
        self.release_if_unused(&room, out);
        self.trim_history(out);
    }

    /// A shared log cannot read `room`: the joins waiting for it get
    /// `unavailable`, and the room is dropped (a later join tries again).
    fn unreadable(&mut self, room: &RoomName, out: &mut Out) {
        let Some(r) = self.rooms.get_mut(room).filter(|r| !r.ready) else {
            return;
        };
        for w in std::mem::take(&mut r.waiting) {
            if let Some(s) = self.session_mut(w.client) {
                s.loading = s.loading.saturating_sub(1);
                reply(
                    out,
                    w.client,
                    protocol::error_json(ErrorCode::Unavailable, Some(room)),
                );
            }
        }
        self.release_if_unused(room, out);
    }

    /// A user online (or gone) on another process: announced here when that
    /// brought them online (or offline) in the room as a whole.
    fn remote_presence(&mut self, p: RemotePresence, out: &mut Out) {
        let now = self.now;
        let Some(r) = self.rooms.get_mut(&p.room).filter(|r| r.ready) else {
            return; // the room's snapshot, when it is loaded, has it
        };
        if !r.remote(&p, p.online) {
            return;
        }
        let who = protocol::UserView {
            username: &p.username,
            avatar: p.avatar.as_deref(),
            verified: p.verified,
        };
        let kind = if p.online { "join" } else { "leave" };
        let json = protocol::presence_json(kind, &p.room, &who, now, r.online.len());
        send_room(out, &p.room, None, json);
    }

    /// A record the log committed: remembered in its room's history, sent to its members.
    fn committed(&mut self, record: Record, out: &mut Out) {
        if self.on_demand && !self.rooms.get(&record.room).is_some_and(|r| r.ready) {
            return; // a shared log's record for a room no longer (or not yet) here
        }
        self.high_water = self.high_water.max(record.id);
        let keep = self.limits.history;
        let r = self.room_entry(&record.room, record.time);
        if r.base >= record.id {
            r.base = record.id - 1;
        }
        let (added, mut freed) = r.remember(
            Stored {
                id: record.id,
                json: record.json.clone(),
                owner: record.owner,
            },
            keep,
            Some(record.time),
        );
        while r.history.len() > keep {
            freed += r.forget_oldest();
        }
        // `freed` came out of history already counted, so this cannot underflow.
        self.history_bytes = self.history_bytes + added - freed;
        out.push(Command::Deliver {
            room: record.room,
            json: record.json,
        });
        self.trim_history(out);
    }

    /// Keeps history within `--history-bytes`: rooms nobody is in lose theirs
    /// first (oldest activity first), then the oldest messages of the biggest rooms go.
    fn trim_history(&mut self, out: &mut Out) {
        while self.history_bytes > self.limits.history_bytes {
            let idle = self
                .rooms
                .values()
                .filter(|r| r.is_empty() && !r.history.is_empty())
                .min_by_key(|r| r.last_activity)
                .map(|r| r.name.clone());
            if let Some(name) = idle {
                self.drop_history(&name, out);
                continue;
            }
            let Some(biggest) = self.rooms.values_mut().max_by_key(|r| r.history_bytes) else {
                break;
            };
            let freed = biggest.forget_oldest();
            if freed == 0 {
                break;
            }
            self.history_bytes -= freed;
        }
    }

    /// Drops a room's whole history, and the room itself when nobody is in it.
    fn drop_history(&mut self, name: &RoomName, out: &mut Out) {
        let fixed = self.is_fixed(name);
        if let Some(r) = self.rooms.get_mut(name) {
            self.history_bytes -= r.history_bytes;
            r.history.clear();
            r.history_bytes = 0;
            if r.is_empty() && !fixed {
                self.rooms.remove(name);
                out.push(Command::Forget(name.clone()));
            }
        }
    }

    /// Rooms nobody is in are kept for their history, at most `--max-rooms`
    /// of them: past that the one with the oldest activity goes.
    fn bound_idle_rooms(&mut self, out: &mut Out) {
        loop {
            let idle = self.rooms.len() - self.fixed_count - self.made_rooms_with_members;
            if idle <= self.limits.max_rooms {
                return;
            }
            let oldest = self
                .rooms
                .values()
                .filter(|r| r.is_empty() && !self.is_fixed(&r.name))
                .min_by_key(|r| r.last_activity)
                .map(|r| r.name.clone());
            match oldest {
                Some(name) => self.drop_history(&name, out),
                None => return,
            }
        }
    }

    /// The welcome: the room, who you are, who is online there, and the
    /// history after `since` (all of it without `since`).
    fn welcome(&self, room: &str, you: &Identity, since: Option<u64>) -> String {
        let Some(r) = self.rooms.get(room) else {
            return String::new();
        };
        let budget = self.limits.welcome_bytes;
        let (history, truncated) = r.catch_up(since, budget);
        let settings = self.moderation.room(room);
        let head = WelcomeHead {
            kind: "welcome",
            room,
            you: you.view(),
            users: r.users(budget / 2),
            online: r.online.len(),
            epoch: r.epoch,
            last_id: r.last_id,
            truncated,
            topic: settings.map_or("", |s| &s.topic),
            slow_mode: settings.map_or(0, |s| s.slow_mode),
            read_only: settings.is_some_and(|s| s.read_only),
            limits: LimitsView {
                max_text: self.limits.max_text,
                max_message: self.limits.max_message,
                msg_rate: self.limits.msg_rate,
                max_rooms_per_client: self.limits.max_rooms_per_client,
                edit_window_ms: self.limits.edit_window_ms,
            },
        };
        protocol::welcome_json(&head, history)
    }
}

/// The identity a valid token gives: its name, verified; its subject owns
/// its messages; its rooms, if it lists them.
fn token_identity(user: TokenUser) -> Identity {
    Identity {
        username: user.name.as_str().into(),
        avatar: None,
        owner: Some(protocol::owner_of(&format!("sub:{}", user.subject))),
        verified: true,
        rooms: user.rooms.map(Into::into),
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

fn presence_command(room: &RoomName, who: &Identity, online: bool) -> Command {
    Command::Presence {
        room: room.clone(),
        username: who.username.clone(),
        avatar: who.avatar.clone(),
        verified: who.verified,
        online,
    }
}

fn reply(out: &mut Out, client: ClientId, json: String) {
    out.push(Command::Send {
        to: Audience::One(client),
        json: json.into(),
    });
}

fn send_room(out: &mut Out, room: &RoomName, except: Option<ClientId>, json: String) {
    out.push(Command::Send {
        to: Audience::Room {
            room: room.clone(),
            except,
        },
        json: json.into(),
    });
}

/// The `time` of a stored frame, for rooms restored from the log.
fn message_time(json: &str) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Time {
        time: Option<u64>,
    }
    serde_json::from_str::<Time>(json).ok().and_then(|t| t.time)
}
