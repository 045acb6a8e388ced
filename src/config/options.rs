//! The option table: every flag, its environment variable, value name, help
//! line and codec. Parsing (`parse.rs`), `--help` (`help.rs`) and the test
//! that the docs list every flag all read this one table.

use super::parse::{
    on_off, parse_bool, parse_duration, parse_num, parse_size, show_duration, show_size,
};
use super::{AuthMode, Config, FsyncPolicy, LogFormat, LogLevel};
use std::path::PathBuf;

type Apply = fn(&mut Config, &str) -> Result<(), String>;
type Show = fn(&Config) -> String;

/// One command-line option: its flag, environment variable, help and codec.
pub struct OptSpec {
    pub flag: &'static str,
    pub env: &'static str,
    pub value: &'static str,
    pub help: &'static str,
    pub(super) apply: Apply,
    pub(super) show: Show,
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
    opt!(
        "--config",
        "PICOCHAT_CONFIG",
        "FILE",
        "read options from this TOML file, each under its flag's name (flags and the environment win)",
        |_, _| Ok(()),
        |_| "(none)".into()
    ),
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
    opt!("--tls-cert", "PICOCHAT_TLS_CERT", "FILE", "serve HTTPS and WSS on --listen with this PEM certificate chain (leaf first); SIGHUP reloads it", file tls_cert, "(none: plain HTTP)"),
    opt!("--tls-key", "PICOCHAT_TLS_KEY", "FILE", "the certificate's private key (PEM: PKCS#8, RSA or EC); SIGHUP reloads it", file tls_key, "(none)"),
    opt!(
        "--http-redirect",
        "PICOCHAT_HTTP_REDIRECT",
        "ADDR",
        "with --tls-cert: answer plain HTTP here (e.g. 0.0.0.0:80) with a 308 to https",
        |c, v| {
            c.http_redirect = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        },
        |c| c.http_redirect.clone().unwrap_or_else(|| "(none)".into())
    ),
    opt!("--acme-webroot", "PICOCHAT_ACME_WEBROOT", "DIR", "with --http-redirect: serve /.well-known/acme-challenge/ files from DIR (certbot --webroot)", file acme_webroot, "(none)"),
    opt!("--ops-endpoints", "PICOCHAT_OPS_ENDPOINTS", "on|off", "serve /healthz and /metrics", switch ops_endpoints),
    opt!("--max-message", "PICOCHAT_MAX_MESSAGE", "SIZE", "largest incoming WebSocket message (close 1009 past it; inflated size too)", size max_message),
    opt!("--max-upload", "PICOCHAT_MAX_UPLOAD", "SIZE", "largest image one upload may announce (upload_too_large past it)", size max_upload),
    opt!("--upload-memory", "PICOCHAT_UPLOAD_MEMORY", "SIZE", "uploads in flight held in memory across all connections, each counted at the most it may take on the wire (deflated: about 1/7 more); past it new ones get unavailable", size upload_memory),
    opt!(
        "--upload-quota",
        "PICOCHAT_UPLOAD_QUOTA",
        "SIZE",
        "all stored images; past it the oldest are removed first",
        |c, v| {
            c.upload_quota = Some(parse_size(v)?);
            Ok(())
        },
        |c| match c.upload_quota {
            Some(q) => show_size(q as u64),
            None => "(256MiB with --data-dir, else 32MiB)".into(),
        }
    ),
    opt!("--upload-timeout", "PICOCHAT_UPLOAD_TIMEOUT", "DURATION", "an announced upload's bytes must arrive within (1008)", duration upload_timeout),
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
    opt!("--write-budget", "PICOCHAT_WRITE_BUDGET", "SIZE", "most bytes written to one connection per loop turn (fairness: a large image served to many does not hold up chat)", size write_budget),
    opt!("--linger", "PICOCHAT_LINGER", "DURATION", "a closing connection's time to drain its output and see the peer close", duration linger),
    opt!("--msg-rate", "PICOCHAT_MSG_RATE", "N", "chat messages/s per client, burst 2N (0 = unlimited)", num msg_rate),
    opt!("--history", "PICOCHAT_HISTORY", "N", "messages a welcome shows a joining client (older ones are paged in)", num history),
    opt!("--page-max", "PICOCHAT_PAGE_MAX", "N", "most messages one history page holds (a larger limit is clamped)", num page_max),
    opt!("--history-bytes", "PICOCHAT_HISTORY_BYTES", "SIZE", "history kept in memory across all rooms (oldest of idle, then biggest rooms go); all there is without --data-dir or --redis", size history_bytes),
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
    opt!("--retain", "PICOCHAT_RETAIN", "SIZE", "disk the message log keeps (--data-dir, at least 1MiB): whole segments (an eighth, at most 4MiB) go, oldest first", size retain),
    opt!("--retain-days", "PICOCHAT_RETAIN_DAYS", "D", "days a message is kept on disk (0 = no age limit)", num retain_days),
    opt!("--redis-retain", "PICOCHAT_REDIS_RETAIN", "N", "messages kept per room in Redis (the stream's MAXLEN ~)", num redis_retain),
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
