//! picochat-load's own correctness: exact delivery counts against a server
//! whose behaviour is known, and losses reported (not hidden) when the server
//! refuses messages or drops a client.

mod common;
use common::*;
use std::process::Command;

use common::run_load as load;

#[test]
fn counts_every_delivery_exactly() {
    let s = TestServer::start(&["--msg-rate", "0", "--log-level", "warn"]);
    let pid = s.pid().to_string();
    let r = load(&[
        "--url",
        &s.url("/ws"),
        "--clients",
        "20",
        "--senders",
        "2",
        "--rate",
        "50",
        "--duration",
        "2s",
        "--server-pid",
        &pid,
    ]);
    let sent = r["sent"].as_u64().unwrap();
    assert!(
        (95..=105).contains(&sent),
        "open loop at 50 msg/s for 2 s: {sent}"
    );
    assert_eq!(r["connected"], 20);
    assert_eq!(
        r["expected"].as_u64().unwrap(),
        sent * 20,
        "every client, sender included, expects every message"
    );
    assert_eq!(r["received"], r["expected"]);
    assert_eq!(r["lost"], 0);
    assert!(r["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert!(r["server_peak_rss_bytes"].as_u64().unwrap() > 0);
    // The server agrees on what it broadcast.
    assert_eq!(s.metric("picochat_messages_received_total"), sent as f64);
    assert_eq!(
        s.metric("picochat_messages_broadcast_total"),
        (sent * 20) as f64
    );

    let r = load(&[
        "--url",
        &s.url("/ws"),
        "--clients",
        "10",
        "--senders",
        "3",
        "--rate",
        "0",
        "--duration",
        "1s",
    ]);
    assert!(
        r["sent"].as_u64().unwrap() > 10,
        "closed loop keeps going: {r}"
    );
    assert_eq!(r["lost"], 0);
    assert_eq!(
        r["received"].as_u64().unwrap(),
        r["sent"].as_u64().unwrap() * 10
    );
}

#[test]
fn reports_losses_when_the_server_refuses_and_drops() {
    // A rate limit of 2 msg/s: the sender's flood is refused, then it is disconnected.
    let s = TestServer::start(&["--msg-rate", "2", "--log-level", "warn"]);
    let r = load(&[
        "--url",
        &s.url("/ws"),
        "--clients",
        "5",
        "--senders",
        "1",
        "--rate",
        "200",
        "--duration",
        "2s",
    ]);
    assert!(r["lost"].as_u64().unwrap() > 0, "losses are counted: {r}");
    assert_eq!(r["dropped"], 1, "the flooding sender was dropped: {r}");
    assert!(r["received"].as_u64().unwrap() < r["expected"].as_u64().unwrap());
}

#[test]
fn idle_mode_holds_connections_and_unreachable_servers_fail_clearly() {
    let s = TestServer::start(&["--log-level", "warn"]);
    let r = load(&[
        "--url",
        &s.url("/ws"),
        "--clients",
        "200",
        "--idle",
        "--duration",
        "500ms",
    ]);
    assert_eq!(r["connected"], 200);
    assert_eq!(r["mode"], "idle");
    let out = Command::new(env!("CARGO_BIN_EXE_picochat-load"))
        .args(["--url", "ws://127.0.0.1:1/ws"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rooms_are_counted_per_room_and_agree_with_the_server() {
    let s = TestServer::start(&["--msg-rate", "0", "--log-level", "warn"]);
    let r = load(&[
        "--url",
        &s.url("/ws"),
        "--clients",
        "60",
        "--rooms",
        "6",
        "--senders",
        "12",
        "--rate",
        "60",
        "--duration",
        "2s",
    ]);
    let sent = r["sent"].as_u64().unwrap();
    assert_eq!(
        r["rooms"]["joined"], 60,
        "every client was welcomed into its room"
    );
    assert_eq!(
        r["expected"].as_u64().unwrap(),
        sent * 10,
        "a message is expected by the 10 members of its room only"
    );
    assert_eq!(r["received"], r["expected"]);
    assert_eq!(r["rooms"]["rooms_with_losses"], 0);
    // Per room: ten members each, the room's share of the totals.
    let per_room = r["rooms"]["per_room"].as_array().unwrap();
    assert_eq!(per_room.len(), 6);
    for (i, room) in per_room.iter().enumerate() {
        assert_eq!(room["room"], format!("load-{i}"));
        assert_eq!(room["members"], 10, "{room}");
        assert_eq!(room["received"], room["expected"], "{room}");
        assert!(
            room["received"].as_u64().unwrap() > 0,
            "every room had senders: {room}"
        );
    }
    let total: u64 = per_room
        .iter()
        .map(|x| x["received"].as_u64().unwrap())
        .sum();
    assert_eq!(total, r["received"].as_u64().unwrap());
    // The server delivered exactly that many frames into queues, no more:
    // nobody outside a room was sent its messages.
    assert_eq!(
        s.metric("picochat_messages_broadcast_total"),
        r["received"].as_f64().unwrap()
    );
    // Everyone left; the six rooms stay for their history, beside the default room.
    assert_eq!(s.metric("picochat_rooms_with_members"), 0.0);
    assert_eq!(s.metric("picochat_rooms"), 7.0);
}

#[test]
fn history_pages_searches_and_pings_are_mixed_in_and_timed() {
    let s = TestServer::start(&["--msg-rate", "0", "--history", "20"]);
    let url = s.url("/ws");
    let r = run_load(&[
        "--url",
        &url,
        "--rooms",
        "1",
        "--clients",
        "6",
        "--senders",
        "1",
        "--rate",
        "50",
        "--duration",
        "2s",
        "--history-rate",
        "20",
        "--searchers",
        "2",
        "--search-q",
        "L0.",
        "--ping-interval",
        "50ms",
    ]);
    let q = &r["requests"];
    for kind in ["history", "search", "ping"] {
        let (sent, answered) = (
            q[kind]["sent"].as_u64().unwrap(),
            q[kind]["answered"].as_u64().unwrap(),
        );
        assert!(
            sent > 0 && answered + 3 >= sent && answered <= sent,
            "{kind}: {q}"
        );
        assert!(
            q[kind]["latency_ms"]["max"].as_f64().unwrap() > 0.0,
            "{kind} timed: {q}"
        );
    }
    assert_eq!(q["refused"], 0);
    // What the server counted: every page and search answered.
    assert_eq!(
        s.metric("picochat_history_pages_total"),
        q["history"]["answered"].as_f64().unwrap()
    );
    assert!(s.metric("picochat_searches_total") >= q["search"]["answered"].as_f64().unwrap());
    // Deliveries are measured as without them.
    assert_eq!(r["lost"].as_u64(), Some(0));
    assert_eq!(r["received"], r["expected"]);
    let bad = Command::new(env!("CARGO_BIN_EXE_picochat-load"))
        .args(["--url", &url, "--searchers", "1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("need --rooms"));
}

#[test]
fn rooms_without_enough_clients_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_picochat-load"))
        .args(["--clients", "3", "--rooms", "4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rooms must not exceed --clients"));
    let out = Command::new(env!("CARGO_BIN_EXE_picochat-load"))
        .args(["--clients", "3", "--rooms", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rooms must be at least 1"));
}

#[test]
fn with_compression_every_client_negotiates_it_and_inflates_every_delivery() {
    let s = TestServer::start(&["--msg-rate", "0", "--log-level", "warn"]);
    let args = [
        "--url",
        &s.url("/ws"),
        "--clients",
        "20",
        "--senders",
        "2",
        "--rate",
        "50",
        "--duration",
        "1s",
        "--payload",
        "300",
    ];
    let plain = load(&args);
    assert_eq!(
        (
            plain["compressing"].as_u64(),
            plain["compressed_frames"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let mut with = args.to_vec();
    with.push("--compression");
    let r = load(&with);
    assert_eq!(r["compressing"], 20);
    assert!(r["compressed_frames"].as_u64().unwrap() >= r["received"].as_u64().unwrap());
    assert_eq!(r["received"], r["expected"]);
    assert_eq!(r["lost"], 0);
    assert!(s.metric("picochat_deflate_messages_total") > 0.0);
}

// ---------- reports: HTML, the series, compare, bad input ----------

/// A temporary directory for report files, removed when dropped.
struct Dir(std::path::PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("picochat-load-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load_bin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_picochat-load"))
        .args(args)
        .output()
        .unwrap()
}

/// The text between `from` (inclusive) and the next `to` after it.
fn between<'a>(s: &'a str, from: &str, to: &str) -> &'a str {
    let a = s
        .find(from)
        .unwrap_or_else(|| panic!("no {from} in the page"));
    let b = s[a..]
        .find(to)
        .unwrap_or_else(|| panic!("no {to} after {from}"))
        + a;
    &s[a..b]
}

/// Every `data-{name}="..."` value in `s`, in order.
fn data_attrs(s: &str, name: &str) -> Vec<String> {
    let key = format!(" data-{name}=\"");
    s.match_indices(&key)
        .map(|(i, _)| {
            let rest = &s[i + key.len()..];
            rest[..rest.find('"').unwrap()].replace("&quot;", "\"")
        })
        .collect()
}

/// The JSON report embedded in a page.
fn embedded_json(page: &str) -> serde_json::Value {
    let block = between(
        page,
        "<script type=\"application/json\" id=\"report-json\">",
        "</script>",
    );
    serde_json::from_str(&block[block.find('>').unwrap() + 1..]).unwrap()
}

/// The value at a dotted path (`latency_ms.p99`).
fn at<'a>(v: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    path.split('.').fold(v, |v, k| &v[k])
}

fn assert_self_contained(page: &str) {
    assert!(page.contains(
        "Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\""
    ));
    for outside in [
        " src=", " href=", "<link", "url(", "@import", "http://", "https://",
    ] {
        assert!(
            !page.contains(outside),
            "the page refers outside itself: {outside}"
        );
    }
    assert_eq!(
        page.matches("<script").count(),
        1,
        "only the inert JSON block"
    );
}

#[test]
fn a_report_page_shows_the_numbers_of_the_json_of_the_same_run() {
    let s = TestServer::start(&["--msg-rate", "0", "--log-level", "warn"]);
    let dir = Dir::new("report");
    let page_path = dir.file("run.html");
    let pid = s.pid().to_string();
    let out = load_bin(&[
        "--url",
        &s.url("/ws"),
        "--clients",
        "30",
        "--senders",
        "3",
        "--rate",
        "60",
        "--duration",
        "2500ms",
        "--server-pid",
        &pid,
        "--report",
        &page_path,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let page = std::fs::read_to_string(&page_path).unwrap();
    assert_self_contained(&page);
    // The page carries the very report printed by --json.
    assert_eq!(embedded_json(&page), r);

    // The summary table: every number shown is the JSON's.
    let summary = between(&page, "<table id=\"summary\">", "</table>");
    let keys = data_attrs(summary, "key");
    let values = data_attrs(summary, "value");
    assert!(keys.len() >= 20, "{keys:?}");
    for (k, v) in keys.iter().zip(&values) {
        let v: serde_json::Value = serde_json::from_str(v).unwrap();
        assert_eq!(&v, at(&r, k), "{k}");
    }
    for k in [
        "received",
        "lost",
        "deliveries_per_s",
        "latency_ms.p99",
        "server_cpu_s",
        "server_peak_rss_bytes",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} is in the summary");
    }
    assert_eq!(r["lost"], 0);

    // The series: a row per second, summing to the totals, the server in each.
    let series = r["series"].as_array().unwrap();
    assert!((3..=5).contains(&series.len()), "{} rows", series.len());
    let sum = |k: &str| series.iter().map(|x| x[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("received"), r["received"].as_u64().unwrap());
    assert_eq!(sum("sent"), r["sent"].as_u64().unwrap());
    for row in &series[..series.len() - 1] {
        assert!((row["span_s"].as_f64().unwrap() - 1.0).abs() < 0.2, "{row}");
        assert_eq!(row["servers"][0]["pid"], s.pid());
        assert!(row["servers"][0]["rss_bytes"].as_u64().unwrap() > 0);
    }
    let sending = series
        .iter()
        .filter(|x| x["sent"].as_u64() > Some(0))
        .count();
    assert!(sending >= 2, "{series:?}");

    // The charts: one line point per row (latency only where there were deliveries).
    for id in [
        "chart-deliveries",
        "chart-latency",
        "chart-open",
        "chart-cpu",
        "chart-rss",
    ] {
        assert!(
            page.contains(&format!("<figure class=\"chart\" id=\"{id}\"")),
            "{id}"
        );
    }
    let counts = |chart: &str| -> Vec<usize> {
        data_attrs(between(&page, &format!("id=\"{chart}\""), "</figure>"), "n")
            .iter()
            .map(|n| n.parse().unwrap())
            .collect()
    };
    assert_eq!(counts("chart-deliveries"), vec![series.len()]);
    assert_eq!(counts("chart-open"), vec![series.len()]);
    let with_latency = series
        .iter()
        .filter(|x| x["latency_ms"].is_object())
        .count();
    assert_eq!(
        counts("chart-latency"),
        vec![with_latency; 3],
        "p50, p95 and p99"
    );
    assert_eq!(counts("chart-rss"), vec![series.len()]);
}

#[test]
fn a_step_report_marks_each_step_passed_or_failed_against_the_threshold() {
    // 25 connections at most: the third step (30 clients) cannot connect them all.
    let s = TestServer::start(&[
        "--msg-rate",
        "0",
        "--max-connections",
        "25",
        "--log-level",
        "warn",
    ]);
    let dir = Dir::new("step");
    let page_path = dir.file("step.html");
    let out = load_bin(&[
        "--url",
        &s.url("/ws"),
        "--step",
        "10",
        "--clients",
        "40",
        "--rate",
        "20",
        "--step-duration",
        "1s",
        "--threshold",
        "2s",
        "--report",
        &page_path,
        "--json",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = r["steps"].as_array().unwrap();
    let passes: Vec<bool> = steps.iter().map(|x| x["pass"].as_bool().unwrap()).collect();
    assert_eq!(passes, [true, true, false], "{r}");
    assert_eq!(steps[2]["failed"], 5, "{r}");
    assert_eq!(
        (steps[2]["clients"].as_u64(), steps[2]["target"].as_u64()),
        (Some(25), Some(30))
    );
    assert_eq!(r["max_clients_passing"], 20);
    let page = std::fs::read_to_string(&page_path).unwrap();
    assert_self_contained(&page);
    assert_eq!(embedded_json(&page), r);
    let chart = between(&page, "id=\"chart-steps\"", "</figure>");
    assert!(
        chart.contains("class=\"threshold\""),
        "the threshold line is drawn"
    );
    assert!(chart.contains("threshold: p95 ≤ 2000 ms"));
    // One mark per step, a dot when it passed and a cross when it failed.
    let clients: Vec<String> = steps.iter().map(|x| x["clients"].to_string()).collect();
    assert_eq!(data_attrs(chart, "clients"), clients);
    assert_eq!(
        data_attrs(chart, "pass"),
        passes.iter().map(|p| p.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(chart.matches("class=\"mark pass\"").count(), 2);
    assert_eq!(chart.matches("class=\"mark fail\"").count(), 1);
    // The steps table agrees with the JSON, cell by cell.
    let table = between(&page, "<table id=\"steps\">", "</table>");
    let keys = data_attrs(table, "key");
    let values = data_attrs(table, "value");
    assert_eq!(keys.len(), steps.len() * 9);
    for (i, (k, v)) in keys.iter().zip(&values).enumerate() {
        let v: serde_json::Value = serde_json::from_str(v).unwrap();
        assert_eq!(&v, &steps[i / 9][k.as_str()], "step {i}: {k}");
    }
}

#[test]
fn compare_sets_runs_side_by_side_with_ratios_and_names_a_bad_file() {
    let s = TestServer::start(&["--msg-rate", "0", "--log-level", "warn"]);
    let dir = Dir::new("compare");
    let (a, b) = (dir.file("slow.json"), dir.file("fast.json"));
    for (file, rate) in [(&a, "40"), (&b, "80")] {
        let out = load_bin(&[
            "--url",
            &s.url("/ws"),
            "--clients",
            "10",
            "--senders",
            "2",
            "--rate",
            rate,
            "--duration",
            "1s",
            "--json",
            "--quiet",
        ]);
        assert!(out.status.success());
        std::fs::write(file, &out.stdout).unwrap();
    }
    let ra: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    let rb: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&b).unwrap()).unwrap();
    let html = dir.file("compare.html");
    let out = load_bin(&["compare", &a, &b, "--report", &html]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |label: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} row in\n{text}"))
            .to_string()
    };
    assert!(
        line("").contains("slow.json") && line("").contains("fast.json"),
        "{text}"
    );
    let ratio = rb["sent"].as_f64().unwrap() / ra["sent"].as_f64().unwrap();
    assert!(
        line("sent").ends_with(&format!("({ratio:.2}x)")),
        "{}",
        line("sent")
    );
    assert!(
        (1.7..2.3).contains(&ratio),
        "twice the rate sends about twice: {ratio}"
    );
    assert!(line("rate").contains("40") && line("rate").contains("80"));
    assert_eq!(
        line("note"),
        "note: the runs differ in their settings: rate (msg/s, 0 = closed loop)"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert_self_contained(&page);
    let deliveries = between(&page, "id=\"chart-deliveries\"", "</figure>");
    assert_eq!(data_attrs(deliveries, "name"), ["slow.json", "fast.json"]);
    assert!(page.contains(&format!("data-value=\"{}\"", rb["received"])));

    // Bad input names the file and says why.
    let bad = |files: &[&str], why: &str| {
        let mut args = vec!["compare"];
        args.extend(files);
        let out = load_bin(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(files[files.len() - 1]) && err.contains(why),
            "{err}"
        );
    };
    let broken = dir.file("broken.json");
    std::fs::write(&broken, "{\"report_version\":1,").unwrap();
    bad(&[&a, &broken], "not JSON");
    let other = dir.file("other.json");
    std::fs::write(&other, "{\"hello\":1}").unwrap();
    bad(&[&a, &other], "no \"report_version\"");
    let truncated = dir.file("truncated.json");
    std::fs::write(
        &truncated,
        "{\"report_version\":1,\"mode\":\"open\",\"clients\":3}",
    )
    .unwrap();
    bad(&[&a, &truncated], "missing field");
    bad(&[&a, &dir.file("absent.json")], "cannot read");
    let step = dir.file("step.json");
    let out = load_bin(&[
        "--url",
        &s.url("/ws"),
        "--step",
        "5",
        "--clients",
        "5",
        "--rate",
        "10",
        "--step-duration",
        "300ms",
        "--json",
        "--quiet",
    ]);
    std::fs::write(&step, &out.stdout).unwrap();
    bad(&[&a, &step], "step reports compare only with step reports");
    let one = load_bin(&["compare", &a]);
    assert_eq!(one.status.code(), Some(2));
}

#[test]
fn an_unwritable_report_fails_before_the_run_and_progress_is_for_terminals_only() {
    let dir = Dir::new("unwritable");
    // Port 1 is unreachable: were the report checked after connecting, this would say so.
    for path in ["/proc/picochat-load.html".to_string(), dir.file("")] {
        let out = load_bin(&["--url", "ws://127.0.0.1:1/ws", "--report", &path]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("--report") && !err.contains("cannot reach"),
            "{err}"
        );
    }
    // A writable report with nobody to measure: no empty file is left.
    let never = dir.file("never.html");
    let out = load_bin(&["--url", "ws://127.0.0.1:1/ws", "--report", &never]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!std::path::Path::new(&never).exists());
    let out = load_bin(&["compare", "a.json", "b.json", "--report", "/proc/x.html"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--report /proc/x.html"));

    // stderr is not a terminal here: no progress line, though --quiet is not given.
    let s = TestServer::start(&["--msg-rate", "0", "--log-level", "warn"]);
    let out = load_bin(&[
        "--url",
        &s.url("/ws"),
        "--clients",
        "5",
        "--rate",
        "20",
        "--duration",
        "1500ms",
    ]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert!(String::from_utf8_lossy(&out.stdout).contains("deliveries"));
    // On a terminal (script(1) gives it one) the progress line is there.
    let cmd = format!(
        "{} --url {} --clients 5 --rate 20 --duration 1500ms",
        env!("CARGO_BIN_EXE_picochat-load"),
        s.url("/ws")
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(tty.contains("] running  open 5"), "{tty}");
}

#[test]
fn an_idle_report_has_no_empty_delivery_charts_and_a_long_room_table_is_cut() {
    let s = TestServer::start(&["--msg-rate", "0", "--log-level", "warn"]);
    let dir = Dir::new("shapes");
    let idle = dir.file("idle.html");
    let out = load_bin(&[
        "--url",
        &s.url("/ws"),
        "--clients",
        "20",
        "--idle",
        "--duration",
        "1200ms",
        "--report",
        &idle,
        "--quiet",
    ]);
    assert!(out.status.success());
    let page = std::fs::read_to_string(&idle).unwrap();
    assert!(page.contains("id=\"chart-open\""));
    assert!(!page.contains("id=\"chart-deliveries\"") && !page.contains("id=\"chart-latency\""));
    assert!(page.contains("idle connections, 20 clients"));

    // The server allows 1,000 rooms with members (--max-rooms): 200 joins
    // are refused, reported, and not waited for.
    let out = load_bin(&[
        "--url",
        &s.url("/ws"),
        "--clients",
        "1200",
        "--rooms",
        "1200",
        "--senders",
        "12",
        "--rate",
        "24",
        "--duration",
        "500ms",
        "--json",
        "--quiet",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            r["rooms"]["joined"].as_u64(),
            r["rooms"]["refused"].as_u64()
        ),
        (Some(1000), Some(200)),
        "{r}"
    );
    assert!(
        r["first_error"].as_str().unwrap().contains("room_limit"),
        "{r}"
    );
    assert!(
        r["connect_s"].as_f64().unwrap() < 20.0,
        "refusals are not waited for: {r}"
    );
    assert_eq!(
        r["lost"], 0,
        "a refused client is nobody's audience and sends nothing: {r}"
    );
    drop(s);

    // 1,200 rooms of one: every room is in the JSON, the page lists 1,000.
    let s = TestServer::start(&[
        "--msg-rate",
        "0",
        "--max-rooms",
        "2000",
        "--log-level",
        "warn",
    ]);
    let rooms = dir.file("rooms.html");
    let out = load_bin(&[
        "--url",
        &s.url("/ws"),
        "--clients",
        "1200",
        "--rooms",
        "1200",
        "--senders",
        "12",
        "--rate",
        "24",
        "--duration",
        "1s",
        "--report",
        &rooms,
        "--json",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["rooms"]["per_room"].as_array().unwrap().len(), 1200);
    assert_eq!(r["lost"], 0, "{}", r["first_error"]);
    let page = std::fs::read_to_string(&rooms).unwrap();
    let table = between(&page, "<table id=\"rooms\">", "</table>");
    assert_eq!(table.matches("<tr data-room=").count(), 1000);
    assert!(page.contains("And 200 more rooms without losses"));
}

/// One room of six clients, one of them sending 20 messages a second.
fn room_of_six(url: &str) -> [&str; 10] {
    [
        "--url",
        url,
        "--rooms",
        "1",
        "--clients",
        "6",
        "--senders",
        "1",
        "--rate",
        "20",
    ]
}

#[test]
fn typing_and_reactions_are_mixed_in_and_counted() {
    let s = TestServer::start(&["--msg-rate", "0"]);
    let url = s.url("/ws");
    let base = room_of_six(&url);
    // A first run leaves messages in the room: the hot message of the next.
    run_load(&[&base[..], &["--duration", "1s"]].concat());
    let r = run_load(
        &[
            &base[..],
            &[
                "--duration",
                "2s",
                "--typing-interval",
                "300ms",
                "--reactions-rate",
                "20",
            ],
        ]
        .concat(),
    );
    let q = &r["requests"];
    let (typed, heard) = (
        q["typing"]["sent"].as_u64().unwrap(),
        q["typing"]["received"].as_u64().unwrap(),
    );
    // Six clients type every 300 ms; the server forwards one per 3 s per
    // client to the five others: at most two rounds in a run this short.
    assert!(typed >= 20, "{q}");
    assert!((5..=2 * 6 * 5).contains(&heard), "{q}");
    let (reacted, seen) = (
        q["reactions"]["sent"].as_u64().unwrap(),
        q["reactions"]["received"].as_u64().unwrap(),
    );
    // Each reaction is a record delivered to the whole room of six.
    assert!(reacted >= 20, "{q}");
    assert!(seen >= 6 && seen <= reacted * 6, "{q}");
    assert_eq!(
        r["lost"].as_u64(),
        Some(0),
        "deliveries measured as without them"
    );
    assert_eq!(r["received"], r["expected"]);
    let bad = Command::new(env!("CARGO_BIN_EXE_picochat-load"))
        .args(["--url", &url, "--typing-interval", "1s"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("need --rooms"));
}

#[test]
fn images_are_uploaded_and_fetched_by_every_client_that_receives_them() {
    let s = TestServer::start(&["--msg-rate", "0"]);
    let url = s.url("/ws");
    let images = [
        "--duration",
        "2s",
        "--images-rate",
        "5",
        "--image-size",
        "50KiB",
    ];
    let r = run_load(&[&room_of_six(&url)[..], &images].concat());
    let i = &r["requests"]["images"];
    let n = |path: &str| at(i, path).as_u64().unwrap();
    assert_eq!(n("bytes"), 50 * 1024, "{i}");
    // Five a second for two seconds, each stored (its uploader got it back).
    assert!(n("uploads.sent") >= 8, "{i}");
    assert_eq!(n("uploads.answered"), n("uploads.sent"), "{i}");
    assert_eq!(n("refused"), 0, "{i}");
    assert!(
        at(i, "uploads.latency_ms.max").as_f64().unwrap() > 0.0,
        "{i}"
    );
    // All six clients (the uploader too) fetched every image, to its last byte.
    assert_eq!(n("fetches.sent"), 6 * n("uploads.answered"), "{i}");
    assert_eq!(n("fetches.answered"), n("fetches.sent"), "{i}");
    assert_eq!(n("fetch_failed"), 0, "{i}");
    assert_eq!(n("fetched_bytes"), n("fetches.answered") * 50 * 1024, "{i}");
    // The server agrees.
    assert_eq!(
        s.metric("picochat_uploads_total{outcome=\"accepted\"}"),
        n("uploads.answered") as f64
    );
    assert_eq!(
        s.metric("picochat_files_served_total"),
        n("fetches.answered") as f64
    );
    // Chat deliveries are measured as without them.
    assert_eq!(r["lost"].as_u64(), Some(0));
    assert_eq!(r["received"], r["expected"]);

    // Refused (too large): counted and named; the bytes that follow the
    // announcement are dropped by the server and every client stays.
    let small = TestServer::start(&["--msg-rate", "0", "--max-upload", "10KiB"]);
    let url = small.url("/ws");
    let r = run_load(&[&room_of_six(&url)[..], &images].concat());
    let i = &r["requests"]["images"];
    let n = |path: &str| at(i, path).as_u64().unwrap();
    assert!(n("uploads.sent") >= 8, "{i}");
    assert_eq!(n("refused"), n("uploads.sent"), "{i}");
    assert_eq!((n("uploads.answered"), n("fetches.sent")), (0, 0), "{i}");
    assert!(
        r["first_error"]
            .as_str()
            .unwrap()
            .contains("upload_too_large"),
        "{r}"
    );
    assert_eq!(r["dropped"].as_u64(), Some(0), "{r}");
    assert_eq!(r["lost"].as_u64(), Some(0));
    let bad = Command::new(env!("CARGO_BIN_EXE_picochat-load"))
        .args(["--url", &url, "--images-rate", "1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("needs --rooms"));
}
