//! Counters the loop keeps, and the two views of them: `/healthz` (JSON) and
//! `/metrics` (Prometheus text exposition format 0.0.4).
//!
//! Every way a connection can end ([`EndReason`]) has its own counter,
//! Redis-style, so a dashboard can tell slow consumers from timeouts from
//! protocol errors.
//! Counting is plain integer arithmetic in the loop; nothing here does I/O.

use std::fmt::Write as _;

/// Every way a connection ends. Each has a counter in `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Clean WebSocket close handshake started by the client.
    ClientClosed,
    /// The peer closed the TCP connection (for WebSockets: without a close frame).
    PeerGone,
    /// HTTP request/response done, the client asked to close.
    HttpDone,
    /// Idle keep-alive, header timeout, or no answer to a ping.
    Timeout,
    /// Output queue past `--max-output`.
    SlowConsumer,
    /// Kept flooding past the message rate limit.
    RateLimited,
    /// WebSocket protocol violation (bad frame, masking, opcode...).
    ProtocolError,
    /// Message larger than the limit.
    TooBig,
    /// Invalid UTF-8 in a text message.
    InvalidUtf8,
    /// Malformed HTTP, refused upgrade or unsupported request.
    BadRequest,
    /// Refused at the connection limit.
    OverCapacity,
    /// Server shutdown.
    Shutdown,
    /// Socket read or write error (reset by peer...).
    IoError,
    /// Removed through the admin API.
    Kicked,
    /// Its name or address was banned.
    Banned,
    /// A TLS error: a failed handshake, a bad record, plain HTTP on the TLS port.
    TlsError,
}

impl EndReason {
    pub const ALL: [EndReason; 16] = [
        EndReason::ClientClosed,
        EndReason::PeerGone,
        EndReason::HttpDone,
        EndReason::Timeout,
        EndReason::SlowConsumer,
        EndReason::RateLimited,
        EndReason::ProtocolError,
        EndReason::TooBig,
        EndReason::InvalidUtf8,
        EndReason::BadRequest,
        EndReason::OverCapacity,
        EndReason::Shutdown,
        EndReason::IoError,
        EndReason::Kicked,
        EndReason::Banned,
        EndReason::TlsError,
    ];

    pub fn label(self) -> &'static str {
        match self {
            EndReason::ClientClosed => "client_closed",
            EndReason::PeerGone => "peer_gone",
            EndReason::HttpDone => "http_done",
            EndReason::Timeout => "timeout",
            EndReason::SlowConsumer => "slow_consumer",
            EndReason::RateLimited => "rate_limited",
            EndReason::ProtocolError => "protocol_error",
            EndReason::TooBig => "message_too_big",
            EndReason::InvalidUtf8 => "invalid_utf8",
            EndReason::BadRequest => "bad_request",
            EndReason::OverCapacity => "over_capacity",
            EndReason::Shutdown => "shutdown",
            EndReason::IoError => "io_error",
            EndReason::Kicked => "kicked",
            EndReason::Banned => "banned",
            EndReason::TlsError => "tls_error",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub connections_total: u64,
    pub connections_open: usize,
    pub connections_rejected: u64,
    pub ws_clients: usize,
    pub ws_upgrades_total: u64,
    pub http_requests_total: u64,
    pub messages_received: u64,
    pub messages_broadcast: u64,
    pub frames_queued: u64,
    pub bytes_written: u64,
    pub loop_iterations: u64,
    pub ends: [u64; EndReason::ALL.len()],
    pub accept_fd_exhausted: u64,
    /// Connections and upgrades refused by a per-address limit.
    pub per_address_refused: u64,
    /// Uploaded images served (`GET /u/...` answered 200).
    pub files_served: u64,
    /// TLS handshakes completed, and failed (`--tls-cert`).
    pub tls_handshakes: u64,
    pub tls_handshake_failures: u64,
    /// The serving certificate's `notAfter` (Unix seconds); `None` without TLS.
    pub tls_not_after: Option<i64>,
}

/// What the views need beyond the counters.
pub struct Snapshot<'a> {
    pub stats: &'a Stats,
    pub uptime_secs: u64,
    pub users_online: usize,
    pub history_len: usize,
    pub history_bytes: usize,
    pub rooms: usize,
    pub rooms_with_members: usize,
    pub last_id: u64,
    /// Wrong or blocked password attempts (`--auth password`).
    pub auth_failures: u64,
    /// Whether the message log takes messages, and its failures so far.
    pub log: crate::log::LogHealth,
    /// The log backend's own `/metrics` lines (Redis links, round trips...).
    pub log_metrics: &'a str,
    pub fd_limit: u64,
    pub max_connections: usize,
    /// permessage-deflate: messages compressed, bytes before and after.
    pub deflate: (u64, u64, u64),
    /// History pages and searches answered, and their time.
    pub scrollback: crate::chat::core::ScrollbackStats,
    /// Bytes of the journal's read index (`--data-dir`).
    pub index_bytes: Option<usize>,
    /// Uploads accepted and refused, by the core.
    pub uploads: &'a crate::chat::core::UploadStats,
    /// Bytes of uploaded images stored.
    pub upload_bytes: usize,
}

/// Whether `/healthz` says `ok`: no when the message log is refusing
/// messages (then it answers 503 with `"status":"degraded"`).
pub fn healthy(s: &Snapshot) -> bool {
    !s.log.degraded
}

pub fn health_json(s: &Snapshot) -> String {
    #[derive(serde::Serialize)]
    struct Health {
        status: &'static str,
        uptime_seconds: u64,
        clients: usize,
        users_online: usize,
        rooms: usize,
        connections: usize,
        last_message_id: u64,
        log: &'static str,
    }
    let ok = healthy(s);
    let mut body = serde_json::to_string(&Health {
        status: if ok { "ok" } else { "degraded" },
        uptime_seconds: s.uptime_secs,
        clients: s.stats.ws_clients,
        users_online: s.users_online,
        rooms: s.rooms_with_members,
        connections: s.stats.connections_open,
        last_message_id: s.last_id,
        log: if ok { "ok" } else { "failing" },
    })
    .unwrap_or_default();
    body.push('\n');
    body
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = write!(
        out,
        "# HELP picochat_{name} {help}\n# TYPE picochat_{name} {kind}\npicochat_{name} {value}\n"
    );
}

/// Milliseconds shown as seconds.
struct Seconds(u64);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

pub fn prometheus_text(s: &Snapshot) -> String {
    let st = s.stats;
    let mut out = String::with_capacity(4096);
    metric(
        &mut out,
        "uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        s.uptime_secs,
    );
    metric(
        &mut out,
        "connections_open",
        "gauge",
        "Open TCP connections (HTTP and WebSocket).",
        st.connections_open,
    );
    metric(
        &mut out,
        "connections_total",
        "counter",
        "TCP connections accepted.",
        st.connections_total,
    );
    metric(
        &mut out,
        "connections_rejected_total",
        "counter",
        "Connections refused at the connection limit.",
        st.connections_rejected,
    );
    metric(
        &mut out,
        "connections_max",
        "gauge",
        "The connection limit (--max-connections).",
        s.max_connections,
    );
    metric(
        &mut out,
        "websocket_clients",
        "gauge",
        "Open chat WebSocket connections.",
        st.ws_clients,
    );
    metric(
        &mut out,
        "websocket_upgrades_total",
        "counter",
        "Successful WebSocket upgrades.",
        st.ws_upgrades_total,
    );
    metric(
        &mut out,
        "http_requests_total",
        "counter",
        "HTTP requests answered.",
        st.http_requests_total,
    );
    metric(
        &mut out,
        "users_online",
        "gauge",
        "Distinct joined usernames online.",
        s.users_online,
    );
    metric(
        &mut out,
        "messages_received_total",
        "counter",
        "Chat messages accepted from clients.",
        st.messages_received,
    );
    metric(
        &mut out,
        "messages_broadcast_total",
        "counter",
        "Frames delivered into client queues by broadcasts.",
        st.messages_broadcast,
    );
    metric(
        &mut out,
        "frames_queued_total",
        "counter",
        "WebSocket frames queued for sending.",
        st.frames_queued,
    );
    metric(
        &mut out,
        "bytes_written_total",
        "counter",
        "Bytes written to sockets.",
        st.bytes_written,
    );
    metric(
        &mut out,
        "history_messages",
        "gauge",
        "Messages held in the in-memory history.",
        s.history_len,
    );
    metric(
        &mut out,
        "history_bytes",
        "gauge",
        "Bytes charged to in-memory history across rooms (--history-bytes bounds it).",
        s.history_bytes,
    );
    metric(
        &mut out,
        "rooms",
        "gauge",
        "Rooms held in memory (with members or history).",
        s.rooms,
    );
    metric(
        &mut out,
        "rooms_with_members",
        "gauge",
        "Rooms somebody is in (--max-rooms bounds it).",
        s.rooms_with_members,
    );
    metric(
        &mut out,
        "log_errors_total",
        "counter",
        "Message log writes or syncs that failed (their messages were refused).",
        s.log.errors_total,
    );
    metric(
        &mut out,
        "log_up",
        "gauge",
        "1 when the message log takes messages, 0 while it refuses them.",
        u8::from(!s.log.degraded),
    );
    metric(
        &mut out,
        "last_message_id",
        "gauge",
        "Id of the newest chat message.",
        s.last_id,
    );
    metric(
        &mut out,
        "event_loop_iterations_total",
        "counter",
        "Event loop wake-ups.",
        st.loop_iterations,
    );
    metric(
        &mut out,
        "accept_fd_exhausted_total",
        "counter",
        "accept() failures for lack of file descriptors.",
        st.accept_fd_exhausted,
    );
    metric(
        &mut out,
        "history_pages_total",
        "counter",
        "History pages answered (the history frame).",
        s.scrollback.pages,
    );
    metric(
        &mut out,
        "history_page_seconds_total",
        "counter",
        "Time from a history request to its answer, summed over pages.",
        Seconds(s.scrollback.page_ms),
    );
    metric(
        &mut out,
        "searches_total",
        "counter",
        "Searches answered (a search replaced by a newer one is not).",
        s.scrollback.searches,
    );
    metric(
        &mut out,
        "search_seconds_total",
        "counter",
        "Time from a search request to its answer, summed over searches.",
        Seconds(s.scrollback.search_ms),
    );
    if let Some(bytes) = s.index_bytes {
        metric(
            &mut out,
            "log_index_bytes",
            "gauge",
            "Bytes of the journal's in-memory index of where each room's records are.",
            bytes,
        );
    }
    metric(
        &mut out,
        "auth_failures_total",
        "counter",
        "Joins with a wrong or missing password, and attempts refused after 10 failures from one address (--auth password).",
        s.auth_failures,
    );
    metric(
        &mut out,
        "deflate_messages_total",
        "counter",
        "Messages compressed for permessage-deflate (once per broadcast, whatever the number of clients).",
        s.deflate.0,
    );
    metric(
        &mut out,
        "deflate_bytes_in_total",
        "counter",
        "Bytes of those messages before compression.",
        s.deflate.1,
    );
    metric(
        &mut out,
        "deflate_bytes_out_total",
        "counter",
        "Bytes of those messages after compression.",
        s.deflate.2,
    );
    metric(
        &mut out,
        "per_address_refused_total",
        "counter",
        "Connections or WebSocket upgrades refused (503) by --max-connections-per-address or --upgrades-per-address.",
        st.per_address_refused,
    );
    metric(
        &mut out,
        "open_fds",
        "gauge",
        "File descriptors open in this process.",
        open_fds(),
    );
    metric(
        &mut out,
        "max_fds",
        "gauge",
        "File descriptor limit (RLIMIT_NOFILE).",
        s.fd_limit,
    );
    out.push_str("# HELP picochat_uploads_total Image uploads announced, by outcome (accepted, or the error code that refused them).\n# TYPE picochat_uploads_total counter\n");
    let _ = writeln!(
        out,
        "picochat_uploads_total{{outcome=\"accepted\"}} {}",
        s.uploads.accepted
    );
    for (code, n) in &s.uploads.refused {
        let _ = writeln!(out, "picochat_uploads_total{{outcome=\"{code}\"}} {n}");
    }
    metric(
        &mut out,
        "upload_bytes",
        "gauge",
        "Bytes of uploaded images stored (within --upload-quota).",
        s.upload_bytes,
    );
    metric(
        &mut out,
        "files_served_total",
        "counter",
        "Uploaded images served (GET /u/..., 200).",
        st.files_served,
    );
    if let Some(not_after) = st.tls_not_after {
        out.push_str("# HELP picochat_tls_handshakes_total TLS handshakes, by result.\n# TYPE picochat_tls_handshakes_total counter\n");
        let _ = writeln!(
            out,
            "picochat_tls_handshakes_total{{result=\"ok\"}} {}\npicochat_tls_handshakes_total{{result=\"failed\"}} {}",
            st.tls_handshakes, st.tls_handshake_failures
        );
        metric(
            &mut out,
            "tls_cert_not_after_seconds",
            "gauge",
            "When the serving certificate expires (Unix seconds).",
            not_after,
        );
    }
    out.push_str("# HELP picochat_disconnects_total Connections ended, by reason.\n# TYPE picochat_disconnects_total counter\n");
    for (reason, n) in EndReason::ALL.iter().zip(st.ends.iter()) {
        let _ = writeln!(
            out,
            "picochat_disconnects_total{{reason=\"{}\"}} {n}",
            reason.label()
        );
    }
    out.push_str(s.log_metrics);
    out
}

/// Resident memory in KiB from `/proc/self/status` (Linux); 0 elsewhere.
pub fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Counts `/proc/self/fd` (Linux); 0 elsewhere.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::EndReason;

    #[test]
    fn every_end_reason_is_listed_at_its_index() {
        // `ends[]` is indexed by the discriminant and labelled through ALL.
        for (i, r) in EndReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{}", r.label());
        }
    }
}
