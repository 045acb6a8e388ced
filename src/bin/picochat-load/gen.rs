//! The engine: one mio poll, thousands of client sockets, like the server it
//! measures; frames are parsed with picochat's own `ws` module, many per read.
//! Every message carries its sender, sequence number and intended send time
//! (µs since the run started) in its text, so every receiver measures
//! end-to-end latency and every delivery is counted against what was expected
//! (`tally.rs`): a dropped client shows up as lost deliveries, never hidden.
//! Once a second a row of the series is closed (`series.rs`). What the
//! numbers mean to a reader is `report.rs`'s business, not this file's.
//! Reading what arrives is `gen/receive.rs`; what is mixed in besides chat
//! messages, `gen/requests.rs` and `gen/images.rs`.

use crate::args::Args;
use crate::histogram::Histogram;
use crate::procfs;
use crate::series::{Sampler, ServerWatch};
use crate::stream::Conn;
use crate::tally::Cells;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use picochat::net::ws::{self, Parse, Role};
use slab::Slab;
use std::io::{self, IsTerminal, Read, Write};
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

pub mod images;
mod receive;
pub mod requests;

use receive::InflateCache;
#[cfg(test)]
use receive::{room_index, token};

pub enum State {
    Connecting,
    Handshake,
    Open,
    Closed,
}

pub struct Client {
    stream: Conn,
    pub state: State,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    sender: Option<u32>,
    next_seq: u64,
    inflight: u32,
    started: Instant,
    /// With `--rooms`: the room index this client is in.
    pub room: Option<usize>,
    /// With `--rooms`: welcomes received (one per room it joins).
    welcomes: usize,
    /// With `--rooms`: a join was refused (an error frame before its last
    /// welcome). It stays in the rooms that welcomed it but never sends.
    refused: bool,
    /// Which `--url` it connected to.
    node: usize,
    /// It negotiated permessage-deflate.
    deflate: bool,
    /// With `--rooms`: the room's newest id when it joined (history pages ask before a random one).
    last_id: u64,
    /// When its history page, search or ping went (µs on the run's clock), until answered.
    asked_page: Option<u64>,
    asked_search: Option<u64>,
    pinged: Option<u64>,
    /// One of the `--searchers`.
    searcher: bool,
    /// When its image was announced (µs on the run's clock), until its message came back.
    uploading: Option<u64>,
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

#[derive(Default, Clone)]
pub struct Counters {
    pub connected: usize,
    /// With `--rooms`: clients welcomed into their room(s), and clients refused a join.
    pub joined: usize,
    pub join_refused: usize,
    pub failed: usize,
    pub dropped: usize,
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub connect_us: Vec<u64>,
    pub first_error: Option<String>,
    /// Clients that negotiated permessage-deflate, and compressed frames received.
    pub compressing: usize,
    pub compressed_frames: u64,
}

pub struct Gen {
    pub args: Args,
    poll: Poll,
    pub clients: Slab<Client>,
    scratch: Vec<u8>,
    /// Latencies of the whole run (of the current step in `--step`).
    pub hist: Histogram,
    /// Latencies per node (`--url`), over the whole run.
    pub node_hist: Vec<Histogram>,
    /// One inflater for every client (permessage-deflate, no context takeover).
    inflater: picochat::net::deflate::Inflater,
    /// The last broadcasts inflated, by their compressed bytes: every client
    /// of a broadcast receives the same bytes, so each is inflated once (as
    /// the server compresses once), and the generator measures the server,
    /// not its own inflating.
    inflated: InflateCache,
    pub c: Counters,
    /// Members, expected and received deliveries, per room and node.
    pub cells: Cells,
    /// The per-second series.
    pub sampler: Sampler,
    /// `--server-pid` processes.
    pub servers: Vec<ServerWatch>,
    t0: Instant,
    rng: u64,
    senders: Vec<usize>,
    sending: bool,
    /// Clients opened so far: client i joins room i mod --rooms and uses URL i mod --url count.
    opened_total: usize,
    /// Per `--url`: clients connected through it.
    pub node_clients: Vec<u64>,
    /// `--history-rate`, `--searchers`, `--ping-interval`: what was asked and answer times.
    pub mix: requests::Mix,
    /// `--images-rate`: uploads, and the fetches of every image received.
    pub images: images::Images,
    /// `wss://` targets' client configuration (`--tls-ca`).
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Gen {
    pub fn new(args: Args) -> io::Result<Gen> {
        let t0 = Instant::now();
        let nodes = args.targets.len();
        #[cfg(feature = "tls")]
        let tls = match &args.tls_ca {
            Some(ca) if args.targets.iter().any(|t| t.tls) => {
                Some(crate::stream::tls::client_config(ca).map_err(io::Error::other)?)
            }
            _ => None,
        };
        Ok(Gen {
            poll: Poll::new()?,
            clients: Slab::new(),
            scratch: vec![0; 256 * 1024],
            hist: Histogram::new(),
            node_hist: (0..nodes).map(|_| Histogram::new()).collect(),
            inflater: Default::default(),
            inflated: InflateCache::default(),
            c: Counters::default(),
            cells: Cells::new(args.rooms, nodes),
            sampler: Sampler::new(t0),
            servers: args
                .server_pids
                .iter()
                .map(|&p| ServerWatch::new(p))
                .collect(),
            t0,
            rng: 0x2545_f491_4f6c_dd1d ^ std::process::id() as u64,
            senders: Vec::new(),
            sending: false,
            opened_total: 0,
            node_clients: vec![0; nodes],
            mix: requests::Mix::default(),
            images: images::Images::default(),
            #[cfg(feature = "tls")]
            tls,
            args,
        })
    }

    /// Seconds since the generator started (the series' time axis).
    pub fn at(&self, t: Instant) -> f64 {
        self.sampler.at(t)
    }

    /// Clients open now.
    pub fn open_now(&self) -> u64 {
        (self.c.connected - self.c.dropped.min(self.c.connected)) as u64
    }

    /// Closes the series' last row.
    pub fn finish_series(&mut self) {
        let open = self.open_now();
        self.sampler.finish(
            Instant::now(),
            open,
            self.c.sent,
            self.c.received,
            &mut self.servers,
        );
    }

    fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }

    fn rng_next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn mask(&mut self) -> [u8; 4] {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng as u32).to_ne_bytes()
    }

    fn open_one(&mut self) {
        let node = self.opened_total % self.args.targets.len();
        let target = &self.args.targets[node];
        match TcpStream::connect(target.addr) {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                let mut stream = match self.wrap(tcp, node) {
                    Ok(s) => s,
                    Err(e) => return self.fail(None, format!("tls: {e}")),
                };
                let entry = self.clients.vacant_entry();
                let key = entry.key();
                if self
                    .poll
                    .registry()
                    .register(
                        stream.tcp(),
                        Token(key),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .is_err()
                {
                    self.c.failed += 1;
                    return;
                }
                let offer = if self.args.compression {
                    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                } else {
                    ""
                };
                let req = format!(
                    "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n",
                    target.path, target.host
                );
                let room = (self.args.rooms > 0).then(|| self.opened_total % self.args.rooms);
                self.opened_total += 1;
                entry.insert(Client {
                    stream,
                    state: State::Connecting,
                    inbuf: Vec::new(),
                    out: req.into_bytes(),
                    out_pos: 0,
                    sender: None,
                    next_seq: 0,
                    inflight: 0,
                    started: Instant::now(),
                    room,
                    welcomes: 0,
                    refused: false,
                    node,
                    deflate: false,
                    last_id: 0,
                    asked_page: None,
                    asked_search: None,
                    pinged: None,
                    searcher: false,
                    uploading: None,
                });
            }
            Err(e) => self.fail(None, format!("connect {}: {e}", target.addr)),
        }
    }

    /// The connection as its `--url` says: plain, or TLS to the URL's host.
    fn wrap(&self, tcp: TcpStream, node: usize) -> io::Result<Conn> {
        #[cfg(feature = "tls")]
        if let (true, Some(config)) = (self.args.targets[node].tls, &self.tls) {
            let name = self.args.targets[node].server_name();
            let conn = crate::stream::tls::TlsConn::new(tcp, config, name)?;
            return Ok(Conn::Tls(Box::new(conn)));
        }
        let _ = node;
        Ok(Conn::Plain(tcp))
    }

    fn fail(&mut self, key: Option<usize>, why: String) {
        if let Some(k) = key {
            if let Some(c) = self.clients.get_mut(k) {
                match c.state {
                    State::Open => {
                        self.c.dropped += 1;
                        self.cells.at(c.room.unwrap_or(0), c.node).dropped += 1;
                    }
                    State::Closed => return,
                    _ => self.c.failed += 1,
                }
                c.state = State::Closed;
                c.out = Vec::new();
                c.inbuf = Vec::new();
                let _ = self.poll.registry().deregister(c.stream.tcp());
            }
        } else {
            self.c.failed += 1;
        }
        self.c.first_error.get_or_insert(why);
    }

    fn flush(&mut self, key: usize) {
        let Some(c) = self.clients.get_mut(key) else {
            return;
        };
        if matches!(c.state, State::Closed) {
            return;
        }
        while c.out_pos < c.out.len() {
            match c.stream.write(&c.out[c.out_pos..]) {
                Ok(n) => c.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return, // still connecting
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(Some(key), format!("write: {e}")),
            }
        }
        c.out.clear();
        c.out_pos = 0;
        // TLS: the records rustls made of it (and the handshake) onto the socket.
        match c.stream.flush() {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected
                ) =>
            {
                return
            }
            Err(e) => return self.fail(Some(key), format!("write: {e}")),
        }
        if matches!(c.state, State::Connecting) {
            c.state = State::Handshake;
        }
    }

    fn send_from(&mut self, key: usize, intended_us: u64) {
        let mask = self.mask();
        let payload = self.args.payload;
        let Some(c) = self.clients.get_mut(key) else {
            return;
        };
        let (Some(sender), State::Open) = (c.sender, &c.state) else {
            return;
        };
        let mut text = format!("L{sender}.{}.{intended_us}.", c.next_seq);
        while text.len() < payload {
            text.push('x');
        }
        let json = match c.room {
            Some(r) => format!(r#"{{"type":"message","room":"load-{r}","message":"{text}"}}"#),
            None => format!(
                r#"{{"email":"load{sender}@example.org","username":"load{sender}","message":"{text}"}}"#
            ),
        };
        let audience = self.cells.expect_broadcast(c.room.unwrap_or(0));
        c.out.extend_from_slice(&ws::encode_masked(
            OpCode::Data(Data::Text),
            json.as_bytes(),
            mask,
        ));
        c.next_seq += 1;
        c.inflight += 1;
        self.c.sent += 1;
        self.c.expected += audience;
        self.flush(key);
    }

    fn read(&mut self, key: usize) {
        loop {
            let Some(c) = self.clients.get_mut(key) else {
                return;
            };
            if matches!(c.state, State::Closed | State::Connecting) {
                return;
            }
            match c.stream.read(&mut self.scratch) {
                Ok(0) => return self.fail(Some(key), "server closed the connection".into()),
                Ok(n) => {
                    c.inbuf.extend_from_slice(&self.scratch[..n]);
                    self.parse(key);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(Some(key), format!("read: {e}")),
            }
        }
    }

    /// One poll turn: handle events, within `timeout`.
    pub fn turn(&mut self, events: &mut Events, timeout: Duration) {
        if let Err(e) = self.poll.poll(events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                eprintln!("picochat-load: poll: {e}");
                std::process::exit(1);
            }
        }
        let mut fetches = Vec::new();
        for event in events.iter() {
            let key = event.token().0;
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            let writable = event.is_writable();
            if key >= images::FETCH_TOKEN {
                // After the chat clients' events: an image's bytes never
                // delay the reading of a delivery that came with them.
                fetches.push((key - images::FETCH_TOKEN, readable, writable));
                continue;
            }
            if writable {
                if let Some(c) = self.clients.get_mut(key) {
                    if matches!(c.state, State::Connecting) {
                        if let Ok(Some(e)) | Err(e) = c.stream.tcp().take_error() {
                            self.fail(Some(key), format!("connect: {e}"));
                            continue;
                        }
                        if c.stream.tcp().peer_addr().is_err() {
                            continue; // not connected yet
                        }
                    }
                }
                self.flush(key);
            }
            if readable {
                self.read(key);
            }
        }
        for (key, readable, writable) in fetches {
            self.fetch_ready(key, readable, writable);
        }
        let now = Instant::now();
        if self.sampler.due(now) {
            let open = self.open_now();
            self.sampler
                .close(now, open, self.c.sent, self.c.received, &mut self.servers);
        }
    }

    pub fn open_count(&self) -> usize {
        self.clients
            .iter()
            .filter(|(_, c)| matches!(c.state, State::Open))
            .count()
    }

    /// Clients whose connection attempt has ended, either way.
    fn settled(&self) -> usize {
        self.c.connected + self.c.failed
    }

    /// Opens `n` more connections at the connect rate and waits for their handshakes.
    pub fn connect(&mut self, n: usize, events: &mut Events) {
        let start = Instant::now();
        let base = self.settled();
        let target = base + n;
        let mut opened = 0;
        let ramp = Duration::from_secs_f64(n as f64 / self.args.connect_rate.max(1.0));
        let deadline = start + Duration::from_secs(30) + ramp;
        let mut last_progress = Instant::now();
        while self.settled() < target && Instant::now() < deadline {
            let allowed = if self.args.connect_rate > 0.0 {
                ((start.elapsed().as_secs_f64() * self.args.connect_rate) as usize + 1).min(n)
            } else {
                n
            };
            // At most 500 handshakes in flight, so the server's listen backlog never overflows.
            while opened < allowed && base + opened - self.settled() < 500 {
                self.open_one();
                opened += 1;
            }
            self.turn(events, Duration::from_millis(5));
            if last_progress.elapsed() >= Duration::from_secs(1) {
                last_progress = Instant::now();
                self.progress(&format!("connecting {}/{}", self.c.connected, target));
            }
        }
        let missing = target.saturating_sub(self.settled());
        if missing > 0 {
            self.c.failed += missing;
            self.c
                .first_error
                .get_or_insert_with(|| "connect/handshake timed out".into());
        }
        // With rooms, every open client must be welcomed before sending starts.
        while self.args.rooms > 0
            && self.c.joined + self.c.join_refused
                < self.c.connected - self.c.dropped.min(self.c.connected)
            && Instant::now() < deadline
        {
            self.turn(events, Duration::from_millis(5));
        }
    }

    /// The progress line, on a terminal only (and not with `--quiet`).
    pub fn progress(&self, what: &str) {
        if self.args.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let line = format!(
            "[{:>5.1}s] {what}  open {}  sent {}  recv {}/{}  p99 {:.1}ms",
            self.t0.elapsed().as_secs_f64(),
            self.c.connected - self.c.dropped.min(self.c.connected),
            self.c.sent,
            self.c.received,
            self.c.expected,
            self.hist.quantile(0.99) as f64 / 1000.0
        );
        eprint!("\r{line}   ");
    }

    /// Sends for `duration` (open or closed loop), then waits for stragglers.
    pub fn run(&mut self, duration: Duration, events: &mut Events) -> (Duration, f64) {
        let open: Vec<(usize, Option<usize>)> = self
            .clients
            .iter()
            .filter(|(_, c)| matches!(c.state, State::Open) && !c.refused)
            .map(|(k, c)| (k, c.room))
            .collect();
        self.senders = if self.args.rooms > 0 {
            // Round-robin over the rooms, so every room has senders.
            let mut by_room: Vec<Vec<usize>> = vec![Vec::new(); self.args.rooms];
            for (k, r) in &open {
                if let Some(r) = r {
                    by_room[*r].push(*k);
                }
            }
            let mut picked = Vec::new();
            let mut depth = 0;
            while picked.len() < self.args.senders && by_room.iter().any(|m| m.len() > depth) {
                for members in &by_room {
                    if let Some(&k) = members.get(depth) {
                        if picked.len() < self.args.senders {
                            picked.push(k);
                        }
                    }
                }
                depth += 1;
            }
            picked
        } else {
            open.iter().map(|(k, _)| *k).collect()
        };
        self.senders.truncate(self.args.senders);
        for (i, &k) in self.senders.iter().enumerate() {
            if let Some(c) = self.clients.get_mut(k) {
                c.sender = Some(i as u32);
            }
        }
        if self.args.rooms == 0 {
            // Everyone open now expects every message.
            let mut per_node = vec![0u64; self.args.targets.len()];
            for (_, c) in self.clients.iter() {
                if matches!(c.state, State::Open) {
                    per_node[c.node] += 1;
                }
            }
            self.cells.set_members(&per_node);
        }
        self.sending = true;
        let start = Instant::now();
        let gen_cpu0 = procfs::cpu_seconds(std::process::id()).unwrap_or(0.0);
        if self.args.rate == 0.0 {
            for k in self.senders.clone() {
                for _ in 0..self.args.inflight {
                    self.send_from(k, self.now_us());
                }
            }
        }
        let interval = if self.args.rate > 0.0 {
            Duration::from_secs_f64(1.0 / self.args.rate)
        } else {
            Duration::ZERO
        };
        let mut next_send = start;
        let mut next_sender = 0usize;
        let mut last_progress = Instant::now();
        let mut mixer = self.start_mix(start);
        while start.elapsed() < duration {
            let now = Instant::now();
            self.mix_turn(&mut mixer, now);
            if self.args.rate > 0.0 && !self.senders.is_empty() {
                while next_send <= now {
                    let k = self.senders[next_sender % self.senders.len()];
                    next_sender += 1;
                    let intended = next_send.duration_since(self.t0).as_micros() as u64;
                    self.send_from(k, intended);
                    next_send += interval;
                }
            }
            let wait = if self.args.rate > 0.0 {
                next_send.saturating_duration_since(Instant::now())
            } else {
                Duration::from_millis(50)
            }
            .min(mixer.next_due().saturating_duration_since(Instant::now()));
            self.turn(events, wait.min(Duration::from_millis(50)));
            if last_progress.elapsed() >= Duration::from_secs(1) {
                last_progress = Instant::now();
                self.progress("running");
            }
        }
        self.sending = false;
        let elapsed = start.elapsed();
        // Drain: wait until everything expected arrived and the images
        // were fetched (or 3 s; 10 s with images).
        let wait = if self.images.size().is_some() { 10 } else { 3 };
        let drain_end = Instant::now() + Duration::from_secs(wait);
        while (self.c.received < self.expected_live() || self.images.busy())
            && Instant::now() < drain_end
        {
            self.turn(events, Duration::from_millis(20));
        }
        let gen_cpu = procfs::cpu_seconds(std::process::id()).unwrap_or(0.0) - gen_cpu0;
        (elapsed, gen_cpu)
    }

    /// What can still arrive: deliveries to clients that are still open.
    fn expected_live(&self) -> u64 {
        if self.c.dropped == 0 {
            self.c.expected
        } else {
            // Dropped clients will never receive the rest; do not wait for them.
            self.c
                .expected
                .saturating_sub(self.c.dropped as u64 * self.c.sent)
        }
    }
}

pub fn pct(v: &[u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    s[((s.len() as f64 * q).ceil() as usize).clamp(1, s.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_parses_from_either_servers_broadcast() {
        let go = br#"{"email":"a@b","username":"u","message":"L3.17.123456.xxxx"}"#;
        assert_eq!(token(go), Some((3, 123456)));
        let pico = br#"{"type":"message","id":9,"time":1,"username":"u","avatar":"ab","message":"L0.1.42.xx"}"#;
        assert_eq!(token(pico), Some((0, 42)));
        assert_eq!(token(br#"{"type":"welcome"}"#), None);
    }

    #[test]
    fn room_index_reads_the_load_rooms_only() {
        assert_eq!(
            room_index(br#"{"type":"message","room":"load-17","id":3}"#),
            Some(17)
        );
        assert_eq!(room_index(br#"{"type":"welcome","room":"lobby"}"#), None);
    }
}
