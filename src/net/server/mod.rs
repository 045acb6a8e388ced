//! The event loop: one thread, one `mio::Poll`, edge-triggered. It accepts,
//! hands readiness to connections, carries out the chat core's commands, fires
//! timers, flushes output and frees finished connections at one safe point.
//!
//! One turn of the loop:
//! 1. poll (timeout: the next timer, or zero when work is left over);
//! 2. for each event: accept until WouldBlock, or let the connection read
//!    until WouldBlock; writable events just mark the connection flushable;
//! 3. fire due timers, and give the chat core a slice of search work (when
//!    the poll found nothing else to do, or 20 ms after the last one);
//! 4. free dead connections (the chat core hears `Gone`, may announce a leave);
//! 5. carry out the core's commands: a chat message is appended to the
//!    message log; a frame for a room is framed ONCE and that one `Rc` frame
//!    is queued on each of the room's members (not on every connection);
//! 6. commit the log (write, fsync if `--fsync always`), hand what it
//!    committed (or refused) back to the core, carry out the sends that
//!    follow, then flush every connection with new output: frames queued this
//!    turn leave together in one `writev` per client.
//!
//! Chat rules are in `chat/`, storage in `log/`, HTTP in `http.rs`, a
//! connection's own state machine in `conn/`. This file only moves bytes,
//! events and time; starting (listeners, the log, the core) is `start.rs`,
//! and where connections' events reach the core and its commands are carried
//! out is `dispatch.rs`.

use crate::chat::{ClientId, Command, Core, Event};
use crate::clock;
use crate::config::Config;
use crate::log::{Backend, Link, LogEvent};
use crate::metrics::{self, EndReason, Stats};
use crate::net::admin::Admin;
use crate::net::conn::{Conn, Socket};
use crate::net::deflate;
use crate::net::http_session::Listener;
use crate::net::per_address::PerAddress;
use crate::net::samples::Reading;
use crate::net::timer::{Entry, TimerWheel};
use crate::net::ws::close;
use crate::net::ws_session::WsKind;
use crate::os::SignalPipe;
use fetches::Fetches;

mod accept;
mod dispatch;
mod fetches;
mod start;

use crate::{diag_debug, diag_info};
use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
pub use start::StartError;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(usize::MAX - 1);
const ADMIN: Token = Token(usize::MAX - 2);
const SIGNALS: Token = Token(usize::MAX - 3);
/// The Redis log's two links (`--redis`): commands and subscriptions.
const REDIS_COMMANDS: Token = Token(usize::MAX - 4);
const REDIS_SUBSCRIPTIONS: Token = Token(usize::MAX - 5);
/// `--http-redirect`: plain HTTP answered with a redirect to https.
const REDIRECT: Token = Token(usize::MAX - 6);

/// The loop-wide read buffer: every connection reads into this, then keeps
/// only an unparsed remainder. 64 KiB holds many batched frames per read.
const SCRATCH_BYTES: usize = 64 * 1024;

/// While traffic keeps the loop busy, a search slice runs at least this often.
const WORK_INTERVAL: Duration = Duration::from_millis(20);

pub struct Server {
    /// When the next slice of search work may run (see `background_work`).
    work_at: Instant,
    poll: Poll,
    listener: Option<TcpListener>,
    admin: Option<TcpListener>,
    redirect: Option<TcpListener>,
    /// The certificate new connections on `listener` get (`--tls-cert`).
    #[cfg(feature = "tls")]
    tls: Option<crate::net::tls::Certificate>,
    signals: Option<SignalPipe>,
    conns: Slab<Conn>,
    core: Core,
    log: Backend,
    config: Config,
    wheel: TimerWheel,
    scratch: Box<[u8]>,
    commands: Vec<Command>,
    log_events: Vec<LogEvent>,
    /// Images asked of a shared log, with the connections waiting for them.
    fetches: Fetches,
    /// The wall-clock second of the last `Tick` given to the core.
    tick_secs: u64,
    due: Vec<Entry>,
    /// Connections with output queued this turn.
    flush_list: Vec<usize>,
    /// Connections whose read budget ran out with input left.
    read_list: Vec<usize>,
    /// Connections marked dead, to free at the safe point.
    reap_list: Vec<usize>,
    stats: Stats,
    started: Instant,
    next_gen: u32,
    date: String,
    date_secs: u64,
    /// Kept open to be closed when accept fails with EMFILE: it frees one
    /// descriptor to accept-and-close the pending connection, so a full fd table
    /// does not leave the listener spinning on readiness it cannot clear.
    spare_fd: Option<File>,
    fd_limit: u64,
    max_connections: usize,
    per_address: PerAddress,
    admin_api: Option<Admin>,
    /// The one compressor and inflater of permessage-deflate.
    deflate: deflate::Shared,
    shutdown_deadline: Option<Instant>,
}

impl Server {
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Watch this pipe for SIGINT/SIGTERM (graceful shutdown) and SIGHUP (reload).
    pub fn handle_signals(&mut self, signals: SignalPipe) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut SourceFd(&signals.fd()), SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs until a graceful shutdown completes.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.stats.loop_iterations += 1;
            self.refresh_date();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(Listener::Main),
                    ADMIN => self.accept(Listener::Admin),
                    REDIRECT => self.accept(Listener::Redirect),
                    SIGNALS => {
                        let got = self.signals.as_ref().map(|s| s.drain()).unwrap_or_default();
                        if got.reload {
                            self.reload_certificate();
                        }
                        if got.stop {
                            self.begin_shutdown();
                        }
                    }
                    token @ (REDIS_COMMANDS | REDIS_SUBSCRIPTIONS) => {
                        let link = if token == REDIS_COMMANDS {
                            Link::Commands
                        } else {
                            Link::Subscriptions
                        };
                        if let Some(shared) = self.log.shared() {
                            shared.ready(
                                link,
                                event.is_readable() || event.is_read_closed() || event.is_error(),
                                event.is_writable(),
                            );
                        }
                    }
                    Token(key) => {
                        if event.is_writable() {
                            if let Some(conn) = self.conns.get_mut(key) {
                                conn.write_blocked = false;
                            }
                            self.mark_flush(key);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read(key);
                        }
                    }
                }
            }
            for key in std::mem::take(&mut self.read_list) {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.in_read_list = false;
                }
                self.read(key);
            }
            self.fire_timers();
            self.background_work(events.is_empty());
            self.settle();
            if let Some(deadline) = self.shutdown_deadline {
                if self.conns.is_empty() || Instant::now() >= deadline {
                    return self.finish_shutdown();
                }
            }
        }
    }

    /// Frees dead connections, carries out actions and flushes, until nothing changes.
    fn settle(&mut self) {
        loop {
            self.reap();
            self.apply_commands();
            // The log commits before any socket is written, and what it
            // committed is delivered in the same turn.
            let now = self.now_ms();
            self.send_fetches();
            self.log.commit(now, &mut self.log_events);
            let mut events = std::mem::take(&mut self.log_events);
            for event in events.drain(..) {
                match event {
                    LogEvent::File { name, fetched } => self.fetched(&name, fetched),
                    event => self.core.handle(Event::Log(event), &mut self.commands),
                }
            }
            self.log_events = events;
            self.apply_commands();
            // What those commands asked of the log leaves before the replies they caused.
            if let Some(shared) = self.log.shared() {
                shared.flush();
            }
            self.flush_all();
            if self.reap_list.is_empty() && self.commands.is_empty() && !self.log.wants_commit() {
                break;
            }
        }
    }

    /// Gives the chat core a slice of search work when the poll found
    /// nothing else to do (the loop polls without waiting while searches
    /// run), and while traffic keeps it busy at least every
    /// [`WORK_INTERVAL`]: searches use the idle time and never crowd out
    /// chat. Also the core's clock for what the log answers this turn.
    fn background_work(&mut self, idle: bool) {
        let now = Instant::now();
        if self.core.has_work() && (idle || now >= self.work_at) {
            self.core.work(clock::unix_millis(), &mut self.commands);
            self.work_at = now + WORK_INTERVAL;
        } else {
            self.core.clock(clock::unix_millis());
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.read_list.is_empty() || !self.reap_list.is_empty() || !self.flush_list.is_empty() {
            return Some(Duration::ZERO);
        }
        if self.core.has_work() {
            return Some(Duration::ZERO);
        }
        let now = self.now_ms();
        let mut wait = self.wheel.next_wake_in(now);
        if let Some(log_wait) = self.log.wake_in(now) {
            wait = Some(wait.map_or(log_wait, |w| w.min(log_wait)));
        }
        if self.admin_api.is_some() {
            // The admin page's charts get a sample every second.
            let next_second = 1000 - clock::unix_millis() % 1000;
            wait = Some(wait.map_or(next_second, |w| w.min(next_second)));
        }
        if let Some(deadline) = self.shutdown_deadline {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64;
            wait = Some(wait.map_or(left, |w| w.min(left)));
        }
        wait.map(Duration::from_millis)
    }

    fn refresh_date(&mut self) {
        let wall = clock::unix_millis();
        let secs = wall / 1000;
        if secs != self.date_secs {
            self.date_secs = secs;
            self.date = clock::http_date(secs);
        }
        if secs != self.tick_secs {
            // At most once a second, and only when the loop is awake anyway.
            self.tick_secs = secs;
            self.core
                .handle(Event::Tick { now: wall }, &mut self.commands);
            if let Some(admin) = self.admin_api.as_mut() {
                let reading = Reading {
                    connections: self.stats.ws_clients,
                    messages_total: self.stats.messages_received,
                    deliveries_total: self.stats.messages_broadcast,
                    rss_kib: metrics::resident_kib(),
                };
                admin.tick(wall, reading);
            }
        }
    }

    /// Bookkeeping after anything touched a connection: flush, reap, timer.
    fn after_event(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.dead {
            if !conn.in_reap_list {
                conn.in_reap_list = true;
                self.reap_list.push(key);
            }
            return;
        }
        if conn.has_output() {
            self.mark_flush(key);
        }
        self.schedule(key);
    }

    /// See [`mark_flush_on`].
    fn mark_flush(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            mark_flush_on(&mut self.flush_list, key, conn);
        }
    }

    /// See [`schedule_on`].
    fn schedule(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            schedule_on(&mut self.wheel, &self.config, key, conn);
        }
    }

    fn fire_timers(&mut self) {
        let now = self.now_ms();
        self.wheel.advance(now, &mut self.due);
        for entry in std::mem::take(&mut self.due) {
            let key = entry.key as usize;
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.gen != entry.gen || conn.timer_at != entry.at {
                continue; // stale: the connection is gone, or was rescheduled earlier
            }
            conn.timer_at = u64::MAX;
            conn.on_timer(&self.config, &self.date, now);
            self.after_event(key);
        }
    }

    /// The safe point: frees connections marked dead.
    fn reap(&mut self) {
        let now_wall = clock::unix_millis();
        for key in std::mem::take(&mut self.reap_list) {
            if !self.conns.get(key).is_some_and(|c| c.dead) {
                continue;
            }
            let mut conn = self.conns.remove(key);
            let _ = self.poll.registry().deregister(conn.stream_mut().tcp_mut());
            if let Some(ip) = conn.counted_address() {
                self.per_address.close(ip);
            }
            let reason = conn.reason().unwrap_or(EndReason::PeerGone);
            self.stats.ends[reason.index()] += 1;
            self.stats.connections_open = self.conns.len();
            match conn.ws_kind() {
                Some(WsKind::Chat) => {
                    self.stats.ws_clients -= 1;
                    let client = ClientId::new(key, conn.gen);
                    self.core.handle(
                        Event::Gone {
                            client,
                            now: now_wall,
                        },
                        &mut self.commands,
                    );
                    diag_info!("{}: websocket closed ({})", conn.who(), reason.label());
                }
                Some(WsKind::Echo) => {
                    diag_debug!("{}: echo websocket closed ({})", conn.who(), reason.label())
                }
                None => diag_debug!("{}: closed ({})", conn.who(), reason.label()),
            }
        }
    }

    /// Writes what each listed connection has queued: chat WebSockets first
    /// and whole (within `--write-budget` each), then HTTP replies (files)
    /// within the turn's bulk budget, so a large image served to many
    /// never holds up the chat for long: what is left goes next turn.
    fn flush_all(&mut self) {
        let mut more = Vec::new();
        let mut bulk = Vec::new();
        let mut bulk_left = self.config.write_budget * BULK_BUDGET_CONNS;
        // Chat WebSockets first, then everything else (HTTP replies, files).
        for key in std::mem::take(&mut self.flush_list) {
            match self.conns.get(key) {
                Some(conn) if !conn.is_chat_client() => bulk.push(key),
                Some(_) => self.flush_one(key, None, &mut more),
                None => {}
            }
        }
        for key in bulk {
            self.flush_one(key, Some(&mut bulk_left), &mut more);
        }
        self.flush_list = more;
    }

    /// Flushes one connection of [`flush_all`](Self::flush_all)'s list;
    /// `bulk_left`: it is not a chat WebSocket, and shares this budget.
    fn flush_one(&mut self, key: usize, bulk_left: Option<&mut usize>, more: &mut Vec<usize>) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if bulk_left.as_deref() == Some(&0) && !conn.dead {
            more.push(key); // still in_flush_list: next turn
            return;
        }
        conn.in_flush_list = false;
        let n = match bulk_left.as_deref() {
            Some(&left) => conn.flush_within(&self.config, left),
            None => conn.flush(&self.config),
        };
        self.stats.bytes_written += n as u64;
        if let Some(left) = bulk_left {
            *left = left.saturating_sub(n.max(1));
        }
        if conn.dead && !conn.in_reap_list {
            conn.in_reap_list = true;
            self.reap_list.push(key);
        }
        if conn.write_more && !conn.dead {
            // Its budget is spent: the rest after everyone else's, next turn.
            conn.in_flush_list = true;
            more.push(key);
        }
    }

    fn begin_shutdown(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        diag_info!(
            "shutting down: closing {} connections (at most {:?})",
            self.conns.len(),
            self.config.shutdown_timeout
        );
        self.shutdown_deadline = Some(Instant::now() + self.config.shutdown_timeout);
        for listener in [
            self.listener.take(),
            self.admin.take(),
            self.redirect.take(),
        ]
        .into_iter()
        .flatten()
        {
            let mut l = listener;
            let _ = self.poll.registry().deregister(&mut l);
        }
        let now = self.now_ms();
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.on_shutdown(now);
            }
            self.after_event(key);
        }
    }

    fn finish_shutdown(mut self) -> io::Result<()> {
        let left = self.conns.len();
        // What the core still has to store (read markers waiting for their second).
        self.core.shutdown(&mut self.commands);
        self.apply_commands();
        let now = self.now_ms();
        for (_, conn) in self.conns.iter_mut() {
            conn.close_with(
                close::GOING_AWAY,
                "server shutting down",
                EndReason::Shutdown,
                now,
            );
            conn.flush(&self.config);
        }
        self.log.close(now);
        diag_info!("stopped ({left} connections still open were dropped)");
        Ok(())
    }
}

/// HTTP replies written per turn, in `--write-budget`s: a few connections'
/// worth, so a turn stays short however many fetch a large file at once.
const BULK_BUDGET_CONNS: usize = 4;

/// Lists a connection for this turn's flush, once, unless its socket is
/// waiting for writability (its writable event will list it) or it is dead.
fn mark_flush_on<S: Socket>(flush_list: &mut Vec<usize>, key: usize, conn: &mut Conn<S>) {
    if !conn.in_flush_list && !conn.write_blocked && !conn.dead {
        conn.in_flush_list = true;
        flush_list.push(key);
    }
}

/// Puts a connection's next deadline on the wheel if it is earlier than the
/// one already scheduled; later deadlines are found when that entry fires.
fn schedule_on<S: Socket>(wheel: &mut TimerWheel, config: &Config, key: usize, conn: &mut Conn<S>) {
    let at = conn.deadline(config);
    if at < conn.timer_at {
        conn.timer_at = at;
        wheel.schedule(Entry {
            key: key as u32,
            gen: conn.gen,
            at,
        });
    }
}
