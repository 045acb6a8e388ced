//! Scenario 11 (picochat only): serving images. A 1 MiB PNG is uploaded,
//! then 200 clients fetch it at once (`GET /u/...`, each on its own
//! connection, read to the end) -> the time until all have it, the bytes
//! per second, and the server's RSS peak meanwhile; and fan-out p99 of 200
//! chat clients (10 senders, 100 msg/s): without fetches; during one such
//! round (the p99 of the seconds of the chat run that the round overlaps:
//! the goal, within 10% of without); and, harsher, with a round every
//! second for the whole run (a photo a second in a room of 200).

use super::{load, pid, procfs, start, Target};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A PNG of about `size` bytes: a valid structure around made-up image data
/// (the server checks structure, it never decodes).
fn png(size: usize) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&1024u32.to_be_bytes());
    ihdr.extend_from_slice(&1024u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    let mut x: u32 = 12345;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    chunk(&mut out, b"IDAT", &data);
    chunk(&mut out, b"IEND", b"");
    out
}

/// Uploads `image` over a WebSocket; returns its URL.
fn upload(addr: SocketAddr, image: &[u8]) -> Option<String> {
    let stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let (mut ws, _) = tungstenite::client::client(format!("ws://{addr}/ws"), stream).ok()?;
    let join = r#"{"type":"join","room":"pictures","username":"bench"}"#;
    ws.send(tungstenite::Message::text(join)).ok()?;
    let announce = format!(
        r#"{{"type":"upload","room":"pictures","bytes":{},"message":"big"}}"#,
        image.len()
    );
    ws.send(tungstenite::Message::text(announce)).ok()?;
    ws.send(tungstenite::Message::binary(image.to_vec())).ok()?;
    loop {
        let m = ws.read().ok()?;
        let Ok(text) = m.to_text() else { continue };
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        if v["type"] == "error" {
            eprintln!("images: upload refused: {v}");
            return None;
        }
        if let Some(url) = v["attachment"]["url"].as_str() {
            return Some(url.to_string());
        }
    }
}

/// One GET of `path` read to the end; the body's bytes.
fn fetch(addr: SocketAddr, path: &str) -> usize {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    all.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |at| all.len() - at - 4)
}

/// 200 fetches at once, from 200 threads; the time until the last is done.
/// `idle`: the threads run at the idle scheduling class, on CPU the server
/// and the load generator leave free, as 200 other machines would be.
fn round(addr: SocketAddr, path: &str, clients: usize, idle: bool) -> (Duration, usize) {
    let began = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let path = path.to_string();
            // Not pinned: on two cores, pinning them beside the load
            // generator starves it and its latencies measure that instead.
            std::thread::spawn(move || {
                if idle {
                    let param = libc::sched_param { sched_priority: 0 };
                    // SAFETY: plain system call on this thread, with a valid parameter.
                    unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
                }
                fetch(addr, &path)
            })
        })
        .collect();
    let bytes = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    (began.elapsed(), bytes)
}

pub fn run(picochat: &Target, quick: bool, push: &mut dyn FnMut(&str, Option<f64>)) {
    let dur = if quick { "3s" } else { "10s" };
    let clients = 200;
    let r = start(picochat);
    let image = png(1 << 20);
    let Some(url) = upload(r.addr, &image) else {
        push("11 image uploaded", None);
        return;
    };
    let server = pid(&r);
    let rss = || procfs::rss_bytes(server).map_or(0, |(b, _)| b);
    let before = rss();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(before));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some((b, _)) = procfs::rss_bytes(server) {
                    peak.fetch_max(b, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let (took, bytes) = round(r.addr, &url, clients, false);
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "images: {clients} fetches of {} B in {took:?}, {bytes} B in all, RSS {before} -> peak {peak}",
        image.len()
    );
    push("11 image size (KiB)", Some(image.len() as f64 / 1024.0));
    push(
        "11 200 clients fetching it at once: all done (ms)",
        Some(took.as_secs_f64() * 1000.0),
    );
    push(
        "11 served (MiB/s)",
        Some(bytes as f64 / 1048576.0 / took.as_secs_f64()),
    );
    push(
        "11 fetches complete",
        Some((bytes / image.len().max(1)) as f64),
    );
    push(
        "11 RSS before serving (MiB)",
        Some(before as f64 / 1048576.0),
    );
    push(
        "11 RSS peak while serving (MiB)",
        Some(peak as f64 / 1048576.0),
    );

    let chat = [
        "--rooms",
        "1",
        "--clients",
        "200",
        "--senders",
        "10",
        "--rate",
        "100",
        "--duration",
        dur,
    ];
    let calm = load(&r, &chat);
    // One round, in the middle of a run: the seconds it overlaps.
    let delay = Duration::from_millis(if quick { 1500 } else { 5000 });
    let one = |idle: bool| {
        let (url, addr) = (url.clone(), r.addr);
        let began = Instant::now();
        let round_thread = std::thread::spawn(move || {
            std::thread::sleep(delay);
            let at = began.elapsed();
            let (took, _) = round(addr, &url, clients, idle);
            (at, took)
        });
        let v = load(&r, &chat);
        let (at, took) = round_thread.join().unwrap_or_default();
        let (from, to) = (at.as_secs_f64() - 0.05, (at + took).as_secs_f64() + 0.05);
        let rows = v["series"].as_array().cloned().unwrap_or_default();
        // Whole seconds after the first (connecting), by whether the round overlaps them.
        let (mut during, mut others) = (Vec::new(), Vec::new());
        for row in rows.iter().skip(1) {
            let end = row["t_s"].as_f64().unwrap_or(0.0);
            let span = row["span_s"].as_f64().unwrap_or(0.0);
            let Some(p99) = row["latency_ms"]["p99"].as_f64() else {
                continue;
            };
            if end - span < to && end > from {
                during.push(p99);
            } else if span > 0.9 {
                others.push(p99);
            }
        }
        let during = during.into_iter().reduce(f64::max);
        others.sort_by(f64::total_cmp);
        let typical = others.get(others.len() / 2).copied();
        eprintln!(
            "images: one round (idle class: {idle}) at {at:?} took {took:?}; p99 of the \
             seconds it overlaps {during:?} ms, of the run's other seconds (median) {typical:?} ms"
        );
        (during, typical)
    };
    for (idle, label) in [(false, ""), (true, ", fetching threads at the idle class")] {
        let (during, typical) = one(idle);
        push(
            &format!(
                "11 one round of 200 fetches{label}: fan-out p99 of the seconds it overlaps (ms)"
            ),
            during,
        );
        push(
            &format!("11 one round of 200 fetches{label}: fan-out p99 of the run's other seconds, median (ms)"),
            typical,
        );
    }
    let busy_flag = Arc::new(AtomicBool::new(true));
    let fetcher = {
        let (flag, url, addr) = (busy_flag.clone(), url.clone(), r.addr);
        std::thread::spawn(move || {
            // A photo posted to a room of 200 every second: all of them load it at once.
            let mut rounds = 0;
            while flag.load(Ordering::Relaxed) {
                let began = Instant::now();
                round(addr, &url, clients, false);
                rounds += 1;
                std::thread::sleep(Duration::from_secs(1).saturating_sub(began.elapsed()));
            }
            rounds
        })
    };
    let busy = load(&r, &chat);
    busy_flag.store(false, Ordering::Relaxed);
    let rounds = fetcher.join().unwrap_or(0);
    for (label, v) in [("without fetches", &calm), ("with 200 fetching", &busy)] {
        eprintln!(
            "images fan-out {label}: p99 {} ms, lost {}",
            v["latency_ms"]["p99"], v["lost"]
        );
        push(
            &format!("11 fan-out p99 {label} (ms)"),
            v["latency_ms"]["p99"].as_f64(),
        );
        push(
            &format!("11 fan-out deliveries lost {label}"),
            v["lost"].as_f64(),
        );
    }
    push(
        "11 rounds of 200 fetches during fan-out (one a second)",
        Some(rounds as f64),
    );
}
