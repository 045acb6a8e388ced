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
use crate::net::http::{Reply, Request, Route};
use crate::net::http_session::{HttpSession, Listener, Then};
use crate::net::per_address::PerAddress;
use crate::net::write_queue::{Chunk, Flushed, WriteQueue};
use crate::net::ws::{close, CloseReason};
use crate::net::ws_session::{WsKind, WsSession};
use crate::{diag_debug, diag_warn};

mod frames;
mod request;
mod timers;

pub use crate::net::stream::Socket;
pub use frames::frame_for;
use std::io;
use std::net::{IpAddr, SocketAddr};

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
    /// it came deflated), or binary. `Some((bytes, keep))`: the message
    /// announced an upload, see [`Conn::expect_upload`].
    fn chat(&mut self, text: bool, payload: &[u8]) -> Option<(usize, bool)>;
    /// A request only the server can answer (the rooms list, health,
    /// metrics, the admin API, images), from the client at `addr`. `None`:
    /// the answer comes later, through [`Conn::answer`] (an image a shared
    /// log holds); the connection reads nothing more until then.
    fn serve(&mut self, route: &Route, req: &Request, addr: IpAddr) -> Option<Reply>;
}

#[derive(Debug)]
pub struct Conn<S = crate::net::stream::Stream> {
    stream: S,
    peer: SocketAddr,
    /// The client as the trusted proxy reported it (`--trust-proxy`), for logs.
    forwarded: Option<Box<str>>,
    key: usize,
    /// Distinguishes this connection from an earlier one with the same slab key,
    /// so a stale timer entry cannot touch a newcomer.
    pub gen: u32,
    /// The listener it came in on (the admin one has only /healthz,
    /// /metrics and the admin API; the redirect one only redirects).
    listener: Listener,
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
    /// The last flush spent its `--write-budget` with more queued: flush again next turn.
    pub write_more: bool,
    /// Already in the server's list of connections to flush this turn.
    pub in_flush_list: bool,
    /// Already in the server's list of connections with input left to read.
    pub in_read_list: bool,
    pub in_reap_list: bool,
    /// A late answer was queued with input left in `inbuf`: process it
    /// (and read on) at the next read turn.
    resume: bool,
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
        listener: Listener,
        over_limit: bool,
        now: u64,
    ) -> Conn<S> {
        Conn {
            stream,
            peer,
            forwarded: None,
            key,
            gen,
            listener,
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
            write_more: false,
            in_flush_list: false,
            in_read_list: false,
            in_reap_list: false,
            resume: false,
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
        !self.out.is_empty() || self.stream.pending_output()
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
        if self.waiting() {
            // Input stays in the kernel until the answer: the peer is held
            // back by TCP, not by our buffer.
            return ReadResult::Drained;
        }
        if std::mem::take(&mut self.resume) && self.closing.is_none() {
            self.on_bytes(&mut [], env, shell);
        }
        let handshaking = self.stream.handshaking() == Some(true);
        let mut budget = env.config.read_budget;
        while !self.dead && !self.waiting() {
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
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    // TLS: a bad record or a failed handshake (its alert is sent).
                    diag_debug!("{}: TLS error: {e}", self.who());
                    self.kill(EndReason::TlsError);
                }
                Err(e) => {
                    diag_debug!("{}: read error: {e}", self.who());
                    self.kill(EndReason::IoError);
                }
            }
        }
        if handshaking {
            match self.stream.handshaking() {
                Some(false) => shell.stats().tls_handshakes += 1,
                _ if self.reason == Some(EndReason::TlsError) => {
                    shell.stats().tls_handshake_failures += 1
                }
                _ => {}
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
        if !self.has_output() {
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
        while pos < buf.len() && self.closing.is_none() && !self.dead && !self.waiting() {
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

    /// The current request waits for the server's answer.
    fn waiting(&self) -> bool {
        matches!(&self.phase, Phase::Http(h) if h.waiting_since().is_some())
    }

    /// The server's late answer to the current request (see [`Shell::serve`]).
    /// Returns whether requests already received wait to be read: the
    /// caller gives the connection a read turn.
    pub fn answer(&mut self, reply: Reply, env: &Env) -> bool {
        let Phase::Http(session) = &mut self.phase else {
            return false;
        };
        let Some(keep_alive) = session.answered() else {
            return false;
        };
        let then = if keep_alive && reply.keep_alive {
            Then::KeepAlive
        } else {
            Then::Close(EndReason::HttpDone)
        };
        self.send_reply(reply, then, env);
        self.resume = self.closing.is_none() && !self.dead;
        self.resume
    }

    /// The chat core announced an upload on this WebSocket: its next
    /// message, if binary, is at most `bytes` (kept, or dropped as it
    /// arrives when the announcement was refused). See `ws_session.rs`.
    pub fn expect_upload(&mut self, bytes: usize, keep: bool) {
        if let Phase::Ws(s) = &mut self.phase {
            s.expect_upload(bytes, keep);
        }
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
        diag_warn!(
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
        if !self.has_output() {
            self.after_drain();
        }
    }

    /// Marks the connection to be freed at the next safe point.
    pub fn kill(&mut self, reason: EndReason) {
        self.reason.get_or_insert(reason);
        self.dead = true;
    }

    /// Writes queued output until done, WouldBlock or `--write-budget`.
    /// Returns bytes written.
    pub fn flush(&mut self, config: &Config) -> usize {
        self.write(config, None)
    }

    /// [`flush`](Self::flush) for bulk output (HTTP replies, files): at most
    /// `budget` bytes, the turn's share left, and never more than
    /// `--write-budget`, however much the kernel would take.
    pub fn flush_within(&mut self, config: &Config, budget: usize) -> usize {
        self.write(config, Some(budget.min(config.write_budget)))
    }

    fn write(&mut self, config: &Config, cap: Option<usize>) -> usize {
        self.write_more = false;
        if self.dead || !self.has_output() {
            return 0;
        }
        let flushed = match cap {
            Some(cap) => self.out.flush_capped(&mut self.stream, cap),
            None => self.out.flush_to(&mut self.stream, config.write_budget),
        };
        let flushed = flushed.and_then(|(how, n)| match how {
            // The stream's own bytes (TLS records) go last.
            Flushed::All if self.stream.pending_output() => match self.stream.flush() {
                Ok(()) => Ok((Flushed::All, n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok((Flushed::Blocked, n)),
                Err(e) => Err(e),
            },
            how => Ok((how, n)),
        });
        match flushed {
            Ok((Flushed::Budget, n)) => {
                // Fairness: the rest goes next turn, after everyone else's.
                self.write_more = true;
                n
            }
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
                diag_debug!("{}: write error: {e}", self.who());
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
pub(crate) mod testing;
#[cfg(test)]
mod tests;
