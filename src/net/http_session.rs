//! One HTTP/1.1 connection's requests, without a socket: a parsed request
//! head in, what to do out. A reply (and whether the connection stays open),
//! an upgrade to a WebSocket, or a question only the server can answer (the
//! rooms list, health and metrics, the admin API).
//!
//! Parsing and building responses is `http.rs`; reading, writing and the
//! per-address counting of the peer are `conn.rs`; the answers to questions
//! are the server's (`server.rs`).

use crate::config::Config;
use crate::metrics::EndReason;
use crate::net::http::{self, Reply, Request, Route, Routes, Status};
use crate::net::ws_session::WsKind;

/// Where a connection came in and what the server offers there.
#[derive(Clone, Copy, Debug)]
pub struct Site<'a> {
    pub config: &'a Config,
    /// The current HTTP `Date` value.
    pub date: &'a str,
    /// Accepted on the admin listener (`--admin-listen`).
    pub admin_listener: bool,
    /// The admin API is on (`--admin-token-file`).
    pub admin_api: bool,
}

/// What the session decided about one request.
#[derive(Debug)]
pub enum Answer {
    /// Send this, then keep the connection for the next request or close it.
    Reply(Reply, Then),
    /// Switch to a WebSocket of this kind (the handshake is checked by the caller).
    Upgrade(WsKind),
    /// The server must answer this route; the connection is kept alive only if
    /// the request and the reply both allow it.
    Ask(Route, bool),
}

/// After a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    KeepAlive,
    Close(EndReason),
}

/// Why a connection is refused before its first request is looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Accepted past `--max-connections`.
    OverLimit,
    /// Its address is over `--max-connections-per-address`.
    OverAddress,
}

/// An HTTP connection between requests.
#[derive(Debug, Default)]
pub struct HttpSession {
    /// A request was answered: the keep-alive timeout applies, not the header one.
    served: bool,
}

impl HttpSession {
    pub fn served(&self) -> bool {
        self.served
    }

    /// A head that could not be parsed: its error, then close.
    pub fn malformed(&mut self, status: Status, site: &Site) -> (Reply, Then) {
        let reply = http::error(status, "malformed request", false, site.date);
        (reply, Then::Close(EndReason::BadRequest))
    }

    /// A complete request head.
    pub fn request(&mut self, req: &Request, site: &Site, refused: Option<Refused>) -> Answer {
        let config = site.config;
        let keep_alive = req.keep_alive && !req.has_body;
        if let Some(refused) = refused {
            let why = match refused {
                Refused::OverLimit => "server at its connection limit",
                Refused::OverAddress => "too many connections from your address",
            };
            let reply = http::error(Status::ServiceUnavailable, why, false, site.date);
            return Answer::Reply(reply, Then::Close(EndReason::OverCapacity));
        }
        let on_main = !site.admin_listener;
        let routes = Routes {
            chat: on_main,
            ops: config.ops_endpoints && (site.admin_listener || config.admin_listen.is_none()),
            admin: site.admin_api && (site.admin_listener || config.admin_listen.is_none()),
            echo_path: config.echo_path.as_deref(),
        };
        let route = http::route(req.path, routes);
        if route == Route::Admin {
            // Any method: the admin API answers it (and does not count as
            // served: an idle admin connection keeps the header timeout).
            return Answer::Ask(route, keep_alive);
        }
        if req.method != "GET" && req.method != "HEAD" {
            let reply = http::error(
                Status::MethodNotAllowed,
                "only GET and HEAD",
                false,
                site.date,
            );
            return Answer::Reply(reply, Then::Close(EndReason::BadRequest));
        }
        let reply = match route {
            Route::ChatSocket => return Answer::Upgrade(WsKind::Chat),
            Route::EchoSocket => return Answer::Upgrade(WsKind::Echo),
            Route::Rooms | Route::Health | Route::Metrics | Route::Upload => {
                self.served = true;
                return Answer::Ask(route, keep_alive);
            }
            Route::Asset(asset) => http::asset(req, asset, site.date, &config.frame_ancestors),
            Route::NotFound | Route::Admin => {
                http::error(Status::NotFound, "no such page", keep_alive, site.date)
            }
        };
        self.served = true;
        let then = if reply.keep_alive && keep_alive {
            Then::KeepAlive
        } else {
            Then::Close(EndReason::HttpDone)
        };
        Answer::Reply(reply, then)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::http::{parse, Parsed};

    fn ask(session: &mut HttpSession, raw: &str, site: &Site, refused: Option<Refused>) -> Answer {
        // Every HTTP/1.1 request names its host.
        let raw = if raw.contains("Host:") {
            raw.to_string()
        } else {
            raw.replacen("\r\n", "\r\nHost: x\r\n", 1)
        };
        let Parsed::Request(req, _) = parse(raw.as_bytes(), 8192) else {
            panic!("not a request: {raw:?}");
        };
        session.request(&req, site, refused)
    }

    fn site(config: &Config, admin_listener: bool, admin_api: bool) -> Site<'_> {
        Site {
            config,
            date: "Thu, 03 Dec 2026 08:00:00 GMT",
            admin_listener,
            admin_api,
        }
    }

    fn status(answer: &Answer) -> (u16, Then) {
        match answer {
            Answer::Reply(reply, then) => (reply.status.code(), *then),
            other => panic!("not a reply: {other:?}"),
        }
    }

    #[test]
    fn the_page_is_served_and_the_connection_kept_then_closed_on_request() {
        let config = Config::default();
        let site = site(&config, false, false);
        let mut s = HttpSession::default();
        assert!(!s.served());
        let a = ask(&mut s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &site, None);
        assert_eq!(status(&a), (200, Then::KeepAlive));
        assert!(s.served());
        let a = ask(
            &mut s,
            "GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n",
            &site,
            None,
        );
        assert_eq!(status(&a), (404, Then::Close(EndReason::HttpDone)));
        let a = ask(
            &mut s,
            "POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n",
            &site,
            None,
        );
        assert_eq!(status(&a), (405, Then::Close(EndReason::BadRequest)));
    }

    #[test]
    fn sockets_upgrade_and_server_routes_are_asked_for() {
        let config = Config::default();
        let site = site(&config, false, false);
        let mut s = HttpSession::default();
        let a = ask(&mut s, "GET /ws HTTP/1.1\r\n\r\n", &site, None);
        assert!(matches!(a, Answer::Upgrade(WsKind::Chat)), "{a:?}");
        assert!(!s.served(), "an upgrade is not a served request");
        let a = ask(&mut s, "GET /api/rooms HTTP/1.1\r\n\r\n", &site, None);
        assert!(matches!(a, Answer::Ask(Route::Rooms, true)), "{a:?}");
        let a = ask(&mut s, "GET /healthz HTTP/1.0\r\n\r\n", &site, None);
        assert!(matches!(a, Answer::Ask(Route::Health, false)), "{a:?}");
    }

    #[test]
    fn refusals_and_malformed_heads_close_with_their_reason() {
        let config = Config::default();
        let site = site(&config, false, false);
        let mut s = HttpSession::default();
        for refused in [Refused::OverLimit, Refused::OverAddress] {
            let a = ask(&mut s, "GET / HTTP/1.1\r\n\r\n", &site, Some(refused));
            assert_eq!(status(&a), (503, Then::Close(EndReason::OverCapacity)));
        }
        let (reply, then) = s.malformed(Status::BadRequest, &site);
        assert_eq!(
            (reply.status.code(), then),
            (400, Then::Close(EndReason::BadRequest))
        );
        assert!(!s.served());
    }

    #[test]
    fn the_admin_listener_has_no_page_and_the_admin_api_takes_any_method() {
        let config = Config {
            admin_listen: Some("127.0.0.1:0".into()),
            ..Config::default()
        };
        let mut s = HttpSession::default();
        let admin = site(&config, true, true);
        let a = ask(&mut s, "GET / HTTP/1.1\r\n\r\n", &admin, None);
        assert_eq!(status(&a).0, 404, "no page on the admin listener");
        let a = ask(
            &mut s,
            "DELETE /api/admin/bans HTTP/1.1\r\n\r\n",
            &admin,
            None,
        );
        assert!(matches!(a, Answer::Ask(Route::Admin, true)), "{a:?}");
        let main = site(&config, false, true);
        let a = ask(&mut s, "GET /api/admin/rooms HTTP/1.1\r\n\r\n", &main, None);
        assert_eq!(status(&a).0, 404, "the admin API only on its listener");
    }
}
