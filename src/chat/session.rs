//! One connected client as the chat core knows it: who it is (once joined),
//! its message-rate bucket and the rooms it is in. Rooms' own state (history,
//! presence, members) is in `room.rs`; the rules that tie both are in `core.rs`.

use super::protocol::{Owner, RoomName, UserView};
use std::rc::Rc;

/// A client of the core: the server's slab key plus a generation, so a slab
/// key reused by a newer connection never receives a frame meant for the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId {
    pub key: u32,
    pub gen: u32,
}

impl ClientId {
    pub fn new(key: usize, gen: u32) -> ClientId {
        ClientId {
            key: key as u32,
            gen,
        }
    }
}

/// A name and avatar. Set by the first join; a client that never joins (the
/// Go tutorial's) stays anonymous and names itself in each message.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    pub username: Rc<str>,
    pub avatar: Option<Rc<str>>,
    /// From the page's secret (or the token's subject): its messages may be
    /// edited and deleted by it.
    pub owner: Option<Owner>,
    /// `--auth token`: the name came from a signed token.
    pub verified: bool,
    /// `--auth token`: the only rooms the token allows, when it lists them.
    pub rooms: Option<Rc<[String]>>,
}

impl Identity {
    pub fn view(&self) -> UserView<'_> {
        UserView {
            username: &self.username,
            avatar: self.avatar.as_deref(),
            verified: self.verified,
        }
    }
}

/// Kept small: one per connection, and most of the 10,000 idle connections
/// of a load test never join.
#[derive(Debug)]
pub struct Session {
    /// The generation of the `ClientId` (its key is this session's index).
    pub gen: u32,
    /// Whether the client has joined a room by name. Until then it is in the
    /// default room only, and `rooms` is empty (no allocation).
    pub joined: bool,
    /// `--auth password`: it joined with the password (until then nothing it sends is taken).
    pub authed: bool,
    /// Its name is held for its secret (`names.rs`): released when it goes.
    pub holder: bool,
    /// Joins waiting for their room to be loaded from a shared log (they
    /// count toward `--max-rooms-per-client` like rooms already joined).
    /// (At most `--max-rooms-per-client`, which is at most 255.)
    pub loading: u8,
    /// Boxed: an anonymous client (the Go tutorial's) pays 8 bytes for it.
    pub identity: Option<Box<Identity>>,
    pub bucket: TokenBucket,
    /// Once joined, exactly the rooms it is in. A short list (at most
    /// `--max-rooms-per-client`), so a scan is cheapest.
    pub rooms: Vec<RoomName>,
}

impl Session {
    /// Whether the client receives `room`'s frames (`default` is the default room).
    pub fn in_room(&self, room: &str, default: &str) -> bool {
        if self.joined {
            self.rooms.iter().any(|r| &**r == room)
        } else {
            room == default
        }
    }

    /// The rooms it receives: those it joined, or the default room alone.
    pub fn rooms<'a>(&'a self, default: &'a RoomName) -> &'a [RoomName] {
        if self.joined {
            &self.rooms
        } else {
            std::slice::from_ref(default)
        }
    }
}

/// Token bucket in thousandths of a message: `rate` per second, burst `2 *
/// rate`. The rate is the server's (`--msg-rate`), passed in, not stored.
#[derive(Debug)]
pub struct TokenBucket {
    milli_tokens: u32,
    /// Messages refused since the last quiet second; past the burst size the
    /// client is flooding, not typing fast, and is disconnected.
    strikes: u32,
    last_ms: u64,
    last_refusal_ms: u64,
}

/// Thousandths of a message in a full bucket (2 s worth), saturating far
/// above any sane `--msg-rate`.
fn burst(rate: u32) -> u32 {
    rate.saturating_mul(2000)
}

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Allowed,
    Limited,
    Flooding,
}

impl TokenBucket {
    pub fn new(rate: u32, now_ms: u64) -> Self {
        TokenBucket {
            milli_tokens: burst(rate),
            last_ms: now_ms,
            strikes: 0,
            last_refusal_ms: 0,
        }
    }

    pub fn take(&mut self, rate: u32, now_ms: u64) -> Verdict {
        if rate == 0 {
            return Verdict::Allowed;
        }
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = now_ms.max(self.last_ms);
        let refill = elapsed.saturating_mul(u64::from(rate));
        self.milli_tokens =
            (u64::from(self.milli_tokens) + refill).min(u64::from(burst(rate))) as u32;
        if now_ms.saturating_sub(self.last_refusal_ms) >= 1000 {
            self.strikes = 0;
        }
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            return Verdict::Allowed;
        }
        self.strikes += 1;
        self.last_refusal_ms = now_ms;
        if self.strikes > rate.saturating_mul(2) {
            Verdict::Flooding
        } else {
            Verdict::Limited
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_refills_at_its_rate_then_calls_a_flood() {
        let mut b = TokenBucket::new(2, 0);
        for _ in 0..4 {
            assert_eq!(b.take(2, 0), Verdict::Allowed);
        }
        assert_eq!(b.take(2, 0), Verdict::Limited);
        assert_eq!(
            b.take(2, 500),
            Verdict::Allowed,
            "one token per 500 ms at 2/s"
        );
        let verdicts: Vec<Verdict> = (0..5).map(|_| b.take(2, 600)).collect();
        assert_eq!(verdicts.last(), Some(&Verdict::Flooding));
        assert_eq!(
            TokenBucket::new(0, 0).take(0, 0),
            Verdict::Allowed,
            "0 = unlimited"
        );
    }
}
