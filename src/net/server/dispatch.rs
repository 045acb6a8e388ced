//! Where a connection's events reach the chat core, and the core's commands
//! are carried out: appends and settings to the message log, frames to one
//! client or to a room's members (built once, deflated at most once), closes.
//! The one place in `net/` that calls the core.

use super::{mark_flush_on, schedule_on, Fetches, Server};
use crate::chat::{Audience, ClientId, Command, Core, Event, Farewell, Report};
use crate::clock;
use crate::config::Config;
use crate::log::Backend;
use crate::metrics::{EndReason, Snapshot, Stats};
use crate::net::admin::Admin;
use crate::net::conn::{self, Conn, Env, ReadResult, Shell, Socket};
use crate::net::deflate;
use crate::net::http::{self, Reply, Request, Route, Status, UploadAsk};
use crate::net::per_address::PerAddress;
use crate::net::timer::TimerWheel;
use crate::net::write_queue::Chunk;
use crate::net::ws::{self, close};
use crate::net::ws_session::WsKind;
use crate::{diag_debug, diag_warn};
use slab::Slab;
use std::net::IpAddr;
use std::rc::Rc;

impl Server {
    /// Lets a readable connection read, lending it a [`Dispatch`] for what it reports.
    pub(super) fn read(&mut self, key: usize) {
        let now = self.now_ms();
        let uptime_secs = self.started.elapsed().as_secs();
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.dead {
            return;
        }
        let was_chat = conn.ws_kind() == Some(WsKind::Chat);
        let wall_ms = clock::unix_millis();
        let env = Env {
            config: &self.config,
            now,
            wall_ms,
            date: &self.date,
            admin_api: self.admin_api.is_some(),
        };
        let mut dispatch = Dispatch {
            client: ClientId::new(key, conn.gen),
            wall_ms,
            date: &self.date,
            core: &mut self.core,
            commands: &mut self.commands,
            stats: &mut self.stats,
            log: &self.log,
            uptime_secs,
            fd_limit: self.fd_limit,
            max_connections: self.max_connections,
            per_address: &mut self.per_address,
            admin_api: self.admin_api.as_mut(),
            deflate: &mut self.deflate,
            fetches: &mut self.fetches,
            acme_webroot: self.config.acme_webroot.as_deref(),
        };
        let more = conn.read_ready(&mut self.scratch, &env, &mut dispatch);
        if more == ReadResult::More && !conn.in_read_list {
            conn.in_read_list = true;
            self.read_list.push(key);
        }
        if !was_chat && conn.ws_kind() == Some(WsKind::Chat) {
            // A new chat client: if the server is shutting down, say goodbye at once.
            if self.shutdown_deadline.is_some() {
                conn.on_shutdown(now);
            }
        }
        self.after_event(key);
    }

    /// Carries out the core's commands, in order. A frame for a room is built
    /// once and the same `Rc` is queued on each of the room's members.
    pub(super) fn apply_commands(&mut self) {
        let now = self.now_ms();
        let mut commands = std::mem::take(&mut self.commands);
        for command in commands.drain(..) {
            match command {
                Command::Append(draft) => {
                    self.stats.messages_received += 1;
                    self.log.append(draft);
                }
                Command::Read(read) => self.log.read(read),
                Command::RemoveFile(name) => self.log.remove_file(&name),
                Command::ExpectUpload {
                    client,
                    bytes,
                    keep,
                } => {
                    let key = client.key as usize;
                    if let Some(conn) = self.conns.get_mut(key).filter(|c| c.gen == client.gen) {
                        conn.expect_upload(bytes, keep);
                    }
                }
                Command::Forget(room) => self.log.forget(&room),
                Command::Set { key, value } => self.log.set(key, value),
                Command::Notify { key, value } => {
                    if let Some(shared) = self.log.shared() {
                        shared.notify(&key, &value);
                    }
                }
                Command::Watch(room) => {
                    if let Some(shared) = self.log.shared() {
                        shared.watch(&room);
                    }
                }
                Command::WatchIdentity { owner, on } => {
                    if let Some(shared) = self.log.shared() {
                        shared.watch_identity(owner, on);
                    }
                }
                Command::Presence {
                    room,
                    username,
                    avatar,
                    verified,
                    online,
                } => {
                    if let Some(shared) = self.log.shared() {
                        shared.presence(&room, &username, avatar.as_deref(), verified, online);
                    }
                }
                Command::Report(Report::TokenRefused { addr, why }) => {
                    diag_debug!("{addr}: token refused: {why:?}");
                }
                Command::Close { client, reason } => {
                    let key = client.key as usize;
                    if let Some(conn) = self.conns.get_mut(key).filter(|c| c.gen == client.gen) {
                        diag_warn!("{}: disconnected: {}", conn.who(), reason.text());
                        let end = match reason {
                            Farewell::Flooding => EndReason::RateLimited,
                            Farewell::Kicked => EndReason::Kicked,
                            Farewell::Banned => EndReason::Banned,
                        };
                        conn.close_with(close::POLICY, reason.text(), end, now);
                        self.after_event(key);
                    }
                }
                Command::Deliver { room, json } => {
                    let delivered = self.queue_on_room(&room, None, json.as_bytes(), now);
                    self.stats.messages_broadcast += delivered;
                }
                Command::Send { to, json } => match to {
                    Audience::One(client) => {
                        let key = client.key as usize;
                        if let Some(conn) = self.conns.get_mut(key).filter(|c| c.gen == client.gen)
                        {
                            let frame = conn::frame_for(
                                conn.deflates(),
                                true,
                                json.as_bytes(),
                                &self.config,
                                &mut self.deflate,
                            );
                            if conn.is_chat_client()
                                && conn.queue(Chunk::from(frame), &self.config, now)
                            {
                                self.stats.frames_queued += 1;
                            }
                            self.after_event(key);
                        }
                    }
                    Audience::Room { room, except } => {
                        self.queue_on_room(&room, except, json.as_bytes(), now);
                    }
                    Audience::Identity { owner, except } => {
                        let mut fanout = Fanout {
                            conns: &mut self.conns,
                            config: &self.config,
                            deflate: &mut self.deflate,
                            wheel: &mut self.wheel,
                            flush_list: &mut self.flush_list,
                            now,
                        };
                        let members = self.core.connections_of(owner);
                        self.stats.frames_queued +=
                            fanout.queue_on(members, except, json.as_bytes());
                    }
                },
            }
        }
        // Carrying commands out adds none: keep the storage for the next turn.
        if self.commands.is_empty() {
            self.commands = commands;
        }
    }

    /// Queues one text message on every member of `room` (but `except`).
    /// Returns how many queues took it.
    fn queue_on_room(
        &mut self,
        room: &str,
        except: Option<ClientId>,
        payload: &[u8],
        now: u64,
    ) -> u64 {
        let mut fanout = Fanout {
            conns: &mut self.conns,
            config: &self.config,
            deflate: &mut self.deflate,
            wheel: &mut self.wheel,
            flush_list: &mut self.flush_list,
            now,
        };
        let queued = fanout.queue_on(self.core.members(room), except, payload);
        self.stats.frames_queued += queued;
        queued
    }
}

/// Largest ACME challenge file served (certbot's are 87 bytes).
const ACME_FILE_MAX: u64 = 4096;

/// `GET /.well-known/acme-challenge/<token>` on the redirect listener: the
/// file of that name in `<webroot>/.well-known/acme-challenge/`, if it is a
/// small regular file (the token is base64url: no path, no listing). A
/// short read of a local file, like certbot's own standalone server.
fn acme_challenge(
    webroot: Option<&std::path::Path>,
    req: &Request,
    keep_alive: bool,
    date: &str,
) -> Reply {
    let file = webroot
        .zip(http::acme_token(req.path))
        .and_then(|(root, token)| {
            let path = root.join(".well-known/acme-challenge").join(token);
            let meta = std::fs::metadata(&path).ok()?;
            if !meta.is_file() || meta.len() > ACME_FILE_MAX {
                return None;
            }
            std::fs::read(path).ok()
        });
    match file {
        Some(bytes) => http::acme_file(&bytes, req.method == "HEAD", keep_alive, date),
        None => http::error(Status::NotFound, "no such challenge", keep_alive, date),
    }
}

/// What a frame for a room needs from the loop: its connections, the limits,
/// the one compressor, the timer wheel and this turn's flush list. Generic
/// over the socket, so it is tested with pipes.
pub(super) struct Fanout<'a, S> {
    pub conns: &'a mut Slab<Conn<S>>,
    pub config: &'a Config,
    pub deflate: &'a mut deflate::Shared,
    pub wheel: &'a mut TimerWheel,
    pub flush_list: &'a mut Vec<usize>,
    pub now: u64,
}

impl<S: Socket> Fanout<'_, S> {
    /// Queues one text message on each of `members` (but `except`) that is
    /// still that connection and a chat client: the frame is built once, and
    /// deflated once, the first time a member that negotiated
    /// permessage-deflate needs it (uWebSockets' shared compressor); the same
    /// `Rc` goes to every queue. The cost is the members, whatever else is
    /// connected. Returns how many queues took it.
    pub fn queue_on(
        &mut self,
        members: &[ClientId],
        except: Option<ClientId>,
        payload: &[u8],
    ) -> u64 {
        let plain = Chunk::Shared(Rc::from(ws::text(payload)));
        let mut deflated: Option<Chunk> = None;
        let mut queued = 0;
        for &client in members {
            if Some(client) == except {
                continue;
            }
            let key = client.key as usize;
            let Some(conn) = self.conns.get_mut(key).filter(|c| c.gen == client.gen) else {
                continue;
            };
            if !conn.is_chat_client() {
                continue;
            }
            let frame = if conn.deflates() && payload.len() >= self.config.compress_min {
                deflated.get_or_insert_with(|| {
                    match self.deflate.compress(payload) {
                        Some(small) => Chunk::Shared(Rc::from(ws::deflated(true, &small))),
                        None => plain.clone(), // deflate did not shrink it
                    }
                })
            } else {
                &plain
            };
            if conn.queue(frame.clone(), self.config, self.now) {
                queued += 1;
            } else {
                // Refused (over its limit): it now lingers with a nearer deadline.
                schedule_on(self.wheel, self.config, key, conn);
            }
            mark_flush_on(self.flush_list, key, conn);
        }
        queued
    }
}

/// What one connection's input means for the rest of the server: the one
/// place where a connection's events reach the chat core (and the admin API
/// and the ops endpoints their state). Lent to [`Conn::read_ready`] for one
/// connection.
struct Dispatch<'a> {
    client: ClientId,
    wall_ms: u64,
    date: &'a str,
    core: &'a mut Core,
    commands: &'a mut Vec<Command>,
    stats: &'a mut Stats,
    log: &'a Backend,
    uptime_secs: u64,
    fd_limit: u64,
    max_connections: usize,
    per_address: &'a mut PerAddress,
    admin_api: Option<&'a mut Admin>,
    deflate: &'a mut deflate::Shared,
    fetches: &'a mut Fetches,
    acme_webroot: Option<&'a std::path::Path>,
}

impl Shell for Dispatch<'_> {
    fn stats(&mut self) -> &mut Stats {
        self.stats
    }

    fn per_address(&mut self) -> &mut PerAddress {
        self.per_address
    }

    fn deflate(&mut self) -> &mut deflate::Shared {
        self.deflate
    }

    fn upgraded(&mut self, kind: WsKind, addr: IpAddr) {
        if kind == WsKind::Chat {
            let event = Event::Connected {
                client: self.client,
                now: self.wall_ms,
                addr: Some(addr),
            };
            self.core.handle(event, self.commands);
        }
    }

    fn chat(&mut self, text: bool, payload: &[u8]) -> Option<(usize, bool)> {
        let client = self.client;
        let now = self.wall_ms;
        let event = if text {
            Event::Text {
                client,
                text: payload,
                now,
            }
        } else {
            Event::Binary {
                client,
                data: payload,
                nonce: crate::os::random_u128(),
            }
        };
        let before = self.commands.len();
        self.core.handle(event, self.commands);
        // An announced upload: the connection must know before its next frame.
        let at = self.commands[before..]
            .iter()
            .position(|c| matches!(c, Command::ExpectUpload { client: c, .. } if *c == client))?;
        match self.commands.remove(before + at) {
            Command::ExpectUpload { bytes, keep, .. } => Some((bytes, keep)),
            _ => None,
        }
    }

    fn serve(&mut self, route: &Route, req: &Request, addr: IpAddr) -> Option<Reply> {
        let head_only = req.method == "HEAD";
        let keep_alive = req.keep_alive && !req.has_body;
        let date = self.date;
        Some(match route {
            Route::Admin => match self.admin_api.as_deref_mut() {
                Some(admin) => {
                    admin.handle(req, addr, self.wall_ms, self.core, self.commands, date)
                }
                None => http::error(Status::NotFound, "no such page", keep_alive, date),
            },
            Route::Acme => acme_challenge(self.acme_webroot, req, keep_alive, date),
            Route::Rooms => http::rooms(&self.core.rooms_json(), head_only, keep_alive, date),
            Route::Upload if !self.core.files_allowed(req.cookie) => http::error(
                Status::Unauthorized,
                "images here are for those who signed in",
                keep_alive,
                date,
            ),
            Route::Upload => {
                let name = req.path.strip_prefix("/u/").and_then(http::upload_name);
                let Some(name) = name else {
                    return Some(http::error(
                        Status::NotFound,
                        "no such image",
                        keep_alive,
                        date,
                    ));
                };
                let ask = UploadAsk::of(req, name);
                if matches!(self.log, Backend::Shared(_)) {
                    // Any process may have stored it: the log is asked.
                    let client = self.client;
                    self.fetches.ask(name, client.key as usize, client.gen, ask);
                    return None;
                }
                match self.log.file(name) {
                    Some(bytes) => {
                        self.stats.files_served += 1;
                        http::upload(ask, name, bytes, date)
                    }
                    None => http::error(Status::NotFound, "no such image", keep_alive, date),
                }
            }
            _ => {
                let mut log_metrics = String::new();
                if *route == Route::Metrics {
                    self.log.metrics(&mut log_metrics);
                }
                let core = &*self.core;
                let snap = Snapshot {
                    stats: self.stats,
                    uptime_secs: self.uptime_secs,
                    users_online: core.users_online(),
                    history_len: core.history_len(),
                    history_bytes: core.history_bytes(),
                    rooms: core.rooms(),
                    rooms_with_members: core.rooms_with_members(),
                    last_id: core.last_id(),
                    auth_failures: core.auth_failures(),
                    log: self.log.health(),
                    log_metrics: &log_metrics,
                    fd_limit: self.fd_limit,
                    max_connections: self.max_connections,
                    deflate: self.deflate.counts(),
                    scrollback: core.scrollback_stats(),
                    uploads: core.upload_stats(),
                    upload_bytes: self.log.file_bytes(),
                    index_bytes: self.log.index_bytes(),
                };
                http::ops(route, &snap, head_only, keep_alive, date)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    //! The server's command dispatch without sockets: connections on pipes.
    use super::*;
    use crate::net::conn::testing::{chat_conn, Pipe};
    use crate::net::deflate::Inflater;

    struct Loop {
        conns: Slab<Conn<Pipe>>,
        config: Config,
        deflate: deflate::Shared,
        wheel: TimerWheel,
        flush_list: Vec<usize>,
    }

    impl Loop {
        fn new(config: Config) -> Loop {
            Loop {
                conns: Slab::new(),
                config,
                deflate: deflate::Shared::default(),
                wheel: TimerWheel::new(0),
                flush_list: Vec::new(),
            }
        }

        /// A chat client on a pipe, as the slab key it gets; its id.
        fn chat(&mut self, deflate: bool) -> ClientId {
            let key = self.conns.vacant_key();
            let conn = chat_conn(key, 7, deflate, &self.config);
            self.conns.insert(conn);
            ClientId::new(key, 7)
        }

        fn fan_out(&mut self, members: &[ClientId], except: Option<ClientId>, text: &str) -> u64 {
            Fanout {
                conns: &mut self.conns,
                config: &self.config,
                deflate: &mut self.deflate,
                wheel: &mut self.wheel,
                flush_list: &mut self.flush_list,
                now: 1,
            }
            .queue_on(members, except, text.as_bytes())
        }

        /// What reached a client's socket after the 101, once flushed.
        fn sent(&mut self, c: ClientId) -> Vec<u8> {
            let conn = &mut self.conns[c.key as usize];
            conn.flush(&self.config);
            let out = &conn.stream_mut().output;
            let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            out[head_end..].to_vec()
        }
    }

    #[test]
    fn a_room_frame_goes_to_its_members_but_the_sender_stale_ids_and_non_chat_sockets() {
        let mut l = Loop::new(Config::default());
        let (a, b, sender) = (l.chat(false), l.chat(false), l.chat(false));
        let http_key = l.conns.insert(Conn::new(
            Pipe::default(),
            "127.0.0.1:9".parse().unwrap(),
            3,
            7,
            crate::net::http_session::Listener::Main,
            false,
            0,
        ));
        let stale = ClientId::new(a.key as usize, 6);
        let members = [a, stale, b, sender, ClientId::new(http_key, 7)];
        assert_eq!(l.fan_out(&members, Some(sender), r#"{"m":1}"#), 2);
        let frame = ws::text(br#"{"m":1}"#);
        assert_eq!(l.sent(a), frame, "once, not twice for the stale id");
        assert_eq!(l.sent(b), frame);
        assert_eq!(l.sent(sender), b"", "the sender is left out");
        l.flush_list.sort();
        assert_eq!(l.flush_list, [a.key as usize, b.key as usize]);
    }

    #[test]
    fn a_broadcast_is_deflated_once_for_every_member_that_negotiated_it() {
        let mut l = Loop::new(Config::default());
        let plain = l.chat(false);
        let zipped: Vec<ClientId> = (0..5).map(|_| l.chat(true)).collect();
        let mut members = zipped.clone();
        members.push(plain);
        let text = format!(r#"{{"message":"{}"}}"#, "hello ".repeat(50));
        assert!(text.len() >= l.config.compress_min);
        assert_eq!(l.fan_out(&members, None, &text), 6);
        assert_eq!(l.deflate.counts().0, 1, "compressed once for five clients");
        assert_eq!(l.sent(plain), ws::text(text.as_bytes()));
        let first = l.sent(zipped[0]);
        assert_eq!(first[0], 0xC1, "FIN, RSV1 (compressed), text");
        for c in &zipped[1..] {
            assert_eq!(l.sent(*c), first, "the same bytes");
        }
        let payload = &first[2 + usize::from(first[1] == 126) * 2..];
        let inflated = Inflater::default().inflate(payload, 1 << 16).unwrap();
        assert_eq!(inflated, text.as_bytes());
    }
}
