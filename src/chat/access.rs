//! Who may speak (`--auth`). `open`: anyone. `password`: a connection must
//! join with the shared password (`--password-file`) before anything it sends
//! is accepted; `token`: with a JWT the operator's app signed (`token.rs`).
//! Wrong attempts are counted and, past 10 within a minute from
//! one client address, refused for a minute without being checked. The
//! password is kept as a [`Secret`], compared in constant time, and never
//! printed. No sockets or clocks here: the core passes addresses and time in.
//! [`Attempts`] (failures per address) serves the admin token too.

use super::token::{self, Refusal, TokenKey, TokenUser};
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// A secret read from a file: compared in constant time, shown as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<[u8]>);

impl Secret {
    pub fn new(bytes: &[u8]) -> Secret {
        Secret(bytes.into())
    }

    /// Equal, in time that depends only on the lengths.
    pub fn matches(&self, given: &[u8]) -> bool {
        let ours = &self.0;
        let mut diff = u8::from(ours.len() != given.len());
        for (i, &b) in ours.iter().enumerate() {
            diff |= b ^ given.get(i).copied().unwrap_or(0);
        }
        diff == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Failed attempts from one address that close it for [`BLOCK_MS`].
pub const MAX_FAILURES: u32 = 10;
/// The window those failures are counted in, and how long the address is then refused.
pub const BLOCK_MS: u64 = 60_000;

/// A refused token: the outcome, and for a token that was checked, the
/// address it came from and why it failed (`None`: no token given).
pub type TokenCheck = (Check, Option<(IpAddr, Option<Refusal>)>);

/// What a join's password check says.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    Ok,
    Wrong,
    /// Too many failures from this address lately: not even checked.
    Blocked,
}

#[derive(Debug, Default)]
struct Failures {
    since: u64,
    count: u32,
}

/// Failed attempts per client address: [`MAX_FAILURES`] within [`BLOCK_MS`]
/// refuse that address for [`BLOCK_MS`] (the chat password here, the admin
/// token in `net/admin.rs`).
#[derive(Debug, Default)]
pub struct Attempts {
    failures: HashMap<IpAddr, Failures>,
}

impl Attempts {
    /// Whether `addr` is refused now (too many failures lately).
    pub fn blocked(&mut self, addr: IpAddr, now: u64) -> bool {
        match self.failures.get(&addr) {
            Some(f) if now.saturating_sub(f.since) >= BLOCK_MS => {
                self.failures.remove(&addr);
                false
            }
            Some(f) => f.count >= MAX_FAILURES,
            None => false,
        }
    }

    /// One more failure from `addr`.
    pub fn failed(&mut self, addr: IpAddr, now: u64) {
        let f = self.failures.entry(addr).or_insert(Failures {
            since: now,
            count: 0,
        });
        f.count += 1;
        if f.count == MAX_FAILURES {
            // Refused from now on, for a whole block time.
            f.since = now;
        }
    }

    /// Forgets addresses whose window has passed (called about once a second).
    pub fn tick(&mut self, now: u64) {
        if !self.failures.is_empty() {
            self.failures
                .retain(|_, f| now.saturating_sub(f.since) < BLOCK_MS);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct Access {
    password: Option<Secret>,
    token: Option<std::rc::Rc<TokenKey>>,
    attempts: Attempts,
    /// Wrong passwords and blocked attempts since start (`/metrics`).
    pub failures_total: u64,
}

impl Access {
    /// With `--auth`: the key to uploaded images a page gets in its welcome
    /// and presents as the cookie `picochat_files` (derived from the
    /// password or the token secret, so every process sharing them agrees,
    /// and a new password shuts out the old key). `None` without `--auth`.
    pub fn files_key(&self) -> Option<String> {
        use sha2::{Digest, Sha256};
        let digest: [u8; 32] = match (&self.token, &self.password) {
            (Some(key), _) => key.mac(b"picochat files"),
            (None, Some(password)) => Sha256::new()
                .chain_update(b"picochat files\0")
                .chain_update(&password.0)
                .finalize()
                .into(),
            (None, None) => return None,
        };
        Some(crate::chat::protocol::hex(&digest[..16]))
    }

    /// Whether a request's `Cookie` header carries the key to uploaded images.
    pub fn files_allowed(&self, cookie: Option<&str>) -> bool {
        let Some(key) = self.files_key() else {
            return true;
        };
        cookie.is_some_and(|c| {
            c.split(';')
                .filter_map(|kv| kv.trim().split_once('='))
                .any(|(k, v)| {
                    k == "picochat_files" && Secret::new(key.as_bytes()).matches(v.as_bytes())
                })
        })
    }

    pub fn new(password: Option<Secret>, token: Option<std::rc::Rc<TokenKey>>) -> Access {
        Access {
            password,
            token,
            ..Access::default()
        }
    }

    /// Whether connections must join with the password or a token before speaking.
    pub fn required(&self) -> bool {
        self.password.is_some() || self.token.is_some()
    }

    /// `--auth token`: names come from tokens.
    pub fn token_required(&self) -> bool {
        self.token.is_some()
    }

    /// Checks a join's token from `addr` at wall-clock `now` (ms). A refused
    /// token comes back with the address and why (`None`: no token), for
    /// the server's log.
    pub fn check_token(
        &mut self,
        given: Option<&str>,
        addr: Option<IpAddr>,
        now: u64,
    ) -> Result<TokenUser, TokenCheck> {
        let Some(key) = &self.token else {
            return Err((Check::Wrong, None));
        };
        let addr = addr.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if self.attempts.blocked(addr, now) {
            self.failures_total += 1;
            return Err((Check::Blocked, None));
        }
        match given.map(|t| token::verify(key, t, now)) {
            Some(Ok(user)) => Ok(user),
            why => {
                self.failures_total += 1;
                self.attempts.failed(addr, now);
                Err((Check::Wrong, Some((addr, why.and_then(|r| r.err())))))
            }
        }
    }

    /// Checks a join's password from `addr` at wall-clock `now` (ms).
    pub fn check(&mut self, given: Option<&str>, addr: Option<IpAddr>, now: u64) -> Check {
        let Some(password) = &self.password else {
            return Check::Ok;
        };
        let key = addr.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if self.attempts.blocked(key, now) {
            self.failures_total += 1;
            return Check::Blocked;
        }
        if given.is_some_and(|g| password.matches(g.as_bytes())) {
            return Check::Ok;
        }
        self.failures_total += 1;
        self.attempts.failed(key, now);
        Check::Wrong
    }

    pub fn tick(&mut self, now: u64) {
        self.attempts.tick(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole_and_never_print() {
        let s = Secret::new(b"correct horse");
        assert!(s.matches(b"correct horse"));
        for wrong in [
            &b"correct hors"[..],
            b"correct horsee",
            b"",
            b"Correct horse",
        ] {
            assert!(!s.matches(wrong));
        }
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }

    #[test]
    fn ten_failures_from_one_address_block_it_for_a_minute_and_no_other() {
        let mut a = Access::new(Some(Secret::new(b"pw")), None);
        let (x, y): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for i in 0..10 {
            assert_eq!(a.check(Some("no"), Some(x), 1000 + i), Check::Wrong);
        }
        assert_eq!(
            a.check(Some("pw"), Some(x), 2000),
            Check::Blocked,
            "even the right one"
        );
        assert_eq!(
            a.check(Some("pw"), Some(y), 2000),
            Check::Ok,
            "another address"
        );
        assert_eq!(
            a.check(None, Some(y), 2000),
            Check::Wrong,
            "no password is a wrong one"
        );
        assert_eq!(
            a.check(Some("pw"), Some(x), 1009 + BLOCK_MS - 1),
            Check::Blocked
        );
        assert_eq!(
            a.check(Some("pw"), Some(x), 1009 + BLOCK_MS),
            Check::Ok,
            "a minute later"
        );
        assert_eq!(a.failures_total, 13, "10 wrong, 2 blocked, 1 missing");
        a.tick(10 * BLOCK_MS);
        assert!(a.attempts.is_empty());
        assert_eq!(
            Access::new(None, None).check(None, None, 0),
            Check::Ok,
            "open"
        );
    }
}
