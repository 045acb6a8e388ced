//! The over-time charts of a run page: deliveries per second, latency
//! quantiles, open connections and each watched server's CPU and memory,
//! with the sending window shaded.

use super::*;

pub(super) fn points(
    series: &[Second],
    f: impl Fn(&Second) -> Option<f64>,
) -> Vec<(f64, Option<f64>)> {
    // Each row at the middle of the span it covers.
    series
        .iter()
        .map(|r| (r.t_s - r.span_s / 2.0, f(r)))
        .collect()
}

/// The charts over time: deliveries, latency, open connections, server CPU and RSS.
pub(super) fn time_charts(
    series: &[Second],
    bands: Vec<(f64, f64, String)>,
    rules: Vec<(f64, String)>,
) -> String {
    let end = series.last().map_or(1.0, |r| r.t_s);
    let frame = |mut c: Chart| {
        c.x_range = (0.0, end.max(1.0));
        c.bands = bands.clone();
        c.rules = rules.clone();
        c.render()
    };
    let mut out = String::from(r#"<div class="charts">"#);
    // An idle run (or one where nothing arrived) has no deliveries to chart.
    if series.iter().any(|r| r.received > 0 || r.sent > 0) {
        let mut c = Chart::new("chart-deliveries", "Deliveries per second", "", "seconds");
        c.lines.push(Line {
            name: "deliveries/s".into(),
            colour: 0,
            points: points(series, |r| Some(r.deliveries_per_s)),
        });
        out.push_str(&frame(c));
        let mut c = Chart::new(
            "chart-latency",
            "Latency per second (end to end)",
            "ms",
            "seconds",
        );
        for (i, (name, f)) in [
            (
                "p50",
                (|l: &crate::histogram::Latency| l.p50) as fn(&_) -> f64,
            ),
            ("p95", |l| l.p95),
            ("p99", |l| l.p99),
        ]
        .into_iter()
        .enumerate()
        {
            c.lines.push(Line {
                name: name.into(),
                colour: [3, 1, 2][i],
                points: points(series, |r| r.latency_ms.as_ref().map(f)),
            });
        }
        c.note = Some(
            "Quantiles of the deliveries received in each second; gaps are seconds with none."
                .into(),
        );
        out.push_str(&frame(c));
    }
    let mut c = Chart::new("chart-open", "Open connections", "", "seconds");
    c.lines.push(Line {
        name: "open".into(),
        colour: 4,
        points: points(series, |r| Some(r.open as f64)),
    });
    out.push_str(&frame(c));
    let pids: Vec<u32> = series
        .iter()
        .find(|r| !r.servers.is_empty())
        .map(|r| r.servers.iter().map(|s| s.pid).collect())
        .unwrap_or_default();
    if !pids.is_empty() {
        let mut cpu = Chart::new("chart-cpu", "Server CPU (100% = one core)", "%", "seconds");
        let mut rss = Chart::new("chart-rss", "Server memory (RSS)", " MiB", "seconds");
        for (i, pid) in pids.iter().enumerate() {
            let of = |r: &Second| r.servers.iter().find(|s| s.pid == *pid).cloned();
            cpu.lines.push(Line {
                name: format!("pid {pid}"),
                colour: i,
                points: points(series, |r| of(r).and_then(|s| s.cpu_pct)),
            });
            rss.lines.push(Line {
                name: format!("pid {pid}"),
                colour: i,
                points: points(series, |r| {
                    of(r)
                        .and_then(|s| s.rss_bytes)
                        .map(|b| b as f64 / 1048576.0)
                }),
            });
        }
        out.push_str(&frame(cpu));
        out.push_str(&frame(rss));
    }
    out.push_str("</div>");
    out
}
