//! HTTP/1.1 without sockets: parse a request head with `httparse`, route it,
//! build the response bytes, and check a WebSocket upgrade (RFC 6455 4.2).
//!
//! Input is whatever bytes a connection has buffered; a head split across
//! reads is the normal `Partial` state, not an error. Output is a [`Reply`]:
//! chunks for the connection's write queue plus what to do next (keep alive,
//! close, or switch to WebSocket). `/healthz`, `/metrics` and `/api/rooms`
//! are built here too, from a snapshot the connection hands over (their
//! bodies' formats are `metrics.rs` and the chat core's).

use crate::metrics::{self, Snapshot};
use crate::net::assets::{self, Asset};
use crate::net::write_queue::Chunk;
use std::borrow::Cow;
use std::fmt::Write as _;

/// Most headers a request may carry; more is answered with 431.
const MAX_HEADERS: usize = 48;

/// The parts of a request head picochat acts on, borrowed from the read buffer.
#[derive(Debug, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    /// What follows `?` (without a `#` fragment), or empty.
    pub query: &'a str,
    /// HTTP/1.x minor version.
    pub minor: u8,
    pub keep_alive: bool,
    /// The request announces a body (POST and friends); we never read one, so
    /// the connection closes after the reply.
    pub has_body: bool,
    pub upgrade_websocket: bool,
    pub connection_upgrade: bool,
    pub ws_key: Option<&'a str>,
    pub ws_version: Option<&'a str>,
    /// A `Sec-WebSocket-Extensions` line offered permessage-deflate in a
    /// form this server can honour (see `deflate.rs`).
    pub deflate_offered: bool,
    pub if_none_match: Option<&'a str>,
    pub accepts_gzip: bool,
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub forwarded_for: Option<&'a str>,
    /// `Authorization` (the admin API's bearer token).
    pub authorization: Option<&'a str>,
}

/// Result of trying to parse the head at the start of a buffer.
#[derive(Debug)]
pub enum Parsed<'a> {
    /// More bytes are needed.
    Partial,
    /// A complete head of `len` bytes.
    Request(Request<'a>, usize),
    /// Unusable input: answer with this status and close.
    Invalid(Status),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    SwitchingProtocols,
    Ok,
    Accepted,
    NotModified,
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    UpgradeRequired,
    TooManyRequests,
    HeaderTooLarge,
    ServiceUnavailable,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::SwitchingProtocols => 101,
            Status::Ok => 200,
            Status::Accepted => 202,
            Status::NotModified => 304,
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::UpgradeRequired => 426,
            Status::TooManyRequests => 429,
            Status::HeaderTooLarge => 431,
            Status::ServiceUnavailable => 503,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Status::SwitchingProtocols => "Switching Protocols",
            Status::Ok => "OK",
            Status::Accepted => "Accepted",
            Status::NotModified => "Not Modified",
            Status::BadRequest => "Bad Request",
            Status::Unauthorized => "Unauthorized",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::UpgradeRequired => "Upgrade Required",
            Status::TooManyRequests => "Too Many Requests",
            Status::HeaderTooLarge => "Request Header Fields Too Large",
            Status::ServiceUnavailable => "Service Unavailable",
        }
    }
}

/// Parses the request head at the start of `buf`. `max_header` bounds the head:
/// a partial head already longer than that will never be accepted.
pub fn parse(buf: &[u8], max_header: usize) -> Parsed<'_> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_header => {
            return Parsed::Invalid(Status::HeaderTooLarge)
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Invalid(Status::HeaderTooLarge),
        Err(_) => return Parsed::Invalid(Status::BadRequest),
    };
    if len > max_header {
        return Parsed::Invalid(Status::HeaderTooLarge);
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Parsed::Invalid(Status::BadRequest);
    };
    let mut out = Request {
        method,
        path: target.split(['?', '#']).next().unwrap_or(target),
        query: target
            .split_once('?')
            .map_or("", |(_, q)| q.split('#').next().unwrap_or(q)),
        minor,
        keep_alive: minor >= 1,
        ..Request::default()
    };
    let mut content_length_seen = false;
    for h in req.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            // Header values we care about are ASCII; others we simply skip.
            continue;
        };
        let value = value.trim();
        let name = h.name;
        if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    out.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    out.keep_alive = true;
                } else if token.eq_ignore_ascii_case("upgrade") {
                    out.connection_upgrade = true;
                }
            }
        } else if name.eq_ignore_ascii_case("upgrade") {
            out.upgrade_websocket = value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"));
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            out.ws_key = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            // A list split over several lines is one list: an offer never spans a comma.
            out.deflate_offered |= crate::net::deflate::negotiate([value]);
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            out.ws_version = Some(value);
        } else if name.eq_ignore_ascii_case("if-none-match") {
            out.if_none_match = Some(value);
        } else if name.eq_ignore_ascii_case("accept-encoding") {
            out.accepts_gzip = accepts_gzip(value);
        } else if name.eq_ignore_ascii_case("host") {
            if out.host.is_some() {
                return Parsed::Invalid(Status::BadRequest);
            }
            out.host = Some(value);
        } else if name.eq_ignore_ascii_case("origin") {
            out.origin = Some(value);
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            out.forwarded_for = Some(value);
        } else if name.eq_ignore_ascii_case("authorization") {
            out.authorization = Some(value);
        } else if name.eq_ignore_ascii_case("content-length") {
            if content_length_seen {
                return Parsed::Invalid(Status::BadRequest);
            }
            content_length_seen = true;
            match value.parse::<u64>() {
                Ok(0) => {}
                Ok(_) => out.has_body = true,
                Err(_) => return Parsed::Invalid(Status::BadRequest),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            out.has_body = true;
        }
    }
    if minor >= 1 && out.host.is_none() {
        // RFC 9112 3.2: a 1.1 request without Host is a 400.
        return Parsed::Invalid(Status::BadRequest);
    }
    Parsed::Request(out, len)
}

/// `Accept-Encoding` allows gzip unless it is absent or given `q=0`.
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q_zero = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
    })
}

/// Where a request goes.
#[derive(Debug)]
pub enum Route {
    Asset(&'static Asset),
    ChatSocket,
    EchoSocket,
    /// `GET /api/rooms`: the rooms a page may offer.
    Rooms,
    /// Under `/api/admin/` with `--admin-token-file` (see `admin.rs`).
    Admin,
    Health,
    Metrics,
    NotFound,
}

/// Which paths exist on a listener.
#[derive(Clone, Copy, Debug)]
pub struct Routes<'a> {
    /// The chat page, its assets and `/ws`.
    pub chat: bool,
    /// `/healthz` and `/metrics`.
    pub ops: bool,
    /// `/api/admin/` (an admin token is configured, and this is its listener).
    pub admin: bool,
    pub echo_path: Option<&'a str>,
}

/// What the admin page (`/admin`) loads, served wherever the admin API is.
const ADMIN_PAGE_FILES: [&str; 4] = ["/admin.js", "/admin.css", "/style.css", "/favicon.svg"];

pub fn route(path: &str, routes: Routes) -> Route {
    if routes.admin && path.starts_with("/api/admin/") {
        return Route::Admin;
    }
    if routes.admin && (path == "/admin" || ADMIN_PAGE_FILES.contains(&path)) {
        let file = if path == "/admin" {
            "/admin.html"
        } else {
            path
        };
        return assets::lookup(file).map_or(Route::NotFound, Route::Asset);
    }
    if routes.ops && path == "/healthz" {
        return Route::Health;
    }
    if routes.ops && path == "/metrics" {
        return Route::Metrics;
    }
    if !routes.chat {
        return Route::NotFound;
    }
    if path == "/ws" {
        return Route::ChatSocket;
    }
    if path == "/api/rooms" {
        return Route::Rooms;
    }
    // `/r/NAME` opens the page in room NAME: the same page, whatever NAME is
    // (the page asks to join it, and the server judges the name).
    if path
        .strip_prefix("/r/")
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
    {
        return assets::lookup("/").map_or(Route::NotFound, Route::Asset);
    }
    if routes.echo_path == Some(path) {
        return Route::EchoSocket;
    }
    assets::lookup(path).map_or(Route::NotFound, Route::Asset)
}

/// The response to one request, and what the connection does next.
#[derive(Debug)]
pub struct Reply {
    pub status: Status,
    pub chunks: Vec<Chunk>,
    pub keep_alive: bool,
}

/// Starts a response head with the headers every response carries.
fn head(status: Status, date: &str) -> String {
    let mut h = String::with_capacity(256);
    let _ = write!(
        h,
        "HTTP/1.1 {} {}\r\nServer: picochat\r\nDate: {date}\r\n",
        status.code(),
        status.text()
    );
    h
}

fn finish_head(mut h: String, keep_alive: bool) -> Vec<u8> {
    h.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    h.into_bytes()
}

/// A small plain-text (or other) response with a body held in memory.
pub fn simple(
    status: Status,
    content_type: &str,
    body: &[u8],
    extra: &str,
    head_only: bool,
    keep_alive: bool,
    date: &str,
) -> Reply {
    let mut h = head(status, date);
    let _ = write!(
        h,
        "Content-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{extra}",
        body.len()
    );
    let mut bytes = finish_head(h, keep_alive);
    if !head_only {
        bytes.extend_from_slice(body);
    }
    Reply {
        status,
        chunks: vec![Chunk::from(bytes)],
        keep_alive,
    }
}

/// `/healthz` (JSON; 503 while the message log refuses messages) or
/// `/metrics` (Prometheus text format 0.0.4), from one snapshot of the counters.
pub fn ops(route: &Route, snap: &Snapshot, head_only: bool, keep_alive: bool, date: &str) -> Reply {
    if *route == Route::Health {
        let status = if metrics::healthy(snap) {
            Status::Ok
        } else {
            Status::ServiceUnavailable
        };
        let body = metrics::health_json(snap);
        simple(
            status,
            "application/json",
            body.as_bytes(),
            "",
            head_only,
            keep_alive,
            date,
        )
    } else {
        let body = metrics::prometheus_text(snap);
        let ctype = "text/plain; version=0.0.4; charset=utf-8";
        simple(
            Status::Ok,
            ctype,
            body.as_bytes(),
            "",
            head_only,
            keep_alive,
            date,
        )
    }
}

/// `GET /api/rooms`: the rooms the page may offer, as the chat core lists them.
pub fn rooms(json: &str, head_only: bool, keep_alive: bool, date: &str) -> Reply {
    simple(
        Status::Ok,
        "application/json",
        json.as_bytes(),
        "",
        head_only,
        keep_alive,
        date,
    )
}

/// A JSON answer that keeps the connection (the admin API's).
pub fn json(status: Status, body: &str, date: &str) -> Reply {
    simple(
        status,
        "application/json",
        body.as_bytes(),
        "Cache-Control: no-store\r\n",
        false,
        true,
        date,
    )
}

/// An error response: short text body, and the connection closes unless told otherwise.
pub fn error(status: Status, detail: &str, keep_alive: bool, date: &str) -> Reply {
    let extra = match status {
        Status::UpgradeRequired => "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
        Status::MethodNotAllowed => "Allow: GET, HEAD\r\n",
        Status::ServiceUnavailable => "Retry-After: 5\r\n",
        _ => "",
    };
    let body = format!("{} {}: {detail}\n", status.code(), status.text());
    simple(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        extra,
        false,
        keep_alive,
        date,
    )
}

/// Serves a compiled-in file: gzip when accepted, 304 on a matching ETag, HEAD
/// without body. An HTML page may be framed by `frame_ancestors` (CSP sources;
/// the admin page never).
pub fn asset(req: &Request, a: &'static Asset, date: &str, frame_ancestors: &str) -> Reply {
    let keep_alive = req.keep_alive;
    let (body, gz) = match a.gzip() {
        Some(gz) if req.accepts_gzip => (Cow::Borrowed(gz), true),
        _ => (a.plain(), false),
    };
    let etag = if gz {
        format!("\"{}-gz\"", a.etag)
    } else {
        format!("\"{}\"", a.etag)
    };
    let mut h;
    if req
        .if_none_match
        .is_some_and(|inm| etag_matches(inm, &etag))
    {
        h = head(Status::NotModified, date);
        let _ = write!(h, "ETag: {etag}\r\nCache-Control: no-cache\r\n");
        if a.gzip().is_some() {
            h.push_str("Vary: Accept-Encoding\r\n");
        }
        return Reply {
            status: Status::NotModified,
            chunks: vec![Chunk::from(finish_head(h, keep_alive))],
            keep_alive,
        };
    }
    h = head(Status::Ok, date);
    let _ = write!(
        h,
        "Content-Type: {}\r\nContent-Length: {}\r\nETag: {etag}\r\nCache-Control: no-cache\r\n\
         X-Content-Type-Options: nosniff\r\n",
        a.content_type,
        body.len()
    );
    if a.content_type.starts_with("text/html") {
        let ancestors = if a.path == "/admin.html" {
            "'none'"
        } else {
            frame_ancestors
        };
        let _ = write!(
            h,
            "Content-Security-Policy: default-src 'self'; img-src 'self' https://www.gravatar.com data:; \
             connect-src 'self' ws: wss:; frame-ancestors {ancestors}\r\nReferrer-Policy: no-referrer\r\n",
        );
    }
    if gz {
        h.push_str("Content-Encoding: gzip\r\n");
    }
    if a.gzip().is_some() {
        h.push_str("Vary: Accept-Encoding\r\n");
    }
    let mut chunks = vec![Chunk::from(finish_head(h, keep_alive))];
    if req.method != "HEAD" {
        chunks.push(match body {
            Cow::Borrowed(bytes) => Chunk::Static(bytes),
            Cow::Owned(bytes) => Chunk::from(bytes),
        });
    }
    Reply {
        status: Status::Ok,
        chunks,
        keep_alive,
    }
}

/// RFC 9110 13.1.2: weak comparison against a list of entity tags, or `*`.
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.trim() == "*"
        || if_none_match
            .split(',')
            .map(|t| t.trim())
            .any(|t| t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// Checks a WebSocket upgrade request. On success returns the 101 response
/// head and whether permessage-deflate was agreed (offered, and `compression` on).
pub fn upgrade(
    req: &Request,
    allowed_origins: &[String],
    compression: bool,
    date: &str,
) -> Result<(Vec<u8>, bool), Reply> {
    if req.method != "GET" {
        return Err(error(
            Status::MethodNotAllowed,
            "WebSocket upgrades use GET",
            false,
            date,
        ));
    }
    if !req.upgrade_websocket || !req.connection_upgrade {
        return Err(error(
            Status::UpgradeRequired,
            "this endpoint speaks WebSocket only",
            false,
            date,
        ));
    }
    if req.ws_version != Some("13") {
        return Err(error(
            Status::UpgradeRequired,
            "Sec-WebSocket-Version must be 13",
            false,
            date,
        ));
    }
    let Some(key) = req.ws_key.filter(|k| valid_ws_key(k)) else {
        return Err(error(
            Status::BadRequest,
            "missing or malformed Sec-WebSocket-Key",
            false,
            date,
        ));
    };
    if req.minor < 1 {
        return Err(error(
            Status::BadRequest,
            "WebSocket needs HTTP/1.1",
            false,
            date,
        ));
    }
    if let Some(origin) = req.origin {
        if !origin_allowed(origin, req.host, allowed_origins) {
            return Err(error(
                Status::Forbidden,
                "cross-origin WebSocket refused (see --allow-origin)",
                false,
                date,
            ));
        }
    }
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let deflate = compression && req.deflate_offered;
    let extension = if deflate {
        format!(
            "Sec-WebSocket-Extensions: {}\r\n",
            crate::net::deflate::ACCEPTED
        )
    } else {
        String::new()
    };
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extension}\r\n"
    );
    Ok((head.into_bytes(), deflate))
}

/// A key is 16 random bytes in base64: 24 characters ending in `==`.
fn valid_ws_key(key: &str) -> bool {
    key.len() == 24
        && key.ends_with("==")
        && key[..22]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Same-origin check against cross-site WebSocket hijacking: the Origin's
/// host[:port] must equal the Host header, or be explicitly allowed.
pub fn origin_allowed(origin: &str, host: Option<&str>, allowed: &[String]) -> bool {
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    if host.is_some_and(|h| h.eq_ignore_ascii_case(origin_host)) {
        return true;
    }
    allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin) || a.eq_ignore_ascii_case(origin_host))
}

impl PartialEq for Route {
    fn eq(&self, other: &Route) -> bool {
        match (self, other) {
            (Route::Asset(a), Route::Asset(b)) => std::ptr::eq(*a, *b),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(raw: &str) -> Request<'_> {
        match parse(raw.as_bytes(), 8192) {
            Parsed::Request(r, n) => {
                assert_eq!(n, raw.len());
                r
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn partial_heads_wait_and_oversized_ones_are_431() {
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: a\r\n", 8192),
            Parsed::Partial
        ));
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(9000));
        assert!(matches!(
            parse(big.as_bytes(), 8192),
            Parsed::Invalid(Status::HeaderTooLarge)
        ));
        assert!(matches!(
            parse(b"\x16\x03\x01garbage\r\n\r\n", 8192),
            Parsed::Invalid(Status::BadRequest)
        ));
        assert!(
            matches!(
                parse(b"GET / HTTP/1.1\r\n\r\n", 8192),
                Parsed::Invalid(Status::BadRequest)
            ),
            "no Host"
        );
    }

    #[test]
    fn keep_alive_follows_version_and_connection_header() {
        assert!(req("GET / HTTP/1.1\r\nHost: a\r\n\r\n").keep_alive);
        assert!(!req("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!req("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(req("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn gzip_negotiation_honours_q_zero() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, gzip;q=0.8"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
    }

    #[test]
    fn upgrade_checks_key_version_and_origin() {
        let ok = "GET /ws HTTP/1.1\r\nHost: chat.lan:8000\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://chat.lan:8000\r\n\r\n";
        let head = String::from_utf8(upgrade(&req(ok), &[], true, "d").unwrap().0).unwrap();
        assert!(
            head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "RFC 6455 example"
        );
        let evil = ok.replace(
            "Origin: http://chat.lan:8000",
            "Origin: https://evil.example",
        );
        assert_eq!(
            upgrade(&req(&evil), &[], true, "d").unwrap_err().status,
            Status::Forbidden
        );
        assert!(upgrade(&req(&evil), &["https://evil.example".into()], true, "d").is_ok());
        let old = ok.replace("Version: 13", "Version: 8");
        assert_eq!(
            upgrade(&req(&old), &[], true, "d").unwrap_err().status,
            Status::UpgradeRequired
        );
        let plain = "GET /ws HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(
            upgrade(&req(plain), &[], true, "d").unwrap_err().status,
            Status::UpgradeRequired
        );
    }

    #[test]
    fn etags_compare_weakly_over_lists() {
        assert!(etag_matches("W/\"abc\", \"def\"", "\"abc\""));
        assert!(etag_matches("*", "\"x\""));
        assert!(!etag_matches("\"abc-gz\"", "\"abc\""));
    }
}
