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

/// The listener a connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// `--listen`: the page, `/ws` and the rest (HTTPS with `--tls-cert`).
    Main,
    /// `--admin-listen`: `/healthz`, `/metrics` and the admin API only.
    Admin,
    /// `--http-redirect`: plain HTTP, redirected to https but for ACME challenges.
    Redirect,
}

/// Where a connection came in and what the server offers there.
#[derive(Clone, Copy, Debug)]
pub struct Site<'a> {
    pub config: &'a Config,
    /// The current HTTP `Date` value.
    pub date: &'a str,
    pub listener: Listener,
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
    /// The server answers the current request later (an image a shared log
    /// holds): since when, and whether the request allows keep-alive. No
    /// further request is read meanwhile.
    waiting: Option<(u64, bool)>,
}

impl HttpSession {
    pub fn served(&self) -> bool {
        self.served
    }

    /// Since when the current request waits for the server's answer, if it does.
    pub fn waiting_since(&self) -> Option<u64> {
        self.waiting.map(|(since, _)| since)
    }

    /// The server will answer the current request later.
    pub fn wait(&mut self, now: u64, keep_alive: bool) {
        self.waiting = Some((now, keep_alive));
    }

    /// The late answer arrived: whether the request allowed keep-alive, or
    /// `None` if nothing was waiting for one.
    pub fn answered(&mut self) -> Option<bool> {
        self.waiting.take().map(|(_, keep_alive)| keep_alive)
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
        if site.listener == Listener::Redirect {
            return self.redirect(req, site, keep_alive);
        }
        let on_admin = site.listener == Listener::Admin;
        let routes = Routes {
            chat: !on_admin,
            ops: config.ops_endpoints && (on_admin || config.admin_listen.is_none()),
            admin: site.admin_api && (on_admin || config.admin_listen.is_none()),
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
            Route::Rooms | Route::Health | Route::Metrics | Route::Upload | Route::Acme => {
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

    /// On the redirect listener: an ACME challenge from the webroot, or a
    /// 308 to the same path and query over https, on `--listen`'s port
    /// (left out when it is 443).
    fn redirect(&mut self, req: &Request, site: &Site, keep_alive: bool) -> Answer {
        let config = site.config;
        self.served = true;
        let get = req.method == "GET" || req.method == "HEAD";
        if get && config.acme_webroot.is_some() && http::acme_token(req.path).is_some() {
            return Answer::Ask(Route::Acme, keep_alive);
        }
        let Some(host) = req.host.and_then(host_name) else {
            let reply = http::error(Status::BadRequest, "no usable Host", false, site.date);
            return Answer::Reply(reply, Then::Close(EndReason::BadRequest));
        };
        let port = match config.listen.rsplit_once(':').map(|(_, p)| p) {
            Some("443") | None => String::new(),
            Some(p) => format!(":{p}"),
        };
        let query = if req.query.is_empty() { "" } else { "?" };
        let location = format!("https://{host}{port}{}{query}{}", req.path, req.query);
        let then = if keep_alive {
            Then::KeepAlive
        } else {
            Then::Close(EndReason::HttpDone)
        };
        Answer::Reply(http::redirect(&location, keep_alive, site.date), then)
    }
}

/// The name in a `Host` header without its port: a DNS name, an IPv4
/// address or a bracketed IPv6 one (nothing that could end the header or
/// change the URL).
fn host_name(host: &str) -> Option<&str> {
    let name = match host.strip_prefix('[') {
        Some(v6) => &host[..v6.find(']')? + 2],
        None => host.split(':').next()?,
    };
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
    ok.then_some(name)
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
            listener: if admin_listener {
                Listener::Admin
            } else {
                Listener::Main
            },
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

    fn location(answer: &Answer) -> (u16, String) {
        let Answer::Reply(reply, _) = answer else {
            panic!("not a reply: {answer:?}");
        };
        let bytes: Vec<u8> = reply
            .chunks
            .iter()
            .flat_map(|c| c.bytes().to_vec())
            .collect();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let loc = text
            .lines()
            .find_map(|l| l.strip_prefix("Location: "))
            .unwrap_or("")
            .to_string();
        (reply.status.code(), loc)
    }

    #[test]
    fn the_redirect_listener_sends_everything_to_https_but_acme_challenges() {
        let config = Config {
            listen: "0.0.0.0:8443".into(),
            ..Config::default()
        };
        let site = |config| Site {
            config,
            date: "Thu, 03 Dec 2026 08:00:00 GMT",
            listener: Listener::Redirect,
            admin_api: false,
        };
        let mut s = HttpSession::default();
        let get = |s: &mut HttpSession, config, raw: &str| {
            let Parsed::Request(req, _) = parse(raw.as_bytes(), 8192) else {
                panic!("not a request: {raw:?}");
            };
            s.request(&req, &site(config), None)
        };
        let a = get(
            &mut s,
            &config,
            "GET /r/x?a=1&b=2 HTTP/1.1\r\nHost: chat.example:80\r\n\r\n",
        );
        assert_eq!(
            location(&a),
            (308, "https://chat.example:8443/r/x?a=1&b=2".into())
        );
        assert!(matches!(a, Answer::Reply(_, Then::KeepAlive)));
        let a = get(
            &mut s,
            &config,
            "POST /ws HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
        );
        assert_eq!(location(&a), (308, "https://[::1]:8443/ws".into()));
        let on_443 = Config {
            listen: "[::]:443".into(),
            ..Config::default()
        };
        let a = get(
            &mut s,
            &on_443,
            "GET / HTTP/1.1\r\nHost: chat.example\r\n\r\n",
        );
        assert_eq!(location(&a), (308, "https://chat.example/".into()));
        // No Host, or one that could bend the URL: 400.
        for raw in [
            "GET / HTTP/1.0\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: evil.example/x?\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a@b\r\n\r\n",
        ] {
            assert_eq!(status(&get(&mut s, &config, raw)).0, 400, "{raw}");
        }
        // A challenge is served only with a webroot, and only by its token.
        let challenge = "GET /.well-known/acme-challenge/Ab-_9 HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(location(&get(&mut s, &config, challenge)).0, 308);
        let webroot = Config {
            acme_webroot: Some("/var/lib/picochat/acme".into()),
            ..config.clone()
        };
        assert!(matches!(
            get(&mut s, &webroot, challenge),
            Answer::Ask(Route::Acme, true)
        ));
        let traversal = "GET /.well-known/acme-challenge/..%2Fkey HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(location(&get(&mut s, &webroot, traversal)).0, 308);
        assert_eq!(http::acme_token("/.well-known/acme-challenge/a.b"), None);
        assert_eq!(http::acme_token("/.well-known/acme-challenge/"), None);
        assert_eq!(http::acme_token("/.well-known/acme-challenge/x/y"), None);
    }
}
