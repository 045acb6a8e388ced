//! Scenario 9 (picochat only): scrollback and search over a journal of
//! 1,000,000 retained messages (100,000 in QUICK mode), written as the
//! journal writes them (segments of 4 MiB, the most a segment holds)
//! into room `load-0`, then:
//! - start: time until the server listens (the index is built by scanning
//!   every segment), the index's bytes per message, RSS after start;
//! - pages: 20 clients asking 200 pages/s, each the 50 messages before a
//!   random id (nearly all from disk) -> answer p50/p99;
//! - one search that matches nothing (every message looked at) -> its
//!   completion time;
//! - fan-out: 1,000 clients, 10 senders, 100 msg/s in the room, with one
//!   client pinging every 20 ms, without and then with 20 clients each
//!   keeping such a search running -> delivery p99 both ways and ping p99.

use super::{load, metric, pid, procfs, start, Target};
use std::io::Write;
use std::time::{Duration, Instant};

const SEGMENT: usize = 4 << 20;

/// Writes `n` messages of room `load-0` as journal segments; returns the bytes written.
fn write_journal(dir: &std::path::Path, n: u64) -> u64 {
    std::fs::create_dir_all(dir).expect("data dir");
    std::fs::write(dir.join("epoch"), "1700000000000\n").expect("epoch");
    let mut segment = 1;
    let mut out = Vec::with_capacity(SEGMENT + 4096);
    let mut total = 0u64;
    let words = [
        "tea", "river", "lamp", "garden", "pixel", "autumn", "violin", "harbour",
    ];
    for id in 1..=n {
        let w = |k: u64| words[(id.wrapping_mul(k) % words.len() as u64) as usize];
        let _ = writeln!(
            out,
            "{{\"type\":\"message\",\"room\":\"load-0\",\"id\":{id},\"time\":{},\"username\":\"user{}\",\"message\":\"message {id}: the {} by the {} and a {} {}\"}}",
            1_700_000_000_000 + id * 1000,
            id % 50,
            w(3),
            w(7),
            w(11),
            w(13)
        );
        if out.len() >= SEGMENT {
            std::fs::write(dir.join(format!("messages.{segment}.jsonl")), &out).expect("segment");
            total += out.len() as u64;
            segment += 1;
            out.clear();
        }
    }
    std::fs::write(dir.join("messages.jsonl"), &out).expect("segment");
    total + out.len() as u64
}

pub fn run(picochat: &Target, quick: bool, push: &mut dyn FnMut(&str, Option<f64>)) {
    let n: u64 = if quick { 100_000 } else { 1_000_000 };
    let dur = if quick { "3s" } else { "10s" };
    let dir =
        std::env::temp_dir().join(format!("picochat-bench-scrollback-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bytes = write_journal(&dir, n);
    eprintln!(
        "scrollback: {n} messages, {:.0} MiB of journal",
        bytes as f64 / 1048576.0
    );
    let mut target = Target {
        name: "picochat-scrollback".into(),
        argv: picochat.argv.clone(),
    };
    target
        .argv
        .extend(["--data-dir".into(), dir.display().to_string()]);
    let began = Instant::now();
    let r = start(&target);
    // The port takes connections from the moment it is bound; the server
    // answers once its journal is read.
    let mut index = metric(&r, "picochat_log_index_bytes");
    while index.is_none() && began.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
        index = metric(&r, "picochat_log_index_bytes");
    }
    let started = began.elapsed();
    let rss = procfs::rss_bytes(pid(&r)).map(|(b, _)| b as f64 / 1048576.0);
    push("9 scrollback: messages retained", Some(n as f64));
    push(
        "9 scrollback: start with the journal (s)",
        Some(started.as_secs_f64()),
    );
    push(
        "9 scrollback: index bytes per message",
        index.map(|b| b / n as f64),
    );
    push("9 scrollback: RSS after start (MiB)", rss);

    let pages = load(
        &r,
        &[
            "--rooms",
            "1",
            "--clients",
            "21",
            "--senders",
            "1",
            "--rate",
            "1",
            "--history-rate",
            "200",
            "--duration",
            dur,
        ],
    );
    eprintln!("scrollback pages: {}", pages["requests"]);
    let h = &pages["requests"]["history"];
    push("9 page from disk p50 (ms)", h["latency_ms"]["p50"].as_f64());
    push("9 page from disk p99 (ms)", h["latency_ms"]["p99"].as_f64());
    push("9 pages answered", h["answered"].as_f64());

    let one = load(
        &r,
        &[
            "--rooms",
            "1",
            "--clients",
            "3",
            "--senders",
            "1",
            "--rate",
            "1",
            "--searchers",
            "1",
            "--duration",
            if quick { "5s" } else { "20s" },
        ],
    );
    eprintln!("scrollback one search: {}", one["requests"]);
    let s = &one["requests"]["search"];
    push(
        "9 search of every message: completion p50 (ms)",
        s["latency_ms"]["p50"].as_f64(),
    );
    push("9 searches completed", s["answered"].as_f64());

    let base = [
        "--rooms",
        "1",
        "--clients",
        "1000",
        "--senders",
        "10",
        "--rate",
        "100",
        "--duration",
        dur,
        "--ping-interval",
        "20ms",
    ];
    let calm = load(&r, &base);
    let mut busy_args = base.to_vec();
    busy_args.extend(["--searchers", "20"]);
    let busy = load(&r, &busy_args);
    for (label, v) in [("without searches", &calm), ("with 20 searching", &busy)] {
        eprintln!(
            "scrollback fan-out {label}: p99 {} ms, lost {}, {}",
            v["latency_ms"]["p99"], v["lost"], v["requests"]
        );
        push(
            &format!("9 fan-out p99 {label} (ms)"),
            v["latency_ms"]["p99"].as_f64(),
        );
        push(
            &format!("9 ping p99 {label} (ms)"),
            v["requests"]["ping"]["latency_ms"]["p99"].as_f64(),
        );
        push(
            &format!("9 fan-out deliveries lost {label}"),
            v["lost"].as_f64(),
        );
    }
    push(
        "9 searches completed during fan-out",
        busy["requests"]["search"]["answered"].as_f64(),
    );
    drop(r);
    let _ = std::fs::remove_dir_all(&dir);
}
