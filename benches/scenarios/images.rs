//! Scenario 11 (picochat only): serving images. A 1 MiB PNG is uploaded,
//! then 200 clients fetch it at once (`GET /u/...`, each on its own
//! connection, read to the end) -> the time until all have it, the bytes
//! per second, and the server's RSS peak meanwhile; and fan-out p99 of 200
//! chat clients (10 senders, 100 msg/s): without fetches; during one such
//! round (the p99 of the seconds of the chat run that the round overlaps:
//! the goal, within 10% of without), its readers flat out, at the idle
//! scheduling class, or paced as on a gigabit LAN, each beside a control (the
//! same seconds of the run without fetches); and, harsher, with a round
//! every second for the whole run (a photo a second in a room of 200); and
//! that again as `picochat-load --images-rate` does it from a second
//! generator at the idle scheduling class (the upload, then every reader's
//! fetch, as 200 other machines would), against the same without images.

use super::{load, pid, procfs, start, Running, Target};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// How the 200 readers of a round take the bytes.
#[derive(Clone, Copy, PartialEq)]
enum Readers {
    /// As fast as loopback goes (the server's core copies 200 MiB flat out).
    Flat,
    /// As fast, at the idle scheduling class: on CPU the server and the load
    /// generator leave free, as 200 other machines would be.
    Idle,
    /// Paced as 200 phones and laptops sharing a gigabit LAN would read:
    /// each at 1/200 of 1 Gbit/s, with a 64 KiB receive buffer, so TCP's
    /// flow control paces the server as a real link does; at the idle class
    /// too (their 7,600 wake-ups a second are other machines' work).
    Lan,
}

impl Readers {
    fn label(self) -> &'static str {
        match self {
            Readers::Flat => "readers flat out",
            Readers::Idle => "fetching threads at the idle class",
            Readers::Lan => "readers paced as a gigabit LAN",
        }
    }
}

/// Bytes per second each reader takes in `Readers::Lan` (1 Gbit/s over 200).
const LAN_READER_RATE: f64 = 1e9 / 8.0 / 200.0;

/// One GET of `path` read to the end; the body's bytes.
fn fetch(addr: SocketAddr, path: &str, readers: Readers) -> usize {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    if readers == Readers::Lan {
        let size: libc::c_int = 64 * 1024;
        // SAFETY: setsockopt on a socket this function owns, with a valid int.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
    let req = format!("GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut all = Vec::new();
    if readers == Readers::Lan {
        let began = Instant::now();
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = s.read(&mut buf) {
            all.extend_from_slice(&buf[..n]);
            let due = Duration::from_secs_f64(all.len() as f64 / LAN_READER_RATE);
            std::thread::sleep(due.saturating_sub(began.elapsed()));
        }
    } else {
        let _ = s.read_to_end(&mut all);
    }
    all.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |at| all.len() - at - 4)
}

/// 200 fetches at once, from 200 threads; the time until the last is done.
fn round(addr: SocketAddr, path: &str, clients: usize, readers: Readers) -> (Duration, usize) {
    let began = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let path = path.to_string();
            // Not pinned: on two cores, pinning them beside the load
            // generator starves it and its latencies measure that instead.
            std::thread::spawn(move || {
                if readers != Readers::Flat {
                    let param = libc::sched_param { sched_priority: 0 };
                    // SAFETY: plain system call on this thread, with a valid parameter.
                    unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
                }
                fetch(addr, &path, readers)
            })
        })
        .collect();
    let bytes = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    (began.elapsed(), bytes)
}

/// A second picochat-load in the chat's room, at the idle scheduling class
/// (CPU the server and the measuring generator leave over, as 200 other
/// machines would be): 200 clients that do not send and, with `images`, a
/// 1 MiB image a second uploaded among them and fetched by all 200. It
/// outlasts a chat run of `seconds` started a moment after it.
fn readers_beside(r: &Running, seconds: u64, images: bool) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_picochat-load"));
    let duration = format!("{}s", seconds + 4);
    cmd.args(["--url", &format!("ws://{}/ws", r.addr), "--json", "--quiet"])
        .args(["--rooms", "1", "--clients", "200", "--senders", "0"])
        .args(["--duration", &duration]);
    if images {
        cmd.args(["--images-rate", "1", "--image-size", "1MiB"]);
    }
    // SAFETY: one system call on the child's own thread between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
            Ok(())
        });
    }
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the second picochat-load")
}

/// With `--data-dir` (files read from disk when asked for): two 1 MiB
/// images (the same bytes uploaded twice), and 100 readers asking for them in turn all at once without
/// reading (phones slower than the server). The server's RSS before and
/// with them waiting: one buffer per image, or one per reader.
fn journal_readers(picochat: &Target, image: &[u8]) -> Option<(u64, u64)> {
    let dir = std::env::temp_dir().join(format!("picochat-bench-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut argv = picochat.argv.clone();
    argv.extend(["--data-dir".into(), dir.to_string_lossy().into_owned()]);
    let target = Target {
        name: picochat.name.clone(),
        argv,
    };
    let r = start(&target);
    // The same bytes uploaded twice are two files under two names.
    let urls = [upload(r.addr, image)?, upload(r.addr, image)?];
    let rss = || procfs::rss_bytes(pid(&r)).map_or(0, |(b, _)| b);
    let before = rss();
    let readers: Vec<TcpStream> = (0..100)
        .filter_map(|i| {
            let mut s = TcpStream::connect(r.addr).ok()?;
            let req = format!("GET {} HTTP/1.1\r\nHost: b\r\n\r\n", urls[i % 2]);
            s.write_all(req.as_bytes()).ok()?;
            Some(s)
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let waiting = rss();
    drop(readers);
    drop(r);
    let _ = std::fs::remove_dir_all(&dir);
    Some((before, waiting))
}

/// Splits a chat run's per-second p99s (whole seconds after the first, the
/// connecting one) by whether they overlap `from..to` (seconds into the
/// run): the worst of those that do, and the median of the others.
fn split_seconds(v: &serde_json::Value, from: f64, to: f64) -> (Option<f64>, Option<f64>) {
    let rows = v["series"].as_array().cloned().unwrap_or_default();
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
    others.sort_by(f64::total_cmp);
    (
        during.into_iter().reduce(f64::max),
        others.get(others.len() / 2).copied(),
    )
}

pub fn run(picochat: &Target, quick: bool, push: &mut dyn FnMut(&str, Option<f64>)) {
    let dur = if quick { "3s" } else { "10s" };
    let clients = 200;
    let r = start(picochat);
    let image = picochat::image::make::dense_png(1 << 20);
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
    let (took, bytes) = round(r.addr, &url, clients, Readers::Flat);
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
    if let Some((before, waiting)) = journal_readers(picochat, &image) {
        eprintln!(
            "images: --data-dir, 100 readers of two images not reading: RSS {before} -> {waiting}"
        );
        push(
            "11 --data-dir, 100 readers of two 1 MiB images in turn, not reading: RSS before (MiB)",
            Some(before as f64 / 1048576.0),
        );
        push(
            "11 --data-dir, 100 readers of two 1 MiB images in turn, not reading: RSS with them waiting (MiB)",
            Some(waiting as f64 / 1048576.0),
        );
    }

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
    let one = |readers: Readers| {
        let (url, addr) = (url.clone(), r.addr);
        let began = Instant::now();
        let round_thread = std::thread::spawn(move || {
            std::thread::sleep(delay);
            let at = began.elapsed();
            let cpu = procfs::cpu_seconds(server).unwrap_or(0.0);
            let (took, _) = round(addr, &url, clients, readers);
            let cpu = procfs::cpu_seconds(server).unwrap_or(0.0) - cpu;
            eprintln!(
                "images: the round ({}) took {cpu:.3} s of server CPU",
                readers.label()
            );
            (at, took)
        });
        let v = load(&r, &chat);
        let (at, took) = round_thread.join().unwrap_or_default();
        let (from, to) = (at.as_secs_f64() - 0.05, (at + took).as_secs_f64() + 0.05);
        let (during, typical) = split_seconds(&v, from, to);
        eprintln!(
            "images: one round ({}) at {at:?} took {took:?}; p99 of the seconds it \
             overlaps {during:?} ms, of the run's other seconds (median) {typical:?} ms",
            readers.label()
        );
        (during, typical, from, to)
    };
    for readers in [Readers::Flat, Readers::Idle, Readers::Lan] {
        let label = match readers {
            Readers::Flat => String::new(),
            _ => format!(", {}", readers.label()),
        };
        let (during, typical, from, to) = one(readers);
        // The control: the same statistic over the same seconds of the run
        // without fetches (the worst of two or three seconds against the
        // median of the others is above 1 by itself).
        let (control, control_typical) = split_seconds(&calm, from, to);
        eprintln!(
            "images: control ({}): the same seconds without fetches {control:?} ms, \
             the others (median) {control_typical:?} ms",
            readers.label()
        );
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
        push(
            &format!("11 one round of 200 fetches{label}: control, the same seconds of the run without fetches (ms)"),
            control,
        );
        push(
            &format!("11 one round of 200 fetches{label}: control, that run's other seconds, median (ms)"),
            control_typical,
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
                round(addr, &url, clients, Readers::Flat);
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

    // The whole run with a photo a second, as picochat-load posts and
    // fetches it from a second process, against the same room without: in
    // the order without, with, with, without, so a drift over the four runs
    // weighs on both sides alike (one pair of runs differs by ±30% on this
    // machine with nothing changed).
    let seconds = if quick { 3 } else { 10 };
    let (mut p99, mut lost, mut fetched, mut fetch_p99) = ([0.0; 2], [0.0; 2], 0.0, 0.0f64);
    for images in [false, true, true, false] {
        let beside = readers_beside(&r, seconds, images);
        std::thread::sleep(Duration::from_secs(2));
        let v = load(&r, &chat);
        let other = beside
            .wait_with_output()
            .ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .unwrap_or_default();
        let i = &other["requests"]["images"];
        eprintln!(
            "images, second generator at the idle class (images: {images}): fan-out p99 {} ms, \
             lost {}; images stored {}, fetches {} of {} ({} failed), fetch p99 {} ms",
            v["latency_ms"]["p99"],
            v["lost"],
            i["uploads"]["answered"],
            i["fetches"]["answered"],
            i["fetches"]["sent"],
            i["fetch_failed"],
            i["fetches"]["latency_ms"]["p99"]
        );
        let k = usize::from(images);
        p99[k] += v["latency_ms"]["p99"].as_f64().unwrap_or(f64::NAN) / 2.0;
        lost[k] += v["lost"].as_f64().unwrap_or(f64::NAN);
        if images {
            fetched += i["fetches"]["answered"].as_f64().unwrap_or(f64::NAN);
            fetch_p99 = fetch_p99.max(i["fetches"]["latency_ms"]["p99"].as_f64().unwrap_or(0.0));
        }
    }
    let beside = "beside a second generator of 200 clients";
    let with = "a 1 MiB image a second fetched by all 200";
    push(
        &format!("11 {beside}: fan-out p99, mean of two runs (ms)"),
        Some(p99[0]),
    );
    push(
        &format!("11 {beside}, {with}: fan-out p99, mean of two runs (ms)"),
        Some(p99[1]),
    );
    push(
        &format!("11 {beside}, {with}: fan-out p99 with / without"),
        Some(p99[1] / p99[0]),
    );
    push(
        &format!("11 {beside}: deliveries lost, with and without images"),
        Some(lost[0] + lost[1]),
    );
    push(
        &format!("11 {beside}, {with}: fetches complete in two runs"),
        Some(fetched),
    );
    push(
        &format!("11 {beside}, {with}: fetch p99, the worse run (ms)"),
        Some(fetch_p99),
    );
}
