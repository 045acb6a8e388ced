//! The report as one self-contained HTML page: its own CSS (light and dark,
//! phone to desktop), no script, nothing loaded from anywhere (a CSP says
//! so), the charts inline SVG from `svg.rs`, and the `--json` report itself
//! embedded as an inert data block. Pages for a run, a `--step` run and a
//! `compare`; the numbers all come from `report.rs`'s structs.

use crate::report::{Report, Step, StepReport};
use crate::series::Second;
use crate::svg::{esc, Chart, Line, Mark};
use std::fmt::Write as _;

mod charts;
mod step;

use charts::time_charts;
pub use step::{step_chart, step_page};

const CSS: &str = r#"
:root{color-scheme:light dark;--bg:#fbfbfd;--card:#fff;--fg:#1b2130;--muted:#5d6678;--grid:#e2e5ec;--band:rgba(36,99,235,.07);--c0:#2463eb;--c1:#d97706;--c2:#dc2626;--c3:#059669;--c4:#7c3aed;--c5:#0891b2;--pass:#059669;--fail:#dc2626}
@media (prefers-color-scheme:dark){:root{--bg:#10131a;--card:#161a23;--fg:#e4e8f0;--muted:#98a1b3;--grid:#2a3140;--band:rgba(110,160,255,.10);--c0:#6ea0ff;--c1:#f5a524;--c2:#ff6b6b;--c3:#34d399;--c4:#b39dff;--c5:#22d3ee;--pass:#34d399;--fail:#ff6b6b}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1120px;margin:0 auto;padding:20px 16px 40px}
h1{font-size:1.35rem;margin:0 0 4px}
h2{font-size:1.05rem;margin:28px 0 10px}
.sub{color:var(--muted);margin:0 0 14px;overflow-wrap:anywhere}
.verdict{display:flex;flex-wrap:wrap;gap:8px;margin:0;padding:0;list-style:none}
.verdict li{background:var(--card);border:1px solid var(--grid);border-radius:8px;padding:6px 12px}
.verdict b{font-size:1.15rem;display:block}
.verdict .bad b,.bad{color:var(--fail)} .good b{color:var(--pass)}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,420px),1fr));gap:14px}
figure{margin:0;background:var(--card);border:1px solid var(--grid);border-radius:10px;padding:10px 12px}
figcaption{font-weight:600;margin-bottom:4px}
svg{display:block;width:100%;height:auto;overflow:visible}
svg text{fill:var(--muted);font-size:12px}
.grid line{stroke:var(--grid);stroke-width:1}
.axis{stroke:var(--muted);stroke-width:1}
.series polyline{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}
.c0{stroke:var(--c0);fill:var(--c0)}.c1{stroke:var(--c1);fill:var(--c1)}.c2{stroke:var(--c2);fill:var(--c2)}
.c3{stroke:var(--c3);fill:var(--c3)}.c4{stroke:var(--c4);fill:var(--c4)}.c5{stroke:var(--c5);fill:var(--c5)}
.band{fill:var(--band);stroke:none}
.rule{stroke:var(--muted);stroke-width:1;stroke-dasharray:2 3}
.threshold{stroke:var(--fail);stroke-width:1.5;stroke-dasharray:6 4}
.mark.pass{fill:var(--pass);stroke:var(--card);stroke-width:1.5}
.mark.fail{stroke:var(--fail);stroke-width:3;fill:none}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;list-style:none;margin:6px 0 0;padding:0;color:var(--muted);font-size:.85rem}
.swatch{display:inline-block;width:14px;height:4px;border-radius:2px;margin-right:6px;vertical-align:middle;background:currentColor}
.swatch.c0{background:var(--c0)}.swatch.c1{background:var(--c1)}.swatch.c2{background:var(--c2)}
.swatch.c3{background:var(--c3)}.swatch.c4{background:var(--c4)}.swatch.c5{background:var(--c5)}
.swatch.threshold{background:none;border-top:2px dashed var(--fail);height:0}
.swatch.pass{background:var(--pass);width:9px;height:9px;border-radius:50%}
.swatch.fail{background:var(--fail);width:9px;height:9px;border-radius:0}
.swatch.band{background:var(--band);height:10px;outline:1px solid var(--grid)}
.note{color:var(--muted);font-size:.85rem;margin:4px 0 0}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
.tables{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,360px),1fr));gap:0 24px;align-items:start}
.tables table{width:100%}
table{border-collapse:collapse;background:var(--card);border:1px solid var(--grid);border-radius:8px;font-variant-numeric:tabular-nums}
th,td{padding:5px 12px;border-bottom:1px solid var(--grid);text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{color:var(--muted);font-weight:600}
td.ratio{color:var(--muted);font-size:.85rem}
details summary{cursor:pointer;color:var(--muted);margin-bottom:8px}
footer{color:var(--muted);font-size:.85rem;margin-top:30px}
@media (max-width:520px){main{padding:14px 10px 30px}th,td{padding:4px 8px}body{font-size:14px}}
"#;

/// The page around `body`, with the report's JSON embedded.
pub fn page(title: &str, body: &str, json: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
<meta name=\"generator\" content=\"picochat-load {}\">\
<title>{}</title><style>{CSS}</style></head><body><main>{body}\
<footer>Made by picochat-load {}. The report's JSON is embedded in this file \
(<code>script#report-json</code>); <code>picochat-load compare</code> reads the JSON files.</footer>\
</main><script type=\"application/json\" id=\"report-json\">{}</script></body></html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(title),
        env!("CARGO_PKG_VERSION"),
        // Inert data: `<` escaped so no text in it can close the element.
        json.replace('<', "\\u003c")
    )
}

/// 12,345
pub fn int(n: u64) -> String {
    let s = n.to_string();
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            o.push(',');
        }
        o.push(c);
    }
    o
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

/// A row of a summary table: what a person reads, and the JSON value behind it.
fn row(out: &mut String, label: &str, key: &str, shown: &str, raw: &serde_json::Value) {
    let _ = write!(
        out,
        r#"<tr><th scope="row">{}</th><td data-key="{}" data-value="{}">{}</td></tr>"#,
        esc(label),
        esc(key),
        esc(&raw.to_string()),
        esc(shown)
    );
}

/// The summary of a run, as (label, JSON path, shown) with the value looked up in the JSON.
fn summary_table(json: &serde_json::Value, rows: &[(&str, &str, String)]) -> String {
    let mut t = String::from(r#"<div class="scroll"><table id="summary"><tbody>"#);
    for (label, key, shown) in rows {
        let mut v = json;
        for part in key.split('.') {
            v = &v[part];
        }
        if !v.is_null() {
            row(&mut t, label, key, shown, v);
        }
    }
    t.push_str("</tbody></table></div>");
    t
}

fn verdict(items: &[(&str, String, Option<bool>)]) -> String {
    let mut s = String::from(r#"<ul class="verdict">"#);
    for (label, value, good) in items {
        let class = match good {
            Some(true) => " class=\"good\"",
            Some(false) => " class=\"bad\"",
            None => "",
        };
        let _ = write!(s, "<li{class}><b>{}</b>{}</li>", esc(value), esc(label));
    }
    s.push_str("</ul>");
    s
}

fn params_table(p: &crate::report::Params) -> String {
    let v = serde_json::to_value(p).unwrap_or_default();
    let mut t = String::from(r#"<div class="scroll"><table id="parameters"><tbody>"#);
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            let shown = match val {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            row(&mut t, k, &format!("params.{k}"), &shown, val);
        }
    }
    t.push_str("</tbody></table></div>");
    t
}

fn mode_name(mode: &str) -> &'static str {
    match mode {
        "open" => "open loop",
        "closed" => "closed loop",
        "idle" => "idle connections",
        "step" => "step test",
        _ => "run",
    }
}

pub fn run_page(r: &Report) -> String {
    let json = crate::report::to_json(r);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    let title = format!(
        "picochat-load: {}, {} clients",
        mode_name(&r.mode),
        int(r.clients as u64)
    );
    let mut b = String::new();
    let _ = write!(
        b,
        r#"<h1>{}</h1><p class="sub">{} · started {} · {:.1} s sending</p>"#,
        esc(&title),
        esc(&r.params.urls.join(", ")),
        esc(&r.params.started),
        r.duration_s
    );
    b.push_str(&run_verdict(r));
    b.push_str("<h2>Over time</h2>");
    b.push_str(&time_charts(
        &r.series,
        vec![(
            r.sending_from_s,
            r.sending_until_s,
            if r.mode == "idle" {
                "holding"
            } else {
                "sending"
            }
            .to_string(),
        )],
        Vec::new(),
    ));
    b.push_str(r#"<div class="tables"><section><h2>Summary</h2>"#);
    b.push_str(&summary_table(&v, &summary_rows(r)));
    b.push_str("</section><section><h2>Parameters</h2>");
    b.push_str(&params_table(&r.params));
    b.push_str("</section></div>");
    servers_table(r, &mut b);
    nodes_table(r, &mut b);
    if let Some(rooms) = &r.rooms {
        rooms_section(rooms, &mut b);
    }
    page(&title, &b, &json)
}

/// The headline figures, each marked good or bad where that is known.
fn run_verdict(r: &Report) -> String {
    let mut items = vec![];
    if r.mode != "idle" {
        items.push((
            "deliveries/s".to_string(),
            int(r.deliveries_per_s as u64),
            None,
        ));
        items.push((
            "p99 latency".into(),
            format!("{:.2} ms", r.latency_ms.p99),
            None,
        ));
        items.push(("lost".into(), int(r.lost), Some(r.lost == 0)));
    }
    items.push((
        "connected".into(),
        format!("{} of {}", int(r.connected as u64), int(r.clients as u64)),
        Some(r.failed == 0 && r.dropped == 0),
    ));
    if let Some(d) = r.deliveries_per_server_cpu_s {
        items.push((
            "deliveries per server CPU-second".into(),
            int(d as u64),
            None,
        ));
    }
    if let Some(rss) = r.server_peak_rss_bytes {
        items.push(("server peak RSS".into(), mib(rss), None));
    }
    if r.generator_saturated {
        items.push((
            "the generator was saturated".into(),
            "!".into(),
            Some(false),
        ));
    }
    let items: Vec<(&str, String, Option<bool>)> = items
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.clone(), *c))
        .collect();
    verdict(&items)
}

/// The summary table's rows: label, JSON key, shown value.
fn summary_rows(r: &Report) -> Vec<(&'static str, &'static str, String)> {
    let l = |p: f64| format!("{p:.2} ms");
    let mut rows: Vec<(&str, &str, String)> = vec![
        ("mode", "mode", mode_name(&r.mode).to_string()),
        ("clients connected", "connected", int(r.connected as u64)),
        ("failed to connect", "failed", int(r.failed as u64)),
        ("dropped by the server", "dropped", int(r.dropped as u64)),
        ("connect time", "connect_s", format!("{:.2} s", r.connect_s)),
        ("connect p50", "connect_p50_ms", l(r.connect_p50_ms)),
        ("connect max", "connect_max_ms", l(r.connect_max_ms)),
    ];
    if r.mode != "idle" {
        rows.extend([
            ("messages sent", "sent", int(r.sent)),
            ("deliveries expected", "expected", int(r.expected)),
            ("deliveries received", "received", int(r.received)),
            ("deliveries lost", "lost", int(r.lost)),
            (
                "deliveries per second",
                "deliveries_per_s",
                int(r.deliveries_per_s as u64),
            ),
            ("latency p50", "latency_ms.p50", l(r.latency_ms.p50)),
            ("latency p90", "latency_ms.p90", l(r.latency_ms.p90)),
            ("latency p95", "latency_ms.p95", l(r.latency_ms.p95)),
            ("latency p99", "latency_ms.p99", l(r.latency_ms.p99)),
            ("latency max", "latency_ms.max", l(r.latency_ms.max)),
        ]);
    }
    rows.push((
        "sending time",
        "duration_s",
        format!("{:.2} s", r.duration_s),
    ));
    rows.push((
        "generator CPU",
        "generator_cpu_s",
        format!("{:.2} s", r.generator_cpu_s),
    ));
    if r.params.compression {
        rows.push((
            "clients compressing",
            "compressing",
            int(r.compressing as u64),
        ));
        rows.push((
            "compressed frames read",
            "compressed_frames",
            int(r.compressed_frames),
        ));
    }
    if let Some(cpu) = r.server_cpu_s {
        rows.push(("server CPU", "server_cpu_s", format!("{cpu:.2} s")));
    }
    if let Some(d) = r.deliveries_per_server_cpu_s {
        rows.push((
            "deliveries per server CPU-second",
            "deliveries_per_server_cpu_s",
            int(d as u64),
        ));
    }
    if let Some(rss) = r.server_peak_rss_bytes {
        rows.push(("server peak RSS", "server_peak_rss_bytes", mib(rss)));
    }
    if let Some(e) = &r.first_error {
        rows.push(("first error", "first_error", e.clone()));
    }
    rows
}

/// The watched server processes (`--server-pid`).
fn servers_table(r: &Report, b: &mut String) {
    if let Some(servers) = &r.servers {
        b.push_str(r#"<h2>Server processes</h2><div class="scroll"><table id="servers"><thead><tr><th>pid</th><th>CPU</th><th>peak RSS</th></tr></thead><tbody>"#);
        for s in servers {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{:.2} s</td><td>{}</td></tr>",
                s.pid,
                s.cpu_s,
                mib(s.peak_rss_bytes)
            );
        }
        b.push_str("</tbody></table></div>");
    }
}

/// Deliveries and latency per `--url`.
fn nodes_table(r: &Report, b: &mut String) {
    if let Some(nodes) = &r.nodes {
        b.push_str(r#"<h2>Per node</h2><div class="scroll"><table id="nodes"><thead><tr><th>node</th><th>clients</th><th>dropped</th><th>expected</th><th>received</th><th>lost</th><th>p50</th><th>p99</th></tr></thead><tbody>"#);
        for n in nodes {
            let _ = write!(
                b,
                r#"<tr data-node="{}"><td>{}</td>{}{}{}{}{}{}{}</tr>"#,
                esc(&n.url),
                esc(&n.url),
                cell("clients", n.clients),
                cell("dropped", n.dropped),
                cell("expected", n.expected),
                cell("received", n.received),
                lost_cell(n.lost),
                ms_cell("latency_ms.p50", n.latency_ms.p50),
                ms_cell("latency_ms.p99", n.latency_ms.p99),
            );
        }
        b.push_str("</tbody></table></div>");
    }
}

/// Deliveries per room: rooms with losses first, a long list folded away.
fn rooms_section(rooms: &crate::report::RoomsReport, b: &mut String) {
    let _ = write!(
        b,
        "<h2>Per room</h2><p class=\"sub\">{} rooms, {} clients joined, {} refused a join, {} with losses (at most {} lost in one).</p>",
        int(rooms.rooms as u64),
        int(rooms.joined as u64),
        int(rooms.refused as u64),
        int(rooms.rooms_with_losses as u64),
        int(rooms.max_lost_in_a_room)
    );
    // Rooms with losses first, then by name; a long list folds away, and
    // past 1,000 rows only rooms with losses are listed (the JSON has all).
    let mut order: Vec<&crate::report::RoomReport> = rooms.per_room.iter().collect();
    order.sort_by_key(|x| std::cmp::Reverse(x.lost));
    order.retain(|x| x.lost > 0);
    let shown_clean = MAX_ROOM_ROWS.saturating_sub(order.len());
    let hidden = (rooms.per_room.len() - order.len()).saturating_sub(shown_clean);
    order.extend(
        rooms
            .per_room
            .iter()
            .filter(|x| x.lost == 0)
            .take(shown_clean),
    );
    let table = {
        let mut t = String::from(
            r#"<div class="scroll"><table id="rooms"><thead><tr><th>room</th><th>members</th><th>dropped</th><th>expected</th><th>received</th><th>lost</th></tr></thead><tbody>"#,
        );
        for x in order {
            let _ = write!(
                t,
                r#"<tr data-room="{}"><td>{}</td>{}{}{}{}{}</tr>"#,
                esc(&x.room),
                esc(&x.room),
                cell("members", x.members),
                cell("dropped", x.dropped),
                cell("expected", x.expected),
                cell("received", x.received),
                lost_cell(x.lost)
            );
        }
        t.push_str("</tbody></table></div>");
        if hidden > 0 {
            let _ = write!(
                t,
                r#"<p class="note">And {} more rooms without losses (every room is in the JSON).</p>"#,
                int(hidden as u64)
            );
        }
        t
    };
    if rooms.per_room.len() > 20 {
        let _ = write!(
            b,
            "<details><summary>All {} rooms</summary>{table}</details>",
            int(rooms.per_room.len() as u64)
        );
    } else {
        b.push_str(&table);
    }
}

/// Rows of the per-room table at most (rooms with losses are always listed).
const MAX_ROOM_ROWS: usize = 1000;

fn cell(key: &str, n: u64) -> String {
    format!(r#"<td data-key="{key}" data-value="{n}">{}</td>"#, int(n))
}

/// A float as the JSON report writes it (`200.0`, not `200`).
fn jnum(v: f64) -> String {
    serde_json::Value::from(v).to_string()
}

fn num_cell(key: &str, v: f64, shown: String) -> String {
    format!(
        r#"<td data-key="{key}" data-value="{}">{shown}</td>"#,
        jnum(v)
    )
}

fn ms_cell(key: &str, v: f64) -> String {
    num_cell(key, v, format!("{v:.2} ms"))
}

fn lost_cell(n: u64) -> String {
    format!(
        r#"<td data-key="lost" data-value="{n}"{}>{}</td>"#,
        if n > 0 { " class=\"bad\"" } else { "" },
        int(n)
    )
}
