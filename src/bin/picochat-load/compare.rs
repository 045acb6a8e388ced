//! `picochat-load compare A.json B.json ...`: reads `--json` reports back and
//! sets them side by side, each number with its ratio to the first file's,
//! as a text table and, with `--report`, as an HTML page with the runs'
//! charts overlaid. Says which file is wrong and why when one is.

use crate::html::{self, int};
use crate::report::{AnyReport, Report, StepReport};
use crate::svg::{esc, Chart, Line};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One row: a label and, per report, the number (None: not in that report) or a text.
struct Row {
    label: String,
    values: Vec<Option<f64>>,
    /// How to show a number.
    fmt: fn(f64) -> String,
    /// Rows that describe the run rather than measure it have no ratio.
    ratio: bool,
}

/// Exit status: 0, or 2 when a file is unreadable, malformed or mismatched.
pub fn main(files: &[PathBuf], report: Option<PathBuf>) -> i32 {
    let mut out = match &report {
        Some(path) => match crate::open_report(path) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("picochat-load compare: --report {}: {e}", path.display());
                return 2;
            }
        },
        None => None,
    };
    let reports = match load(files) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("picochat-load compare: {e}");
            return 2;
        }
    };
    let names: Vec<String> = files.iter().map(|f| name(f)).collect();
    let (rows, texts) = table(&reports);
    print!("{}", text(&names, &rows, &texts));
    if let Some(note) = differ_note(&rows) {
        println!("{note}");
    }
    if let (Some(f), Some(path)) = (out.as_mut(), &report) {
        let page = page(&names, &rows, &texts, &reports);
        if let Err(e) = crate::write_report(f, &page) {
            eprintln!("picochat-load compare: --report {}: {e}", path.display());
            return 1;
        }
        println!("report: {}", path.display());
    }
    0
}

fn name(p: &Path) -> String {
    p.file_name()
        .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
}

/// Reads every file; all must be run reports or all step reports.
fn load(files: &[PathBuf]) -> Result<Vec<AnyReport>, String> {
    let mut reports: Vec<AnyReport> = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(f).map_err(|e| format!("{}: cannot read: {e}", f.display()))?;
        let r = AnyReport::parse(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        if let Some(first) = reports.first() {
            let kind = |r: &AnyReport| matches!(r, AnyReport::Step(_));
            if kind(first) != kind(&r) {
                return Err(format!(
                    "{}: its mode is {:?} but {}'s is {:?}; step reports compare only with step reports",
                    f.display(),
                    r.mode(),
                    files[0].display(),
                    first.mode()
                ));
            }
        }
        reports.push(r);
    }
    Ok(reports)
}

fn n0(v: f64) -> String {
    int(v.round().max(0.0) as u64)
}
fn n2(v: f64) -> String {
    format!("{v:.2}")
}
fn mib(v: f64) -> String {
    format!("{:.1}", v / 1048576.0)
}

/// The rows, and the text rows (mode, URLs) shown above them.
fn table(reports: &[AnyReport]) -> (Vec<Row>, Vec<(&'static str, Vec<String>)>) {
    let runs: Vec<&Report> = reports
        .iter()
        .filter_map(|r| match r {
            AnyReport::Run(r) => Some(&**r),
            _ => None,
        })
        .collect();
    let steps: Vec<&StepReport> = reports
        .iter()
        .filter_map(|r| match r {
            AnyReport::Step(r) => Some(&**r),
            _ => None,
        })
        .collect();
    let mut texts = vec![(
        "mode",
        reports.iter().map(|r| r.mode().to_string()).collect(),
    )];
    let mut rows = Vec::new();
    let mut add = |label: &str, fmt: fn(f64) -> String, ratio, values: Vec<Option<f64>>| {
        rows.push(Row {
            label: label.to_string(),
            values,
            fmt,
            ratio,
        })
    };
    if !runs.is_empty() {
        texts.push((
            "started",
            runs.iter().map(|r| r.params.started.clone()).collect(),
        ));
        let f = |g: fn(&Report) -> Option<f64>| runs.iter().map(|r| g(r)).collect::<Vec<_>>();
        add("clients", n0, false, f(|r| Some(r.clients as f64)));
        add("senders", n0, false, f(|r| Some(r.senders as f64)));
        add(
            "rate (msg/s, 0 = closed loop)",
            n0,
            false,
            f(|r| Some(r.rate)),
        );
        add("payload (B)", n0, false, f(|r| Some(r.payload as f64)));
        add("rooms", n0, false, f(|r| r.params.rooms.map(|n| n as f64)));
        add("nodes", n0, false, f(|r| Some(r.params.urls.len() as f64)));
        add("duration (s)", n2, false, f(|r| Some(r.params.duration_s)));
        add("connected", n0, true, f(|r| Some(r.connected as f64)));
        add("sent", n0, true, f(|r| Some(r.sent as f64)));
        add("received", n0, true, f(|r| Some(r.received as f64)));
        add("lost", n0, true, f(|r| Some(r.lost as f64)));
        add("deliveries/s", n0, true, f(|r| Some(r.deliveries_per_s)));
        add("latency p50 (ms)", n2, true, f(|r| Some(r.latency_ms.p50)));
        add("latency p95 (ms)", n2, true, f(|r| Some(r.latency_ms.p95)));
        add("latency p99 (ms)", n2, true, f(|r| Some(r.latency_ms.p99)));
        add("latency max (ms)", n2, true, f(|r| Some(r.latency_ms.max)));
        add("server CPU (s)", n2, true, f(|r| r.server_cpu_s));
        add(
            "deliveries per server CPU-s",
            n0,
            true,
            f(|r| r.deliveries_per_server_cpu_s),
        );
        add(
            "server peak RSS (MiB)",
            mib,
            true,
            f(|r| r.server_peak_rss_bytes.map(|b| b as f64)),
        );
        add(
            "generator CPU (s)",
            n2,
            true,
            f(|r| Some(r.generator_cpu_s)),
        );
    }
    if !steps.is_empty() {
        texts.push((
            "started",
            steps.iter().map(|r| r.params.started.clone()).collect(),
        ));
        let f = |g: fn(&StepReport) -> Option<f64>| steps.iter().map(|r| g(r)).collect::<Vec<_>>();
        add(
            "clients per step",
            n0,
            false,
            f(|r| r.params.step.map(|s| s as f64)),
        );
        add("rate (msg/s)", n0, false, f(|r| Some(r.params.rate)));
        add("threshold p95 (ms)", n2, false, f(|r| Some(r.threshold_ms)));
        add(
            "clients passed",
            n0,
            true,
            f(|r| Some(r.max_clients_passing as f64)),
        );
        // p95 at every client count any run reached.
        let mut levels: Vec<usize> = steps
            .iter()
            .flat_map(|r| r.steps.iter().map(|s| s.clients))
            .collect();
        levels.sort_unstable();
        levels.dedup();
        for n in levels.into_iter().take(40) {
            add(
                &format!("p95 at {} clients (ms)", int(n as u64)),
                n2,
                true,
                steps
                    .iter()
                    .map(|r| r.steps.iter().find(|s| s.clients == n).map(|s| s.p95_ms))
                    .collect(),
            );
        }
    }
    (rows, texts)
}

fn ratio(v: Option<f64>, base: Option<f64>) -> Option<String> {
    match (v, base) {
        (Some(v), Some(b)) if b != 0.0 => Some(format!("{:.2}x", v / b)),
        (Some(0.0), Some(_)) => Some("=".into()),
        _ => None,
    }
}

/// Says which settings differ between the runs (so a ratio is read for what it is).
fn differ_note(rows: &[Row]) -> Option<String> {
    let differ: Vec<&str> = rows
        .iter()
        .filter(|r| !r.ratio && r.values.iter().any(|v| *v != r.values[0]))
        .map(|r| r.label.as_str())
        .collect();
    (!differ.is_empty()).then(|| {
        format!(
            "note: the runs differ in their settings: {}",
            differ.join("; ")
        )
    })
}

fn text(names: &[String], rows: &[Row], texts: &[(&'static str, Vec<String>)]) -> String {
    let label_w = rows
        .iter()
        .map(|r| r.label.len())
        .chain(texts.iter().map(|t| t.0.len()))
        .max()
        .unwrap_or(10);
    let col_w = names.iter().map(|n| n.len()).max().unwrap_or(8).max(14) + 8;
    let mut t = String::new();
    let _ = write!(t, "{:label_w$}", "");
    for n in names {
        let _ = write!(t, "  {n:>col_w$}");
    }
    t.push('\n');
    for (label, vals) in texts {
        let _ = write!(t, "{label:label_w$}");
        for v in vals {
            let _ = write!(t, "  {v:>col_w$}");
        }
        t.push('\n');
    }
    for r in rows {
        let _ = write!(t, "{:label_w$}", r.label);
        for (i, v) in r.values.iter().enumerate() {
            let shown = v.map_or("—".to_string(), r.fmt);
            let cell = match (i > 0 && r.ratio).then(|| ratio(*v, r.values[0])).flatten() {
                Some(x) => format!("{shown} ({x})"),
                None => shown,
            };
            let _ = write!(t, "  {cell:>col_w$}");
        }
        t.push('\n');
    }
    t
}

fn page(
    names: &[String],
    rows: &[Row],
    texts: &[(&'static str, Vec<String>)],
    reports: &[AnyReport],
) -> String {
    let title = format!("picochat-load: {} runs compared", reports.len());
    let mut b = String::new();
    let _ = write!(
        b,
        r#"<h1>{}</h1><p class="sub">{}. Ratios are to the first run.</p>"#,
        esc(&title),
        esc(&names.join(" · "))
    );
    if let Some(note) = differ_note(rows) {
        let _ = write!(b, r#"<p class="note" id="differ">{}</p>"#, esc(&note));
    }
    b.push_str(r#"<div class="scroll"><table id="compare"><thead><tr><th></th>"#);
    for (i, n) in names.iter().enumerate() {
        let _ = write!(
            b,
            "<th>{}</th>{}",
            esc(n),
            if i > 0 { "<th></th>" } else { "" }
        );
    }
    b.push_str("</tr></thead><tbody>");
    for (label, vals) in texts {
        let _ = write!(b, "<tr><th scope=\"row\">{}</th>", esc(label));
        for (i, v) in vals.iter().enumerate() {
            let _ = write!(
                b,
                "<td>{}</td>{}",
                esc(v),
                if i > 0 { "<td></td>" } else { "" }
            );
        }
        b.push_str("</tr>");
    }
    for r in rows {
        let _ = write!(b, "<tr><th scope=\"row\">{}</th>", esc(&r.label));
        for (i, v) in r.values.iter().enumerate() {
            let raw = v.map_or("null".into(), |x| x.to_string());
            let _ = write!(
                b,
                r#"<td data-value="{raw}">{}</td>"#,
                v.map_or("—".to_string(), r.fmt)
            );
            if i > 0 {
                let x = if r.ratio {
                    ratio(*v, r.values[0])
                } else {
                    None
                };
                let _ = write!(b, r#"<td class="ratio">{}</td>"#, x.unwrap_or_default());
            }
        }
        b.push_str("</tr>");
    }
    b.push_str("</tbody></table></div><h2>Charts</h2><div class=\"charts\">");
    let runs: Vec<(&String, &Report)> = names
        .iter()
        .zip(reports)
        .filter_map(|(n, r)| match r {
            AnyReport::Run(r) => Some((n, &**r)),
            _ => None,
        })
        .collect();
    if !runs.is_empty() {
        // Each run's time axis starts when it started sending.
        let over = |id: &str,
                    title: &str,
                    unit: &'static str,
                    f: fn(&crate::series::Second) -> Option<f64>| {
            let mut c = Chart::new(id, title, unit, "seconds since sending started");
            for (i, (n, r)) in runs.iter().enumerate() {
                c.lines.push(Line {
                    name: (*n).clone(),
                    colour: i,
                    points: r
                        .series
                        .iter()
                        .filter(|s| s.t_s > r.sending_from_s)
                        // At the middle of each row's span, as on a run's own page.
                        .map(|s| (s.t_s - s.span_s / 2.0 - r.sending_from_s, f(s)))
                        .collect(),
                });
            }
            c.fit_x().render()
        };
        b.push_str(&over(
            "chart-deliveries",
            "Deliveries per second",
            "",
            |s| Some(s.deliveries_per_s),
        ));
        b.push_str(&over("chart-p99", "Latency p99 per second", "ms", |s| {
            s.latency_ms.map(|l| l.p99)
        }));
        b.push_str(&over("chart-p50", "Latency p50 per second", "ms", |s| {
            s.latency_ms.map(|l| l.p50)
        }));
        if runs
            .iter()
            .any(|(_, r)| r.series.iter().any(|s| !s.servers.is_empty()))
        {
            b.push_str(&over(
                "chart-cpu",
                "Server CPU (all processes, 100% = one core)",
                "%",
                |s| {
                    // Only when every process has a value (a short last row has none).
                    s.servers
                        .iter()
                        .map(|x| x.cpu_pct)
                        .sum::<Option<f64>>()
                        .filter(|_| !s.servers.is_empty())
                },
            ));
        }
    }
    let steps: Vec<(&str, &[crate::report::Step])> = names
        .iter()
        .zip(reports)
        .filter_map(|(n, r)| match r {
            AnyReport::Step(r) => Some((n.as_str(), &r.steps[..])),
            _ => None,
        })
        .collect();
    if !steps.is_empty() {
        let threshold = reports.iter().find_map(|r| match r {
            AnyReport::Step(r) => Some(r.threshold_ms),
            _ => None,
        });
        b.push_str(
            &html::step_chart(
                "chart-steps",
                "p95 and p99 against clients (log scale)",
                &steps,
                threshold,
            )
            .render(),
        );
    }
    b.push_str("</div>");
    let json = serde_json::json!({ "compared": names }).to_string();
    html::page(&title, &b, &json)
}
