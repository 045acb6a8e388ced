//! The WebSocket opening handshake (RFC 6455 4.2): the request's key,
//! version and origin checked, permessage-deflate agreed or not, and the 101.

use super::response::error;
use super::{Reply, Request, Status};

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
