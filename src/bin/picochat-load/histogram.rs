//! The latency histogram: fixed size, about 1% precision, no per-sample
//! storage. One covers the whole run, one each second (the series) and one
//! per node. Nothing here knows about sockets or reports.

/// Exact below 1024 µs, then 128 sub-buckets per power of two: 7,936 counts
/// (62 KiB), whatever the number of samples.
pub struct Histogram {
    counts: Vec<u64>,
    pub total: u64,
    pub max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; 1024 + 54 * 128],
            total: 0,
            max: 0,
        }
    }

    fn bucket(v: u64) -> usize {
        if v < 1024 {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros() as usize; // >= 10
        1024 + (msb - 10) * 128 + ((v >> (msb - 7)) & 127) as usize
    }

    fn bucket_low(b: usize) -> u64 {
        if b < 1024 {
            return b as u64;
        }
        let msb = (b - 1024) / 128 + 10;
        let sub = ((b - 1024) % 128) as u64;
        (1u64 << msb) | (sub << (msb - 7))
    }

    pub fn record(&mut self, us: u64) {
        let b = Self::bucket(us).min(self.counts.len() - 1);
        self.counts[b] += 1;
        self.total += 1;
        self.max = self.max.max(us);
    }

    /// Empties it, keeping its memory.
    pub fn clear(&mut self) {
        if self.total > 0 {
            self.counts.fill(0);
        }
        self.total = 0;
        self.max = 0;
    }

    /// The value at quantile `q` (0..=1) in µs; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::bucket_low(b);
            }
        }
        self.max
    }
}

/// Latency quantiles in milliseconds, as reports show them.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Histogram {
    pub fn latency(&self) -> Latency {
        let q = |p| ms(self.quantile(p));
        Latency {
            p50: q(0.5),
            p90: q(0.9),
            p95: q(0.95),
            p99: q(0.99),
            max: ms(self.max),
        }
    }
}

/// µs to ms.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 50_000.0), (0.99, 99_000.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.01, "{q}: {got}");
        }
        h.clear();
        assert_eq!((h.quantile(0.5), h.total, h.max), (0, 0, 0));
        h.record(7);
        assert_eq!(h.quantile(0.99), 7);
    }
}
