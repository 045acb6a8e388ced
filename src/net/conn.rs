//! One client connection: its socket, its state (HTTP, then maybe WebSocket,
//! then closing), the unparsed remainder of its input, its output queue and
//! its deadlines.
//!
//! Bytes are read into the loop's shared scratch buffer; only a partial HTTP
//! head or WebSocket frame is copied into the connection's own `inbuf`, so an
//! idle connection holds no buffers at all. Complete chat messages go to the
//! chat core as events through [`Ctx`]; what the core wants done (to this or
//! other connections, or the log) goes back to the server as commands. A
//! connection never sees another connection.
//!
//! Ending is two-step, as in Redis: `begin_close` stops input and lets the
//! output drain (then a lingering half-close), `kill` marks the connection for
//! the server to free at a safe point of the loop. Nothing is freed from deep
//! inside a read or write path.

use crate::chat::protocol::{self, ErrorCode};
use crate::chat::{ClientId, Command, Core, Event};
use crate::config::Config;
use crate::metrics::{EndReason, Snapshot, Stats};
use crate::net::admin::Admin;
use crate::net::deflate::{self, InflateError};
use crate::net::http::{self, Parsed, Request, Route, Routes, Status};
use crate::net::per_address::PerAddress;
use crate::net::write_queue::{Chunk, Flushed, WriteQueue};
use crate::net::ws::{self, close, CloseReason, Message, Parse, Payload, Role};
use crate::net::ws_session::{Quiet, Received, WsKind, WsSession};
use crate::{log_debug, log_info, log_warn};
use mio::net::TcpStream;
use std::io::{self, Read};
use std::net::{IpAddr, Shutdown, SocketAddr};

#[derive(Debug)]
enum Phase {
    Http {
        /// Whether a request was answered; decides header vs keep-alive timeout.
        served: bool,
    },
    /// The session rules (close handshake, ping/pong, reassembly) are sans-I/O.
    Ws(WsSession),
}

/// Everything a connection may touch besides itself, lent by the server for one call.
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub core: &'a mut Core,
    pub commands: &'a mut Vec<Command>,
    pub stats: &'a mut Stats,
    pub log: &'a dyn crate::log::MessageLog,
    /// Monotonic milliseconds (for deadlines).
    pub now: u64,
    /// Wall-clock milliseconds since the Unix epoch (for message times).
    pub wall_ms: u64,
    /// The current HTTP `Date` value.
    pub date: &'a str,
    pub uptime_secs: u64,
    pub fd_limit: u64,
    pub max_connections: usize,
    pub per_address: &'a mut PerAddress,
    /// The admin API, with `--admin-token-file`.
    pub admin_api: Option<&'a mut Admin>,
    /// The loop's one compressor and inflater (permessage-deflate).
    pub deflate: &'a mut deflate::Shared,
}

/// One data frame for a peer: deflated when it negotiated permessage-deflate
/// and the payload is at least `--compress-min` (and shrinks), else plain.
pub fn frame_for(
    deflates: bool,
    text: bool,
    payload: &[u8],
    config: &Config,
    shared: &mut deflate::Shared,
) -> Vec<u8> {
    if deflates && payload.len() >= config.compress_min {
        if let Some(small) = shared.compress(payload) {
            return ws::deflated(text, &small);
        }
    }
    if text {
        ws::text(payload)
    } else {
        ws::binary(payload)
    }
}

#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// The client as the trusted proxy reported it (`--trust-proxy`), for logs.
    forwarded: Option<Box<str>>,
    key: usize,
    /// Distinguishes this connection from an earlier one with the same slab key,
    /// so a stale timer entry cannot touch a newcomer.
    pub gen: u32,
    /// Accepted on the admin listener: only /healthz and /metrics exist.
    admin: bool,
    /// Accepted past `--max-connections`: every request gets a 503.
    over_limit: bool,
    /// Counted under its address ([`Conn::client_ip`]) in the per-address
    /// limits (released when it is freed), or refused by them.
    counted: bool,
    over_address: bool,
    phase: Phase,
    /// Unparsed input: a partial request head or frame. Empty (unallocated) when idle.
    inbuf: Vec<u8>,
    out: WriteQueue,
    last_read: u64,
    /// When the connection was accepted or its last HTTP response was queued.
    idle_since: u64,
    /// Since when unsent output has been above `--output-soft-limit`.
    soft_since: Option<u64>,
    /// When the input now pending (a partial request head, a partial frame or
    /// a fragmented message) began to arrive. It must complete within
    /// `--header-timeout` (HTTP) or `--message-timeout` (WebSocket), or a peer
    /// could pin a connection and its buffer by dribbling bytes.
    input_started: Option<u64>,
    /// Set once input is over: the output drains, then the socket closes.
    closing: Option<u64>,
    /// Our write side is shut (output drained); waiting for the peer's EOF.
    write_shut: bool,
    peer_eof: bool,
    /// Why the connection is ending (the first reason wins).
    reason: Option<EndReason>,
    /// Free me at the next safe point.
    pub dead: bool,
    /// When this connection's timer-wheel entry is due (u64::MAX: none).
    pub timer_at: u64,
    /// The last write hit WouldBlock; wait for a writable event.
    pub write_blocked: bool,
    /// Already in the server's list of connections to flush this turn.
    pub in_flush_list: bool,
    /// Already in the server's list of connections with input left to read.
    pub in_read_list: bool,
    pub in_reap_list: bool,
}

/// Outcome of a read turn.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadResult {
    /// Read until WouldBlock (or the connection is ending).
    Drained,
    /// The per-turn budget ran out with input left: read again next turn.
    More,
}

impl Conn {
    pub fn new(
        stream: TcpStream,
        peer: SocketAddr,
        key: usize,
        gen: u32,
        admin: bool,
        over_limit: bool,
        now: u64,
    ) -> Conn {
        Conn {
            stream,
            peer,
            forwarded: None,
            key,
            gen,
            admin,
            over_limit,
            counted: false,
            over_address: false,
            phase: Phase::Http { served: false },
            inbuf: Vec::new(),
            out: WriteQueue::default(),
            last_read: now,
            idle_since: now,
            soft_since: None,
            input_started: None,
            closing: None,
            write_shut: false,
            peer_eof: false,
            reason: None,
            dead: false,
            timer_at: u64::MAX,
            write_blocked: false,
            in_flush_list: false,
            in_read_list: false,
            in_reap_list: false,
        }
    }

    /// This connection as the chat core knows it.
    pub fn client_id(&self) -> ClientId {
        ClientId::new(self.key, self.gen)
    }

    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// A chat WebSocket that should receive broadcasts.
    pub fn is_chat_client(&self) -> bool {
        matches!(&self.phase, Phase::Ws(s) if s.kind() == WsKind::Chat && s.accepts_data())
            && !self.dead
    }

    pub fn ws_kind(&self) -> Option<WsKind> {
        match &self.phase {
            Phase::Ws(s) => Some(s.kind()),
            Phase::Http { .. } => None,
        }
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    pub fn reason(&self) -> Option<EndReason> {
        self.reason
    }

    /// The client's address: the proxy-reported one when trusted, else the peer's.
    pub fn client_ip(&self) -> IpAddr {
        self.forwarded
            .as_deref()
            .and_then(|f| f.parse().ok())
            .unwrap_or_else(|| self.peer.ip())
    }

    /// Counts this connection under its address in `limits` (or marks it
    /// refused: it gets a 503 to its first request).
    pub fn count_address(&mut self, limits: &mut PerAddress) {
        if self.counted || self.over_address || !limits.limits_open() {
            return;
        }
        if limits.open(self.client_ip()) {
            self.counted = true;
        } else {
            self.over_address = true;
        }
    }

    /// The address to release from the per-address limits when this connection is freed.
    pub fn counted_address(&self) -> Option<IpAddr> {
        self.counted.then(|| self.client_ip())
    }

    /// Who the peer is, for logs: the proxy-reported client when trusted.
    pub fn who(&self) -> String {
        match &self.forwarded {
            Some(f) => format!("{f} (via {})", self.peer),
            None => self.peer.to_string(),
        }
    }

    /// Reads until WouldBlock (or the turn's budget) and acts on what arrived.
    pub fn read_ready(&mut self, scratch: &mut [u8], ctx: &mut Ctx) -> ReadResult {
        let mut budget = ctx.config.read_budget;
        while !self.dead {
            if budget == 0 {
                return ReadResult::More;
            }
            match self.stream.read(scratch) {
                Ok(0) => {
                    self.on_eof();
                    break;
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    self.last_read = ctx.now;
                    if let Phase::Ws(s) = &mut self.phase {
                        s.heard();
                    }
                    if self.closing.is_none() {
                        self.on_bytes(&mut scratch[..n], ctx);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log_debug!("{}: read error: {e}", self.who());
                    self.kill(EndReason::IoError);
                }
            }
        }
        ReadResult::Drained
    }

    fn on_eof(&mut self) {
        self.peer_eof = true;
        let reason = match (&self.phase, self.closing) {
            (_, Some(_)) => self.reason.unwrap_or(EndReason::PeerGone),
            (Phase::Http { served: true, .. }, None) => EndReason::HttpDone,
            _ => EndReason::PeerGone,
        };
        if self.out.is_empty() {
            self.kill(reason);
        } else {
            // Half-closed peer: still deliver what it asked for, then close.
            self.reason.get_or_insert(reason);
            self.closing.get_or_insert(self.last_read);
        }
    }

    /// Appends fresh bytes to any remainder and parses what is complete.
    fn on_bytes(&mut self, fresh: &mut [u8], ctx: &mut Ctx) {
        if self.inbuf.is_empty() {
            let used = self.process(fresh, ctx);
            if used < fresh.len() && self.closing.is_none() {
                self.inbuf.extend_from_slice(&fresh[used..]);
            }
        } else {
            self.inbuf.extend_from_slice(fresh);
            let mut buf = std::mem::take(&mut self.inbuf);
            let used = self.process(&mut buf, ctx);
            if used < buf.len() && self.closing.is_none() {
                buf.drain(..used);
                self.inbuf = buf;
            }
        }
        let pending =
            !self.inbuf.is_empty() || matches!(&self.phase, Phase::Ws(s) if s.pending_len() > 0);
        if !pending {
            self.input_started = None;
        } else if self.input_started.is_none() {
            self.input_started = Some(ctx.now);
        }
    }

    /// Parses and handles everything complete in `buf`; returns the bytes used.
    fn process(&mut self, buf: &mut [u8], ctx: &mut Ctx) -> usize {
        let mut pos = 0;
        while pos < buf.len() && self.closing.is_none() && !self.dead {
            let used = match self.phase {
                Phase::Http { .. } => self.process_http(&buf[pos..], ctx),
                Phase::Ws(_) => self.process_frame(&mut buf[pos..], ctx),
            };
            match used {
                Some(n) => pos += n,
                None => break,
            }
        }
        if self.closing.is_some() || self.dead {
            return buf.len();
        }
        pos
    }

    /// One request head, if complete. Returns the bytes it used.
    fn process_http(&mut self, buf: &[u8], ctx: &mut Ctx) -> Option<usize> {
        match http::parse(buf, ctx.config.max_header) {
            Parsed::Partial => None,
            Parsed::Invalid(status) => {
                ctx.stats.http_requests_total += 1;
                log_debug!("{}: malformed request: {}", self.who(), status.code());
                self.reply(
                    http::error(status, "malformed request", false, ctx.date),
                    ctx,
                );
                self.begin_close(EndReason::BadRequest, ctx.now);
                Some(buf.len())
            }
            Parsed::Request(req, len) => {
                ctx.stats.http_requests_total += 1;
                self.handle_request(&req, ctx);
                Some(len)
            }
        }
    }

    fn handle_request(&mut self, req: &Request, ctx: &mut Ctx) {
        if ctx.config.trust_proxy {
            // The first request's client is the connection's (and what the
            // per-address limits counted it under).
            if let Some(xff) = req.forwarded_for.filter(|_| self.forwarded.is_none()) {
                // The rightmost address is the one our own proxy added.
                let client = xff.rsplit(',').next().unwrap_or(xff).trim();
                if !client.is_empty() && client.len() <= 64 {
                    self.forwarded = Some(client.into());
                }
            }
        }
        let date = ctx.date;
        let get_or_head = req.method == "GET" || req.method == "HEAD";
        let keep_alive = req.keep_alive && !req.has_body;
        let routes = Routes {
            chat: !self.admin,
            ops: ctx.config.ops_endpoints && (self.admin || ctx.config.admin_listen.is_none()),
            admin: ctx.admin_api.is_some() && (self.admin || ctx.config.admin_listen.is_none()),
            echo_path: ctx.config.echo_path.as_deref(),
        };
        if ctx.config.trust_proxy && !self.over_limit && !self.admin {
            // Behind a trusted proxy the client's address is known only now.
            self.count_address(ctx.per_address);
        }
        if self.over_limit || self.over_address {
            let why = if self.over_limit {
                "server at its connection limit"
            } else {
                ctx.stats.per_address_refused += 1;
                "too many connections from your address"
            };
            let reply = http::error(Status::ServiceUnavailable, why, false, date);
            self.reply(reply, ctx);
            return self.begin_close(EndReason::OverCapacity, ctx.now);
        }
        let route = http::route(req.path, routes);
        if route == Route::Admin {
            let keep = keep_alive;
            if let Some(admin) = ctx.admin_api.as_deref_mut() {
                let reply = admin.handle(
                    req,
                    self.client_ip(),
                    ctx.wall_ms,
                    ctx.core,
                    ctx.commands,
                    date,
                );
                self.reply(reply, ctx);
            }
            self.idle_since = ctx.now;
            if !keep {
                self.begin_close(EndReason::HttpDone, ctx.now);
            }
            return;
        }
        if !get_or_head {
            self.reply(
                http::error(Status::MethodNotAllowed, "only GET and HEAD", false, date),
                ctx,
            );
            return self.begin_close(EndReason::BadRequest, ctx.now);
        }
        let reply = match route {
            Route::ChatSocket | Route::EchoSocket => {
                let kind = if route == Route::ChatSocket {
                    WsKind::Chat
                } else {
                    WsKind::Echo
                };
                return self.upgrade(req, kind, ctx);
            }
            Route::Asset(asset) => http::asset(req, asset, date, &ctx.config.frame_ancestors),
            Route::Rooms => http::rooms(
                &ctx.core.rooms_json(),
                req.method == "HEAD",
                keep_alive,
                date,
            ),
            Route::Health | Route::Metrics => {
                let mut log_metrics = String::new();
                if route == Route::Metrics {
                    ctx.log.metrics(&mut log_metrics);
                }
                let snap = Snapshot {
                    stats: ctx.stats,
                    uptime_secs: ctx.uptime_secs,
                    users_online: ctx.core.users_online(),
                    history_len: ctx.core.history_len(),
                    history_bytes: ctx.core.history_bytes(),
                    rooms: ctx.core.rooms(),
                    rooms_with_members: ctx.core.rooms_with_members(),
                    last_id: ctx.core.last_id(),
                    auth_failures: ctx.core.auth_failures(),
                    log: ctx.log.health(),
                    log_metrics: &log_metrics,
                    fd_limit: ctx.fd_limit,
                    max_connections: ctx.max_connections,
                    deflate: ctx.deflate.counts(),
                };
                http::ops(&route, &snap, req.method == "HEAD", keep_alive, date)
            }
            Route::NotFound | Route::Admin => {
                http::error(Status::NotFound, "no such page", keep_alive, date)
            }
        };
        let keep = reply.keep_alive && keep_alive;
        self.reply(reply, ctx);
        if let Phase::Http { served, .. } = &mut self.phase {
            *served = true;
        }
        self.idle_since = ctx.now;
        if !keep {
            self.begin_close(EndReason::HttpDone, ctx.now);
        }
    }

    fn upgrade(&mut self, req: &Request, kind: WsKind, ctx: &mut Ctx) {
        if !ctx
            .per_address
            .upgrade(self.client_ip(), ctx.wall_ms / 1000)
        {
            ctx.stats.per_address_refused += 1;
            let reply = http::error(
                Status::ServiceUnavailable,
                "too many new connections from your address",
                false,
                ctx.date,
            );
            self.reply(reply, ctx);
            return self.begin_close(EndReason::OverCapacity, ctx.now);
        }
        match http::upgrade(
            req,
            &ctx.config.allow_origin,
            ctx.config.compression,
            ctx.date,
        ) {
            Ok((head, deflate)) => {
                self.queue(Chunk::from(head), ctx.config, ctx.now);
                self.phase = Phase::Ws(WsSession::new(kind, deflate));
                ctx.stats.ws_upgrades_total += 1;
                if kind == WsKind::Chat {
                    let client = self.client_id();
                    ctx.core.handle(
                        Event::Connected {
                            client,
                            now: ctx.wall_ms,
                            addr: Some(self.client_ip()),
                        },
                        ctx.commands,
                    );
                    ctx.stats.ws_clients += 1;
                }
                log_info!(
                    "{}: websocket open ({})",
                    self.who(),
                    if kind == WsKind::Chat { "chat" } else { "echo" }
                );
            }
            Err(reply) => {
                log_debug!("{}: upgrade refused: {}", self.who(), reply.status.code());
                self.reply(reply, ctx);
                self.begin_close(EndReason::BadRequest, ctx.now);
            }
        }
    }

    fn reply(&mut self, reply: http::Reply, ctx: &Ctx) {
        for chunk in reply.chunks {
            self.queue(chunk, ctx.config, ctx.now);
        }
    }

    /// One WebSocket frame, if complete. Returns the bytes it used.
    fn process_frame(&mut self, buf: &mut [u8], ctx: &mut Ctx) -> Option<usize> {
        let Phase::Ws(session) = &mut self.phase else {
            return None;
        };
        let kind = session.kind();
        let deflate = session.deflate();
        let assembler = session.assembler();
        let limit = if kind == WsKind::Chat {
            ctx.config.max_message
        } else {
            ctx.config.echo_max_message
        };
        let frame =
            match ws::parse_frame(buf, Role::Server, limit, assembler.pending_len(), deflate) {
                Ok(Parse::Frame(f)) => f,
                Ok(Parse::Incomplete { total, arriving }) => {
                    let early = arriving.map_or(Ok(()), |a| assembler.check_arrived(buf, &a));
                    if let Err(why) = early {
                        self.fail(why, ctx.now);
                        return Some(buf.len());
                    }
                    if let Some(total) = total {
                        // Reserve once for a large frame instead of growing read by read.
                        self.inbuf.reserve(total.saturating_sub(self.inbuf.len()));
                    }
                    return None;
                }
                Err(why) => {
                    self.fail(why, ctx.now);
                    return Some(buf.len());
                }
            };
        let used = frame.consumed();
        let payload = &buf[frame.payload.clone()];
        match session.receive(&frame, payload) {
            Ok(Received::Nothing) => {}
            Ok(Received::Data(Message::Deflated { text, payload })) => {
                // Inflated by the loop's one inflater, never past the limit.
                let inflated = match ctx.deflate.inflate(&payload, limit) {
                    Ok(bytes) => bytes,
                    Err(InflateError::TooBig) => {
                        self.fail(CloseReason::new(close::TOO_BIG, "message too big"), ctx.now);
                        return Some(buf.len());
                    }
                    Err(InflateError::Corrupt) => {
                        let why = CloseReason::new(close::INVALID_PAYLOAD, "bad deflate data");
                        self.fail(why, ctx.now);
                        return Some(buf.len());
                    }
                };
                let message = if text {
                    if std::str::from_utf8(&inflated).is_err() {
                        self.fail(ws::invalid_utf8(), ctx.now);
                        return Some(buf.len());
                    }
                    Message::Text(Payload::Owned(inflated))
                } else {
                    Message::Binary(Payload::Owned(inflated))
                };
                self.on_message(message, kind, ctx);
            }
            Ok(Received::Data(message)) => self.on_message(message, kind, ctx),
            Ok(Received::Answer(control)) => {
                self.queue(Chunk::from(control), ctx.config, ctx.now);
            }
            Ok(Received::Closed(echo)) => {
                if let Some(echo) = echo.filter(|_| self.closing.is_none()) {
                    self.out.push(Chunk::from(echo));
                }
                self.begin_close(EndReason::ClientClosed, ctx.now);
            }
            Err(why) => {
                self.fail(why, ctx.now);
                return Some(buf.len());
            }
        }
        Some(used)
    }

    /// A complete text or binary message: to the chat core, or echoed.
    fn on_message(&mut self, message: Message, kind: WsKind, ctx: &mut Ctx) {
        match message {
            Message::Text(text) if kind == WsKind::Chat => {
                let client = self.client_id();
                ctx.core.handle(
                    Event::Text {
                        client,
                        text: &text,
                        now: ctx.wall_ms,
                    },
                    ctx.commands,
                );
            }
            Message::Binary(_) if kind == WsKind::Chat => {
                let json = protocol::error_json(ErrorCode::BinaryUnsupported, None);
                self.send_data(true, json.as_bytes(), ctx);
            }
            Message::Text(text) => self.send_data(true, &text, ctx),
            Message::Binary(data) => self.send_data(false, &data, ctx),
            // Control frames are the session's business (ws_session.rs);
            // deflated messages were inflated before they came here.
            Message::Ping(_) | Message::Pong(_) | Message::Close(..) | Message::Deflated { .. } => {
            }
        }
    }

    /// Sends one data message to this peer alone, deflated when it negotiated
    /// permessage-deflate and the message is at least `--compress-min`.
    fn send_data(&mut self, text: bool, payload: &[u8], ctx: &mut Ctx) {
        let frame = frame_for(self.deflates(), text, payload, ctx.config, ctx.deflate);
        self.queue(Chunk::from(frame), ctx.config, ctx.now);
    }

    /// This WebSocket negotiated permessage-deflate.
    pub fn deflates(&self) -> bool {
        matches!(&self.phase, Phase::Ws(s) if s.deflate())
    }

    /// Sends a close frame with `why` (if none was sent yet) and ends the connection.
    pub fn fail(&mut self, why: CloseReason, now: u64) {
        self.send_close(why);
        self.begin_close(end_reason_for(why.code), now);
    }

    /// Starts a server-side close: a close frame for WebSockets, then drain and linger.
    pub fn close_with(&mut self, code: u16, text: &'static str, reason: EndReason, now: u64) {
        self.send_close(CloseReason::new(code, text));
        self.begin_close(reason, now);
    }

    fn send_close(&mut self, why: CloseReason) {
        if self.closing.is_some() {
            return;
        }
        if let Phase::Ws(s) = &mut self.phase {
            if let Some(frame) = s.close(why) {
                self.out.push(Chunk::from(frame));
            }
        }
    }

    /// Queues output, enforcing the output limits (Redis'
    /// client-output-buffer-limit): past the hard limit, or above the soft
    /// limit for longer than `--output-soft-seconds`, the queue is cut back
    /// (a partly written frame is finished), a 1013 close is queued and the
    /// connection starts closing: its memory is released right away.
    /// Returns whether the chunk was queued.
    pub fn queue(&mut self, chunk: Chunk, config: &Config, now: u64) -> bool {
        if self.closing.is_some() || self.dead {
            return false;
        }
        self.out.push(chunk);
        self.check_output(config, now)
    }

    /// Applies the output limits to what is queued now; false if the client was dropped.
    fn check_output(&mut self, config: &Config, now: u64) -> bool {
        let pending = self.out.pending();
        let (hard, soft) = self.output_limits(config);
        if pending <= soft {
            self.soft_since = None;
            return true;
        }
        let since = *self.soft_since.get_or_insert(now);
        let over_soft_too_long =
            now.saturating_sub(since) >= config.output_soft_seconds.as_millis() as u64;
        if pending <= hard && !over_soft_too_long {
            return true;
        }
        log_warn!(
            "{}: {pending} bytes unsent (limits: {hard} hard, {soft} for {:?}), disconnecting slow client",
            self.who(),
            config.output_soft_seconds
        );
        self.out.drop_unstarted();
        self.soft_since = None;
        self.send_close(CloseReason::new(
            close::TRY_AGAIN_LATER,
            "too slow: output buffer full",
        ));
        self.begin_close(EndReason::SlowConsumer, now);
        false
    }

    /// The (hard, soft) output limits. The echo endpoint must hold a whole
    /// echoed message of up to `--echo-max-message` on top of them.
    fn output_limits(&self, config: &Config) -> (usize, usize) {
        match &self.phase {
            Phase::Ws(s) if s.kind() == WsKind::Echo => (
                config.max_output.saturating_add(config.echo_max_message),
                config
                    .output_soft_limit
                    .saturating_add(config.echo_max_message),
            ),
            _ => (config.max_output, config.output_soft_limit),
        }
    }

    /// No more input is handled; the connection closes once its output is out.
    pub fn begin_close(&mut self, reason: EndReason, now: u64) {
        self.reason.get_or_insert(reason);
        if self.closing.is_none() {
            self.closing = Some(now);
            self.inbuf = Vec::new();
        }
        if self.out.is_empty() {
            self.after_drain();
        }
    }

    /// Marks the connection to be freed at the next safe point.
    pub fn kill(&mut self, reason: EndReason) {
        self.reason.get_or_insert(reason);
        self.dead = true;
    }

    /// Writes queued output until done or WouldBlock. Returns bytes written.
    pub fn flush(&mut self, config: &Config) -> usize {
        if self.dead || self.out.is_empty() {
            return 0;
        }
        match self.out.flush_to(&mut self.stream) {
            Ok((Flushed::All, n)) => {
                self.soft_since = None;
                if self.closing.is_some() {
                    self.after_drain();
                }
                n
            }
            Ok((Flushed::Blocked, n)) => {
                self.write_blocked = true;
                if self.out.pending() <= self.output_limits(config).1 {
                    self.soft_since = None;
                }
                n
            }
            Err(e) => {
                log_debug!("{}: write error: {e}", self.who());
                self.out.clear();
                self.kill(EndReason::IoError);
                0
            }
        }
    }

    /// Output is drained while closing: half-close, then wait for the peer's EOF
    /// (so our last bytes are not lost to a reset), or free it if the peer is gone.
    fn after_drain(&mut self) {
        if self.peer_eof {
            self.kill(self.reason.unwrap_or(EndReason::PeerGone));
        } else if !self.write_shut {
            self.write_shut = true;
            if self.stream.shutdown(Shutdown::Write).is_err() {
                self.kill(self.reason.unwrap_or(EndReason::IoError));
            }
        }
    }

    /// When this connection next needs attention from the timer.
    pub fn deadline(&self, config: &Config) -> u64 {
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        if self.dead {
            return u64::MAX;
        }
        if let Some(since) = self.closing {
            return since + ms(config.linger);
        }
        match (&self.phase, self.input_started) {
            (Phase::Http { .. }, Some(t)) => t + ms(config.header_timeout),
            (Phase::Http { served: true }, None) => self.idle_since + ms(config.keepalive_timeout),
            (Phase::Http { served: false }, None) => self.idle_since + ms(config.header_timeout),
            (Phase::Ws(s), started) => {
                let liveness = s.liveness_deadline(self.last_read, config);
                let soft = self
                    .soft_since
                    .map_or(u64::MAX, |t| t + ms(config.output_soft_seconds));
                started
                    .map_or(liveness, |t| liveness.min(t + ms(config.message_timeout)))
                    .min(soft)
            }
        }
    }

    /// The timer fired: act if a deadline has really passed.
    pub fn on_timer(&mut self, config: &Config, date: &str, now: u64) {
        if now < self.deadline(config) {
            return;
        }
        if self.closing.is_some() {
            return self.kill(self.reason.unwrap_or(EndReason::Timeout));
        }
        if self.soft_since.is_some() && !self.check_output(config, now) {
            return; // above the soft limit for too long: dropped
        }
        if now < self.deadline(config) {
            return; // only the soft-limit check was due
        }
        if let (Phase::Ws(_), Some(t)) = (&self.phase, self.input_started) {
            if now >= t + config.message_timeout.as_millis() as u64 {
                log_info!("{}: message not completed in time, closing", self.who());
                return self.close_with(
                    close::POLICY,
                    "message not completed in time",
                    EndReason::Timeout,
                    now,
                );
            }
        }
        match &mut self.phase {
            Phase::Http { .. } if self.input_started.is_some() => {
                log_debug!("{}: request head not complete in time", self.who());
                let reply = http::error(
                    Status::RequestTimeout,
                    "request head took too long",
                    false,
                    date,
                );
                for chunk in reply.chunks {
                    self.out.push(chunk);
                }
                self.begin_close(EndReason::Timeout, now);
            }
            Phase::Http { .. } => self.kill(EndReason::Timeout),
            Phase::Ws(s) => match s.on_quiet(now) {
                Quiet::Ping(ping) => self.out.push(Chunk::from(ping)),
                Quiet::Dead(close) => {
                    log_info!("{}: no answer to ping, closing", self.who());
                    if let Some(close) = close {
                        self.out.push(Chunk::from(close));
                    }
                    self.flush(config);
                    self.kill(EndReason::Timeout);
                }
            },
        }
    }

    /// A WebSocket for clean shutdown gets 1001; HTTP connections close after their reply.
    pub fn on_shutdown(&mut self, now: u64) {
        match self.phase {
            Phase::Ws(_) => self.close_with(
                close::GOING_AWAY,
                "server shutting down",
                EndReason::Shutdown,
                now,
            ),
            Phase::Http { .. } => {
                if self.out.is_empty() {
                    self.kill(EndReason::Shutdown);
                } else {
                    self.begin_close(EndReason::Shutdown, now);
                }
            }
        }
    }
}

/// The reason counted for a close code this server sent on a protocol problem.
fn end_reason_for(close_code: u16) -> EndReason {
    match close_code {
        close::TOO_BIG => EndReason::TooBig,
        close::INVALID_PAYLOAD => EndReason::InvalidUtf8,
        close::POLICY => EndReason::RateLimited,
        _ => EndReason::ProtocolError,
    }
}
