//! The message log on Redis (`--redis`): any number of picochat processes
//! share one set of rooms. Modelled on Centrifuge's Redis broker.
//!
//! - **Publish** is one Lua script (`publish.lua`): the room's meta hash gives
//!   the epoch and the next id (`HINCRBY`), the message is `XADD`ed to the
//!   room's stream under that id, then `PUBLISH`ed to the room's channel. So a
//!   message is numbered, stored and fanned out at once, or not at all.
//! - **Delivery** comes only from the subscription (or from the stream), never
//!   from the publish reply: every node hands its core the same records in the
//!   same order, whichever node a message was sent through.
//! - **Watching a room**: subscribe first, then read the stream (`read.lua`);
//!   messages arriving meanwhile wait, and duplicates are dropped by id. A gap
//!   in ids (a message the subscription missed) is filled from the stream; an
//!   epoch change (Redis lost its data) reloads the room. Every
//!   `--redis-check-interval` each room's position is read again, so a
//!   subscription that silently stopped is found.
//! - **Presence** across nodes (`presence.lua`): per room, a hash of who is
//!   online on which node and a sorted set of when each entry expires. A node
//!   refreshes its entries every `--redis-presence-ttl` × 5/12 (25 s of 60 s)
//!   and sweeps expired ones, so the users of a node that died leave within
//!   the TTL. Changes travel on the room's channel; the core announces a
//!   join or leave only when a user came or went in the room as a whole.
//! - **Two links** (`link.rs`): commands and subscriptions, each a mio source
//!   with a RESP codec (`resp.rs`), reconnecting with a backoff capped at
//!   `--redis-retry-max`. A publish never sent is refused (`unavailable`); one
//!   handed to the kernel is in doubt until its reply, with no timeout that
//!   guesses. If the link drops first, the room's next read from the stream
//!   tells the truth: each publish carries a tag (node and number) stored
//!   beside the message, so one found there was delivered by that read, and
//!   one not found is refused then.
//!
//! - **Moderation settings** (bans, room settings) are one hash,
//!   `{prefix}settings`, written by `setting.lua` with a notice on the
//!   `{prefix}settings` channel; each node reads the whole hash whenever its
//!   subscription to that channel (re)starts, so nothing set while it was
//!   away is missed.
//!
//! Here: the log's state (rooms watched, what each reply answers, publishes in
//! doubt, presence kept, metrics). Elsewhere in this folder: `link.rs` (one
//! connection), `resp.rs` (the wire format), `decode.rs` (what scripts and
//! channels return), `setup.rs` (URLs, handshake, the start-up check), and the
//! Lua scripts. Nothing here blocks except [`RedisLog::open`]'s start-up
//! check, which runs before the loop. The chat rules stay in the core.

mod decode;
mod link;
mod resp;
mod setup;

use super::{Draft, LogEvent, LogHealth, MessageLog, Record, Restored};
use crate::chat::protocol::{self, RoomName};
use crate::chat::session::ClientId;
use crate::{log_info, log_warn};
use decode::Published;
pub use link::Target;
use link::{Change, Link};
use mio::{Registry, Token};
use resp::Value;
pub use setup::RedisConfig;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const PUBLISH_LUA: &str = include_str!("publish.lua");
const READ_LUA: &str = include_str!("read.lua");
const PRESENCE_LUA: &str = include_str!("presence.lua");
const ROOMS_LUA: &str = include_str!("rooms.lua");
const SETTING_LUA: &str = include_str!("setting.lua");
/// How often the rooms directory (`/api/rooms` across nodes) is read.
const DIRECTORY_EVERY_MS: u64 = 2000;
/// Rooms the directory lists, at most.
const DIRECTORY_ROOMS: usize = 100;

/// What a reply on the command link answers, in the order sent.
#[derive(Debug)]
enum Pending {
    Handshake(&'static str),
    Publish {
        room: RoomName,
        sender: Option<ClientId>,
        /// This node's number for the message (its tag in the stream).
        tag: u64,
        sent: Instant,
        /// The link's byte count once this command is written.
        end: u64,
    },
    Read {
        room: RoomName,
        gen: u64,
    },
    /// A presence change, refresh or sweep: only a failure matters.
    Presence,
    Directory,
    /// A setting written (only a failure matters: the notice brings it back).
    Setting,
    /// All settings read.
    Settings,
}

/// One room this node has members in.
#[derive(Debug)]
struct Watch {
    channel: Vec<u8>,
    /// Incremented on every (re)watch, so a late reply for an old one is ignored.
    gen: u64,
    /// The epoch and last id handed to the core; `None` until the first load.
    epoch: Option<u64>,
    last: u64,
    subscribed: bool,
    reading: bool,
    /// Published messages held while a read is in flight.
    held: Vec<Published>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
struct Stats {
    rtt_sum: Duration,
    rtt_count: u64,
    reconnects: u64,
    gaps_filled: u64,
    position_checks: u64,
    bad_data: u64,
}

/// Redis has not answered a command for this long: `/healthz` says
/// `degraded` (nothing is failed for it: replies may still come).
const STALL_MS: u128 = 5000;

pub struct RedisLog {
    registry: Registry,
    cmd: Link,
    sub: Link,
    cfg: RedisConfig,
    publish_sha: String,
    read_sha: String,
    pending: VecDeque<Pending>,
    publishes_pending: usize,
    /// Replies on the subscription link that answer AUTH/SELECT, not pub/sub.
    sub_handshake: usize,
    rooms: HashMap<RoomName, Watch>,
    channels: HashMap<Vec<u8>, RoomName>,
    next_gen: u64,
    ready: Vec<LogEvent>,
    replies: Vec<Value>,
    stats: Stats,
    errors_total: u64,
    /// A refusal Redis gave the handshake (a wrong password): degraded until it passes.
    refused: Option<String>,
    /// The refusal came on the current connections: drop them at the end of the turn.
    drop_links: bool,
    /// Whether both links were up, to log each change once.
    was_up: Option<bool>,
    next_check: u64,
    /// Since when the oldest unanswered command has waited (reset by each reply).
    waiting_since: Option<Instant>,
    was_stalled: bool,
    /// This process's name in presence entries: start time and pid.
    node: String,
    presence_sha: String,
    rooms_sha: String,
    next_directory: u64,
    /// Who is online here, per room (what this node refreshes in Redis).
    local: HashMap<RoomName, HashMap<String, String>>,
    next_refresh: u64,
    /// The tag of the next publish.
    next_tag: u64,
    /// Publishes written before the link dropped, unanswered: settled by
    /// the room's next read.
    in_doubt: Vec<InDoubt>,
    setting_sha: String,
    /// The settings channel's name, and whether the subscription to it is confirmed.
    settings_channel: Vec<u8>,
    settings_subscribed: bool,
}

#[derive(Debug)]
struct InDoubt {
    room: RoomName,
    sender: Option<ClientId>,
    tag: u64,
}

impl RedisLog {
    /// Checks Redis once before the loop starts: a refused password is an
    /// error (exit 2); Redis not answering is not (picochat starts degraded
    /// and keeps trying). Then makes the two links, registered under
    /// `tokens`. In Redis mode rooms are loaded when first joined.
    pub fn open(
        cfg: RedisConfig,
        registry: &Registry,
        tokens: (Token, Token),
    ) -> Result<(RedisLog, Restored), String> {
        setup::probe(&cfg)?;
        let registry = registry
            .try_clone()
            .map_err(|e| format!("cannot watch Redis sockets: {e}"))?;
        let log = RedisLog {
            registry,
            cmd: Link::new(cfg.target.clone(), tokens.0, "commands", cfg.retry_max_ms),
            sub: Link::new(
                cfg.target.clone(),
                tokens.1,
                "subscriptions",
                cfg.retry_max_ms,
            ),
            publish_sha: sha1_hex(PUBLISH_LUA),
            read_sha: sha1_hex(READ_LUA),
            presence_sha: sha1_hex(PRESENCE_LUA),
            rooms_sha: sha1_hex(ROOMS_LUA),
            setting_sha: sha1_hex(SETTING_LUA),
            settings_channel: format!("{}settings", cfg.prefix).into_bytes(),
            settings_subscribed: false,
            next_directory: 0,
            node: format!("{:x}-{}", crate::logging::unix_millis(), std::process::id()),
            local: HashMap::new(),
            next_refresh: 0,
            next_tag: 0,
            in_doubt: Vec::new(),
            pending: VecDeque::new(),
            publishes_pending: 0,
            sub_handshake: 0,
            rooms: HashMap::new(),
            channels: HashMap::new(),
            next_gen: 0,
            ready: Vec::new(),
            replies: Vec::new(),
            stats: Stats::default(),
            errors_total: 0,
            refused: None,
            drop_links: false,
            was_up: None,
            next_check: cfg.check_interval_ms,
            waiting_since: None,
            was_stalled: false,
            cfg,
        };
        let restored = Restored {
            epoch: crate::logging::unix_millis(),
            on_demand: true,
            ..Restored::default()
        };
        Ok((log, restored))
    }

    fn key(&self, kind: &str, room: &str) -> String {
        format!("{}{kind}:{room}", self.cfg.prefix)
    }

    fn up(&self) -> bool {
        self.cmd.is_up() && self.sub.is_up() && self.refused.is_none()
    }

    /// A command was sent and no reply has come for [`STALL_MS`].
    fn stalled(&self) -> bool {
        self.waiting_since
            .is_some_and(|t| t.elapsed().as_millis() >= STALL_MS)
    }

    /// Notes what the next reply on the command link answers.
    fn expect(&mut self, p: Pending) {
        self.pending.push_back(p);
        self.waiting_since.get_or_insert_with(Instant::now);
    }

    /// Queues AUTH and SELECT on a fresh connection; returns how many.
    fn handshake(link: &mut Link, cfg: &RedisConfig) -> usize {
        let commands = setup::handshake_commands(cfg);
        for c in &commands {
            link.send(c);
        }
        commands.len()
    }

    fn send_read(&mut self, room: &RoomName) {
        let Some(w) = self.rooms.get_mut(room) else {
            return;
        };
        if !self.cmd.is_up() || w.reading {
            return;
        }
        w.reading = true;
        let since = w.epoch.map(|_| w.last.to_string()).unwrap_or_default();
        let epoch = w.epoch.map(|e| e.to_string()).unwrap_or_default();
        let gen = w.gen;
        let meta = format!("{}meta:{room}", self.cfg.prefix);
        let stream = format!("{}stream:{room}", self.cfg.prefix);
        let presence = format!("{}presence:{room}", self.cfg.prefix);
        self.cmd.send(&[
            "EVALSHA",
            &self.read_sha,
            "3",
            &meta,
            &stream,
            &presence,
            &since,
            &self.cfg.history.max(1).to_string(),
            &crate::logging::unix_millis().to_string(),
            &epoch,
        ]);
        self.expect(Pending::Read {
            room: room.clone(),
            gen,
        });
    }

    fn on_cmd_connected(&mut self) {
        self.stats.reconnects += 1;
        for _ in 0..Self::handshake(&mut self.cmd, &self.cfg) {
            self.expect(Pending::Handshake("AUTH/SELECT"));
        }
        for script in [PUBLISH_LUA, READ_LUA, PRESENCE_LUA, ROOMS_LUA, SETTING_LUA] {
            self.cmd.send(&["SCRIPT", "LOAD", script]);
            self.expect(Pending::Handshake("SCRIPT LOAD"));
        }
        let rooms: Vec<RoomName> = self
            .rooms
            .iter()
            .filter(|(_, w)| w.subscribed)
            .map(|(r, _)| r.clone())
            .collect();
        for room in rooms {
            self.send_read(&room);
        }
        // Whoever is online here is put back (a restarted Redis may have lost them).
        self.next_refresh = 0;
        if self.settings_subscribed {
            self.read_settings();
        }
    }

    /// Reads every moderation setting (after the subscription to their
    /// notices is confirmed, so none can fall between the read and it).
    fn read_settings(&mut self) {
        if !self.cmd.is_up() || self.pending.iter().any(|p| matches!(p, Pending::Settings)) {
            return;
        }
        let hash = format!("{}settings", self.cfg.prefix);
        self.cmd.send(&["HGETALL", &hash]);
        self.expect(Pending::Settings);
    }

    /// Runs `presence.lua` in `mode` for `room` with `args` (pairs or names).
    fn send_presence(&mut self, room: &str, mode: &str, args: &[&str], now_wall: u64) {
        if !self.cmd.is_up() || self.pending.len() >= self.cfg.max_pending {
            // Down, or stalled with a backlog: the refresh after it puts this
            // node's entries back, and entries not refreshed expire.
            return;
        }
        let hash = self.key("presence", room);
        let expiry = self.key("presence-expiry", room);
        let index = format!("{}rooms", self.cfg.prefix);
        let channel = self.key("room", room);
        let now = now_wall.to_string();
        let ttl = self.cfg.presence_ttl_ms.to_string();
        let mut cmd: Vec<&str> = vec![
            "EVALSHA",
            &self.presence_sha,
            "3",
            &hash,
            &expiry,
            &index,
            mode,
            &channel,
            &now,
            &ttl,
            &self.node,
            room,
        ];
        cmd.extend_from_slice(args);
        self.cmd.send(&cmd);
        self.expect(Pending::Presence);
    }

    /// Every refresh interval: this node's entries get a new expiry (and
    /// come back if Redis lost them), and expired entries of any node go.
    fn refresh_presence(&mut self) {
        let wall = crate::logging::unix_millis();
        let local: Vec<(RoomName, Vec<String>)> = self
            .local
            .iter()
            .filter(|(_, users)| !users.is_empty())
            .map(|(room, users)| {
                let pairs = users
                    .iter()
                    .flat_map(|(u, a)| [u.clone(), a.clone()])
                    .collect();
                (room.clone(), pairs)
            })
            .collect();
        for (room, pairs) in local {
            let args: Vec<&str> = pairs.iter().map(String::as_str).collect();
            self.send_presence(&room, "on", &args, wall);
        }
        let watched: Vec<RoomName> = self.rooms.keys().cloned().collect();
        for room in watched {
            self.send_presence(&room, "sweep", &[], wall);
        }
    }

    fn on_sub_connected(&mut self) {
        self.sub_handshake = Self::handshake(&mut self.sub, &self.cfg);
        let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE", &self.settings_channel];
        args.extend(self.rooms.values().map(|w| &w.channel[..]));
        self.sub.send(&args);
    }

    /// The command link dropped: publishes never written are refused;
    /// written ones are in doubt, and catch-up will show whether they were stored.
    fn on_cmd_lost(&mut self) {
        let written = self.cmd.written();
        for p in self.pending.drain(..) {
            match p {
                Pending::Publish {
                    room, sender, end, ..
                } if end > written => self.ready.push(LogEvent::Refused { room, sender }),
                Pending::Publish {
                    room, sender, tag, ..
                } => self.in_doubt.push(InDoubt { room, sender, tag }),
                _ => {}
            }
        }
        self.publishes_pending = 0;
        self.waiting_since = None;
        for w in self.rooms.values_mut() {
            w.reading = false;
        }
    }

    fn on_sub_lost(&mut self) {
        self.settings_subscribed = false;
        for w in self.rooms.values_mut() {
            w.subscribed = false;
        }
    }

    fn note_state(&mut self, why: Option<&str>) {
        let up = self.up();
        if self.was_up != Some(up) {
            match (up, why) {
                (true, _) => log_info!("redis: connected ({} rooms watched)", self.rooms.len()),
                (false, Some(why)) => log_warn!(
                    "redis: unavailable ({why}); retrying at least every {} ms",
                    self.cfg.retry_max_ms
                ),
                (false, None) => log_warn!("redis: unavailable; retrying"),
            }
            self.was_up = Some(up);
        }
    }

    fn cmd_reply(&mut self, reply: Value) {
        let Some(p) = self.pending.pop_front() else {
            self.errors_total += 1;
            log_warn!("redis: a reply nothing asked for: {reply:?}");
            return;
        };
        // A reply is progress: the wait starts again for the next one, if any.
        self.waiting_since = (!self.pending.is_empty()).then(Instant::now);
        match p {
            Pending::Handshake(what) => match reply {
                Value::Error(e) => {
                    if self.refused.is_none() {
                        log_warn!("redis: {what} refused: {e}");
                    }
                    self.refused = Some(e);
                    self.drop_links = true;
                    self.errors_total += 1;
                }
                _ => {
                    // The last step of the handshake: all of it passed.
                    if what == "SCRIPT LOAD" && !self.drop_links {
                        self.refused = None;
                    }
                }
            },
            Pending::Publish {
                room, sender, sent, ..
            } => {
                self.publishes_pending -= 1;
                match reply {
                    Value::Array(_) => {
                        self.stats.rtt_sum += sent.elapsed();
                        self.stats.rtt_count += 1;
                    }
                    other => {
                        self.errors_total += 1;
                        self.stats.bad_data += 1;
                        log_warn!("redis: publish to {room} failed: {other:?}");
                        if matches!(&other, Value::Error(e) if e.starts_with("NOSCRIPT")) {
                            self.cmd.send(&["SCRIPT", "LOAD", PUBLISH_LUA]);
                            self.expect(Pending::Handshake("SCRIPT LOAD"));
                        }
                        self.ready.push(LogEvent::Refused { room, sender });
                    }
                }
            }
            Pending::Read { room, gen } => self.read_reply(room, gen, reply),
            Pending::Presence => {
                if let Value::Error(e) = reply {
                    self.errors_total += 1;
                    self.stats.bad_data += 1;
                    log_warn!("redis: a presence update failed: {e}");
                }
            }
            Pending::Setting => {
                if let Value::Error(e) = reply {
                    self.errors_total += 1;
                    log_warn!("redis: storing a moderation setting failed: {e}");
                }
            }
            Pending::Settings => match decode::settings(&reply) {
                Some(all) => self.ready.push(LogEvent::Settings(all)),
                None => {
                    self.stats.bad_data += 1;
                    log_warn!("redis: reading the moderation settings failed: {reply:?}");
                }
            },
            Pending::Directory => match decode::directory(&reply) {
                Some(list) => self.ready.push(LogEvent::Directory(list)),
                None => {
                    self.stats.bad_data += 1;
                    log_warn!("redis: reading the rooms directory failed: {reply:?}");
                }
            },
        }
    }

    /// `read.lua`'s answer: `{epoch, seq, entries}`.
    fn read_reply(&mut self, room: RoomName, gen: u64, reply: Value) {
        let Some(w) = self.rooms.get_mut(&room).filter(|w| w.gen == gen) else {
            return; // unwatched (or watched again) since
        };
        w.reading = false;
        let parsed = match &reply {
            Value::Array(a) if a.len() == 4 => a[0]
                .as_u64()
                .zip(a[1].as_u64())
                .map(|(e, s)| (e, s, &a[2], &a[3])),
            _ => None,
        };
        let Some((epoch, seq, entries, online)) = parsed else {
            self.errors_total += 1;
            self.stats.bad_data += 1;
            log_warn!("redis: reading {room} failed: {reply:?}");
            if w.epoch.is_none() {
                self.ready.push(LogEvent::Unreadable(room));
            }
            return;
        };
        let mut records = Vec::new();
        let mut tags = HashSet::new();
        if let Value::Array(entries) = entries {
            for e in entries {
                match decode::entry(&room, e) {
                    Some((r, tag)) => {
                        records.push(r);
                        tags.extend(tag);
                    }
                    None => {
                        self.stats.bad_data += 1;
                        log_warn!("redis: skipped a malformed entry in {room}'s stream: {e:?}");
                    }
                }
            }
        }
        // Publishes in doubt since a lost link: stored (delivered below) or refused now.
        let node = &self.node;
        let ready = &mut self.ready;
        self.in_doubt.retain(|d| {
            if d.room != room {
                return true;
            }
            if !tags.contains(&format!("{node}:{}", d.tag)) {
                ready.push(LogEvent::Refused {
                    room: d.room.clone(),
                    sender: d.sender,
                });
            }
            false
        });
        let fresh = w.epoch != Some(epoch);
        // Entries the node lacks that the stream no longer holds (trimmed
        // while it was away): start the room over rather than leave a hole.
        let hole = !fresh && records.first().is_some_and(|r| r.id > w.last + 1);
        if fresh || hole {
            w.epoch = Some(epoch);
            w.last = seq.max(records.last().map_or(0, |r| r.id));
            let presence = decode::presence_snapshot(&room, online, &self.node);
            self.ready.push(LogEvent::Loaded {
                room: room.clone(),
                epoch,
                last_id: w.last,
                history: records,
                presence,
            });
        } else {
            let mut filled = false;
            for r in records {
                if r.id > w.last {
                    w.last = r.id;
                    filled = true;
                    self.ready.push(LogEvent::Committed(r));
                }
            }
            if filled {
                self.stats.gaps_filled += 1;
            }
            // Ids a failed script took and never stored: nothing to wait for.
            w.last = w.last.max(seq);
        }
        let held = std::mem::take(&mut w.held);
        for p in held {
            self.published(&room, p);
        }
    }

    /// A message from the subscription.
    fn published(&mut self, room: &RoomName, p: Published) {
        let Some(w) = self.rooms.get_mut(room) else {
            return;
        };
        // Messages wait while the room is read (or must be): at most
        // `--history` of them, what the stream keeps anyway. Past that they
        // are dropped, and the next one's gap is read from the stream.
        let hold_max = self.cfg.history.max(1);
        if w.reading || w.epoch.is_none() {
            if w.held.len() < hold_max {
                w.held.push(p);
            }
            return;
        }
        if Some(p.epoch) != w.epoch || p.id > w.last + 1 {
            // A new epoch, or a gap: read the stream, hold this meanwhile.
            if w.held.len() < hold_max {
                w.held.push(p);
            }
            self.send_read(room);
            return;
        }
        if p.id <= w.last {
            return; // already delivered (from the stream, or twice)
        }
        w.last = p.id;
        let (json, owner) = protocol::seal(room, p.id, &p.fields);
        self.ready.push(LogEvent::Committed(Record {
            room: room.clone(),
            id: p.id,
            json: json.into(),
            time: p.time,
            sender: None,
            owner,
        }));
    }

    fn sub_reply(&mut self, reply: Value) {
        let Value::Array(parts) = reply else {
            if self.sub_handshake > 0 {
                self.sub_handshake -= 1;
                if let Value::Error(e) = reply {
                    if self.refused.is_none() {
                        log_warn!("redis: subscription link refused: {e}");
                    }
                    self.refused = Some(e);
                    self.drop_links = true;
                    self.errors_total += 1;
                }
            }
            return;
        };
        let kind = parts.first().and_then(Value::as_bytes).unwrap_or_default();
        let channel = parts.get(1).and_then(Value::as_bytes).unwrap_or_default();
        if channel == &self.settings_channel[..] {
            match kind {
                b"subscribe" => {
                    self.settings_subscribed = true;
                    self.read_settings();
                }
                b"message" => {
                    let payload = parts.get(2).and_then(Value::as_bytes).unwrap_or_default();
                    if let Some(notice) = payload.strip_prefix(b"!") {
                        // "!<node>\n<key>\n<value>": a notice, not a stored setting.
                        let text = String::from_utf8_lossy(notice);
                        let mut parts = text.splitn(3, '\n');
                        if let (Some(node), Some(key), Some(value)) =
                            (parts.next(), parts.next(), parts.next())
                        {
                            if node != self.node {
                                self.ready.push(LogEvent::Notice {
                                    key: key.to_string(),
                                    value: value.to_string(),
                                });
                            }
                        }
                        return;
                    }
                    match decode::setting(payload) {
                        Some((key, value)) => self.ready.push(LogEvent::Setting { key, value }),
                        None => {
                            self.stats.bad_data += 1;
                            log_warn!("redis: skipped a foreign notice on the settings channel");
                        }
                    }
                }
                _ => {}
            }
            return;
        }
        let Some(room) = self.channels.get(channel).cloned() else {
            return;
        };
        match kind {
            b"subscribe" => {
                if let Some(w) = self.rooms.get_mut(&room) {
                    w.subscribed = true;
                }
                self.send_read(&room);
            }
            b"message" => {
                let payload = parts.get(2).and_then(Value::as_bytes).unwrap_or_default();
                if let Some(json) = payload.strip_prefix(b"p") {
                    match decode::parse_presence(&room, json) {
                        Some(p) if p.node == self.node => {}
                        Some(p) => self.ready.push(LogEvent::Presence(p)),
                        None => {
                            self.stats.bad_data += 1;
                            log_warn!(
                                "redis: skipped a foreign presence notice on {room}'s channel"
                            );
                        }
                    }
                    return;
                }
                match decode::parse_published(payload) {
                    Some(p) => self.published(&room, p),
                    None => {
                        self.stats.bad_data += 1;
                        log_warn!(
                            "redis: skipped a foreign message on {room}'s channel: {:?}",
                            String::from_utf8_lossy(&payload[..payload.len().min(80)])
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// Moves one link's bytes (the subscription link if `sub`) and handles its replies.
    fn pump_link(&mut self, sub: bool, now: u64, replies: &mut Vec<Value>) {
        loop {
            let link = if sub { &mut self.sub } else { &mut self.cmd };
            let name = link.name();
            match link.pump(&self.registry, now, replies) {
                // Queue the handshake, then go round to write it.
                Change::Connected if sub => self.on_sub_connected(),
                Change::Connected => self.on_cmd_connected(),
                Change::Lost(why) => {
                    if sub {
                        self.on_sub_lost();
                    } else {
                        self.on_cmd_lost();
                    }
                    self.note_state(Some(&format!("{name} link: {why}")));
                    break;
                }
                Change::None => break,
            }
        }
        for r in replies.drain(..) {
            if sub {
                self.sub_reply(r);
            } else {
                self.cmd_reply(r);
            }
        }
    }

    fn pump(&mut self, now: u64) {
        let mut replies = std::mem::take(&mut self.replies);
        self.pump_link(false, now, &mut replies);
        self.pump_link(true, now, &mut replies);
        if now >= self.next_refresh && self.cmd.is_up() {
            // 25 s of a 60 s TTL, as Centrifuge: two refreshes may fail before entries expire.
            self.next_refresh = now + (self.cfg.presence_ttl_ms * 5 / 12).max(50);
            self.refresh_presence();
        }
        if now >= self.next_directory && self.cmd.is_up() {
            self.next_directory = now + DIRECTORY_EVERY_MS;
            self.read_directory();
        }
        if now >= self.next_check {
            self.next_check = now + self.cfg.check_interval_ms.max(100);
            let rooms: Vec<RoomName> = self
                .rooms
                .iter()
                .filter(|(_, w)| w.subscribed && w.epoch.is_some())
                .map(|(r, _)| r.clone())
                .collect();
            for room in rooms {
                self.stats.position_checks += 1;
                self.send_read(&room);
            }
        }
        // Reads queued by subscription replies or the check, a script
        // reload queued by a reply: write them in this turn.
        self.pump_link(false, now, &mut replies);
        self.replies = replies;
        if std::mem::take(&mut self.drop_links) {
            // A refused handshake: drop both links, try again after the backoff.
            let why = self.refused.clone().unwrap_or_default();
            self.cmd.drop_connection(&self.registry, now, &why);
            self.sub.drop_connection(&self.registry, now, &why);
            self.on_cmd_lost();
            self.on_sub_lost();
        }
        self.note_state(None);
        let stalled = self.stalled();
        if stalled != self.was_stalled {
            self.was_stalled = stalled;
            if stalled {
                log_warn!(
                    "redis: no reply for {} s ({} commands waiting); degraded until it answers",
                    STALL_MS / 1000,
                    self.pending.len()
                );
            } else {
                log_info!("redis: answering again");
            }
        }
    }

    /// Reads the rooms directory, unless a read of it still waits (a stalled Redis).
    fn read_directory(&mut self) {
        if self.pending.iter().any(|p| matches!(p, Pending::Directory)) {
            return;
        }
        let index = format!("{}rooms", self.cfg.prefix);
        self.cmd.send(&[
            "EVALSHA",
            &self.rooms_sha,
            "1",
            &index,
            &DIRECTORY_ROOMS.to_string(),
            &self.cfg.prefix,
        ]);
        self.expect(Pending::Directory);
    }
}

impl MessageLog for RedisLog {
    fn append(&mut self, draft: Draft) {
        if !self.up() || self.publishes_pending >= self.cfg.max_pending {
            self.ready.push(LogEvent::Refused {
                room: draft.room,
                sender: draft.sender,
            });
            return;
        }
        let meta = self.key("meta", &draft.room);
        let stream = self.key("stream", &draft.room);
        let index = format!("{}rooms", self.cfg.prefix);
        let channel = self.key("room", &draft.room);
        self.next_tag += 1;
        let tag = self.next_tag;
        let end = self.cmd.send(&[
            "EVALSHA",
            &self.publish_sha,
            "3",
            &meta,
            &stream,
            &index,
            &draft.fields,
            &draft.time.to_string(),
            &self.cfg.history.max(1).to_string(),
            &crate::logging::unix_millis().to_string(),
            &channel,
            &format!("{}:{tag}", self.node),
            &draft.room,
        ]);
        self.publishes_pending += 1;
        self.expect(Pending::Publish {
            room: draft.room,
            sender: draft.sender,
            tag,
            sent: Instant::now(),
            end,
        });
    }

    fn commit(&mut self, now_ms: u64, out: &mut Vec<LogEvent>) {
        self.pump(now_ms);
        out.append(&mut self.ready);
    }

    fn watch(&mut self, room: &RoomName) {
        if self.rooms.contains_key(room) {
            return;
        }
        self.next_gen += 1;
        let channel = self.key("room", room).into_bytes();
        self.channels.insert(channel.clone(), room.clone());
        if self.sub.is_up() {
            self.sub.send(&[&b"SUBSCRIBE"[..], &channel]);
        }
        self.rooms.insert(
            room.clone(),
            Watch {
                channel,
                gen: self.next_gen,
                epoch: None,
                last: 0,
                subscribed: false,
                reading: false,
                held: Vec::new(),
            },
        );
    }

    fn set(&mut self, key: String, value: String) {
        if !self.up() {
            self.errors_total += 1;
            log_warn!("redis: unavailable; the moderation setting {key:?} was not stored");
            return;
        }
        let hash = format!("{}settings", self.cfg.prefix);
        let channel = String::from_utf8_lossy(&self.settings_channel).into_owned();
        self.cmd.send(&[
            "EVALSHA",
            &self.setting_sha,
            "1",
            &hash,
            &key,
            &value,
            &channel,
        ]);
        self.expect(Pending::Setting);
    }

    fn notify(&mut self, key: &str, value: &str) {
        if !self.up() {
            log_warn!("redis: unavailable; the notice {key:?} was not sent");
            return;
        }
        let channel = String::from_utf8_lossy(&self.settings_channel).into_owned();
        let payload = format!("!{}\n{key}\n{value}", self.node);
        self.cmd.send(&["PUBLISH", &channel, &payload]);
        self.expect(Pending::Setting);
    }

    fn forget(&mut self, room: &str) {
        // Nobody here is in the room any more: nobody to tell about these.
        self.in_doubt.retain(|d| &*d.room != room);
        if let Some(w) = self.rooms.remove(room) {
            self.channels.remove(&w.channel);
            if self.sub.is_up() {
                self.sub.send(&[&b"UNSUBSCRIBE"[..], &w.channel]);
            }
        }
    }

    fn presence(
        &mut self,
        room: &RoomName,
        username: &str,
        avatar: Option<&str>,
        verified: bool,
        online: bool,
    ) {
        let wall = crate::logging::unix_millis();
        // The entry's value: the avatar, after a '!' when the name is verified.
        let avatar = format!(
            "{}{}",
            if verified { "!" } else { "" },
            avatar.unwrap_or_default()
        );
        let avatar = avatar.as_str();
        if online {
            self.local
                .entry(room.clone())
                .or_default()
                .insert(username.to_string(), avatar.to_string());
            self.send_presence(room, "on", &[username, avatar], wall);
        } else {
            if let Some(users) = self.local.get_mut(room) {
                users.remove(username);
                if users.is_empty() {
                    self.local.remove(room);
                }
            }
            self.send_presence(room, "off", &[username], wall);
        }
    }

    fn flush(&mut self) {
        self.cmd.flush();
        self.sub.flush();
    }

    fn wants_commit(&self) -> bool {
        self.cmd.can_write_more() || self.sub.can_write_more() || !self.ready.is_empty()
    }

    fn ready(&mut self, token: Token, readable: bool, writable: bool) {
        for link in [&mut self.cmd, &mut self.sub] {
            if link.token() == token {
                link.ready(readable, writable);
            }
        }
    }

    fn wake_in(&self, now_ms: u64) -> Option<u64> {
        let mut at = self.next_check;
        if self.cmd.is_up() {
            // Presence refresh and the directory wait for the link when it is
            // down (the reconnect below comes first): no wake-ups meanwhile.
            at = at.min(self.next_refresh).min(self.next_directory);
        }
        for link in [&self.cmd, &self.sub] {
            if let Some(t) = link.wake_at() {
                at = at.min(t);
            }
        }
        Some(at.saturating_sub(now_ms))
    }

    fn health(&self) -> LogHealth {
        LogHealth {
            degraded: !self.up() || self.stalled(),
            errors_total: self.errors_total,
        }
    }

    fn metrics(&self, out: &mut String) {
        let s = &self.stats;
        let rows: [(&str, &str, &str, String); 10] = [
            ("picochat_redis_up", "gauge", "1 when both the command and the subscription links to Redis are up", u8::from(self.up()).to_string()),
            ("picochat_redis_stalled", "gauge", "1 while a command has waited 5 s or more for Redis' reply", u8::from(self.stalled()).to_string()),
            ("picochat_redis_pending_commands", "gauge", "Commands sent to Redis and not yet answered", self.pending.len().to_string()),
            ("picochat_redis_pending_publishes", "gauge", "Chat messages sent to Redis and not yet answered (--redis-max-pending bounds it)", self.publishes_pending.to_string()),
            ("picochat_redis_rtt_seconds_sum", "counter", "Publish round trips to Redis, total seconds", {
                let us = s.rtt_sum.as_micros();
                format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
            }),
            ("picochat_redis_rtt_seconds_count", "counter", "Publish round trips to Redis", s.rtt_count.to_string()),
            ("picochat_redis_reconnects_total", "counter", "Connections made to Redis (the first one included)", s.reconnects.to_string()),
            ("picochat_redis_gaps_filled_total", "counter", "Reads from a room's stream that found messages the subscription had not delivered", s.gaps_filled.to_string()),
            ("picochat_redis_position_checks_total", "counter", "Periodic reads of a room's position in Redis", s.position_checks.to_string()),
            ("picochat_redis_bad_data_total", "counter", "Replies or entries under picochat's keys that were not what picochat writes, skipped", s.bad_data.to_string()),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }

    fn close(&mut self, now_ms: u64) {
        // This node's users leave at once rather than when their entries
        // expire: a short, bounded wait, after the loop has stopped.
        let wall = crate::logging::unix_millis();
        let local: Vec<(RoomName, Vec<String>)> = self
            .local
            .drain()
            .map(|(room, users)| (room, users.into_keys().collect()))
            .collect();
        for (room, users) in local {
            let args: Vec<&str> = users.iter().map(String::as_str).collect();
            self.send_presence(&room, "off", &args, wall);
        }
        let until = Instant::now() + Duration::from_millis(300);
        while self.cmd.is_up() && self.pending.iter().any(|p| matches!(p, Pending::Presence)) {
            if Instant::now() >= until {
                break;
            }
            self.cmd.ready(true, true);
            self.pump(now_ms);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn sha1_hex(script: &str) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(script.as_bytes())
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_hashes_are_what_redis_computes() {
        // sha1("") is well known; Redis names a script by the SHA-1 of its text.
        assert_eq!(sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }
}
