//! Names that cannot be taken over. A page keeps a random secret and sends
//! it with its joins; a name is held by the first secret that used it (kept
//! as its SHA-256), while that user has a connection and for `--name-hold`
//! after. Another secret, or none, gets `name_taken` for a held name; clients
//! without a secret (the Go tutorial's frames, load generators) may use any
//! name that is not held, and hold none. Names compare case-insensitively.
//!
//! With a log that stores settings (`--data-dir`, `--redis`) a hold is also
//! stored, as the setting `hold/<lower-case name>` = `{"secret": HEX,
//! "until": MS}`: written when a hold is made and when its last connection
//! goes, read back at start and (with Redis) from other processes, so a
//! restart keeps holds and every node refuses the same names. Ended holds
//! are removed from the store as they are pruned.
//!
//! A hold also knows whose it is (the identity's owner tag, a token's
//! subject's too) and the name as its holder shows it: a direct message to
//! `@name` goes to that identity, and its frames name the other person.

use super::protocol::Owner;
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
    /// Whose it is (unknown for a hold stored by an older version).
    owner: Option<Owner>,
    /// The name as its holder shows it.
    shown: String,
}

#[derive(Debug, Default)]
pub struct Names {
    hold_ms: u64,
    holds: HashMap<String, Hold>,
    /// Holds are stored as settings of the log (see the module doc).
    persist: bool,
    /// Each owner's held name (its key in `holds`).
    by_owner: HashMap<Owner, String>,
}

/// A hold to store (key, value), or to remove (value empty).
pub type Change = (String, String);

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredHold {
    secret: String,
    until: u64,
    /// The owner tag, as 16 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

fn hex(secret: &SecretHash) -> String {
    crate::chat::protocol::hex(&secret[..])
}

fn unhex(text: &str) -> Option<SecretHash> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn key(username: &str) -> String {
    username.to_lowercase()
}

impl Names {
    pub fn new(hold_ms: u64, persist: bool) -> Names {
        Names {
            hold_ms,
            holds: HashMap::new(),
            persist: persist && hold_ms > 0,
            by_owner: HashMap::new(),
        }
    }

    fn change(&self, k: &str, hold: &Hold, until: u64) -> Option<Change> {
        self.persist.then(|| {
            let value = StoredHold {
                secret: hex(&hold.secret),
                until,
                owner: hold.owner.map(|o| format!("{o:016x}")),
                name: Some(hold.shown.clone()),
            };
            (
                format!("hold/{k}"),
                serde_json::to_string(&value).unwrap_or_default(),
            )
        })
    }

    /// A hold the log stored (here before a restart, or by another process).
    /// A name in use here by another secret stays with it.
    pub fn apply(&mut self, key: &str, value: &str) {
        let Some(k) = key.strip_prefix("hold/") else {
            return;
        };
        if value.is_empty() {
            if self.holds.get(k).is_some_and(|h| h.online == 0) {
                self.remove(k);
            }
            return;
        }
        let Some((secret, stored)) = serde_json::from_str::<StoredHold>(value)
            .ok()
            .and_then(|s| Some((unhex(&s.secret)?, s)))
        else {
            return;
        };
        let until = stored.until;
        let owner = stored
            .owner
            .as_deref()
            .and_then(|o| u64::from_str_radix(o, 16).ok());
        match self.holds.get_mut(k) {
            Some(h) if h.online > 0 && h.secret != secret => {}
            Some(h) if h.secret == secret => {
                h.until = h.until.max(until);
                if h.owner.is_none() && owner.is_some() {
                    h.owner = owner;
                    self.index_owner(k);
                }
            }
            _ => {
                if self.holds.len() < MAX_HOLDS {
                    self.remove(k);
                    self.holds.insert(
                        k.to_string(),
                        Hold {
                            secret,
                            online: 0,
                            until,
                            owner,
                            shown: stored.name.unwrap_or_else(|| k.to_string()),
                        },
                    );
                    self.index_owner(k);
                }
            }
        }
    }

    /// Notes hold `k`'s owner as holding it.
    fn index_owner(&mut self, k: &str) {
        if let Some(owner) = self.holds.get(k).and_then(|h| h.owner) {
            self.by_owner.insert(owner, k.to_string());
        }
    }

    /// Drops hold `k`, and its owner's note if it is this hold's.
    fn remove(&mut self, k: &str) {
        if let Some(owner) = self.holds.remove(k).and_then(|h| h.owner) {
            if self.by_owner.get(&owner).is_some_and(|held| held == k) {
                self.by_owner.remove(&owner);
            }
        }
    }

    /// Who holds `username` now (or within `--name-hold`), and the name as
    /// they show it: `None` when nobody does, or the hold's owner is unknown.
    pub fn holder(&self, username: &str, now: u64) -> Option<(Owner, &str)> {
        let h = self.held(username, now)?;
        Some((h.owner?, &h.shown))
    }

    /// The name `owner` holds (as shown), if it holds one now or lately.
    pub fn name_of(&self, owner: Owner, now: u64) -> Option<&str> {
        let k = self.by_owner.get(&owner)?;
        let h = self.holds.get(k)?;
        (h.online > 0 || now < h.until).then_some(&h.shown)
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
    /// is counted (and must [`depart`](Self::depart) when it goes), and the
    /// hold to store when it is new.
    pub fn arrive(
        &mut self,
        username: &str,
        secret: &SecretHash,
        owner: Option<Owner>,
        now: u64,
    ) -> (bool, Option<Change>) {
        let k = key(username);
        let live = self.held(username, now).is_some();
        if !live && self.holds.len() >= MAX_HOLDS {
            self.prune(now);
            if self.holds.len() >= MAX_HOLDS {
                return (false, None);
            }
        }
        if !live {
            self.remove(&k);
        }
        let hold = self.holds.entry(k.clone()).or_insert(Hold {
            secret: *secret,
            online: 0,
            until: 0,
            owner,
            shown: username.to_string(),
        });
        let fresh = !live || hold.owner.is_none();
        if fresh {
            hold.secret = *secret;
            hold.owner = owner;
            hold.shown = username.to_string();
        }
        if !live {
            hold.online = 0;
        }
        hold.online += 1;
        hold.until = 0;
        self.index_owner(&k);
        let stored = if fresh {
            self.holds
                .get(&k)
                .and_then(|h| self.change(&k, h, now + self.hold_ms))
        } else {
            None
        };
        (true, stored)
    }

    /// A counted connection of `username` is gone: when it was the last, the
    /// name stays held for `--name-hold` (and that is stored).
    pub fn depart(&mut self, username: &str, now: u64) -> Option<Change> {
        let k = key(username);
        let h = self.holds.get_mut(&k)?;
        h.online = h.online.saturating_sub(1);
        if h.online > 0 {
            return None;
        }
        h.until = now + self.hold_ms;
        if self.hold_ms == 0 {
            self.remove(&k);
            return None;
        }
        let h = self.holds.get(&k)?;
        self.change(&k, h, now + self.hold_ms)
    }

    /// Drops holds that have ended (called about once a minute); returns
    /// the stored ones to remove.
    pub fn prune(&mut self, now: u64) -> Vec<Change> {
        let mut ended = Vec::new();
        let persist = self.persist;
        let by_owner = &mut self.by_owner;
        self.holds.retain(|k, h| {
            let keep = h.online > 0 || now < h.until;
            if !keep {
                if persist {
                    ended.push((format!("hold/{k}"), String::new()));
                }
                if let Some(o) = h.owner {
                    if by_owner.get(&o).is_some_and(|held| held == k) {
                        by_owner.remove(&o);
                    }
                }
            }
            keep
        });
        ended
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
        let mut n = Names::new(1000, false);
        assert!(n.may_use("Ann", Some(&mine), 0));
        assert!(n.arrive("Ann", &mine, None, 0).0);
        assert!(!n.may_use("ann", Some(&other), 10), "case does not matter");
        assert!(!n.may_use("Ann", None, 10), "no secret, no held name");
        assert!(n.may_use("ANN", Some(&mine), 10));
        assert!(n.arrive("Ann", &mine, None, 10).0, "a second tab");
        n.depart("Ann", 20);
        assert!(!n.may_use("Ann", Some(&other), 30), "one tab still open");
        n.depart("Ann", 40);
        assert!(!n.may_use("Ann", Some(&other), 1039), "held after leaving");
        assert!(
            n.may_use("Ann", Some(&other), 1040),
            "until --name-hold passed"
        );
        assert!(
            n.arrive("Ann", &other, None, 1040).0,
            "then it is someone else's"
        );
        assert!(!n.may_use("Ann", Some(&mine), 1041));
        n.depart("Ann", 1050);
        n.prune(5000);
        assert!(n.is_empty());
        // --name-hold 0: held only while online.
        let mut n = Names::new(0, false);
        n.arrive("Bo", &mine, None, 0);
        n.depart("Bo", 1);
        assert!(n.may_use("Bo", Some(&other), 1) && n.is_empty());
    }

    #[test]
    fn holds_are_stored_when_made_and_left_and_read_back_elsewhere() {
        let (mine, other) = (hash_secret("mine"), hash_secret("other"));
        let mut here = Names::new(1000, true);
        let (_, made) = here.arrive("Ann", &mine, Some(7), 0);
        let made = made.expect("a new hold is stored");
        assert_eq!(made.0, "hold/ann");
        assert_eq!(
            here.arrive("Ann", &mine, Some(7), 5).1,
            None,
            "a second tab changes nothing stored"
        );
        assert_eq!(here.depart("Ann", 10), None, "one tab left");
        let left = here
            .depart("Ann", 20)
            .expect("the last one leaving is stored");
        assert!(left.1.contains("\"until\":1020"), "{left:?}");
        // Another process (or this one after a restart) reads them back.
        let mut there = Names::new(1000, true);
        there.apply(&made.0, &made.1);
        assert!(!there.may_use("ANN", Some(&other), 500));
        assert_eq!(
            there.holder("ANN", 500),
            Some((7, "Ann")),
            "whose, as shown"
        );
        assert_eq!(there.name_of(7, 500), Some("Ann"));
        there.apply(&left.0, &left.1);
        assert!(!there.may_use("Ann", Some(&other), 1019));
        assert!(there.may_use("Ann", Some(&mine), 1019));
        assert!(there.may_use("Ann", Some(&other), 1020));
        assert_eq!(there.holder("Ann", 1020), None, "the hold ended");
        assert_eq!(there.name_of(7, 1020), None);
        // A name in use here by another secret stays with it.
        let mut busy = Names::new(1000, true);
        busy.arrive("Ann", &other, None, 0);
        busy.apply(&made.0, &made.1);
        assert!(busy.may_use("Ann", Some(&other), 1));
        // Ended holds are removed from the store; without a store nothing is written.
        assert_eq!(
            there.prune(5000),
            vec![("hold/ann".to_string(), String::new())]
        );
        assert_eq!(Names::new(1000, false).arrive("Bo", &mine, None, 0).1, None);
        there.apply("hold/x", "not json");
        assert!(there.is_empty());
    }
}
