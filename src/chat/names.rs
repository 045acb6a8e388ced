//! Names that cannot be taken over. A page keeps a random secret and sends
//! it with its joins; a name is held by the first secret that used it (kept
//! as its SHA-256), while that user has a connection and for `--name-hold`
//! after. Another secret, or none, gets `name_taken` for a held name; clients
//! without a secret (the Go tutorial's frames, load generators) may use any
//! name that is not held, and hold none. Names compare case-insensitively.
//! Holds live in memory: a restart forgets them.

use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// A page secret as kept: its SHA-256, never the secret itself.
pub type SecretHash = [u8; 32];

pub fn hash_secret(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// Most names held at once; past it new names are used unheld (a flood of
/// fresh names cannot grow memory without bound).
const MAX_HOLDS: usize = 100_000;

#[derive(Debug)]
struct Hold {
    secret: SecretHash,
    /// Connections joined under the name with this secret.
    online: u32,
    /// Wall-clock ms the hold ends once nobody is online (0 while online).
    until: u64,
}

#[derive(Debug, Default)]
pub struct Names {
    hold_ms: u64,
    holds: HashMap<String, Hold>,
}

fn key(username: &str) -> String {
    username.to_lowercase()
}

impl Names {
    pub fn new(hold_ms: u64) -> Names {
        Names {
            hold_ms,
            holds: HashMap::new(),
        }
    }

    fn held(&self, username: &str, now: u64) -> Option<&Hold> {
        if self.holds.is_empty() {
            // No page has sent a secret: nothing to look up (the Go tutorial's
            // clients name themselves in every message).
            return None;
        }
        self.holds
            .get(&key(username))
            .filter(|h| h.online > 0 || now < h.until)
    }

    /// Whether `username` may be used by a client with `secret` (or none).
    pub fn may_use(&self, username: &str, secret: Option<&SecretHash>, now: u64) -> bool {
        match self.held(username, now) {
            None => true,
            Some(h) => secret == Some(&h.secret),
        }
    }

    /// A connection joined as `username` with `secret`: it holds the name
    /// (with [`may_use`](Self::may_use) checked first). Returns whether it
    /// is counted (and must [`depart`](Self::depart) when it goes).
    pub fn arrive(&mut self, username: &str, secret: &SecretHash, now: u64) -> bool {
        let k = key(username);
        let live = self.held(username, now).is_some();
        if !live && self.holds.len() >= MAX_HOLDS {
            self.prune(now);
            if self.holds.len() >= MAX_HOLDS {
                return false;
            }
        }
        let hold = self.holds.entry(k).or_insert(Hold {
            secret: *secret,
            online: 0,
            until: 0,
        });
        if !live {
            hold.secret = *secret;
            hold.online = 0;
        }
        hold.online += 1;
        hold.until = 0;
        true
    }

    /// A counted connection of `username` is gone: when it was the last, the
    /// name stays held for `--name-hold`.
    pub fn depart(&mut self, username: &str, now: u64) {
        let k = key(username);
        if let Some(h) = self.holds.get_mut(&k) {
            h.online = h.online.saturating_sub(1);
            if h.online == 0 {
                h.until = now + self.hold_ms;
                if self.hold_ms == 0 {
                    self.holds.remove(&k);
                }
            }
        }
    }

    /// Drops holds that have ended (called about once a second).
    pub fn prune(&mut self, now: u64) {
        self.holds.retain(|_, h| h.online > 0 || now < h.until);
    }

    pub fn len(&self) -> usize {
        self.holds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.holds.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_held_by_its_first_secret_while_online_and_after() {
        let (mine, other) = (hash_secret("mine"), hash_secret("other"));
        let mut n = Names::new(1000);
        assert!(n.may_use("Ann", Some(&mine), 0));
        assert!(n.arrive("Ann", &mine, 0));
        assert!(!n.may_use("ann", Some(&other), 10), "case does not matter");
        assert!(!n.may_use("Ann", None, 10), "no secret, no held name");
        assert!(n.may_use("ANN", Some(&mine), 10));
        assert!(n.arrive("Ann", &mine, 10), "a second tab");
        n.depart("Ann", 20);
        assert!(!n.may_use("Ann", Some(&other), 30), "one tab still open");
        n.depart("Ann", 40);
        assert!(!n.may_use("Ann", Some(&other), 1039), "held after leaving");
        assert!(
            n.may_use("Ann", Some(&other), 1040),
            "until --name-hold passed"
        );
        assert!(n.arrive("Ann", &other, 1040), "then it is someone else's");
        assert!(!n.may_use("Ann", Some(&mine), 1041));
        n.depart("Ann", 1050);
        n.prune(5000);
        assert!(n.is_empty());
        // --name-hold 0: held only while online.
        let mut n = Names::new(0);
        n.arrive("Bo", &mine, 0);
        n.depart("Bo", 1);
        assert!(n.may_use("Bo", Some(&other), 1) && n.is_empty());
    }
}
