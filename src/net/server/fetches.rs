//! Images held by a shared log (Redis): a request for `/u/<name>` waits
//! for the log's answer ([`Conn::answer`](crate::net::conn::Conn::answer)),
//! and requests for the same file while one fetch is out share it (one
//! read from Redis, one buffer for every reader, like a local file).
//!
//! Serving a file the log has at hand (memory, journal) is `dispatch.rs`;
//! reading Redis is the log's.

use super::Server;
use crate::log::Fetched;
use crate::net::conn::Env;
use crate::net::http::{self, Status, UploadAsk};

/// A connection waiting for a file, and what its request asked.
#[derive(Debug)]
struct Waiter {
    key: usize,
    gen: u32,
    ask: UploadAsk,
}

/// Files asked of the shared log and not yet answered (a few at a time:
/// a list, not a map).
#[derive(Debug, Default)]
pub struct Fetches {
    waiting: Vec<(String, Vec<Waiter>)>,
    /// Names to ask the log for at the end of the turn.
    to_send: Vec<String>,
}

impl Fetches {
    /// Connection `key` (generation `gen`) waits for `name`.
    pub fn ask(&mut self, name: &str, key: usize, gen: u32, ask: UploadAsk) {
        let waiter = Waiter { key, gen, ask };
        match self.waiting.iter_mut().find(|(n, _)| n == name) {
            Some((_, list)) => list.push(waiter),
            None => {
                self.waiting.push((name.to_string(), vec![waiter]));
                self.to_send.push(name.to_string());
            }
        }
    }

    /// Files to ask the log for now (each once while it is out).
    pub fn take_unsent(&mut self) -> Vec<String> {
        std::mem::take(&mut self.to_send)
    }
}

impl Server {
    /// Asks the shared log for the files requested this turn.
    pub(super) fn send_fetches(&mut self) {
        let names = self.fetches.take_unsent();
        if let Some(shared) = self.log.shared() {
            for name in names {
                shared.fetch_file(&name);
            }
        }
    }

    /// The shared log answered for `name`: every connection still waiting
    /// for it gets its reply (the same bytes), then reads on.
    pub(super) fn fetched(&mut self, name: &str, fetched: Fetched) {
        let Some(at) = self.fetches.waiting.iter().position(|(n, _)| n == name) else {
            return;
        };
        let (_, waiters) = self.fetches.waiting.swap_remove(at);
        let now = self.now_ms();
        let env = Env {
            config: &self.config,
            now,
            wall_ms: crate::clock::unix_millis(),
            date: &self.date,
            admin_api: self.admin_api.is_some(),
        };
        let mut answered = Vec::with_capacity(waiters.len());
        for w in waiters {
            let Some(conn) = self.conns.get_mut(w.key).filter(|c| c.gen == w.gen) else {
                continue; // gone meanwhile
            };
            let reply = match &fetched {
                Fetched::Bytes(bytes) => {
                    self.stats.files_served += 1;
                    http::upload(w.ask, name, bytes.clone(), &self.date)
                }
                Fetched::Missing => http::error(
                    Status::NotFound,
                    "no such image",
                    w.ask.keep_alive,
                    &self.date,
                ),
                Fetched::Failed => http::error(
                    Status::ServiceUnavailable,
                    "the image store is unavailable",
                    false,
                    &self.date,
                ),
            };
            if conn.answer(reply, &env) && !conn.in_read_list {
                conn.in_read_list = true;
                self.read_list.push(w.key);
            }
            answered.push(w.key);
        }
        for key in answered {
            self.after_event(key);
        }
    }
}
