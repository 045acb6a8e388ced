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
//!
//! The core is one type split by concern: what goes in and out
//! (`core/events.rs`); this file (construction, dispatching events); a
//! chat message (`core/message.rs`); an edit or a delete (`core/edits.rs`); history pages and
//! searches (`core/scrollback.rs`); joining, leaving and identity
//! (`core/membership.rs`); history, welcomes and trimming
//! (`core/history.rs`); what only a shared log needs, loading rooms and
//! remote presence (`core/shared.rs`); bans and settings coming into force,
//! the admin API's views, kicks and a moderator's post and delete
//! (`core/admin.rs`).

use super::access::{Access, Check};
use super::direct;
use super::incoming::{self, Incoming, Join, RoomField, Said};
use super::moderation::{Applied, BanRequest, BanTarget, Moderation, RoomSettings, SettingsChange};
use super::names::{self, Names};
use super::protocol::{self, ErrorCode, LimitsView, Owner, RoomName, WelcomeHead};
use super::reads::{self, ReadMarkers};
use super::record::{
    DirectoryEntry, Draft, Kind, LogEvent, Record, RemotePresence, Restored, Stored,
};
use super::room::{Room, WaitingJoin};
use super::session::{ClientId, Identity, Session, TokenBucket, Verdict};
use super::token::TokenUser;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::rc::Rc;

mod admin;
mod direct_messages;
mod edits;
mod events;
mod history;
mod membership;
mod message;
mod reactions;
mod read_markers;
mod scrollback;
mod shared;
mod typing;
mod uploads;

pub use self::admin::Kicked;
pub use self::events::{Audience, Command, Event, Farewell, Kick, Limits, Report};
use self::history::message_time;
pub use self::scrollback::ScrollbackStats;
pub use self::uploads::UploadStats;

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
    /// The log keeps more than memory and answers reads ([`Restored::readable`]).
    readable: bool,
    /// History pages and searches waiting for the log, or for their next slice.
    jobs: scrollback::Jobs,
    /// Each identity's connections here (held names and token subjects).
    identities: HashMap<Owner, Vec<ClientId>>,
    /// The names identities were last seen under: how a conversation is
    /// shown when its other person's hold is not known here.
    seen_names: HashMap<Owner, Rc<str>>,
    /// Direct typing notices forwarded lately: (connection, conversation, when).
    direct_typing: Vec<(ClientId, RoomName, u64)>,
    /// How far each identity has read each room.
    reads: ReadMarkers,
    /// The log stores uploaded images ([`Restored::files`]).
    stores_files: bool,
    /// Announced uploads waiting for their bytes, and the bytes they reserve.
    uploads: Vec<(ClientId, uploads::PendingUpload)>,
    upload_reserved: usize,
    upload_stats: uploads::UploadStats,
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
            readable: restored.readable,
            jobs: Default::default(),
            now,
            directory: Vec::new(),
            access: Access::new(limits.password.clone(), limits.token_key.clone()),
            tokens: HashMap::new(),
            addresses: HashMap::new(),
            names: Names::new(limits.name_hold_ms, limits.store_holds),
            names_pruned: now,
            moderation: Moderation::default(),
            identities: HashMap::new(),
            seen_names: HashMap::new(),
            direct_typing: Vec::new(),
            reads: ReadMarkers::default(),
            stores_files: restored.files,
            uploads: Vec::new(),
            upload_reserved: 0,
            upload_stats: Default::default(),
            limits,
        };
        for (key, value) in &restored.settings {
            if key.starts_with("read/") {
                core.reads.apply(key, value);
                continue;
            }
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
            if direct::is_direct(&name) {
                for stored in &history {
                    core.learn_names(&name, &stored.json, stored.owner);
                }
            }
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
        names.sort_unstable();
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
            Event::Binary {
                client,
                data,
                nonce,
            } => self.received_upload(client, data, nonce, self.now, out),
            Event::Gone { client, now } => self.gone(client, now, out),
            Event::Tick { now } => {
                self.access.tick(now);
                if now.saturating_sub(self.names_pruned) >= 60_000 {
                    self.names_pruned = now;
                    for (key, value) in self.names.prune(now) {
                        out.push(Command::Set { key, value });
                    }
                }
                for (key, value) in self.reads.due(now) {
                    out.push(Command::Set { key, value });
                }
                self.bound_idle_rooms(out)
            }
            Event::Log(LogEvent::Committed(record)) => self.committed(record, out),
            Event::Log(LogEvent::Read {
                ticket,
                found,
                exhausted,
            }) => self.read_done(ticket, found, exhausted, out),
            Event::Log(LogEvent::ReadFailed { ticket }) => self.read_failed(ticket, out),
            Event::Log(LogEvent::Dropped { room, below }) => self.dropped(&room, below),
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
            Event::Log(LogEvent::Setting { key, value }) if key.starts_with("read/") => {
                self.read_elsewhere(&key, &value, out)
            }
            Event::Log(LogEvent::Setting { key, value }) => {
                match self.moderation.apply(&key, &value) {
                    Applied::Banned(target) => self.enforce_ban(&target, out),
                    Applied::Room(room) => self.announce_settings(&room, out),
                    Applied::Nothing => {}
                }
            }
            Event::Log(LogEvent::Notice { key, value }) => {
                if let Some(name) = key.strip_prefix("kick/") {
                    self.kick(Kick::User(name.to_string()), out);
                } else if let Some(room) = key.strip_prefix("typing/") {
                    self.remote_typing(room, &value, out);
                } else if let Some(owner) = key.strip_prefix("dmtyping/") {
                    self.remote_direct_typing(owner, &value, out);
                } else if key.starts_with("read/") {
                    self.read_elsewhere(&key, &value, out);
                }
            }
            Event::Log(LogEvent::Settings(all)) => {
                for (key, value) in all.iter().filter(|(k, _)| k.starts_with("hold/")) {
                    self.names.apply(key, value);
                }
                for (key, value) in all.iter().filter(|(k, _)| k.starts_with("read/")) {
                    self.read_elsewhere(key, value, out);
                }
                let (rooms, banned) = self.moderation.replace(&all);
                for target in &banned {
                    self.enforce_ban(target, out);
                }
                for room in &rooms {
                    self.announce_settings(room, out);
                }
            }
            // The server's (it serves images): never handed here.
            Event::Log(LogEvent::File { .. }) => {}
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

    /// Every connection of one identity.
    pub fn connections_of(&self, owner: Owner) -> &[ClientId] {
        self.identities.get(&owner).map_or(&[], |c| &c[..])
    }

    /// What must be stored before the process stops (read markers waiting for their second).
    pub fn shutdown(&mut self, out: &mut Out) {
        for (key, value) in self.reads.pending() {
            out.push(Command::Set { key, value });
        }
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
            .filter(|r| r.ready && !direct::is_direct(&r.name))
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
                .filter(|d| !direct::is_direct(&d.room))
                .map(|d| protocol::RoomSummary {
                    room: &d.room,
                    online: d.online,
                    last_message_time: d.last_message_time,
                }),
        );
        list.sort_unstable_by(|a, b| b.online.cmp(&a.online).then(a.room.cmp(b.room)));
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
            // A conversation is the client's by its name (`direct_room`): no join needed.
            Some(s) if direct::is_direct(room) => Ok(Some(s)),
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
        // The shell let a text through where an announced upload's bytes should have come.
        self.upload_abandoned(client, out);
        let Some(frame) = incoming::parse(text) else {
            return reply(out, client, protocol::error_json(ErrorCode::BadJson, None));
        };
        if let Err(code) = self.admit(client, &frame.what, now, out) {
            return reply(out, client, protocol::error_json(code, None));
        }
        let room = match &frame.room {
            RoomField::Name(raw) if raw.trim_start().starts_with('@') => {
                match self.direct_room(client, raw.trim_start(), now) {
                    Ok(room) => room,
                    Err(code) => {
                        let json = protocol::error_json(code, Some(raw.trim()));
                        return reply(out, client, json);
                    }
                }
            }
            field => match self.room_of(field) {
                Ok(room) => room,
                Err(code) => return reply(out, client, protocol::error_json(code, None)),
            },
        };
        let result = match frame.what {
            Incoming::Join(join) => self.join(client, &room, join, now, out),
            Incoming::Leave => self.leave(client, &room, now, out),
            Incoming::Message(said) => self.message(client, &room, &said, now, out),
            Incoming::Edit { id, message } => {
                let text = message.as_deref().unwrap_or("");
                self.change(client, &room, id, Some(text), now, out)
            }
            Incoming::Delete { id } => self.change(client, &room, id, None, now, out),
            Incoming::History(fields) => self.history(client, &room, &fields, out),
            Incoming::Search { q, limit, before } => {
                self.search(client, &room, (&q, limit, before))
            }
            Incoming::Typing => self.typing(client, &room, now, out),
            Incoming::React { id, emoji } => self.react(client, &room, id, &emoji, now, out),
            Incoming::Read { id } => self.read(client, &room, id, now, out),
            Incoming::Upload { bytes, message } => {
                self.announce_upload(client, &room, bytes, message.as_deref(), now, out)
            }
            Incoming::Unknown => Err(ErrorCode::BadType),
        };
        if let Err(code) = result {
            let json = protocol::error_json(code, Some(&room));
            let json = self.for_client(client, &room, json);
            reply(out, client, json);
        }
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
