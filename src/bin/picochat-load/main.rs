//! `picochat-load`: a load generator for WebSocket chat servers that relay the
//! Go tutorial's `{"email","username","message"}` frames (picochat, the Go
//! tutorial server, or anything compatible).
//!
//! One thread, one mio poll, thousands of client sockets, like the server it
//! measures; frames are parsed with picochat's own `ws` module, many per read.
//! Every message carries its sender, sequence number and intended send time
//! (µs since the run started) in its text, so every receiver measures
//! end-to-end latency and every delivery is counted against what was expected:
//! a dropped client shows up as lost deliveries, never hidden.
//! The server's event loop is not used here; nothing but framing is shared.

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use picochat::config::{parse_duration, parse_num};
use picochat::net::ws::{self, Parse, Role};
use picochat::os;

mod procfs;
use slab::Slab;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

const HELP: &str = "picochat-load: load generator for tutorial-protocol WebSocket chat servers.

Usage: picochat-load [OPTIONS]

  --url URL            server WebSocket URL (default ws://127.0.0.1:8000/ws); give it
                       several times to spread clients over nodes sharing rooms
                       (client i uses URL i mod count; a message sent through one
                       node is expected, and counted, on all of them)
  --clients N          WebSocket clients to connect (default 100; the maximum in --step mode)
  --senders K          how many of them send (default 10)
  --rate R             total messages/s across senders; 0 = closed loop (default 100)
  --inflight W         closed loop: messages in flight per sender (default 1)
  --duration D         how long to send, e.g. 10s (default 10s)
  --payload BYTES      message text size (default 100)
  --rooms N            spread clients over N rooms (picochat's rooms protocol: each
                       joins room load-(i mod N), senders are spread over the rooms,
                       and deliveries are counted per room); 0 = no rooms, the Go
                       tutorial's frames (default 0)
  --rooms-per-client K with --rooms: each client also joins the K-1 rooms after its
                       own (memory measurements; it sends to its own room) (default 1)
  --connect-rate C     new connections per second, 0 = no ramp (default 2000)
  --idle               only hold the connections for --duration and report
  --step S             add S clients per step while --rate broadcasts run, until p95
                       latency passes --threshold or deliveries are lost
  --step-duration D    how long each step measures (default 5s)
  --threshold D        p95 latency bound for --step (default 500ms)
  --compression        offer permessage-deflate; the server's compressed frames are
                       inflated here (the report counts those that negotiated it)
  --server-pid PID     also report the server's CPU time and peak RSS (repeatable:
                       each process is reported, and their CPU summed)
  --json               print one JSON object instead of the table
  --quiet              no progress line on stderr
  -h, --help           this help
";

/// One server (node) the clients connect to.
#[derive(Clone, Debug)]
struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or("--url must start with ws:// (TLS is not supported)")?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = host
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} resolves to nothing"))?;
        Ok(Target {
            addr,
            host: host.to_string(),
            path: path.to_string(),
        })
    }

    fn url(&self) -> String {
        format!("ws://{}{}", self.host, self.path)
    }
}

#[derive(Clone, Debug)]
struct Args {
    targets: Vec<Target>,
    clients: usize,
    senders: usize,
    rate: f64,
    inflight: u32,
    duration: Duration,
    payload: usize,
    rooms: usize,
    rooms_per_client: usize,
    connect_rate: f64,
    idle: bool,
    step: usize,
    step_duration: Duration,
    threshold: Duration,
    server_pids: Vec<u32>,
    compression: bool,
    json: bool,
    quiet: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        targets: Vec::new(),
        clients: 100,
        senders: 10,
        rate: 100.0,
        inflight: 1,
        duration: Duration::from_secs(10),
        payload: 100,
        rooms: 0,
        rooms_per_client: 1,
        connect_rate: 2000.0,
        idle: false,
        step: 0,
        step_duration: Duration::from_secs(5),
        threshold: Duration::from_millis(500),
        server_pids: Vec::new(),
        compression: false,
        json: false,
        quiet: false,
    };
    let mut urls: Vec<String> = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            "--url" => urls.push(val()?),
            "--clients" => a.clients = parse_num(&val()?)?,
            "--senders" => a.senders = parse_num(&val()?)?,
            "--rate" => a.rate = val()?.parse().map_err(|_| "--rate: expected a number")?,
            "--inflight" => a.inflight = parse_num(&val()?)?,
            "--duration" => a.duration = parse_duration(&val()?)?,
            "--payload" => a.payload = parse_num(&val()?)?,
            "--rooms" => a.rooms = parse_num(&val()?)?,
            "--rooms-per-client" => a.rooms_per_client = parse_num(&val()?)?,
            "--connect-rate" => {
                a.connect_rate = val()?
                    .parse()
                    .map_err(|_| "--connect-rate: expected a number")?
            }
            "--idle" => a.idle = true,
            "--step" => a.step = parse_num(&val()?)?,
            "--step-duration" => a.step_duration = parse_duration(&val()?)?,
            "--threshold" => a.threshold = parse_duration(&val()?)?,
            "--server-pid" => a.server_pids.push(parse_num(&val()?)?),
            "--json" => a.json = true,
            "--quiet" => a.quiet = true,
            "--compression" => a.compression = true,
            other => return Err(format!("unknown option {other} (see --help)")),
        }
    }
    if urls.is_empty() {
        urls.push("ws://127.0.0.1:8000/ws".into());
    }
    a.targets = urls
        .iter()
        .map(|u| Target::parse(u))
        .collect::<Result<_, _>>()?;
    a.senders = a.senders.min(a.clients.max(1));
    a.payload = a.payload.max(40);
    if a.inflight == 0 {
        return Err("--inflight must be at least 1".into());
    }
    if a.rooms > a.clients {
        return Err("--rooms must not exceed --clients".into());
    }
    if a.rooms_per_client == 0 || (a.rooms > 0 && a.rooms_per_client > a.rooms) {
        return Err("--rooms-per-client must be from 1 to --rooms".into());
    }
    Ok(a)
}

/// Latency histogram with about 1% precision: exact below 1024 µs, then 128
/// sub-buckets per power of two. Fixed size (~7 KiB), no per-sample storage.
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; 1024 + 54 * 128],
            total: 0,
            max: 0,
        }
    }

    fn bucket(v: u64) -> usize {
        if v < 1024 {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros() as usize; // >= 10
        1024 + (msb - 10) * 128 + ((v >> (msb - 7)) & 127) as usize
    }

    fn bucket_low(b: usize) -> u64 {
        if b < 1024 {
            return b as u64;
        }
        let msb = (b - 1024) / 128 + 10;
        let sub = ((b - 1024) % 128) as u64;
        (1u64 << msb) | (sub << (msb - 7))
    }

    fn record(&mut self, us: u64) {
        let b = Self::bucket(us).min(self.counts.len() - 1);
        self.counts[b] += 1;
        self.total += 1;
        self.max = self.max.max(us);
    }

    fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::bucket_low(b);
            }
        }
        self.max
    }
}

enum State {
    Connecting,
    Handshake,
    Open,
    Closed,
}

struct Client {
    stream: TcpStream,
    state: State,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    sender: Option<u32>,
    next_seq: u64,
    inflight: u32,
    started: Instant,
    /// With `--rooms`: the room index this client is in.
    room: Option<usize>,
    /// With `--rooms`: welcomes received (one per room it joins).
    welcomes: usize,
    /// Which `--url` it connected to.
    node: usize,
    /// It negotiated permessage-deflate.
    deflate: bool,
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Compressed payloads lately inflated, and what they inflated to.
#[derive(Default)]
struct InflateCache {
    recent: std::collections::VecDeque<(Vec<u8>, std::rc::Rc<[u8]>)>,
}

impl InflateCache {
    const SIZE: usize = 64;

    fn get(
        &mut self,
        compressed: &[u8],
        inflater: &mut picochat::net::deflate::Inflater,
    ) -> Result<std::rc::Rc<[u8]>, picochat::net::deflate::InflateError> {
        // Newest first: a broadcast's copies arrive one after another.
        if let Some((_, plain)) = self.recent.iter().rev().find(|(c, _)| c[..] == *compressed) {
            return Ok(plain.clone());
        }
        let plain: std::rc::Rc<[u8]> = inflater.inflate(compressed, 1 << 24)?.into();
        if self.recent.len() == Self::SIZE {
            self.recent.pop_front();
        }
        self.recent.push_back((compressed.to_vec(), plain.clone()));
        Ok(plain)
    }
}

#[derive(Default, Clone)]
struct Counters {
    connected: usize,
    /// With `--rooms`: clients welcomed into their room.
    joined: usize,
    failed: usize,
    dropped: usize,
    sent: u64,
    expected: u64,
    received: u64,
    connect_us: Vec<u64>,
    first_error: Option<String>,
    /// Clients that negotiated permessage-deflate, and compressed frames received.
    compressing: usize,
    compressed_frames: u64,
}

struct Gen {
    args: Args,
    poll: Poll,
    clients: Slab<Client>,
    scratch: Vec<u8>,
    hist: Histogram,
    /// One inflater for every client (permessage-deflate, no context takeover).
    inflater: picochat::net::deflate::Inflater,
    /// The last broadcasts inflated, by their compressed bytes: every client
    /// of a broadcast receives the same bytes, so each is inflated once (as
    /// the server compresses once), and the generator measures the server,
    /// not its own inflating.
    inflated: InflateCache,
    c: Counters,
    t0: Instant,
    rng: u64,
    senders: Vec<usize>,
    sending: bool,
    /// Clients established when sending started: each message is expected by all of them.
    audience: u64,
    /// With `--rooms`, per room: members welcomed, deliveries expected and received.
    room_members: Vec<u64>,
    room_expected: Vec<u64>,
    room_received: Vec<u64>,
    /// Clients opened so far: client i joins room i mod --rooms.
    opened_total: usize,
    /// Per `--url`: clients connected through it, deliveries received through it.
    node_clients: Vec<u64>,
    node_received: Vec<u64>,
}

impl Gen {
    fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
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
            Ok(mut stream) => {
                let _ = stream.set_nodelay(true);
                let entry = self.clients.vacant_entry();
                let key = entry.key();
                if self
                    .poll
                    .registry()
                    .register(
                        &mut stream,
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
                    node,
                    deflate: false,
                });
            }
            Err(e) => self.fail(None, format!("connect {}: {e}", target.addr)),
        }
    }

    fn fail(&mut self, key: Option<usize>, why: String) {
        if let Some(k) = key {
            if let Some(c) = self.clients.get_mut(k) {
                match c.state {
                    State::Open => self.c.dropped += 1,
                    State::Closed => return,
                    _ => self.c.failed += 1,
                }
                c.state = State::Closed;
                c.out = Vec::new();
                c.inbuf = Vec::new();
                let _ = self.poll.registry().deregister(&mut c.stream);
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
        let audience = match c.room {
            Some(r) => {
                let members = self.room_members[r];
                self.room_expected[r] += members;
                members
            }
            None => self.audience,
        };
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

    fn parse(&mut self, key: usize) {
        let now_us = self.now_us();
        let Some(c) = self.clients.get_mut(key) else {
            return;
        };
        let mut buf = std::mem::take(&mut c.inbuf);
        let mut pos = 0;
        let mut echoes = 0u32;
        let mut join_room = None;
        let mut result: Result<(), String> = Ok(());
        if matches!(c.state, State::Handshake) {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                c.inbuf = buf;
                return;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let accept = tungstenite::handshake::derive_accept_key(KEY.as_bytes());
            if !head.starts_with("HTTP/1.1 101") || !head.contains(&accept) {
                let first = head.lines().next().unwrap_or("").to_string();
                return self.fail(Some(key), format!("upgrade refused: {first}"));
            }
            c.state = State::Open;
            c.deflate = head.contains("permessage-deflate");
            self.c.compressing += usize::from(c.deflate);
            self.c.connected += 1;
            self.node_clients[c.node] += 1;
            if let Some(r) = c.room {
                join_room = Some((r, key));
            }
            self.c
                .connect_us
                .push(c.started.elapsed().as_micros() as u64);
            pos = end + 4;
        }
        let mut pongs: Vec<Vec<u8>> = Vec::new();
        while pos < buf.len() {
            match ws::parse_frame(&mut buf[pos..], Role::Client, 1 << 24, 0, c.deflate) {
                Ok(Parse::Incomplete { .. }) => break,
                Err(e) => {
                    result = Err(format!("bad frame from server: {}", e.reason));
                    break;
                }
                Ok(Parse::Frame(f)) => {
                    let raw = &buf[pos + f.payload.start..pos + f.payload.end];
                    let inflated;
                    let payload = if f.compressed {
                        inflated = match self.inflated.get(raw, &mut self.inflater) {
                            Ok(bytes) => bytes,
                            Err(e) => {
                                result = Err(format!("bad compressed frame from server: {e:?}"));
                                break;
                            }
                        };
                        self.c.compressed_frames += 1;
                        &inflated[..]
                    } else {
                        raw
                    };
                    match f.opcode {
                        OpCode::Data(Data::Text) => {
                            if payload.starts_with(br#"{"type":"welcome""#) {
                                // Checked first: its history may hold earlier runs' messages.
                                if let Some(r) = room_index(payload) {
                                    if let Some(n) = self.room_members.get_mut(r) {
                                        *n += 1;
                                        c.welcomes += 1;
                                        if c.welcomes == self.args.rooms_per_client {
                                            self.c.joined += 1;
                                        }
                                    }
                                }
                            } else if let Some((sender, sent_us)) = token(payload) {
                                self.c.received += 1;
                                self.node_received[c.node] += 1;
                                if let Some(r) = room_index(payload) {
                                    if let Some(n) = self.room_received.get_mut(r) {
                                        *n += 1;
                                    }
                                }
                                self.hist.record(now_us.saturating_sub(sent_us));
                                if c.sender == Some(sender) {
                                    echoes += 1;
                                }
                            }
                        }
                        OpCode::Control(Control::Ping) => pongs.push(payload.to_vec()),
                        OpCode::Control(Control::Close) => {
                            result = Err("server sent close".into());
                            break;
                        }
                        _ => {}
                    }
                    pos += f.consumed();
                }
            }
        }
        buf.drain(..pos);
        c.inbuf = buf;
        c.inflight = c.inflight.saturating_sub(echoes);
        if let Err(why) = result {
            return self.fail(Some(key), why);
        }
        if let Some((r, key)) = join_room {
            for extra in 0..self.args.rooms_per_client {
                let mask = self.mask();
                let room = (r + extra) % self.args.rooms;
                let join =
                    format!(r#"{{"type":"join","room":"load-{room}","username":"load{key}"}}"#);
                if let Some(c) = self.clients.get_mut(key) {
                    c.out.extend_from_slice(&ws::encode_masked(
                        OpCode::Data(Data::Text),
                        join.as_bytes(),
                        mask,
                    ));
                }
            }
        }
        for p in pongs {
            let mask = self.mask();
            if let Some(c) = self.clients.get_mut(key) {
                c.out.extend_from_slice(&ws::encode_masked(
                    OpCode::Control(Control::Pong),
                    &p,
                    mask,
                ));
            }
        }
        // Closed loop: an echo of our own message lets the next one go.
        if self.sending && self.args.rate == 0.0 {
            for _ in 0..echoes {
                self.send_from(key, self.now_us());
            }
        }
        self.flush(key);
    }

    /// One poll turn: handle events, within `timeout`.
    fn turn(&mut self, events: &mut Events, timeout: Duration) {
        if let Err(e) = self.poll.poll(events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                eprintln!("picochat-load: poll: {e}");
                std::process::exit(1);
            }
        }
        for event in events.iter() {
            let key = event.token().0;
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            let writable = event.is_writable();
            if writable {
                if let Some(c) = self.clients.get_mut(key) {
                    if matches!(c.state, State::Connecting) {
                        if let Ok(Some(e)) | Err(e) = c.stream.take_error() {
                            self.fail(Some(key), format!("connect: {e}"));
                            continue;
                        }
                        if c.stream.peer_addr().is_err() {
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
    }

    fn open_count(&self) -> usize {
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
    fn connect(&mut self, n: usize, events: &mut Events) {
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
            if !self.args.quiet && last_progress.elapsed() >= Duration::from_secs(1) {
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
            && self.c.joined < self.c.connected - self.c.dropped.min(self.c.connected)
            && Instant::now() < deadline
        {
            self.turn(events, Duration::from_millis(5));
        }
    }

    fn progress(&self, what: &str) {
        let line = format!(
            "[{:>5.1}s] {what}  open {}  sent {}  recv {}/{}  p99 {:.1}ms",
            self.t0.elapsed().as_secs_f64(),
            self.c.connected - self.c.dropped.min(self.c.connected),
            self.c.sent,
            self.c.received,
            self.c.expected,
            self.hist.quantile(0.99) as f64 / 1000.0
        );
        if std::io::stderr().is_terminal() {
            eprint!("\r{line}   ");
        } else {
            eprintln!("{line}");
        }
    }

    /// Sends for `duration` (open or closed loop), then waits for stragglers.
    fn run(&mut self, duration: Duration, events: &mut Events) -> (Duration, f64) {
        let open: Vec<(usize, Option<usize>)> = self
            .clients
            .iter()
            .filter(|(_, c)| matches!(c.state, State::Open))
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
        self.audience = self.open_count() as u64;
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
        while start.elapsed() < duration {
            let now = Instant::now();
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
            };
            self.turn(events, wait.min(Duration::from_millis(50)));
            if !self.args.quiet && last_progress.elapsed() >= Duration::from_secs(1) {
                last_progress = Instant::now();
                self.progress("running");
            }
        }
        self.sending = false;
        let elapsed = start.elapsed();
        // Drain: wait until everything expected arrived (or 3 s).
        let drain_end = Instant::now() + Duration::from_secs(3);
        while self.c.received < self.expected_live() && Instant::now() < drain_end {
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

/// The N of `"room":"load-N"` in a frame from picochat.
fn room_index(payload: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"\"room\":\"load-";
    let at = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = payload[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&payload[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// Extracts (sender, intended send time µs) from a broadcast frame's text.
fn token(payload: &[u8]) -> Option<(u32, u64)> {
    const KEY: &[u8] = b"\"message\":\"L";
    let at = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let mut fields = payload[at..].splitn(4, |&b| b == b'.');
    let num = |f: Option<&[u8]>| -> Option<u64> { std::str::from_utf8(f?).ok()?.parse().ok() };
    let sender = num(fields.next())? as u32;
    let _seq = num(fields.next())?;
    let sent = num(fields.next())?;
    Some((sender, sent))
}

fn pct(v: &[u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    s[((s.len() as f64 * q).ceil() as usize).clamp(1, s.len()) - 1]
}

struct ServerWatch {
    pid: u32,
    cpu0: f64,
    peak_rss: u64,
}

impl ServerWatch {
    fn new(pid: u32) -> Self {
        ServerWatch {
            pid,
            cpu0: procfs::cpu_seconds(pid).unwrap_or(0.0),
            peak_rss: 0,
        }
    }

    fn peak(&self) -> u64 {
        self.peak_rss
            .max(procfs::rss_bytes(self.pid).map_or(0, |r| r.1))
    }
    fn sample(&mut self) {
        if let Some((rss, _)) = procfs::rss_bytes(self.pid) {
            self.peak_rss = self.peak_rss.max(rss);
        }
    }
    fn cpu(&self) -> f64 {
        procfs::cpu_seconds(self.pid).unwrap_or(0.0) - self.cpu0
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("picochat-load: {e}");
            std::process::exit(2);
        }
    };
    let fd_limit = os::raise_fd_limit();
    if (fd_limit as usize) < args.clients + 32 {
        eprintln!(
            "picochat-load: warning: file-descriptor limit {fd_limit} is below --clients {}",
            args.clients
        );
    }
    for t in &args.targets {
        if let Err(e) = std::net::TcpStream::connect_timeout(&t.addr, Duration::from_secs(3)) {
            eprintln!("picochat-load: cannot reach {}: {e}", t.addr);
            std::process::exit(1);
        }
    }
    let poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("picochat-load: {e}");
            std::process::exit(1);
        }
    };
    let mut g = Gen {
        args: args.clone(),
        poll,
        clients: Slab::new(),
        scratch: vec![0; 256 * 1024],
        hist: Histogram::new(),
        inflater: Default::default(),
        inflated: InflateCache::default(),
        c: Counters::default(),
        t0: Instant::now(),
        rng: 0x2545_f491_4f6c_dd1d ^ std::process::id() as u64,
        senders: Vec::new(),
        sending: false,
        audience: 0,
        room_members: vec![0; args.rooms],
        room_expected: vec![0; args.rooms],
        room_received: vec![0; args.rooms],
        opened_total: 0,
        node_clients: vec![0; args.targets.len()],
        node_received: vec![0; args.targets.len()],
    };
    let mut events = Events::with_capacity(4096);
    let mut servers: Vec<ServerWatch> = args
        .server_pids
        .iter()
        .map(|&p| ServerWatch::new(p))
        .collect();
    let report = if args.step > 0 {
        step_mode(&mut g, &mut events, &mut servers)
    } else {
        let t = Instant::now();
        g.connect(args.clients, &mut events);
        let connect_time = t.elapsed();
        for s in servers.iter_mut() {
            s.cpu0 = procfs::cpu_seconds(s.pid).unwrap_or(0.0);
        }
        let (elapsed, gen_cpu) = if args.idle {
            let t = Instant::now();
            let gen0 = procfs::cpu_seconds(std::process::id()).unwrap_or(0.0);
            while t.elapsed() < args.duration {
                g.turn(&mut events, Duration::from_millis(100));
                servers.iter_mut().for_each(ServerWatch::sample);
            }
            (
                t.elapsed(),
                procfs::cpu_seconds(std::process::id()).unwrap_or(0.0) - gen0,
            )
        } else {
            let r = g.run(args.duration, &mut events);
            servers.iter_mut().for_each(ServerWatch::sample);
            r
        };
        summary(&g, &args, elapsed, gen_cpu, connect_time, &servers)
    };
    if !args.quiet && std::io::stderr().is_terminal() {
        eprintln!();
    }
    println!("{report}");
}

fn step_mode(g: &mut Gen, events: &mut Events, servers: &mut [ServerWatch]) -> String {
    let args = g.args.clone();
    let mut best = 0;
    let mut steps = Vec::new();
    let mut target = 0;
    loop {
        target = (target + args.step).min(args.clients);
        let t = Instant::now();
        g.connect(target - g.open_count(), events);
        let connect_time = t.elapsed();
        g.hist = Histogram::new();
        let before = g.c.clone();
        g.run(args.step_duration, events);
        servers.iter_mut().for_each(ServerWatch::sample);
        let lost = (g.c.expected - before.expected).saturating_sub(g.c.received - before.received);
        let p95 = g.hist.quantile(0.95);
        let pass =
            lost == 0 && g.c.failed == before.failed && p95 <= args.threshold.as_micros() as u64;
        let open = g.open_count();
        steps.push(Step {
            clients: open,
            p50_ms: ms(g.hist.quantile(0.5)),
            p95_ms: ms(p95),
            p99_ms: ms(g.hist.quantile(0.99)),
            lost,
            pass,
        });
        if !args.quiet {
            eprintln!(
                "step {open:>6} clients: p50 {:.1} ms  p95 {:.1} ms  lost {lost}  connect {:.1}s  {}",
                g.hist.quantile(0.5) as f64 / 1000.0,
                p95 as f64 / 1000.0,
                connect_time.as_secs_f64(),
                if pass { "pass" } else { "FAIL" }
            );
        }
        if !pass {
            break;
        }
        best = open;
        if target >= args.clients {
            break;
        }
    }
    if args.json {
        to_json(&StepReport {
            mode: "step",
            max_clients_passing: best,
            threshold_ms: args.threshold.as_millis() as u64,
            steps,
        })
    } else {
        format!(
            "step mode: {best} clients passed (p95 <= {} ms, no losses)",
            args.threshold.as_millis()
        )
    }
}

fn summary(
    g: &Gen,
    args: &Args,
    elapsed: Duration,
    gen_cpu: f64,
    connect_time: Duration,
    servers: &[ServerWatch],
) -> String {
    let c = &g.c;
    let lost = c.expected.saturating_sub(c.received);
    let secs = elapsed.as_secs_f64().max(1e-9);
    let deliveries_per_s = c.received as f64 / secs;
    // Several servers (nodes): CPU summed, peak RSS of the largest; each is also listed.
    let (server_cpu, server_rss) = if servers.is_empty() {
        (None, None)
    } else {
        (
            Some(servers.iter().map(ServerWatch::cpu).sum::<f64>()),
            servers.iter().map(ServerWatch::peak).max(),
        )
    };
    let per_server: Vec<ServerReport> = servers
        .iter()
        .map(|s| ServerReport {
            pid: s.pid,
            cpu_s: s.cpu(),
            peak_rss_bytes: s.peak(),
        })
        .collect();
    let nodes: Vec<NodeReport> = args
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| NodeReport {
            url: t.url(),
            clients: g.node_clients[i],
            received: g.node_received[i],
        })
        .collect();
    let saturated = gen_cpu / secs > 0.9;
    let q = |p| ms(g.hist.quantile(p));
    let server_fields = server_cpu.zip(server_rss);
    let room_losses: Vec<u64> = g
        .room_expected
        .iter()
        .zip(&g.room_received)
        .map(|(e, r)| e.saturating_sub(*r))
        .collect();
    if args.json {
        return to_json(&Report {
            mode: if args.idle {
                "idle"
            } else if args.rate == 0.0 {
                "closed"
            } else {
                "open"
            },
            clients: args.clients,
            connected: c.connected,
            compressing: c.compressing,
            compressed_frames: c.compressed_frames,
            failed: c.failed,
            dropped: c.dropped,
            senders: args.senders,
            rate: args.rate,
            payload: args.payload,
            duration_s: secs,
            connect_s: connect_time.as_secs_f64(),
            connect_p50_ms: ms(pct(&c.connect_us, 0.5)),
            connect_max_ms: ms(pct(&c.connect_us, 1.0)),
            sent: c.sent,
            expected: c.expected,
            received: c.received,
            lost,
            deliveries_per_s: deliveries_per_s.round(),
            latency_ms: Latency {
                p50: q(0.5),
                p90: q(0.9),
                p95: q(0.95),
                p99: q(0.99),
                max: ms(g.hist.max),
            },
            generator_cpu_s: gen_cpu,
            generator_saturated: saturated,
            server_cpu_s: server_cpu,
            deliveries_per_server_cpu_s: server_fields.map(|(cpu, _)| {
                if cpu > 0.0 {
                    (c.received as f64 / cpu).round()
                } else {
                    0.0
                }
            }),
            server_peak_rss_bytes: server_rss,
            servers: (servers.len() > 1).then_some(per_server),
            nodes: (args.targets.len() > 1).then_some(nodes),
            rooms: (args.rooms > 0).then(|| RoomsReport {
                rooms: args.rooms,
                joined: c.joined,
                rooms_with_losses: room_losses.iter().filter(|&&l| l > 0).count(),
                max_lost_in_a_room: room_losses.iter().copied().max().unwrap_or(0),
            }),
            first_error: c.first_error.as_deref(),
        });
    }
    let mut t = String::new();
    let urls: Vec<String> = args.targets.iter().map(Target::url).collect();
    let _ = writeln!(t, "picochat-load → {}", urls.join(", "));
    let _ = writeln!(t, "  clients      {} connected, {} failed, {} dropped by the server (connect {:.2}s, p50 {:.1} ms, max {:.1} ms)",
        c.connected, c.failed, c.dropped, connect_time.as_secs_f64(), pct(&c.connect_us, 0.5) as f64 / 1000.0, pct(&c.connect_us, 1.0) as f64 / 1000.0);
    if !args.idle {
        let _ = writeln!(
            t,
            "  messages     {} sent by {} senders ({}), {} B text",
            c.sent,
            args.senders.min(c.connected),
            if args.rate == 0.0 {
                format!("closed loop, {} in flight each", args.inflight)
            } else {
                format!("{} msg/s", args.rate)
            },
            args.payload
        );
        let _ = writeln!(
            t,
            "  deliveries   {} received of {} expected, {} lost, {:.0}/s",
            c.received, c.expected, lost, deliveries_per_s
        );
        let _ = writeln!(
            t,
            "  latency      p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            q(0.5),
            q(0.9),
            q(0.99),
            g.hist.max as f64 / 1000.0
        );
    }
    let _ = writeln!(
        t,
        "  generator    {:.2} s CPU in {:.2} s{}",
        gen_cpu,
        secs,
        if saturated {
            "  (SATURATED: results limited by the generator)"
        } else {
            ""
        }
    );
    if let (Some(cpu), Some(rss)) = (server_cpu, server_rss) {
        let _ = writeln!(
            t,
            "  server       {:.2} s CPU ({:.0} deliveries per CPU-second), peak RSS {:.1} MiB",
            cpu,
            if cpu > 0.0 {
                c.received as f64 / cpu
            } else {
                0.0
            },
            rss as f64 / 1048576.0
        );
        if per_server.len() > 1 {
            for s in &per_server {
                let _ = writeln!(
                    t,
                    "    pid {:<8} {:.2} s CPU, peak RSS {:.1} MiB",
                    s.pid,
                    s.cpu_s,
                    s.peak_rss_bytes as f64 / 1048576.0
                );
            }
        }
    }
    if nodes.len() > 1 {
        for n in &nodes {
            let _ = writeln!(
                t,
                "  node         {}: {} clients, {} deliveries",
                n.url, n.clients, n.received
            );
        }
    }
    if args.rooms > 0 {
        let _ = writeln!(
            t,
            "  rooms        {} rooms, {} clients joined, {} rooms with losses (at most {} lost in one)",
            args.rooms,
            c.joined,
            room_losses.iter().filter(|&&l| l > 0).count(),
            room_losses.iter().copied().max().unwrap_or(0)
        );
    }
    if let Some(e) = &c.first_error {
        let _ = writeln!(t, "  first error  {e}");
    }
    t
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The `--json` report of a run.
#[derive(serde::Serialize)]
struct Report<'a> {
    mode: &'static str,
    clients: usize,
    connected: usize,
    /// Clients that negotiated permessage-deflate (`--compression`), and compressed frames read.
    compressing: usize,
    compressed_frames: u64,
    failed: usize,
    dropped: usize,
    senders: usize,
    rate: f64,
    payload: usize,
    duration_s: f64,
    connect_s: f64,
    connect_p50_ms: f64,
    connect_max_ms: f64,
    sent: u64,
    expected: u64,
    received: u64,
    lost: u64,
    deliveries_per_s: f64,
    latency_ms: Latency,
    generator_cpu_s: f64,
    generator_saturated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_cpu_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deliveries_per_server_cpu_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_peak_rss_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    servers: Option<Vec<ServerReport>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nodes: Option<Vec<NodeReport>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rooms: Option<RoomsReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_error: Option<&'a str>,
}

/// With several `--server-pid`: each process.
#[derive(serde::Serialize)]
struct ServerReport {
    pid: u32,
    cpu_s: f64,
    peak_rss_bytes: u64,
}

/// With several `--url`: what went through each node.
#[derive(serde::Serialize)]
struct NodeReport {
    url: String,
    clients: u64,
    received: u64,
}

#[derive(serde::Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

/// With `--rooms`: deliveries were counted per room.
#[derive(serde::Serialize)]
struct RoomsReport {
    rooms: usize,
    joined: usize,
    rooms_with_losses: usize,
    max_lost_in_a_room: u64,
}

#[derive(serde::Serialize)]
struct Step {
    clients: usize,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    lost: u64,
    pass: bool,
}

#[derive(serde::Serialize)]
struct StepReport {
    mode: &'static str,
    max_clients_passing: usize,
    threshold_ms: u64,
    steps: Vec<Step>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_one_percent() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 50_000.0), (0.99, 99_000.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.01, "{q}: {got}");
        }
    }

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
