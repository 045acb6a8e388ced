//! Response bytes: the head every response carries, small text and JSON
//! answers, errors, the ops endpoints, and compiled-in files (gzip, ETag and
//! 304, HEAD).

use super::{Request, Route, Status};
use crate::metrics::{self, Snapshot};
use crate::net::assets::Asset;
use crate::net::write_queue::Chunk;
use std::borrow::Cow;
use std::fmt::Write as _;

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

/// `--http-redirect`: the same path and query over https (308 keeps the method).
pub fn redirect(location: &str, keep_alive: bool, date: &str) -> Reply {
    let body = format!("308 Permanent Redirect: {location}\n");
    simple(
        Status::PermanentRedirect,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        &format!("Location: {location}\r\n"),
        false,
        keep_alive,
        date,
    )
}

/// An ACME challenge file (`--acme-webroot`), as certbot wrote it.
pub fn acme_file(bytes: &[u8], head_only: bool, keep_alive: bool, date: &str) -> Reply {
    simple(
        Status::Ok,
        "application/octet-stream",
        bytes,
        "",
        head_only,
        keep_alive,
        date,
    )
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
            "Content-Security-Policy: default-src 'self'; img-src 'self' https://www.gravatar.com data: blob:; \
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

/// What a request for an uploaded image asks, kept apart from the request
/// so the reply can be built later (a shared log answers turns after).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadAsk {
    pub head_only: bool,
    pub keep_alive: bool,
    /// The client's `If-None-Match` already names this file.
    pub cached: bool,
}

impl UploadAsk {
    pub fn of(req: &Request, name: &str) -> UploadAsk {
        UploadAsk {
            head_only: req.method == "HEAD",
            keep_alive: req.keep_alive,
            cached: req
                .if_none_match
                .is_some_and(|inm| etag_matches(inm, &format!("\"{name}\""))),
        }
    }
}

/// An uploaded image: its type from its bytes, nothing in it able to run
/// (`nosniff`, a CSP that allows no script), cached for good (its name is
/// never reused), ETag and 304, HEAD without body. One shared buffer for
/// every reader.
pub fn upload(ask: UploadAsk, name: &str, bytes: std::rc::Rc<[u8]>, date: &str) -> Reply {
    let keep_alive = ask.keep_alive;
    let etag = format!("\"{name}\"");
    let cache = "Cache-Control: public, max-age=31536000, immutable\r\n";
    if ask.cached {
        let mut h = head(Status::NotModified, date);
        let _ = write!(h, "ETag: {etag}\r\n{cache}");
        return Reply {
            status: Status::NotModified,
            chunks: vec![Chunk::from(finish_head(h, keep_alive))],
            keep_alive,
        };
    }
    let kind = crate::image::format_of(&bytes).map_or("application/octet-stream", |f| f.mime());
    let mut h = head(Status::Ok, date);
    let _ = write!(
        h,
        "Content-Type: {kind}\r\nContent-Length: {}\r\nETag: {etag}\r\n{cache}\
         X-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'none'; img-src 'self'; sandbox\r\n",
        bytes.len()
    );
    let mut chunks = vec![Chunk::from(finish_head(h, keep_alive))];
    if !ask.head_only {
        chunks.push(Chunk::Shared(bytes));
    }
    Reply {
        status: Status::Ok,
        chunks,
        keep_alive,
    }
}

/// RFC 9110 13.1.2: weak comparison against a list of entity tags, or `*`.
pub(super) fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.trim() == "*"
        || if_none_match
            .split(',')
            .map(|t| t.trim())
            .any(|t| t.strip_prefix("W/").unwrap_or(t) == etag)
}
