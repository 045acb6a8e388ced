//! Every tunable limit of the server and its default ([`Config`]), and what
//! the chat core is given of them ([`Config::chat_limits`]).
//!
//! Beside it: the option table that drives parsing, `--help` and the docs'
//! options table (`options.rs`), so a limit cannot exist without a flag, an
//! environment variable and a default; reading flags and `PICOCHAT_*`
//! variables, and the value codecs (`parse.rs`); cross-field checks
//! (`checks.rs`); the `--help` text (`help.rs`). No I/O happens here beyond
//! reading `std::env`.

use crate::chat::access::Secret;
use crate::chat::token::TokenKey;
use crate::chat::Limits;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

mod checks;
pub mod file;
mod help;
mod man;
mod options;
mod parse;

pub use help::help_text;
pub use man::man_page;
pub use options::{OptSpec, OPTIONS};
pub use parse::{
    parse_bool, parse_duration, parse_num, parse_size, resolve_addr, show_duration, show_size,
    Command,
};

/// When the durable message log is flushed to stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync before each message is broadcast: an acknowledged message survives power loss.
    Always,
    /// fsync at most once per second from the loop's timer; a crash of the
    /// process loses nothing (the page cache has it), a power cut loses up to a second.
    Interval,
    /// Leave it to the kernel.
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The server's configuration. Field docs say why a default is what it is.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the chat page and `/ws` are served. All interfaces on 8000, like the
    /// Go tutorial server picochat replaces.
    pub listen: String,
    /// Optional second listener for `/healthz` and `/metrics` only. When set,
    /// the main listener no longer serves them.
    pub admin_listen: Option<String>,
    /// HTTPS and WSS on `listen` with this certificate chain and key (PEM).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Plain HTTP here is redirected to https (and serves ACME challenges).
    pub http_redirect: Option<String>,
    /// Where certbot (webroot mode) writes `.well-known/acme-challenge/` files.
    pub acme_webroot: Option<PathBuf>,
    /// Serve `/healthz` and `/metrics` at all.
    pub ops_endpoints: bool,
    /// Largest WebSocket message accepted from a chat client (after reassembly).
    /// Larger ones are refused with close 1009 before their payload is buffered.
    pub max_message: usize,
    /// Longest chat text in bytes. Leaves room for the JSON envelope inside `max_message`.
    pub max_text: usize,
    /// Largest image one upload may announce.
    pub max_upload: usize,
    /// Uploads in flight across all connections (their bytes are held until stored).
    pub upload_memory: usize,
    /// All stored images (`None`: 256 MiB on disk, 32 MiB in memory or Redis).
    pub upload_quota: Option<usize>,
    /// An announced upload's bytes must arrive within this.
    pub upload_timeout: Duration,
    /// Per-client output hard limit (Redis' client-output-buffer-limit, pub/sub
    /// class: 32 MiB). A client whose unsent output passes it is disconnected at once.
    /// Queued broadcast frames are shared, so a queued byte costs little (see README).
    pub max_output: usize,
    /// Soft limit: unsent output may stay above this for at most
    /// `output_soft_seconds`; a client that reads, even slower than a burst
    /// arrives, survives the burst, and one that never reads is dropped.
    pub output_soft_limit: usize,
    pub output_soft_seconds: Duration,
    /// Largest HTTP request head; 431 past it.
    pub max_header: usize,
    /// A request head must arrive completely within this (slowloris defence).
    pub header_timeout: Duration,
    /// An idle keep-alive HTTP connection is closed after this.
    pub keepalive_timeout: Duration,
    /// A WebSocket that has sent nothing for this long is pinged.
    pub ping_interval: Duration,
    /// ...and closed if it still sends nothing (no pong) this long after the ping.
    pub pong_timeout: Duration,
    /// A WebSocket message whose first byte arrived must be complete within this
    /// (the WebSocket form of slowloris: a peer dribbling a frame byte by byte).
    pub message_timeout: Duration,
    /// Open connections (HTTP and WebSocket). 0 = the file-descriptor limit minus a reserve.
    pub max_connections: usize,
    /// Connections accepted past `max_connections` only to be told 503; beyond
    /// this many extra, new connections are closed at once without a word.
    pub overflow_connections: usize,
    /// At most this much is read from one connection per loop turn (like
    /// Redis' query-buffer reads); the rest is read next turn. Output is
    /// flushed between turns, so one fast sender adds at most this much to
    /// every reader's queue before the readers' sockets are written again, and
    /// a flooding peer cannot starve the others.
    pub read_budget: usize,
    /// At most this much is written to one connection per loop turn; the
    /// rest next turn, after every other connection's.
    pub write_budget: usize,
    /// How long a closing connection waits for its output to drain and for
    /// the peer to close its side (so the last bytes are not lost to a reset).
    pub linger: Duration,
    /// Chat messages per second per client (token bucket, burst 2x). 0 disables.
    pub msg_rate: u32,
    /// Messages a welcome shows a joining client (older ones are paged in).
    pub history: usize,
    /// The most messages one history page holds (a larger limit is clamped).
    pub page_max: usize,
    /// Bytes of history kept in memory across all rooms; the oldest messages
    /// of rooms nobody is in go first, then those of the biggest rooms.
    /// Without `--data-dir` or `--redis`, this is all that is kept.
    pub history_bytes: usize,
    /// Where frames without `"room"` go (the Go tutorial's clients, protocol v1).
    pub default_room: String,
    /// `--rooms`: a fixed set of rooms (the default room is always in it).
    /// Empty: rooms are made by joining them.
    pub rooms: Vec<String>,
    /// Rooms one connection may be in at once.
    pub max_rooms_per_client: usize,
    /// Who may speak: anyone, or connections that joined with the shared password.
    pub auth: AuthMode,
    /// `--auth password`: the file holding the password.
    pub password_file: Option<PathBuf>,
    /// `--auth token`: the file holding the HS256 secret.
    pub jwt_secret_file: Option<PathBuf>,
    /// How long a name stays held for its page's secret after its last connection.
    /// `None`: 30 days when holds can be stored (`--data-dir`, `--redis`),
    /// else while online (a restart would forget a longer hold anyway).
    pub name_hold: Option<Duration>,
    pub edit_window: Duration,
    /// The admin API's bearer token (`/api/admin/`); no file, no admin API.
    pub admin_token_file: Option<PathBuf>,
    /// Connections open at once from one client address (0 = no limit).
    pub max_connections_per_address: u32,
    /// New WebSocket upgrades per second from one client address (0 = no limit).
    pub upgrades_per_address: u32,
    /// Rooms with members at once; rooms nobody is in do not count.
    pub max_rooms: usize,
    /// Directory for the durable message log. None = memory only.
    pub data_dir: Option<PathBuf>,
    pub fsync: FsyncPolicy,
    /// `--redis`: the shared message log many processes use. None = this process alone.
    pub redis: Option<String>,
    /// A file holding the Redis password (its text, one trailing newline ignored), read at start.
    pub redis_password_file: Option<PathBuf>,
    /// Prefix of every Redis key and channel picochat uses.
    pub redis_prefix: String,
    /// Publishes sent to Redis and not yet answered, at most; past it senders get `unavailable`.
    pub redis_max_pending: usize,
    /// Longest wait between reconnect attempts (the backoff doubles up to it).
    pub redis_retry_max: Duration,
    /// How often each room's position is read back from Redis, to find a
    /// subscription that silently stopped delivering.
    pub redis_check_interval: Duration,
    /// How long a process's presence entries live in Redis without a refresh:
    /// the users of a process that died leave within this.
    pub redis_presence_ttl: Duration,
    /// SO_REUSEPORT on the listener, so several processes share one port.
    pub reuse_port: bool,
    /// Bytes the message log keeps on disk (`--data-dir`): whole segments
    /// of an eighth of this go, oldest first, past it.
    pub retain: u64,
    /// Days a message is kept on disk (0 = no age limit): older segments go.
    pub retain_days: u32,
    /// Messages kept per room in Redis (the stream's `MAXLEN ~`).
    pub redis_retain: usize,
    /// Extra browser origins allowed to open `/ws` (host[:port] or full origin).
    pub allow_origin: Vec<String>,
    /// Who may show the chat page in a frame: CSP `frame-ancestors` sources.
    pub frame_ancestors: String,
    /// Path of an echo WebSocket endpoint for conformance tests; off when None.
    pub echo_path: Option<String>,
    /// permessage-deflate when a client offers it.
    pub compression: bool,
    /// Frames smaller than this are sent uncompressed.
    pub compress_min: usize,
    /// Message limit of the echo endpoint (Autobahn sends up to 16 MiB).
    pub echo_max_message: usize,
    /// How long a graceful shutdown may take before remaining sockets are dropped.
    pub shutdown_timeout: Duration,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_proxy: bool,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:8000".into(),
            admin_listen: None,
            tls_cert: None,
            tls_key: None,
            http_redirect: None,
            acme_webroot: None,
            ops_endpoints: true,
            max_message: 16 * 1024,
            max_upload: 5 * 1024 * 1024,
            upload_memory: 16 * 1024 * 1024,
            upload_quota: None,
            upload_timeout: Duration::from_secs(120),
            max_text: 8 * 1024,
            max_output: 32 * 1024 * 1024,
            output_soft_limit: 8 * 1024 * 1024,
            output_soft_seconds: Duration::from_secs(60),
            max_header: 8 * 1024,
            header_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(20),
            message_timeout: Duration::from_secs(30),
            max_connections: 0,
            overflow_connections: 64,
            read_budget: 64 * 1024,
            write_budget: 64 * 1024,
            linger: Duration::from_secs(2),
            msg_rate: 20,
            history: 200,
            page_max: 200,
            history_bytes: 32 * 1024 * 1024,
            default_room: "lobby".into(),
            rooms: Vec::new(),
            max_rooms_per_client: 32,
            auth: AuthMode::Open,
            password_file: None,
            jwt_secret_file: None,
            admin_token_file: None,
            name_hold: None,
            edit_window: Duration::from_secs(15 * 60),
            max_connections_per_address: 0,
            upgrades_per_address: 0,
            max_rooms: 1000,
            data_dir: None,
            fsync: FsyncPolicy::Interval,
            redis: None,
            redis_password_file: None,
            redis_prefix: "picochat:".into(),
            redis_max_pending: 1000,
            redis_retry_max: Duration::from_secs(1),
            redis_check_interval: Duration::from_secs(40),
            redis_presence_ttl: Duration::from_secs(60),
            reuse_port: false,
            retain: 256 * 1024 * 1024,
            retain_days: 0,
            redis_retain: 10_000,
            allow_origin: Vec::new(),
            echo_path: None,
            compression: true,
            compress_min: 128,
            echo_max_message: 16 * 1024 * 1024,
            shutdown_timeout: Duration::from_secs(5),
            frame_ancestors: "'none'".into(),
            trust_proxy: false,
            log_level: LogLevel::Info,
            log_format: LogFormat::Text,
        }
    }
}

/// `--auth`: who may speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    Open,
    Password,
    Token,
}

/// File descriptors kept back from `max_connections`' automatic value: the
/// listeners, the poll, the log file, stdio and the EMFILE reserve.
pub const FD_RESERVE: usize = 64;

impl Config {
    /// `--name-hold` as it applies: 30 days by default when holds are
    /// stored (`--data-dir`, `--redis`), else while online.
    pub fn name_hold(&self) -> Duration {
        self.name_hold
            .unwrap_or(if self.data_dir.is_some() || self.redis.is_some() {
                Duration::from_secs(30 * 24 * 3600)
            } else {
                Duration::ZERO
            })
    }
}

/// The secrets the chat core checks joins against, read from their files
/// by the server (`--password-file`, `--jwt-secret-file`).
#[derive(Default)]
pub struct Secrets {
    pub password: Option<Secret>,
    pub token_key: Option<Rc<TokenKey>>,
}

impl Config {
    /// The rules the chat core enforces, from these options.
    pub fn chat_limits(&self, secrets: Secrets) -> Limits {
        Limits {
            max_text: self.max_text,
            max_message: self.max_message,
            msg_rate: self.msg_rate,
            history: self.history,
            page_max: self.page_max,
            history_bytes: self.history_bytes,
            // A welcome is one frame on the joiner's queue: keep it well
            // under the soft limit, so joining never costs a slow phone its connection.
            welcome_bytes: self.output_soft_limit.min(self.max_output) / 2,
            max_rooms_per_client: self.max_rooms_per_client,
            max_rooms: self.max_rooms,
            default_room: self.default_room.as_str().into(),
            fixed_rooms: (!self.rooms.is_empty())
                .then(|| self.rooms.iter().map(|r| r.as_str().into()).collect()),
            password: secrets.password,
            keep_addresses: self.admin_token_file.is_some(),
            name_hold_ms: self.name_hold().as_millis() as u64,
            store_holds: self.data_dir.is_some() || self.redis.is_some(),
            edit_window_ms: self.edit_window.as_millis() as u64,
            token_key: secrets.token_key,
            max_upload: self.max_upload,
            upload_memory: self.upload_memory,
            upload_wire: if self.compression {
                crate::net::ws::deflate_bound
            } else {
                std::convert::identity
            },
        }
    }

    /// `--upload-quota`, or its default for where images are kept.
    pub fn upload_quota(&self) -> usize {
        self.upload_quota.unwrap_or(if self.data_dir.is_some() {
            256 << 20
        } else {
            32 << 20
        })
    }
}

#[cfg(test)]
mod tests;
