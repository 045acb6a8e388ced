//! One client connection: its socket, its state (HTTP, then maybe WebSocket,
//! then closing), the unparsed remainder of its input, its output queue and
//! its deadlines.
//!
//! Bytes are read into the loop's shared scratch buffer; only a partial HTTP
//! head or WebSocket frame is copied into the connection's own `inbuf`, so an
//! idle connection holds no buffers at all. What the bytes mean is decided
//! by the sans-I/O sessions (`http_session.rs`, `ws_session.rs`); what they
//! decide for the rest of the server (a WebSocket opened, a chat message, a
//! request only the server answers) is reported to it through [`Shell`].
//! A connection never sees the chat core nor another connection.
//!
//! Ending is two-step, as in Redis: `begin_close` stops input and lets the
//! output drain (then a lingering half-close), `kill` marks the connection for
//! the server to free at a safe point of the loop. Nothing is freed from deep
//! inside a read or write path.

use crate::config::Config;
use crate::metrics::{EndReason, Stats};
use crate::net::deflate;
use crate::net::http::{self, Parsed, Reply, Request, Route, Status};
use crate::net::http_session::{Answer, HttpSession, Refused, Site, Then};
use crate::net::per_address::PerAddress;
use crate::net::write_queue::{Chunk, Flushed, WriteQueue};
use crate::net::ws::{self, close, CloseReason, Message, Parse, Role};
use crate::net::ws_session::{Quiet, Received, WsKind, WsSession};
use crate::{log_debug, log_info, log_warn};
use mio::net::TcpStream;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};

#[derive(Debug)]
enum Phase {
    Http(HttpSession),
    /// The session rules (close handshake, ping/pong, reassembly) are sans-I/O.
    Ws(WsSession),
}

/// What the loop lends a connection for one call: limits and time.
#[derive(Clone, Copy, Debug)]
pub struct Env<'a> {
    pub config: &'a Config,
    /// Monotonic milliseconds (for deadlines).
    pub now: u64,
    /// Wall-clock milliseconds since the Unix epoch.
    pub wall_ms: u64,
    /// The current HTTP `Date` value.
    pub date: &'a str,
    /// The admin API is on (`--admin-token-file`).
    pub admin_api: bool,
}

/// The server, as a connection sees it while handling its input: the loop's
/// shared network state, and where it reports what happened. `server.rs`
/// implements it for one connection at a time (the one place that reaches
/// the chat core); tests implement it to watch a connection alone.
pub trait Shell {
    fn stats(&mut self) -> &mut Stats;
    fn per_address(&mut self) -> &mut PerAddress;
    /// The loop's one compressor and inflater (permessage-deflate).
    fn deflate(&mut self) -> &mut deflate::Shared;
    /// The connection is now a WebSocket of `kind` (its 101 is queued).
    fn upgraded(&mut self, kind: WsKind, addr: IpAddr);
    /// A complete message on a chat WebSocket: valid UTF-8 text (inflated if
    /// it came deflated), or binary.
    fn chat(&mut self, text: bool, payload: &[u8]);
    /// A request only the server can answer (the rooms list, health,
    /// metrics, the admin API), from the client at `addr`.
    fn serve(&mut self, route: &Route, req: &Request, addr: IpAddr) -> Reply;
}

/// A connection's byte stream: the TCP socket, or a test's pipe.
pub trait Socket: Read + Write {
    /// Shuts the write side (a FIN after the last byte).
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Socket for TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
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
pub struct Conn<S = TcpStream> {
    stream: S,
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

impl<S: Socket> Conn<S> {
    pub fn new(
        stream: S,
        peer: SocketAddr,
        key: usize,
        gen: u32,
        admin: bool,
        over_limit: bool,
        now: u64,
    ) -> Conn<S> {
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
            phase: Phase::Http(HttpSession::default()),
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

    pub fn key(&self) -> usize {
        self.key
    }

    pub fn stream_mut(&mut self) -> &mut S {
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
            Phase::Http(_) => None,
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
    pub fn read_ready(
        &mut self,
        scratch: &mut [u8],
        env: &Env,
        shell: &mut dyn Shell,
    ) -> ReadResult {
        let mut budget = env.config.read_budget;
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
                    self.last_read = env.now;
                    if let Phase::Ws(s) = &mut self.phase {
                        s.heard();
                    }
                    if self.closing.is_none() {
                        self.on_bytes(&mut scratch[..n], env, shell);
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
            (Phase::Http(h), None) if h.served() => EndReason::HttpDone,
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
    fn on_bytes(&mut self, fresh: &mut [u8], env: &Env, shell: &mut dyn Shell) {
        if self.inbuf.is_empty() {
            let used = self.process(fresh, env, shell);
            if used < fresh.len() && self.closing.is_none() {
                self.inbuf.extend_from_slice(&fresh[used..]);
            }
        } else {
            self.inbuf.extend_from_slice(fresh);
            let mut buf = std::mem::take(&mut self.inbuf);
            let used = self.process(&mut buf, env, shell);
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
            self.input_started = Some(env.now);
        }
    }

    /// Parses and handles everything complete in `buf`; returns the bytes used.
    fn process(&mut self, buf: &mut [u8], env: &Env, shell: &mut dyn Shell) -> usize {
        let mut pos = 0;
        while pos < buf.len() && self.closing.is_none() && !self.dead {
            let used = match self.phase {
                Phase::Http(_) => self.process_http(&buf[pos..], env, shell),
                Phase::Ws(_) => self.process_frame(&mut buf[pos..], env, shell),
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
    fn process_http(&mut self, buf: &[u8], env: &Env, shell: &mut dyn Shell) -> Option<usize> {
        let site = Site {
            config: env.config,
            date: env.date,
            admin_listener: self.admin,
            admin_api: env.admin_api,
        };
        match http::parse(buf, env.config.max_header) {
            Parsed::Partial => None,
            Parsed::Invalid(status) => {
                shell.stats().http_requests_total += 1;
                log_debug!("{}: malformed request: {}", self.who(), status.code());
                let Phase::Http(session) = &mut self.phase else {
                    return None;
                };
                let answer = session.malformed(status, &site);
                self.carry_out(answer, None, env, shell);
                Some(buf.len())
            }
            Parsed::Request(req, len) => {
                shell.stats().http_requests_total += 1;
                self.note_client(&req, env, shell);
                let refused = if self.over_limit {
                    Some(Refused::OverLimit)
                } else if self.over_address {
                    shell.stats().per_address_refused += 1;
                    Some(Refused::OverAddress)
                } else {
                    None
                };
                let Phase::Http(session) = &mut self.phase else {
                    return None;
                };
                let answer = session.request(&req, &site, refused);
                self.carry_out(answer, Some(&req), env, shell);
                Some(len)
            }
        }
    }

    /// Behind a trusted proxy the client's address is known only at the
    /// first request: remembered, and counted in the per-address limits.
    fn note_client(&mut self, req: &Request, env: &Env, shell: &mut dyn Shell) {
        if !env.config.trust_proxy {
            return;
        }
        if let Some(xff) = req.forwarded_for.filter(|_| self.forwarded.is_none()) {
            // The rightmost address is the one our own proxy added.
            let client = xff.rsplit(',').next().unwrap_or(xff).trim();
            if !client.is_empty() && client.len() <= 64 {
                self.forwarded = Some(client.into());
            }
        }
        if !self.over_limit && !self.admin {
            self.count_address(shell.per_address());
        }
    }

    /// Does what the HTTP session decided.
    fn carry_out(
        &mut self,
        answer: Answer,
        req: Option<&Request>,
        env: &Env,
        shell: &mut dyn Shell,
    ) {
        let (reply, then) = match (answer, req) {
            (Answer::Reply(reply, then), _) => (reply, then),
            (Answer::Upgrade(kind), Some(req)) => return self.upgrade(req, kind, env, shell),
            (Answer::Ask(route, keep_alive), Some(req)) => {
                let reply = shell.serve(&route, req, self.client_ip());
                // The admin API's replies say nothing of keep-alive: the request decides.
                let keep = keep_alive && (route == Route::Admin || reply.keep_alive);
                let then = if keep {
                    Then::KeepAlive
                } else {
                    Then::Close(EndReason::HttpDone)
                };
                (reply, then)
            }
            (Answer::Upgrade(_) | Answer::Ask(..), None) => return,
        };
        self.reply(reply, env);
        match then {
            Then::KeepAlive => self.idle_since = env.now,
            Then::Close(reason @ EndReason::HttpDone) => {
                self.idle_since = env.now;
                self.begin_close(reason, env.now);
            }
            Then::Close(reason) => self.begin_close(reason, env.now),
        }
    }

    fn upgrade(&mut self, req: &Request, kind: WsKind, env: &Env, shell: &mut dyn Shell) {
        if !shell
            .per_address()
            .upgrade(self.client_ip(), env.wall_ms / 1000)
        {
            shell.stats().per_address_refused += 1;
            let reply = http::error(
                Status::ServiceUnavailable,
                "too many new connections from your address",
                false,
                env.date,
            );
            self.reply(reply, env);
            return self.begin_close(EndReason::OverCapacity, env.now);
        }
        let config = env.config;
        match http::upgrade(req, &config.allow_origin, config.compression, env.date) {
            Ok((head, deflate)) => {
                self.queue(Chunk::from(head), config, env.now);
                self.phase = Phase::Ws(WsSession::new(kind, deflate));
                shell.stats().ws_upgrades_total += 1;
                if kind == WsKind::Chat {
                    shell.stats().ws_clients += 1;
                }
                shell.upgraded(kind, self.client_ip());
                log_info!(
                    "{}: websocket open ({})",
                    self.who(),
                    if kind == WsKind::Chat { "chat" } else { "echo" }
                );
            }
            Err(reply) => {
                log_debug!("{}: upgrade refused: {}", self.who(), reply.status.code());
                self.reply(reply, env);
                self.begin_close(EndReason::BadRequest, env.now);
            }
        }
    }

    fn reply(&mut self, reply: Reply, env: &Env) {
        for chunk in reply.chunks {
            self.queue(chunk, env.config, env.now);
        }
    }

    /// One WebSocket frame, if complete. Returns the bytes it used.
    fn process_frame(&mut self, buf: &mut [u8], env: &Env, shell: &mut dyn Shell) -> Option<usize> {
        let Phase::Ws(session) = &mut self.phase else {
            return None;
        };
        let kind = session.kind();
        let deflate = session.deflate();
        let assembler = session.assembler();
        let limit = if kind == WsKind::Chat {
            env.config.max_message
        } else {
            env.config.echo_max_message
        };
        let frame =
            match ws::parse_frame(buf, Role::Server, limit, assembler.pending_len(), deflate) {
                Ok(Parse::Frame(f)) => f,
                Ok(Parse::Incomplete { total, arriving }) => {
                    let early = arriving.map_or(Ok(()), |a| assembler.check_arrived(buf, &a));
                    if let Err(why) = early {
                        self.fail(why, env.now);
                        return Some(buf.len());
                    }
                    if let Some(total) = total {
                        // Reserve once for a large frame instead of growing read by read.
                        self.inbuf.reserve(total.saturating_sub(self.inbuf.len()));
                    }
                    return None;
                }
                Err(why) => {
                    self.fail(why, env.now);
                    return Some(buf.len());
                }
            };
        let used = frame.consumed();
        let payload = &buf[frame.payload.clone()];
        match session.receive(&frame, payload, shell.deflate(), limit) {
            Ok(Received::Nothing) => {}
            Ok(Received::Data(message)) => self.on_message(message, kind, env, shell),
            Ok(Received::Answer(control)) => {
                self.queue(Chunk::from(control), env.config, env.now);
            }
            Ok(Received::Closed(echo)) => {
                if let Some(echo) = echo.filter(|_| self.closing.is_none()) {
                    self.out.push(Chunk::from(echo));
                }
                self.begin_close(EndReason::ClientClosed, env.now);
            }
            Err(why) => {
                self.fail(why, env.now);
                return Some(buf.len());
            }
        }
        Some(used)
    }

    /// A complete text or binary message: reported for chat, or echoed.
    fn on_message(&mut self, message: Message, kind: WsKind, env: &Env, shell: &mut dyn Shell) {
        let (text, payload) = match &message {
            Message::Text(p) => (true, &p[..]),
            Message::Binary(p) => (false, &p[..]),
            // Control frames are the session's business (ws_session.rs),
            // which inflates deflated messages before they come here.
            Message::Ping(_) | Message::Pong(_) | Message::Close(..) | Message::Deflated { .. } => {
                return
            }
        };
        match kind {
            WsKind::Chat => shell.chat(text, payload),
            WsKind::Echo => self.send_data(text, payload, env, shell),
        }
    }

    /// Sends one data message to this peer alone, deflated when it negotiated
    /// permessage-deflate and the message is at least `--compress-min`.
    fn send_data(&mut self, text: bool, payload: &[u8], env: &Env, shell: &mut dyn Shell) {
        let frame = frame_for(self.deflates(), text, payload, env.config, shell.deflate());
        self.queue(Chunk::from(frame), env.config, env.now);
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
            if self.stream.shutdown_write().is_err() {
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
            (Phase::Http(_), Some(t)) => t + ms(config.header_timeout),
            (Phase::Http(h), None) if h.served() => self.idle_since + ms(config.keepalive_timeout),
            (Phase::Http(_), None) => self.idle_since + ms(config.header_timeout),
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
            Phase::Http(_) if self.input_started.is_some() => {
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
            Phase::Http(_) => self.kill(EndReason::Timeout),
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
            Phase::Http(_) => {
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

#[cfg(test)]
mod tests {
    //! A connection without a socket: a pipe for its bytes and a shell that
    //! records what it reports.
    use super::*;
    use crate::net::ws::apply_mask;
    use std::collections::VecDeque;

    /// Reads hand out one queued chunk each (then WouldBlock, or EOF once
    /// `eof` is set); writes are collected.
    #[derive(Debug, Default)]
    struct Pipe {
        input: VecDeque<Vec<u8>>,
        eof: bool,
        output: Vec<u8>,
        shut: std::cell::Cell<bool>,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.input.pop_front() {
                Some(chunk) => {
                    buf[..chunk.len()].copy_from_slice(&chunk);
                    Ok(chunk.len())
                }
                None if self.eof => Ok(0),
                None => Err(io::ErrorKind::WouldBlock.into()),
            }
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Socket for Pipe {
        fn shutdown_write(&self) -> io::Result<()> {
            self.shut.set(true);
            Ok(())
        }
    }

    #[derive(Default)]
    struct Watch {
        stats: Stats,
        per_address: PerAddress,
        deflate: deflate::Shared,
        upgraded: Vec<WsKind>,
        chat: Vec<(bool, Vec<u8>)>,
        served: Vec<String>,
    }

    impl Shell for Watch {
        fn stats(&mut self) -> &mut Stats {
            &mut self.stats
        }
        fn per_address(&mut self) -> &mut PerAddress {
            &mut self.per_address
        }
        fn deflate(&mut self) -> &mut deflate::Shared {
            &mut self.deflate
        }
        fn upgraded(&mut self, kind: WsKind, _addr: IpAddr) {
            self.upgraded.push(kind);
        }
        fn chat(&mut self, text: bool, payload: &[u8]) {
            self.chat.push((text, payload.to_vec()));
        }
        fn serve(&mut self, route: &Route, req: &Request, _addr: IpAddr) -> Reply {
            self.served.push(format!("{route:?} {}", req.path));
            http::rooms("[]", false, true, "now")
        }
    }

    const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    /// A masked client frame, as a browser sends it.
    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mask = [1, 2, 3, 4];
        let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        f.extend_from_slice(&mask);
        let start = f.len();
        f.extend_from_slice(payload);
        apply_mask(&mut f[start..], mask);
        f
    }

    fn conn(input: &[&[u8]]) -> Conn<Pipe> {
        let pipe = Pipe {
            input: input.iter().map(|c| c.to_vec()).collect(),
            ..Pipe::default()
        };
        Conn::new(pipe, "127.0.0.1:9".parse().unwrap(), 0, 1, false, false, 0)
    }

    fn read(c: &mut Conn<Pipe>, watch: &mut Watch, config: &Config) {
        let env = Env {
            config,
            now: 5,
            wall_ms: 1_000,
            date: "Thu, 03 Dec 2026 08:00:00 GMT",
            admin_api: false,
        };
        let mut scratch = vec![0; 4096];
        assert_eq!(c.read_ready(&mut scratch, &env, watch), ReadResult::Drained);
        c.flush(config);
    }

    fn written(c: &Conn<Pipe>) -> String {
        String::from_utf8_lossy(&c.stream.output).into_owned()
    }

    #[test]
    fn a_page_request_is_answered_and_the_connection_kept() {
        let config = Config::default();
        let mut c = conn(&[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]);
        let mut watch = Watch::default();
        read(&mut c, &mut watch, &config);
        assert!(
            written(&c).starts_with("HTTP/1.1 200 OK\r\n"),
            "{}",
            written(&c)
        );
        assert_eq!(watch.stats.http_requests_total, 1);
        assert!(c.closing.is_none() && !c.dead && !c.stream.shut.get());
        assert_eq!(
            c.deadline(&config),
            5 + config.keepalive_timeout.as_millis() as u64
        );
    }

    #[test]
    fn connection_close_drains_the_reply_then_half_closes_and_lingers() {
        let config = Config::default();
        let mut c = conn(&[b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]);
        let mut watch = Watch::default();
        read(&mut c, &mut watch, &config);
        assert!(written(&c).starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(c.stream.shut.get(), "our FIN after the reply");
        assert!(!c.dead, "waits for the peer's EOF");
        assert_eq!(c.reason(), Some(EndReason::HttpDone));
        assert_eq!(c.deadline(&config), 5 + config.linger.as_millis() as u64);
    }

    #[test]
    fn a_request_split_across_reads_waits_for_its_end_and_server_routes_are_asked() {
        let config = Config::default();
        let mut c = conn(&[b"GET /api/ro", b"oms HTTP/1.1\r\nHost: x\r\n", b"\r\n"]);
        let mut watch = Watch::default();
        read(&mut c, &mut watch, &config);
        assert_eq!(watch.served, ["Rooms /api/rooms"], "{}", written(&c));
        assert!(written(&c).starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(c.inbuf.is_empty() && c.input_started.is_none());
    }

    #[test]
    fn an_upgraded_chat_socket_reports_its_messages_and_answers_pings_itself() {
        let config = Config::default();
        let text = frame(0x1, br#"{"message":"hi"}"#);
        let (first, rest) = text.split_at(5);
        let input: Vec<&[u8]> = vec![
            UPGRADE.as_bytes(),
            first,
            rest,
            &[0x89, 0x80, 0, 0, 0, 0][..], // an empty masked ping
        ];
        let binary = frame(0x2, &[1, 2, 3]);
        let mut input = input;
        input.push(&binary);
        let mut c = conn(&input);
        let mut watch = Watch::default();
        read(&mut c, &mut watch, &config);
        assert!(written(&c).starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert_eq!(watch.upgraded, [WsKind::Chat]);
        assert_eq!(
            (watch.stats.ws_upgrades_total, watch.stats.ws_clients),
            (1, 1)
        );
        assert_eq!(
            watch.chat,
            [
                (true, br#"{"message":"hi"}"#.to_vec()),
                (false, vec![1, 2, 3])
            ]
        );
        assert!(c.stream.output.ends_with(&[0x8a, 0x00]), "the pong");
        assert!(c.is_chat_client());
    }

    #[test]
    fn bad_utf8_closes_with_1007_and_nothing_is_reported() {
        let config = Config::default();
        let bad = frame(0x1, &[0xff, 0xfe]);
        let mut c = conn(&[UPGRADE.as_bytes(), &bad]);
        let mut watch = Watch::default();
        read(&mut c, &mut watch, &config);
        assert!(watch.chat.is_empty());
        let out = &c.stream.output;
        let close = out.iter().rposition(|&b| b == 0x88).expect("a close frame");
        assert_eq!(out[close + 2..close + 4], [0x03, 0xef], "close 1007");
        assert_eq!(c.reason(), Some(EndReason::InvalidUtf8));
    }

    #[test]
    fn a_malformed_head_gets_400_and_the_peer_eof_ends_it() {
        let config = Config::default();
        let mut c = conn(&[b"NOT HTTP\r\n\r\n"]);
        c.stream.eof = true;
        let mut watch = Watch::default();
        read(&mut c, &mut watch, &config);
        assert!(written(&c).starts_with("HTTP/1.1 400 "), "{}", written(&c));
        assert_eq!(c.reason(), Some(EndReason::BadRequest));
        assert!(c.dead, "output drained and the peer gone: freed");
    }
}
