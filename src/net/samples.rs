//! What the admin page charts: once a second the server records its open
//! chat connections (WebSockets), messages and deliveries per second and its resident memory
//! into a ring of the last 10 minutes (600 samples, about 14 KiB), served as
//! `GET /api/admin/samples`. Kept only with `--admin-token-file`. Drawing is
//! the page's business (`assets/admin.js`); counting is `metrics.rs`'s.

use std::collections::VecDeque;

/// Samples kept: 10 minutes at one a second.
pub const KEEP: usize = 600;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sample {
    /// Unix seconds.
    t: u64,
    connections: u32,
    messages: u32,
    deliveries: u32,
    rss_kib: u32,
}

/// The counters a sample is made from, as the server has them now.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reading {
    pub connections: usize,
    /// Totals since start (the ring keeps per-second differences).
    pub messages_total: u64,
    pub deliveries_total: u64,
    pub rss_kib: u64,
}

#[derive(Debug, Default)]
pub struct Samples {
    ring: VecDeque<Sample>,
    /// The totals at the last sample.
    last: Option<(u64, Reading)>,
}

impl Samples {
    /// Records the second `secs` (Unix). Seconds the loop slept through get
    /// the average rate of the gap, so the time axis has no holes.
    pub fn record(&mut self, secs: u64, now: Reading) {
        let Some((last_secs, last)) = self.last else {
            self.last = Some((secs, now));
            return;
        };
        if secs <= last_secs {
            return;
        }
        let gap = secs - last_secs;
        let per_sec =
            |now: u64, then: u64| (now.saturating_sub(then) / gap).min(u64::from(u32::MAX)) as u32;
        let sample = Sample {
            t: 0,
            connections: now.connections.min(u32::MAX as usize) as u32,
            messages: per_sec(now.messages_total, last.messages_total),
            deliveries: per_sec(now.deliveries_total, last.deliveries_total),
            rss_kib: now.rss_kib.min(u64::from(u32::MAX)) as u32,
        };
        for t in secs.saturating_sub(gap.min(KEEP as u64) - 1)..=secs {
            if self.ring.len() == KEEP {
                self.ring.pop_front();
            }
            self.ring.push_back(Sample { t, ..sample });
        }
        self.last = Some((secs, now));
    }

    /// `{"interval_ms":1000,"t":[...],"connections":[...],"messages":[...],
    /// "deliveries":[...],"rss_kib":[...]}`, oldest first (columns, so the
    /// page can draw each series directly).
    pub fn json(&self) -> String {
        let column = |f: fn(&Sample) -> u64| -> String {
            let items: Vec<String> = self.ring.iter().map(|s| f(s).to_string()).collect();
            format!("[{}]", items.join(","))
        };
        format!(
            r#"{{"interval_ms":1000,"t":{},"connections":{},"messages":{},"deliveries":{},"rss_kib":{}}}"#,
            column(|s| s.t),
            column(|s| u64::from(s.connections)),
            column(|s| u64::from(s.messages)),
            column(|s| u64::from(s.deliveries)),
            column(|s| u64::from(s.rss_kib)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(connections: usize, messages_total: u64) -> Reading {
        Reading {
            connections,
            messages_total,
            deliveries_total: messages_total * 3,
            rss_kib: 900,
        }
    }

    #[test]
    fn rates_per_second_gaps_filled_and_the_ring_bounded() {
        let mut s = Samples::default();
        s.record(100, reading(1, 10));
        s.record(101, reading(2, 15));
        s.record(104, reading(2, 27)); // slept 3 s: 4 per second each
        let v: serde_json::Value = serde_json::from_str(&s.json()).unwrap();
        assert_eq!(v["t"], serde_json::json!([101, 102, 103, 104]));
        assert_eq!(v["messages"], serde_json::json!([5, 4, 4, 4]));
        assert_eq!(v["deliveries"], serde_json::json!([15, 12, 12, 12]));
        s.record(104, reading(9, 99));
        assert_eq!(s.ring.len(), 4, "a second is recorded once");
        s.record(2000, reading(0, 99));
        assert_eq!(s.ring.len(), KEEP);
        assert_eq!(s.ring.back().map(|x| x.t), Some(2000));
        assert_eq!(s.ring.front().map(|x| x.t), Some(2000 - KEEP as u64 + 1));
    }
}
