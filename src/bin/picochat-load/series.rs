//! The run second by second: a sampler that closes one row of the series each
//! second (deliveries, latency quantiles, open connections and, with
//! `--server-pid`, each server's CPU % and RSS), and the server processes it
//! watches. The JSON and the HTML report both print these rows, so they
//! cannot disagree. No sockets here.

use crate::histogram::{Histogram, Latency};
use crate::procfs;
use std::time::{Duration, Instant};

/// One row: what happened in the `span_s` seconds up to `t_s` (seconds since
/// the generator started; the connect phase is included).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct Second {
    pub t_s: f64,
    pub span_s: f64,
    /// Clients open at its end.
    pub open: u64,
    pub sent: u64,
    pub received: u64,
    pub deliveries_per_s: f64,
    /// Of the deliveries received in it; absent when none were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Latency>,
    /// With `--server-pid`: each process, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerSecond>,
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct ServerSecond {
    pub pid: u32,
    /// CPU time used in the row's span over the span (100 = one core); absent if
    /// unreadable or the span is under 0.25 s (a run's last, partial row).
    pub cpu_pct: Option<f64>,
    pub rss_bytes: Option<u64>,
}

/// A server process named by `--server-pid`.
pub struct ServerWatch {
    pub pid: u32,
    /// CPU seconds when the measurement started, and at the last row.
    cpu0: f64,
    cpu_last: Option<f64>,
    peak_rss: u64,
}

impl ServerWatch {
    pub fn new(pid: u32) -> Self {
        let cpu = procfs::cpu_seconds(pid);
        ServerWatch {
            pid,
            cpu0: cpu.unwrap_or(0.0),
            cpu_last: cpu,
            peak_rss: 0,
        }
    }

    /// Counts CPU from now on (after connecting, before sending).
    pub fn start_measuring(&mut self) {
        self.cpu0 = procfs::cpu_seconds(self.pid).unwrap_or(0.0);
    }

    /// CPU seconds since `start_measuring`.
    pub fn cpu(&self) -> f64 {
        procfs::cpu_seconds(self.pid).unwrap_or(0.0) - self.cpu0
    }

    /// The largest RSS seen, or the process's own high-water mark if larger.
    pub fn peak(&self) -> u64 {
        self.peak_rss
            .max(procfs::rss_bytes(self.pid).map_or(0, |r| r.1))
    }

    fn second(&mut self, span: f64) -> ServerSecond {
        let rss = procfs::rss_bytes(self.pid).map(|r| r.0);
        if let Some(r) = rss {
            self.peak_rss = self.peak_rss.max(r);
        }
        let cpu = procfs::cpu_seconds(self.pid);
        let cpu_pct = match (cpu, self.cpu_last) {
            // CPU time moves in clock ticks (10 ms): a short tail row would be noise.
            (Some(now), Some(before)) if span >= 0.25 => {
                Some(round2((now - before).max(0.0) / span * 100.0))
            }
            _ => None,
        };
        self.cpu_last = cpu;
        ServerSecond {
            pid: self.pid,
            cpu_pct,
            rss_bytes: rss,
        }
    }
}

/// Closes a row of the series each second.
pub struct Sampler {
    t0: Instant,
    row_start: Instant,
    next: Instant,
    sent0: u64,
    received0: u64,
    /// Latencies of the deliveries received in the current row.
    pub hist: Histogram,
    pub rows: Vec<Second>,
}

pub const INTERVAL: Duration = Duration::from_secs(1);

impl Sampler {
    pub fn new(t0: Instant) -> Sampler {
        Sampler {
            t0,
            row_start: t0,
            next: t0 + INTERVAL,
            sent0: 0,
            received0: 0,
            hist: Histogram::new(),
            rows: Vec::new(),
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// Closes the current row at `now` with the run's running totals.
    pub fn close(
        &mut self,
        now: Instant,
        open: u64,
        sent: u64,
        received: u64,
        servers: &mut [ServerWatch],
    ) {
        let span = now.duration_since(self.row_start).as_secs_f64();
        let got = received - self.received0;
        self.rows.push(Second {
            t_s: round3(now.duration_since(self.t0).as_secs_f64()),
            span_s: round3(span),
            open,
            sent: sent - self.sent0,
            received: got,
            deliveries_per_s: if span > 0.0 {
                (got as f64 / span).round()
            } else {
                0.0
            },
            latency_ms: (self.hist.total > 0).then(|| self.hist.latency()),
            servers: servers.iter_mut().map(|s| s.second(span)).collect(),
        });
        self.hist.clear();
        self.row_start = now;
        self.sent0 = sent;
        self.received0 = received;
        // A late turn starts the next second from now rather than catching up.
        self.next = (self.next + INTERVAL).max(now + INTERVAL / 2);
    }

    /// The last, partial row, if anything happened in it or it is long enough to matter.
    pub fn finish(
        &mut self,
        now: Instant,
        open: u64,
        sent: u64,
        received: u64,
        servers: &mut [ServerWatch],
    ) {
        let span = now.duration_since(self.row_start);
        if sent > self.sent0 || received > self.received0 || span >= INTERVAL / 10 {
            self.close(now, open, sent, received, servers);
        }
    }

    /// Seconds since the generator started.
    pub fn at(&self, t: Instant) -> f64 {
        round3(t.duration_since(self.t0).as_secs_f64())
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_hold_what_happened_in_their_second_and_sum_to_the_totals() {
        let t0 = Instant::now();
        let mut s = Sampler::new(t0);
        assert!(!s.due(t0));
        s.hist.record(2_000);
        s.close(t0 + Duration::from_secs(1), 10, 5, 50, &mut []);
        s.close(t0 + Duration::from_millis(2500), 10, 5, 50, &mut []);
        s.finish(t0 + Duration::from_millis(2510), 9, 5, 53, &mut []);
        let r = &s.rows;
        assert_eq!(r.len(), 3);
        assert_eq!(
            (r[0].sent, r[0].received, r[0].deliveries_per_s),
            (5, 50, 50.0)
        );
        assert_eq!(r[0].latency_ms.map(|l| l.p50), Some(2.0));
        assert_eq!(
            (r[1].received, r[1].span_s, r[1].latency_ms),
            (0, 1.5, None)
        );
        assert_eq!((r[2].received, r[2].open, r[2].t_s), (3, 9, 2.51));
        assert_eq!(r.iter().map(|x| x.received).sum::<u64>(), 53);
        // Nothing happened in a short tail: no row.
        s.finish(t0 + Duration::from_millis(2520), 9, 5, 53, &mut []);
        assert_eq!(s.rows.len(), 3);
    }
}
