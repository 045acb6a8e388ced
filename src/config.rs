//! Every tunable limit of the server, its default, and how it is read from the
//! command line and the environment.
//!
//! One table ([`OPTIONS`]) drives parsing, `--help` and the README's table, so a
//! limit cannot exist without a flag, an environment variable and a default.
//! Flags win over `PICOCHAT_*` variables, which win over defaults.
//! No I/O happens here beyond reading `std::env`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Serve `/healthz` and `/metrics` at all.
    pub ops_endpoints: bool,
    /// Largest WebSocket message accepted from a chat client (after reassembly).
    /// Larger ones are refused with close 1009 before their payload is buffered.
    pub max_message: usize,
    /// Longest chat text in bytes. Leaves room for the JSON envelope inside `max_message`.
    pub max_text: usize,
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
    /// How long a closing connection waits for its output to drain and for
    /// the peer to close its side (so the last bytes are not lost to a reset).
    pub linger: Duration,
    /// Chat messages per second per client (token bucket, burst 2x). 0 disables.
    pub msg_rate: u32,
    /// Messages kept per room in memory and sent to a joining client.
    pub history: usize,
    /// Bytes of history kept in memory across all rooms; the oldest messages
    /// of rooms nobody is in go first, then those of the biggest rooms.
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
    /// Size of one log segment; the log keeps at most two, so this bounds the disk use at 2x.
    pub log_segment: u64,
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
            ops_endpoints: true,
            max_message: 16 * 1024,
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
            linger: Duration::from_secs(2),
            msg_rate: 20,
            history: 200,
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
            log_segment: 8 * 1024 * 1024,
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

type Apply = fn(&mut Config, &str) -> Result<(), String>;
type Show = fn(&Config) -> String;

/// One command-line option: its flag, environment variable, help and codec.
pub struct OptSpec {
    pub flag: &'static str,
    pub env: &'static str,
    pub value: &'static str,
    pub help: &'static str,
    apply: Apply,
    show: Show,
}

impl OptSpec {
    pub fn default_text(&self) -> String {
        (self.show)(&Config::default())
    }
}

/// One row of [`OPTIONS`]: flag, environment variable, value name, help, and
/// either the kind of value and the `Config` field it sets (`size`,
/// `duration`, `num`, `switch` on/off, `text`, `file` with the text shown
/// when there is none), or a parse and a show function.
macro_rules! opt {
    ($flag:literal, $env:literal, $value:literal, $help:literal, size $field:ident) => {
        opt!(
            $flag,
            $env,
            $value,
            $help,
            |c, v| {
                c.$field = parse_size(v)? as _;
                Ok(())
            },
            |c| show_size(c.$field as u64)
        )
    };
    ($flag:literal, $env:literal, $value:literal, $help:literal, duration $field:ident) => {
        opt!(
            $flag,
            $env,
            $value,
            $help,
            |c, v| {
                c.$field = parse_duration(v)?;
                Ok(())
            },
            |c| show_duration(c.$field)
        )
    };
    ($flag:literal, $env:literal, $value:literal, $help:literal, num $field:ident) => {
        opt!(
            $flag,
            $env,
            $value,
            $help,
            |c, v| {
                c.$field = parse_num(v)?;
                Ok(())
            },
            |c| c.$field.to_string()
        )
    };
    ($flag:literal, $env:literal, $value:literal, $help:literal, switch $field:ident) => {
        opt!(
            $flag,
            $env,
            $value,
            $help,
            |c, v| {
                c.$field = parse_bool(v)?;
                Ok(())
            },
            |c| on_off(c.$field)
        )
    };
    ($flag:literal, $env:literal, $value:literal, $help:literal, file $field:ident, $absent:literal) => {
        opt!(
            $flag,
            $env,
            $value,
            $help,
            |c, v| {
                c.$field = (!v.is_empty()).then(|| PathBuf::from(v));
                Ok(())
            },
            |c| c
                .$field
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| $absent.into())
        )
    };
    ($flag:literal, $env:literal, $value:literal, $help:literal, text $field:ident) => {
        opt!(
            $flag,
            $env,
            $value,
            $help,
            |c, v| {
                c.$field = v.to_string();
                Ok(())
            },
            |c| c.$field.clone()
        )
    };
    ($flag:literal, $env:literal, $value:literal, $help:literal, $apply:expr, $show:expr) => {
        OptSpec {
            flag: $flag,
            env: $env,
            value: $value,
            help: $help,
            apply: $apply,
            show: $show,
        }
    };
}

/// Every option. `--help` and the README table are generated from this.
pub const OPTIONS: &[OptSpec] = &[
    opt!("--listen", "PICOCHAT_LISTEN", "ADDR", "address:port for the page and /ws", text listen),
    opt!(
        "--admin-listen",
        "PICOCHAT_ADMIN_LISTEN",
        "ADDR",
        "serve /healthz and /metrics only on this address",
        |c, v| {
            c.admin_listen = Some(v.to_string());
            Ok(())
        },
        |c| c
            .admin_listen
            .clone()
            .unwrap_or_else(|| "(main listener)".into())
    ),
    opt!("--ops-endpoints", "PICOCHAT_OPS_ENDPOINTS", "on|off", "serve /healthz and /metrics", switch ops_endpoints),
    opt!("--max-message", "PICOCHAT_MAX_MESSAGE", "SIZE", "largest incoming WebSocket message (close 1009 past it; inflated size too)", size max_message),
    opt!("--compression", "PICOCHAT_COMPRESSION", "on|off", "permessage-deflate with clients that offer it (each broadcast compressed once)", switch compression),
    opt!("--compress-min", "PICOCHAT_COMPRESS_MIN", "SIZE", "frames smaller than this are sent uncompressed", size compress_min),
    opt!("--max-text", "PICOCHAT_MAX_TEXT", "SIZE", "longest chat text in bytes (error frame past it)", size max_text),
    opt!("--max-output", "PICOCHAT_MAX_OUTPUT", "SIZE", "per-client unsent output hard limit; a client past it is dropped", size max_output),
    opt!("--output-soft-limit", "PICOCHAT_OUTPUT_SOFT_LIMIT", "SIZE", "unsent output may stay above this only for --output-soft-seconds", size output_soft_limit),
    opt!("--output-soft-seconds", "PICOCHAT_OUTPUT_SOFT_SECONDS", "DURATION", "how long unsent output may stay above the soft limit", duration output_soft_seconds),
    opt!("--max-header", "PICOCHAT_MAX_HEADER", "SIZE", "largest HTTP request head (431 past it)", size max_header),
    opt!("--header-timeout", "PICOCHAT_HEADER_TIMEOUT", "DURATION", "time allowed for a whole request head", duration header_timeout),
    opt!("--keepalive-timeout", "PICOCHAT_KEEPALIVE_TIMEOUT", "DURATION", "idle keep-alive HTTP connections are closed after", duration keepalive_timeout),
    opt!("--ping-interval", "PICOCHAT_PING_INTERVAL", "DURATION", "ping a WebSocket client quiet for this long", duration ping_interval),
    opt!("--pong-timeout", "PICOCHAT_PONG_TIMEOUT", "DURATION", "close a pinged client silent for this long (1001)", duration pong_timeout),
    opt!("--message-timeout", "PICOCHAT_MESSAGE_TIMEOUT", "DURATION", "a started WebSocket message must complete within (1008)", duration message_timeout),
    opt!("--max-connections", "PICOCHAT_MAX_CONNECTIONS", "N", "open connections; more get 503 (0 = fd limit - 64)", num max_connections),
    opt!(
        "--auth",
        "PICOCHAT_AUTH",
        "open|password|token",
        "who may speak: anyone, connections that joined with --password-file's password, or with a token signed with --jwt-secret-file",
        |c, v| {
            c.auth = match v {
                "open" => AuthMode::Open,
                "password" => AuthMode::Password,
                "token" => AuthMode::Token,
                _ => return Err("expected open, password or token".into()),
            };
            Ok(())
        },
        |c| match c.auth {
            AuthMode::Open => "open",
            AuthMode::Password => "password",
            AuthMode::Token => "token",
        }
        .into()
    ),
    opt!("--password-file", "PICOCHAT_PASSWORD_FILE", "FILE", "with --auth password: the shared password (the file's text, one trailing newline ignored)", file password_file, "(none)"),
    opt!("--jwt-secret-file", "PICOCHAT_JWT_SECRET_FILE", "FILE", "with --auth token: the HS256 secret tokens are signed with (at least 16 bytes; one trailing newline ignored)", file jwt_secret_file, "(none)"),
    opt!(
        "--name-hold",
        "PICOCHAT_NAME_HOLD",
        "DURATION",
        "a name stays its page's for this long after its last connection (0 = while online)",
        |c, v| {
            c.name_hold = Some(parse_duration(v)?);
            Ok(())
        },
        |c| match c.name_hold {
            Some(d) => show_duration(d),
            None => "(720h with --data-dir or --redis, else 0)".into(),
        }
    ),
    opt!("--edit-window", "PICOCHAT_EDIT_WINDOW", "DURATION", "a sender may edit a message for this long after sending it (0 = never)", duration edit_window),
    opt!("--admin-token-file", "PICOCHAT_ADMIN_TOKEN_FILE", "FILE", "enable the admin API (/api/admin/) with the bearer token in FILE (at least 16 bytes)", file admin_token_file, "(none: no admin API)"),
    opt!("--max-connections-per-address", "PICOCHAT_MAX_CONNECTIONS_PER_ADDRESS", "N", "connections open at once from one client address; more get 503 (0 = no limit)", num max_connections_per_address),
    opt!("--upgrades-per-address", "PICOCHAT_UPGRADES_PER_ADDRESS", "N", "new WebSocket upgrades per second from one client address; more get 503 (0 = no limit)", num upgrades_per_address),
    opt!("--overflow-connections", "PICOCHAT_OVERFLOW_CONNECTIONS", "N", "connections past the limit that still get a 503 (more: closed at once)", num overflow_connections),
    opt!("--read-budget", "PICOCHAT_READ_BUDGET", "SIZE", "most bytes read from one connection per loop turn (fairness)", size read_budget),
    opt!("--linger", "PICOCHAT_LINGER", "DURATION", "a closing connection's time to drain its output and see the peer close", duration linger),
    opt!("--msg-rate", "PICOCHAT_MSG_RATE", "N", "chat messages/s per client, burst 2N (0 = unlimited)", num msg_rate),
    opt!("--history", "PICOCHAT_HISTORY", "N", "messages kept per room and sent to joining clients", num history),
    opt!("--history-bytes", "PICOCHAT_HISTORY_BYTES", "SIZE", "history kept across all rooms (oldest of idle, then biggest rooms go)", size history_bytes),
    opt!(
        "--default-room",
        "PICOCHAT_DEFAULT_ROOM",
        "NAME",
        "room for frames without \"room\" (Go tutorial clients)",
        |c, v| {
            c.default_room = crate::chat::protocol::room_name(v)
                .ok_or("room names are 1 to 32 of a-z 0-9 - _")?;
            Ok(())
        },
        |c| c.default_room.clone()
    ),
    opt!(
        "--rooms",
        "PICOCHAT_ROOMS",
        "A,B,C",
        "only these rooms exist (plus the default room)",
        |c, v| {
            c.rooms = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|r| {
                    crate::chat::protocol::room_name(r)
                        .ok_or_else(|| format!("bad room name {r:?}: 1 to 32 of a-z 0-9 - _"))
                })
                .collect::<Result<_, _>>()?;
            Ok(())
        },
        |c| if c.rooms.is_empty() {
            "(any: made by joining)".into()
        } else {
            c.rooms.join(",")
        }
    ),
    opt!("--max-rooms-per-client", "PICOCHAT_MAX_ROOMS_PER_CLIENT", "N", "rooms one connection may be in at once (room_limit past it)", num max_rooms_per_client),
    opt!("--max-rooms", "PICOCHAT_MAX_ROOMS", "N", "rooms with members at once (room_limit past it)", num max_rooms),
    opt!("--data-dir", "PICOCHAT_DATA_DIR", "DIR", "keep a durable message log in DIR", file data_dir, "(none: memory only)"),
    opt!(
        "--fsync",
        "PICOCHAT_FSYNC",
        "always|interval|never",
        "when the message log is synced to disk",
        |c, v| {
            c.fsync = match v {
                "always" => FsyncPolicy::Always,
                "interval" => FsyncPolicy::Interval,
                "never" => FsyncPolicy::Never,
                _ => return Err("expected always, interval or never".into()),
            };
            Ok(())
        },
        |c| match c.fsync {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Interval => "interval",
            FsyncPolicy::Never => "never",
        }
        .into()
    ),
    opt!("--log-segment", "PICOCHAT_LOG_SEGMENT", "SIZE", "message log segment size; disk use is at most 2x", size log_segment),
    opt!(
        "--redis",
        "PICOCHAT_REDIS",
        "URL",
        "share rooms with other processes through Redis: redis://HOST:PORT[/DB] or unix:///PATH",
        |c, v| {
            c.redis = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        },
        |c| c
            .redis
            .clone()
            .unwrap_or_else(|| "(none: this process alone)".into())
    ),
    opt!("--redis-password-file", "PICOCHAT_REDIS_PASSWORD_FILE", "FILE", "the Redis password (the file's text, one trailing newline ignored)", file redis_password_file, "(none)"),
    opt!("--redis-prefix", "PICOCHAT_REDIS_PREFIX", "TEXT", "prefix of every Redis key and channel picochat uses", text redis_prefix),
    opt!("--redis-max-pending", "PICOCHAT_REDIS_MAX_PENDING", "N", "publishes awaiting Redis' reply; past it senders get unavailable", num redis_max_pending),
    opt!("--redis-retry-max", "PICOCHAT_REDIS_RETRY_MAX", "DURATION", "longest wait between Redis reconnect attempts", duration redis_retry_max),
    opt!("--redis-check-interval", "PICOCHAT_REDIS_CHECK_INTERVAL", "DURATION", "how often each room's position is checked against Redis", duration redis_check_interval),
    opt!("--redis-presence-ttl", "PICOCHAT_REDIS_PRESENCE_TTL", "DURATION", "a process's users leave within this if it dies (refreshed at 5/12 of it)", duration redis_presence_ttl),
    opt!("--reuse-port", "PICOCHAT_REUSE_PORT", "on|off", "SO_REUSEPORT: several processes share one listening port", switch reuse_port),
    opt!(
        "--allow-origin",
        "PICOCHAT_ALLOW_ORIGIN",
        "ORIGIN",
        "also accept /ws from this browser origin (repeatable; env: comma list)",
        |c, v| {
            c.allow_origin.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
            Ok(())
        },
        |c| if c.allow_origin.is_empty() {
            "(same host only)".into()
        } else {
            c.allow_origin.join(",")
        }
    ),
    opt!(
        "--frame-ancestors",
        "PICOCHAT_FRAME_ANCESTORS",
        "SOURCES",
        "sites that may embed the chat page in a frame (CSP frame-ancestors, e.g. https://example.org; 'none' = no site)",
        |c, v| {
            let v = v.trim();
            let ok = !v.is_empty()
                && v.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
                && !v.contains([';', ',']);
            if !ok {
                return Err("expected CSP sources separated by spaces".into());
            }
            c.frame_ancestors = v.to_string();
            Ok(())
        },
        |c| c.frame_ancestors.clone()
    ),
    opt!(
        "--echo-path",
        "PICOCHAT_ECHO_PATH",
        "PATH",
        "serve a WebSocket echo endpoint here (conformance tests)",
        |c, v| {
            c.echo_path = if v.is_empty() {
                None
            } else {
                Some(v.to_string())
            };
            Ok(())
        },
        |c| c.echo_path.clone().unwrap_or_else(|| "(off)".into())
    ),
    opt!("--echo-max-message", "PICOCHAT_ECHO_MAX_MESSAGE", "SIZE", "largest message on the echo endpoint", size echo_max_message),
    opt!("--shutdown-timeout", "PICOCHAT_SHUTDOWN_TIMEOUT", "DURATION", "graceful shutdown bound on SIGINT/SIGTERM", duration shutdown_timeout),
    opt!("--trust-proxy", "PICOCHAT_TRUST_PROXY", "on|off", "log the client address from X-Forwarded-For", switch trust_proxy),
    opt!(
        "--log-level",
        "PICOCHAT_LOG_LEVEL",
        "error|warn|info|debug",
        "least severe log line written",
        |c, v| {
            c.log_level = match v {
                "error" => LogLevel::Error,
                "warn" => LogLevel::Warn,
                "info" => LogLevel::Info,
                "debug" => LogLevel::Debug,
                _ => return Err("expected error, warn, info or debug".into()),
            };
            Ok(())
        },
        |c| format!("{:?}", c.log_level).to_lowercase()
    ),
    opt!(
        "--log-format",
        "PICOCHAT_LOG_FORMAT",
        "text|json",
        "log line format on stderr",
        |c, v| {
            c.log_format = match v {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return Err("expected text or json".into()),
            };
            Ok(())
        },
        |c| format!("{:?}", c.log_format).to_lowercase()
    ),
];

/// What the command line asked for.
pub enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

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

    /// Reads `PICOCHAT_*` from `env`, then the flags in `args` (without argv[0]).
    pub fn from_args_and_env<I, E>(args: I, env: E) -> Result<Command, String>
    where
        I: IntoIterator<Item = String>,
        E: Fn(&str) -> Option<String>,
    {
        let mut config = Config::default();
        for spec in OPTIONS {
            if let Some(value) = env(spec.env) {
                (spec.apply)(&mut config, &value)
                    .map_err(|e| format!("{}={value}: {e}", spec.env))?;
            }
        }
        let mut from_flags_origins = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-h" | "--help" => return Ok(Command::Help),
                "-V" | "--version" => return Ok(Command::Version),
                _ => {}
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let spec = OPTIONS
                .iter()
                .find(|s| s.flag == flag)
                .ok_or_else(|| format!("unknown option {arg} (see --help)"))?;
            let value = match inline {
                Some(v) => v,
                None => args
                    .next()
                    .ok_or_else(|| format!("{flag} needs a value ({})", spec.value))?,
            };
            // Flags replace the environment's origin list instead of adding to it.
            if spec.flag == "--allow-origin" && !from_flags_origins {
                config.allow_origin.clear();
                from_flags_origins = true;
            }
            (spec.apply)(&mut config, &value).map_err(|e| format!("{flag} {value}: {e}"))?;
        }
        config.validate()?;
        Ok(Command::Run(Box::new(config)))
    }

    /// Cross-field checks that a single option cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_message < 256 {
            return Err("--max-message must be at least 256 bytes".into());
        }
        if self.max_text == 0 || self.max_text + 256 > self.max_message {
            return Err("--max-text must be at least 1 and leave 256 bytes of --max-message for the JSON envelope".into());
        }
        if self.max_output < self.max_message {
            return Err("--max-output must be at least --max-message".into());
        }
        if self.output_soft_limit > self.max_output {
            return Err("--output-soft-limit must not exceed --max-output".into());
        }
        if self.max_rooms_per_client > 255 {
            return Err("--max-rooms-per-client must be at most 255".into());
        }
        if self.max_rooms_per_client == 0 || self.max_rooms == 0 {
            return Err("--max-rooms-per-client and --max-rooms must be at least 1".into());
        }
        if self.read_budget < 4096 {
            return Err("--read-budget must be at least 4KiB".into());
        }
        if self.max_header < 256 {
            return Err("--max-header must be at least 256 bytes".into());
        }
        if self.ping_interval.is_zero()
            || self.pong_timeout.is_zero()
            || self.message_timeout.is_zero()
        {
            return Err(
                "--ping-interval, --pong-timeout and --message-timeout must be positive".into(),
            );
        }
        if let Some(p) = &self.echo_path {
            if !p.starts_with('/') || p == "/ws" {
                return Err("--echo-path must start with / and differ from /ws".into());
            }
        }
        if self.log_segment < 4096 {
            return Err("--log-segment must be at least 4KiB".into());
        }
        if (self.auth == AuthMode::Password) != self.password_file.is_some() {
            return Err("--auth password and --password-file go together".into());
        }
        if (self.auth == AuthMode::Token) != self.jwt_secret_file.is_some() {
            return Err("--auth token and --jwt-secret-file go together".into());
        }
        if let Some(url) = &self.redis {
            if self.data_dir.is_some() {
                return Err(
                    "--redis and --data-dir cannot be used together: with Redis the \
                            messages are kept by Redis (set appendonly yes there, see the README)"
                        .into(),
                );
            }
            if url.starts_with("rediss://") {
                return Err(
                    "--redis rediss:// (TLS) is not supported: use a Unix socket \
                            (unix:///run/redis/redis-server.sock) or a local TLS tunnel"
                        .into(),
                );
            }
            if !url.starts_with("redis://") && !url.starts_with("unix://") {
                return Err("--redis expects redis://HOST:PORT[/DB] or unix:///PATH".into());
            }
            if self.redis_max_pending == 0 || self.redis_prefix.is_empty() {
                return Err("--redis-max-pending and --redis-prefix must not be empty or 0".into());
            }
            if self.redis_retry_max < Duration::from_millis(10)
                || self.redis_check_interval < Duration::from_millis(100)
                || self.redis_presence_ttl < Duration::from_millis(500)
            {
                return Err("--redis-retry-max must be at least 10ms, --redis-check-interval at least 100ms and --redis-presence-ttl at least 500ms".into());
            }
        }
        Ok(())
    }
}

/// The `--help` text, generated from [`OPTIONS`].
pub fn help_text() -> String {
    let mut out = String::from(
        "picochat: a live browser chat server in one small binary.\n\n\
         Usage: picochat [OPTIONS]\n\n\
         Open http://HOST:PORT/ in a browser. Every option can also be set with the\n\
         environment variable shown; a flag wins over the environment.\n\
         SIZE: bytes, or with KiB/MiB/GiB (also k/m/g). DURATION: 500ms, 10s, 2m, 1h (plain number = seconds).\n\nOptions:\n",
    );
    for spec in OPTIONS {
        let _ = writeln!(
            out,
            "  {} {}\n      {} [env {}] (default: {})",
            spec.flag,
            spec.value,
            spec.help,
            spec.env,
            spec.default_text()
        );
    }
    out.push_str("  -h, --help     print this help\n  -V, --version  print the version\n");
    out
}

pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err("expected on or off".into()),
    }
}

fn on_off(b: bool) -> String {
    if b { "on" } else { "off" }.into()
}

pub fn parse_num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| "expected a whole number".to_string())
}

/// `16384`, `16k`, `16KiB`, `1MiB`, `1m`, `2GiB`.
pub fn parse_size(v: &str) -> Result<usize, String> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("bad size {v:?}"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return Err(format!("bad size unit in {v:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {v:?} too large"))
}

pub fn show_size(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (mult, name) in UNITS {
        if n >= mult && n % mult == 0 {
            return format!("{}{name}", n / mult);
        }
    }
    n.to_string()
}

/// `500ms`, `10s`, `2m`, `1h`, or a plain number of seconds.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad duration {v:?}"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("bad duration unit in {v:?}")),
    })
}

pub fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        format!("{ms}ms")
    } else if ms % 3_600_000 == 0 && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1000)
    }
}

/// Resolves `listen`-style strings ("0.0.0.0:8000", "localhost:0", "[::1]:8000").
pub fn resolve_addr(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .map_err(|e| format!("bad address {s:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("address {s:?} resolves to nothing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match Config::from_args_and_env(args.iter().map(|s| s.to_string()), |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })? {
            Command::Run(c) => Ok(*c),
            _ => Err("not run".into()),
        }
    }

    #[test]
    fn flags_win_over_environment_and_defaults_hold() {
        let c = parse(
            &["--max-output", "9MiB"],
            &[("PICOCHAT_MAX_OUTPUT", "12MiB"), ("PICOCHAT_HISTORY", "7")],
        )
        .unwrap();
        assert_eq!(c.max_output, 9 << 20);
        assert_eq!(c.history, 7);
        assert_eq!(c.max_message, 16 * 1024);
        let c = parse(&["--listen=127.0.0.1:9", "--header-timeout", "250ms"], &[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9");
        assert_eq!(c.header_timeout, Duration::from_millis(250));
    }

    #[test]
    fn bad_values_and_unknown_flags_are_refused() {
        assert!(parse(&["--nope"], &[]).is_err());
        assert!(parse(&["--max-output"], &[]).is_err());
        assert!(parse(&["--fsync", "sometimes"], &[]).is_err());
        assert!(
            parse(&["--max-text", "16KiB"], &[]).is_err(),
            "text must fit in a message"
        );
    }

    #[test]
    fn every_option_has_env_help_and_a_default_that_parses_back() {
        for spec in OPTIONS {
            assert!(spec.env.starts_with("PICOCHAT_") && !spec.help.is_empty());
            assert!(help_text().contains(spec.flag));
        }
        let readme = include_str!("../README.md");
        for spec in OPTIONS {
            assert!(
                readme.contains(&format!("`{} ", spec.flag)) && readme.contains(spec.env),
                "README lacks {}",
                spec.flag
            );
        }
        // Every default, as --help shows it, parses back to itself. The only
        // exceptions are the documented "(none)"-style placeholders of options
        // that are off by default.
        let mut placeholders = Vec::new();
        for spec in OPTIONS {
            let shown = spec.default_text();
            if shown.starts_with('(') {
                placeholders.push(spec.flag);
                continue;
            }
            let mut c = Config::default();
            (spec.apply)(&mut c, &shown).unwrap_or_else(|e| panic!("{} {shown}: {e}", spec.flag));
            assert_eq!((spec.show)(&c), shown, "{}", spec.flag);
        }
        assert_eq!(
            placeholders,
            [
                "--admin-listen",
                "--password-file",
                "--jwt-secret-file",
                "--name-hold",
                "--admin-token-file",
                "--rooms",
                "--data-dir",
                "--redis",
                "--redis-password-file",
                "--allow-origin",
                "--echo-path"
            ]
        );
        assert_eq!(parse_size("16KiB"), Ok(16384));
        assert_eq!(show_size(16384), "16KiB");
        assert_eq!(
            parse_duration(&show_duration(Duration::from_millis(1500))),
            Ok(Duration::from_millis(1500))
        );
    }
}
