//! Per-address limits, so one client address cannot take the whole server:
//! connections open at once (`--max-connections-per-address`) and WebSocket
//! upgrades per second (`--upgrades-per-address`). Counts only, keyed by IP;
//! which address a connection has (the peer's, or the rightmost
//! `X-Forwarded-For` entry behind a trusted proxy) is decided in `conn.rs`,
//! and the `503` there too. Both limits are off at 0.

use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Debug, Default)]
pub struct PerAddress {
    max_open: u32,
    max_upgrades: u32,
    open: HashMap<IpAddr, u32>,
    /// Upgrades in the current wall-clock second, per address.
    upgrades: HashMap<IpAddr, u32>,
    second: u64,
}

impl PerAddress {
    pub fn new(max_open: u32, max_upgrades: u32) -> PerAddress {
        PerAddress {
            max_open,
            max_upgrades,
            ..PerAddress::default()
        }
    }

    pub fn limits_open(&self) -> bool {
        self.max_open > 0
    }

    /// Counts one more connection from `ip`; false (and not counted) at the limit.
    pub fn open(&mut self, ip: IpAddr) -> bool {
        let n = self.open.entry(ip).or_insert(0);
        if *n >= self.max_open {
            if *n == 0 {
                self.open.remove(&ip);
            }
            return false;
        }
        *n += 1;
        true
    }

    /// A connection counted by [`open`](Self::open) is gone.
    pub fn close(&mut self, ip: IpAddr) {
        if let Some(n) = self.open.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&ip);
            }
        }
    }

    /// One more WebSocket upgrade from `ip` in wall-clock second `now_secs`;
    /// false past the limit.
    pub fn upgrade(&mut self, ip: IpAddr, now_secs: u64) -> bool {
        if self.max_upgrades == 0 {
            return true;
        }
        if now_secs != self.second {
            self.second = now_secs;
            self.upgrades.clear();
        }
        let n = self.upgrades.entry(ip).or_insert(0);
        if *n >= self.max_upgrades {
            return false;
        }
        *n += 1;
        true
    }

    /// Addresses with connections counted (for tests and `/metrics`).
    pub fn addresses(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_is_bounded_and_others_are_not() {
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "127.0.0.1".parse().unwrap());
        let mut p = PerAddress::new(2, 3);
        assert!(p.open(a) && p.open(a));
        assert!(!p.open(a), "a third from the same address");
        assert!(p.open(b), "another address still gets in");
        p.close(a);
        assert!(p.open(a), "a slot freed is a slot again");
        p.close(a);
        p.close(a);
        p.close(b);
        assert_eq!(
            p.addresses(),
            0,
            "nothing kept for addresses with nothing open"
        );
        for _ in 0..3 {
            assert!(p.upgrade(a, 10));
        }
        assert!(!p.upgrade(a, 10), "a fourth upgrade in the same second");
        assert!(p.upgrade(b, 10));
        assert!(p.upgrade(a, 11), "a new second");
        assert!(PerAddress::new(0, 0).upgrade(a, 1), "0 = off");
    }
}
