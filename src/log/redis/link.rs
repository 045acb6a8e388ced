//! One connection to Redis as a mio source: connect without blocking,
//! reconnect with a backoff capped at `--redis-retry-max`, write pipelined
//! commands until `WouldBlock`, read until `WouldBlock` and decode every whole
//! reply. It knows nothing of what the commands mean (`mod.rs` does): it
//! counts bytes, so its owner can tell a command still in this process (never
//! sent: safe to fail) from one handed to the kernel (in doubt until its reply).

use super::resp::{self, Value};
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where Redis listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Resolved once at start: no name lookups in the loop.
    Tcp(SocketAddr),
    Unix(PathBuf),
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }

    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        match self {
            Stream::Tcp(s) => registry.register(s, token, interest),
            Stream::Unix(s) => registry.register(s, token, interest),
        }
    }

    fn deregister(&mut self, registry: &Registry) {
        let _ = match self {
            Stream::Tcp(s) => registry.deregister(s),
            Stream::Unix(s) => registry.deregister(s),
        };
    }

    /// Whether a non-blocking connect has finished (`Ok(false)`: not yet).
    fn connected(&mut self) -> io::Result<bool> {
        let (err, peer) = match self {
            Stream::Tcp(s) => (s.take_error()?, s.peer_addr().map(|_| ())),
            Stream::Unix(s) => (s.take_error()?, s.peer_addr().map(|_| ())),
        };
        if let Some(e) = err {
            return Err(e);
        }
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not connected; try again at this time (ms).
    Down {
        retry_at: u64,
    },
    Connecting,
    Up,
}

/// What happened to the link in one [`Link::pump`].
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    None,
    /// A fresh connection: the owner queues its handshake and resubscribes.
    Connected,
    /// The connection is gone (or a connect failed). Every command written
    /// and not answered is in doubt; the owner decides what that means.
    Lost(String),
}

const READ_CHUNK: usize = 64 * 1024;

pub struct Link {
    target: Target,
    token: Token,
    name: &'static str,
    stream: Option<Stream>,
    state: State,
    /// Commands encoded and not yet handed to the kernel (from `out_pos`).
    out: Vec<u8>,
    out_pos: usize,
    input: Vec<u8>,
    /// Bytes queued / handed to the kernel since this connection began.
    queued_total: u64,
    written_total: u64,
    backoff_ms: u64,
    retry_max_ms: u64,
    readable: bool,
    writable: bool,
}

impl Link {
    pub fn new(target: Target, token: Token, name: &'static str, retry_max_ms: u64) -> Link {
        Link {
            target,
            token,
            name,
            stream: None,
            state: State::Down { retry_at: 0 },
            out: Vec::new(),
            out_pos: 0,
            input: Vec::new(),
            queued_total: 0,
            written_total: 0,
            backoff_ms: 0,
            retry_max_ms,
            readable: false,
            writable: false,
        }
    }

    pub fn is_up(&self) -> bool {
        self.state == State::Up
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The poll said this link's socket is ready.
    pub fn ready(&mut self, readable: bool, writable: bool) {
        self.readable |= readable;
        self.writable |= writable;
    }

    /// Queues one command; returns the byte position its end will have been
    /// written at (compare with [`written`](Self::written)).
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> u64 {
        let before = self.out.len();
        resp::encode(&mut self.out, args);
        self.queued_total += (self.out.len() - before) as u64;
        self.writable = true;
        self.queued_total
    }

    /// Writes queued commands until `WouldBlock`; a failure is left for the
    /// next [`pump`](Self::pump) to find (and report as `Lost`).
    pub fn flush(&mut self) {
        if self.state == State::Up && self.write().is_err() {
            self.writable = true;
        }
    }

    /// Commands are queued and the socket has not said it is full.
    pub fn can_write_more(&self) -> bool {
        self.state == State::Up && self.writable && self.out_pos < self.out.len()
    }

    /// Bytes of this connection handed to the kernel.
    pub fn written(&self) -> u64 {
        self.written_total
    }

    /// When the loop must wake up for this link (a reconnect due), if ever.
    pub fn wake_at(&self) -> Option<u64> {
        match self.state {
            State::Down { retry_at } => Some(retry_at),
            _ => None,
        }
    }

    /// Drops the connection (a protocol error, a refused password): the
    /// owner gets `Lost` from this call, and a reconnect after the backoff.
    pub fn drop_connection(&mut self, registry: &Registry, now: u64, why: &str) -> Change {
        if let Some(mut s) = self.stream.take() {
            s.deregister(registry);
        }
        self.out.clear();
        self.out_pos = 0;
        self.input.clear();
        // The byte counts stay: the owner compares them after `Lost`.
        self.backoff_ms = (self.backoff_ms * 2).clamp(50, self.retry_max_ms.max(1));
        self.state = State::Down {
            retry_at: now + self.backoff_ms,
        };
        Change::Lost(why.to_string())
    }

    /// Connects when due, writes and reads until `WouldBlock`, and appends
    /// every whole reply to `replies`.
    pub fn pump(&mut self, registry: &Registry, now: u64, replies: &mut Vec<Value>) -> Change {
        if let State::Down { retry_at } = self.state {
            if now < retry_at {
                return Change::None;
            }
            match self.connect(registry) {
                Ok(()) => self.state = State::Connecting,
                Err(e) => return self.drop_connection(registry, now, &e.to_string()),
            }
        }
        let mut change = Change::None;
        if self.state == State::Connecting {
            match self.stream.as_mut().map(Stream::connected) {
                Some(Ok(true)) => {
                    self.state = State::Up;
                    self.backoff_ms = 0;
                    self.writable = true;
                    self.readable = true;
                    change = Change::Connected;
                }
                Some(Ok(false)) => return Change::None,
                Some(Err(e)) => return self.drop_connection(registry, now, &e.to_string()),
                None => return self.drop_connection(registry, now, "no socket"),
            }
        }
        if change == Change::Connected {
            // The owner queues its handshake before anything is written.
            return change;
        }
        if let Err(e) = self.write() {
            return self.drop_connection(registry, now, &e);
        }
        if let Err(e) = self.read(replies) {
            return self.drop_connection(registry, now, &e);
        }
        change
    }

    fn connect(&mut self, registry: &Registry) -> io::Result<()> {
        let mut stream = match &self.target {
            Target::Tcp(addr) => {
                let s = TcpStream::connect(*addr)?;
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }
            Target::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
        };
        stream.register(registry, self.token)?;
        self.stream = Some(stream);
        self.queued_total = 0;
        self.written_total = 0;
        Ok(())
    }

    fn write(&mut self) -> Result<(), String> {
        if !self.writable || self.out_pos == self.out.len() {
            return Ok(());
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        while self.out_pos < self.out.len() {
            match stream.io().write(&self.out[self.out_pos..]) {
                Ok(0) => return Err("connection closed".into()),
                Ok(n) => {
                    self.out_pos += n;
                    self.written_total += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos > READ_CHUNK {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        Ok(())
    }

    fn read(&mut self, replies: &mut Vec<Value>) -> Result<(), String> {
        if !self.readable {
            return Ok(());
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        let mut closed = false;
        loop {
            let start = self.input.len();
            self.input.resize(start + READ_CHUNK, 0);
            match stream.io().read(&mut self.input[start..]) {
                Ok(0) => {
                    self.input.truncate(start);
                    closed = true;
                    break;
                }
                Ok(n) => self.input.truncate(start + n),
                Err(e) => {
                    self.input.truncate(start);
                    match e.kind() {
                        io::ErrorKind::WouldBlock => {
                            self.readable = false;
                            break;
                        }
                        io::ErrorKind::Interrupted => {}
                        _ => return Err(e.to_string()),
                    }
                }
            }
        }
        let mut used = 0;
        loop {
            match resp::decode(&self.input[used..]) {
                Ok(Some((v, n))) => {
                    used += n;
                    replies.push(v);
                }
                Ok(None) => break,
                Err(e) => return Err(format!("not a Redis reply: {}", e.0)),
            }
        }
        self.input.drain(..used);
        if closed {
            return Err("Redis closed the connection".into());
        }
        Ok(())
    }
}
