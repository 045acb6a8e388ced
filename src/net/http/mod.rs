//! HTTP/1.1 without sockets: parse a request head with `httparse` and
//! route it (this file); build the response bytes (`response.rs`); check a
//! WebSocket upgrade (RFC 6455 4.2, `upgrade.rs`).
//!
//! Input is whatever bytes a connection has buffered; a head split across
//! reads is the normal `Partial` state, not an error. Output is a [`Reply`]:
//! chunks for the connection's write queue plus what to do next (keep alive,
//! close, or switch to WebSocket). `/healthz`, `/metrics` and `/api/rooms`
//! are built here too, from a snapshot the server hands over (their
//! bodies' formats are `metrics.rs` and the chat core's).

use crate::net::assets::{self, Asset};

mod response;
mod upgrade;

#[cfg(test)]
use response::etag_matches;
pub use response::{
    acme_file, asset, error, json, ops, redirect, rooms, simple, upload, Reply, UploadAsk,
};
pub use upgrade::{origin_allowed, upgrade};

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
    /// `Cookie` (the key to uploaded images under `--auth`).
    pub cookie: Option<&'a str>,
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
    PermanentRedirect,
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
            Status::PermanentRedirect => 308,
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
            Status::PermanentRedirect => "Permanent Redirect",
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
        } else if name.eq_ignore_ascii_case("cookie") {
            out.cookie = Some(value);
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
    /// `GET /u/<name>`: an uploaded image (the name checked by [`upload_name`]).
    Upload,
    /// Under `/api/admin/` with `--admin-token-file` (see `admin.rs`).
    Admin,
    Health,
    Metrics,
    /// `GET /.well-known/acme-challenge/<token>` on the redirect listener,
    /// from `--acme-webroot` (the token checked by [`acme_token`]).
    Acme,
    NotFound,
}

/// An ACME challenge token from a path: base64url characters only (RFC
/// 8555, 8.3), so it names a file directly in the webroot's challenge
/// folder and nothing else.
pub fn acme_token(path: &str) -> Option<&str> {
    let token = path.strip_prefix("/.well-known/acme-challenge/")?;
    let ok = !token.is_empty()
        && token.len() <= 128
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(token)
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

pub use crate::image::stored_name as upload_name;

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
    // Images: the chat's, and the admin page's list of them.
    if (routes.chat || routes.admin)
        && path
            .strip_prefix("/u/")
            .is_some_and(|n| upload_name(n).is_some())
    {
        return Route::Upload;
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
