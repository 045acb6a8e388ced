//! A connection in its HTTP phase: a request head parsed, handed to the
//! HTTP session (`http_session.rs`) for a decision, and that decision carried
//! out: a reply queued, a WebSocket upgrade (with the per-address upgrade
//! limit), or a question passed to the server through [`Shell`].

use super::{Conn, Env, Phase, Shell, Socket};
use crate::metrics::EndReason;
use crate::net::http::{self, Parsed, Reply, Request, Route, Status};
use crate::net::http_session::{Answer, Listener, Refused, Site, Then};
use crate::net::write_queue::Chunk;
use crate::net::ws_session::{WsKind, WsSession};
use crate::{diag_debug, diag_info};

impl<S: Socket> Conn<S> {
    /// One request head, if complete. Returns the bytes it used.
    pub(super) fn process_http(
        &mut self,
        buf: &[u8],
        env: &Env,
        shell: &mut dyn Shell,
    ) -> Option<usize> {
        let site = Site {
            config: env.config,
            date: env.date,
            listener: self.listener,
            admin_api: env.admin_api,
        };
        match http::parse(buf, env.config.max_header) {
            Parsed::Partial => None,
            Parsed::Invalid(status) => {
                shell.stats().http_requests_total += 1;
                diag_debug!("{}: malformed request: {}", self.who(), status.code());
                let Phase::Http(session) = &mut self.phase else {
                    return None;
                };
                let (reply, then) = session.malformed(status, &site);
                self.send_reply(reply, then, env);
                Some(buf.len())
            }
            Parsed::Request(req, len) => {
                shell.stats().http_requests_total += 1;
                self.note_client(&req, env, shell);
                let refused = if self.over_limit {
                    Some(Refused::OverLimit)
                } else if self.over_address {
                    shell.stats().per_address_refused += 1;
                    Some(Refused::OverAddress)
                } else {
                    None
                };
                let Phase::Http(session) = &mut self.phase else {
                    return None;
                };
                let answer = session.request(&req, &site, refused);
                self.carry_out(answer, &req, env, shell);
                Some(len)
            }
        }
    }

    /// Behind a trusted proxy the client's address is known only at the
    /// first request: remembered, and counted in the per-address limits.
    fn note_client(&mut self, req: &Request, env: &Env, shell: &mut dyn Shell) {
        if !env.config.trust_proxy {
            return;
        }
        if let Some(xff) = req.forwarded_for.filter(|_| self.forwarded.is_none()) {
            // The rightmost address is the one our own proxy added.
            let client = xff.rsplit(',').next().unwrap_or(xff).trim();
            if !client.is_empty() && client.len() <= 64 {
                self.forwarded = Some(client.into());
            }
        }
        if !self.over_limit && self.listener != Listener::Admin {
            self.count_address(shell.per_address());
        }
    }

    /// Does what the HTTP session decided.
    fn carry_out(&mut self, answer: Answer, req: &Request, env: &Env, shell: &mut dyn Shell) {
        let (reply, then) = match answer {
            Answer::Reply(reply, then) => (reply, then),
            Answer::Upgrade(kind) => return self.upgrade(req, kind, env, shell),
            Answer::Ask(route, keep_alive) => {
                let Some(reply) = shell.serve(&route, req, self.client_ip()) else {
                    if let Phase::Http(session) = &mut self.phase {
                        session.wait(env.now, keep_alive);
                    }
                    return;
                };
                // The admin API's replies say nothing of keep-alive: the request decides.
                let keep = keep_alive && (route == Route::Admin || reply.keep_alive);
                let then = if keep {
                    Then::KeepAlive
                } else {
                    Then::Close(EndReason::HttpDone)
                };
                (reply, then)
            }
        };
        self.send_reply(reply, then, env);
    }

    /// Queues a reply, then keeps the connection for the next request or
    /// starts closing it.
    pub(super) fn send_reply(&mut self, reply: Reply, then: Then, env: &Env) {
        self.reply(reply, env);
        match then {
            Then::KeepAlive => self.idle_since = env.now,
            Then::Close(reason @ EndReason::HttpDone) => {
                self.idle_since = env.now;
                self.begin_close(reason, env.now);
            }
            Then::Close(reason) => self.begin_close(reason, env.now),
        }
    }

    fn upgrade(&mut self, req: &Request, kind: WsKind, env: &Env, shell: &mut dyn Shell) {
        if !shell
            .per_address()
            .upgrade(self.client_ip(), env.wall_ms / 1000)
        {
            shell.stats().per_address_refused += 1;
            let reply = http::error(
                Status::ServiceUnavailable,
                "too many new connections from your address",
                false,
                env.date,
            );
            return self.send_reply(reply, Then::Close(EndReason::OverCapacity), env);
        }
        let config = env.config;
        match http::upgrade(req, &config.allow_origin, config.compression, env.date) {
            Ok((head, deflate)) => {
                self.queue(Chunk::from(head), config, env.now);
                self.phase = Phase::Ws(WsSession::new(kind, deflate));
                shell.stats().ws_upgrades_total += 1;
                if kind == WsKind::Chat {
                    shell.stats().ws_clients += 1;
                }
                shell.upgraded(kind, self.client_ip());
                diag_info!(
                    "{}: websocket open ({})",
                    self.who(),
                    if kind == WsKind::Chat { "chat" } else { "echo" }
                );
            }
            Err(reply) => {
                diag_debug!("{}: upgrade refused: {}", self.who(), reply.status.code());
                self.send_reply(reply, Then::Close(EndReason::BadRequest), env);
            }
        }
    }

    fn reply(&mut self, reply: Reply, env: &Env) {
        for chunk in reply.chunks {
            self.queue(chunk, env.config, env.now);
        }
    }
}
