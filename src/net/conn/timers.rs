//! A connection's deadlines: when it next needs the timer (header,
//! keep-alive, message, liveness, output soft limit, linger), what happens
//! when one passes, and the goodbye at shutdown.

use super::{Conn, Phase, Socket};
use crate::config::Config;
use crate::metrics::EndReason;
use crate::net::http::{self, Status};
use crate::net::write_queue::Chunk;
use crate::net::ws::close;
use crate::net::ws_session::Quiet;
use crate::{diag_debug, diag_info};

impl<S: Socket> Conn<S> {
    /// When this connection next needs attention from the timer.
    pub fn deadline(&self, config: &Config) -> u64 {
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        if self.dead {
            return u64::MAX;
        }
        if let Some(since) = self.closing {
            return since + ms(config.linger);
        }
        match (&self.phase, self.input_started) {
            (Phase::Http(h), _) if h.waiting_since().is_some() => {
                h.waiting_since().unwrap_or(0) + ms(config.header_timeout)
            }
            (Phase::Http(_), Some(t)) => t + ms(config.header_timeout),
            (Phase::Http(h), None) if h.served() => self.idle_since + ms(config.keepalive_timeout),
            (Phase::Http(_), None) => self.idle_since + ms(config.header_timeout),
            (Phase::Ws(s), started) => {
                let liveness = s.liveness_deadline(self.last_read, config);
                let soft = self
                    .soft_since
                    .map_or(u64::MAX, |t| t + ms(config.output_soft_seconds));
                started
                    .map_or(liveness, |t| liveness.min(t + message_timeout(s, config)))
                    .min(soft)
            }
        }
    }

    /// The timer fired: act if a deadline has really passed.
    pub fn on_timer(&mut self, config: &Config, date: &str, now: u64) {
        if now < self.deadline(config) {
            return;
        }
        if self.closing.is_some() {
            return self.kill(self.reason.unwrap_or(EndReason::Timeout));
        }
        if self.soft_since.is_some() && !self.check_output(config, now) {
            return; // above the soft limit for too long: dropped
        }
        if now < self.deadline(config) {
            return; // only the soft-limit check was due
        }
        if let (Phase::Ws(s), Some(t)) = (&self.phase, self.input_started) {
            if now >= t + message_timeout(s, config) {
                diag_info!("{}: message not completed in time, closing", self.who());
                return self.close_with(
                    close::POLICY,
                    "message not completed in time",
                    EndReason::Timeout,
                    now,
                );
            }
        }
        match &mut self.phase {
            Phase::Http(h) if h.waiting_since().is_some() => {
                h.answered();
                diag_info!("{}: no answer for the request in time", self.who());
                let reply = http::error(
                    Status::ServiceUnavailable,
                    "the image store did not answer in time",
                    false,
                    date,
                );
                for chunk in reply.chunks {
                    self.out.push(chunk);
                }
                self.begin_close(EndReason::Timeout, now);
            }
            Phase::Http(_) if self.input_started.is_some() => {
                diag_debug!("{}: request head not complete in time", self.who());
                let reply = http::error(
                    Status::RequestTimeout,
                    "request head took too long",
                    false,
                    date,
                );
                for chunk in reply.chunks {
                    self.out.push(chunk);
                }
                self.begin_close(EndReason::Timeout, now);
            }
            Phase::Http(_) => self.kill(EndReason::Timeout),
            Phase::Ws(s) => match s.on_quiet(now) {
                Quiet::Ping(ping) => self.out.push(Chunk::from(ping)),
                Quiet::Dead(close) => {
                    diag_info!("{}: no answer to ping, closing", self.who());
                    if let Some(close) = close {
                        self.out.push(Chunk::from(close));
                    }
                    self.flush(config);
                    self.kill(EndReason::Timeout);
                }
            },
        }
    }

    /// A WebSocket for clean shutdown gets 1001; HTTP connections close after their reply.
    pub fn on_shutdown(&mut self, now: u64) {
        match self.phase {
            Phase::Ws(_) => self.close_with(
                close::GOING_AWAY,
                "server shutting down",
                EndReason::Shutdown,
                now,
            ),
            Phase::Http(_) => {
                if self.out.is_empty() {
                    self.kill(EndReason::Shutdown);
                } else {
                    self.begin_close(EndReason::Shutdown, now);
                }
            }
        }
    }
}

/// How long a started message may take: an announced upload's bytes get
/// `--upload-timeout` (a photo over a phone's link), anything else
/// `--message-timeout`.
fn message_timeout(s: &crate::net::ws_session::WsSession, config: &Config) -> u64 {
    let t = if s.expects_upload() {
        config.message_timeout.max(config.upload_timeout)
    } else {
        config.message_timeout
    };
    t.as_millis() as u64
}
