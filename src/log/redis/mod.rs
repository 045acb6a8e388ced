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
//! doubt, presence kept, metrics), opening it, and pumping its two links.
//! Elsewhere in this folder: `interface.rs` (the log as the server sees it:
//! publishing, settings, watching, presence), `replies.rs` (command
//! replies), `watching.rs` (reading streams, gap filling, epochs),
//! `presence.rs` (presence and the rooms directory), `link.rs` (one
//! connection), `resp.rs` (the wire format), `decode.rs` (what scripts and
//! channels return), `setup.rs` (URLs, handshake, the start-up check), and
//! the Lua scripts. Nothing here blocks except [`RedisLog::open`]'s start-up
//! check, which runs before the loop. The chat rules stay in the core.

mod decode;
mod interface;
mod link;
mod presence;
mod replies;
pub mod resp;
mod setup;
mod watching;

use super::{
    Draft, Link as Which, LogEvent, LogHealth, MessageLog, Read, Record, Restored, SharedLog,
};
use crate::chat::protocol::RoomName;
use crate::chat::session::ClientId;
use crate::log::format;
use crate::{diag_info, diag_warn};
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
const PAGE_LUA: &str = include_str!("page.lua");
/// Stream entries one page script looks at, at most (its work in Redis).
const PAGE_SCAN: usize = 2000;
const PRESENCE_LUA: &str = include_str!("presence.lua");
const ROOMS_LUA: &str = include_str!("rooms.lua");
const SETTING_LUA: &str = include_str!("setting.lua");
const UNFILE_LUA: &str = include_str!("unfile.lua");
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
    /// A history page or search chunk (`page.lua`).
    Page {
        ticket: u64,
        room: RoomName,
    },
    /// A presence change, refresh or sweep: only a failure matters.
    Presence,
    Directory,
    /// A setting written (only a failure matters: the notice brings it back).
    Setting,
    /// All settings read.
    Settings,
    /// An uploaded image read for serving (`GET`).
    File(String),
    /// An uploaded image removed (`unfile.lua`).
    Unfile,
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
    page_sha: String,
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
    unfile_sha: String,
    /// Bytes of all uploaded images, as the last publish or removal reported.
    file_bytes: usize,
    /// The settings channel's name, and whether the subscription to it is confirmed.
    settings_channel: Vec<u8>,
    settings_subscribed: bool,
    /// The personal channels of identities with connections here: where
    /// `publish.lua` sends their direct messages too.
    identities: HashSet<Vec<u8>>,
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
            page_sha: sha1_hex(PAGE_LUA),
            presence_sha: sha1_hex(PRESENCE_LUA),
            rooms_sha: sha1_hex(ROOMS_LUA),
            setting_sha: sha1_hex(SETTING_LUA),
            unfile_sha: sha1_hex(UNFILE_LUA),
            file_bytes: 0,
            settings_channel: format!("{}settings", cfg.prefix).into_bytes(),
            settings_subscribed: false,
            identities: HashSet::new(),
            next_directory: 0,
            node: format!("{:x}-{}", crate::clock::unix_millis(), std::process::id()),
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
            epoch: crate::clock::unix_millis(),
            on_demand: true,
            readable: true,
            files: true,
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

    fn on_cmd_connected(&mut self) {
        self.stats.reconnects += 1;
        for _ in 0..Self::handshake(&mut self.cmd, &self.cfg) {
            self.expect(Pending::Handshake("AUTH/SELECT"));
        }
        for script in [
            PUBLISH_LUA,
            READ_LUA,
            PAGE_LUA,
            PRESENCE_LUA,
            ROOMS_LUA,
            SETTING_LUA,
            UNFILE_LUA,
        ] {
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

    fn on_sub_connected(&mut self) {
        self.sub_handshake = Self::handshake(&mut self.sub, &self.cfg);
        let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE", &self.settings_channel];
        args.extend(self.rooms.values().map(|w| &w.channel[..]));
        args.extend(self.identities.iter().map(|c| &c[..]));
        self.sub.send(&args);
    }

    /// The command link dropped: publishes never written are refused;
    /// written ones are in doubt, and catch-up will show whether they were
    /// stored. Reads of older messages are answered as failed.
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
                Pending::Page { ticket, .. } => self.ready.push(LogEvent::ReadFailed { ticket }),
                Pending::File(name) => self.ready.push(LogEvent::File {
                    name,
                    fetched: crate::log::Fetched::Failed,
                }),
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
                (true, _) => diag_info!("redis: connected ({} rooms watched)", self.rooms.len()),
                (false, Some(why)) => diag_warn!(
                    "redis: unavailable ({why}); retrying at least every {} ms",
                    self.cfg.retry_max_ms
                ),
                (false, None) => diag_warn!("redis: unavailable; retrying"),
            }
            self.was_up = Some(up);
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
                diag_warn!(
                    "redis: no reply for {} s ({} commands waiting); degraded until it answers",
                    STALL_MS / 1000,
                    self.pending.len()
                );
            } else {
                diag_info!("redis: answering again");
            }
        }
    }
}

fn sha1_hex(script: &str) -> String {
    use sha1::{Digest, Sha1};
    crate::chat::protocol::hex(&Sha1::digest(script.as_bytes()))
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
