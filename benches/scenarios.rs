//! `cargo bench`: the release server measured with `picochat-load`, one table.
//!
//! Scenarios (each on a fresh server process):
//! 1. fan-out: 1,000 clients, 10 senders, 100 msg/s, 100 B, 10 s -> p50/p99, losses
//! 2. saturation: 1,000 clients, closed loop -> deliveries/s and per server CPU-second
//! 3. memory: 10,000 idle WebSockets -> server RSS, RSS per connection, idle RSS after start
//! 4. step: clients added 1,000 at a time under 10 broadcasts/s until p95 > 500 ms
//! 5. static page: `GET /` requests/s with keep-alive (wrk when installed), binary size
//! 6. rooms (picochat only): 10,000 clients in 1,000 rooms of 10, every room
//!    1 msg/s -> p50/p99, losses per room, deliveries per server CPU-second; and
//!    the RSS per idle WebSocket with every client in 3 rooms
//! 7. Redis (picochat only, Debian's `redis-server` with `appendonly yes`,
//!    `appendfsync everysec`): fan-out as in 1 with the 1,000 clients split
//!    over 2 nodes -> p50/p99 and what the Redis hop adds to 1's p50; Redis
//!    CPU per message and its share of all CPU used; saturation as in 2 with
//!    1 node and with 2 nodes on Redis, with the CPU of every process. Nothing
//!    is pinned here: nodes, Redis and the generator share the cores.
//! 8. compression (picochat only): 1 and 2 again with every client offering
//!    permessage-deflate (`picochat-load --compression`) and 300 B messages
//!    (over `--compress-min`), against the same without -> p99 and deliveries
//!    per server CPU-second, both ways, in the same run
//! 9. scrollback (picochat only, `scenarios/scrollback.rs`): a journal of
//!    1,000,000 messages -> start time, index bytes per message, RSS; pages
//!    from disk p99; a search of every message; fan-out p99 and a ping's
//!    round trip without and with 20 clients searching
//! 10. everyday (picochat only, `scenarios/everyday.rs`): fan-out p99
//!     without and with 1,000 clients typing every 3 s; 100 reactions/s on
//!     one hot message, then a newcomer's welcome against its budget
//! 11. images (picochat only, `scenarios/images.rs`): one 1 MiB image
//!     fetched by 200 clients at once (time, MiB/s, RSS peak); fan-out p99
//!     without and with those fetches going on
//! 12. TLS (picochat only, `scenarios/tls.rs`): the same build with
//!     `--tls-cert` against plain: 1,000 clients connecting at once
//!     (handshakes per second and server CPU per handshake), fan-out as in 1
//!     over `wss://` and `ws://` (p50/p99, server CPU), and the RSS per idle
//!     TLS WebSocket at 10,000 against plain
//!
//! With at least two cores the server runs on core 0 and the generator on core 1
//! (`taskset`). `PICOCHAT_BENCH_BASELINE` names a second server to measure in the
//! same run, side by side with ratios: any server command, with `{addr}` where
//! the listen address goes, e.g. the Go tutorial chat server or an older
//! picochat build:
//!   PICOCHAT_BENCH_BASELINE='/path/to/gochat -addr {addr} -public /path/to/public'
//!   PICOCHAT_BENCH_BASELINE='/path/to/old/picochat --listen {addr} --msg-rate 0'
//! `PICOCHAT_BENCH_QUICK=1` shrinks every scenario for a fast sanity run;
//! `PICOCHAT_BENCH_ONLY=fanout,step` runs only the named scenarios.
//! `PICOCHAT_BENCH_REPORTS=DIR` keeps every picochat-load run's report page
//! and JSON in DIR (`NN-server-mode-Nc.html` and `.json`), for reading the
//! runs second by second and for `picochat-load compare`.

/// CPU and memory of a process from /proc (shared with picochat-load).
#[path = "../src/bin/picochat-load/procfs.rs"]
#[allow(dead_code)]
mod procfs;

#[path = "scenarios/scrollback.rs"]
mod scrollback;

#[path = "scenarios/everyday.rs"]
mod everyday;

#[path = "scenarios/images.rs"]
mod images;

#[path = "scenarios/tls.rs"]
mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Target {
    name: String,
    /// argv with `{addr}` to substitute.
    argv: Vec<String>,
}

struct Running {
    child: Child,
    addr: SocketAddr,
    /// What it is, for report file names.
    name: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

fn pinned(core: usize, argv: &[String]) -> Command {
    let two_cores = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    let have_taskset = Command::new("taskset").arg("--version").output().is_ok();
    let mut cmd = if two_cores && have_taskset {
        let mut c = Command::new("taskset");
        c.args(["-c", &core.to_string()]).args(argv);
        c
    } else {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    };
    cmd.env("GOMAXPROCS", "1");
    cmd
}

fn start(target: &Target) -> Running {
    let addr = free_addr();
    let argv: Vec<String> = target
        .argv
        .iter()
        .map(|a| a.replace("{addr}", &addr.to_string()))
        .collect();
    let mut child = pinned(0, &argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    let t = Instant::now();
    while TcpStream::connect(addr).is_err() {
        if t.elapsed() > Duration::from_secs(10) || child.try_wait().ok().flatten().is_some() {
            panic!("{} did not start: {argv:?}", target.name);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    Running {
        child,
        addr,
        name: target.name.clone(),
    }
}

/// The server's own pid (the child may be `taskset`, which execs it: same pid).
fn pid(r: &Running) -> u32 {
    r.child.id()
}

fn load(r: &Running, args: &[&str]) -> serde_json::Value {
    load_url(r, &format!("ws://{}/ws", r.addr), args)
}

/// `load` against another URL of the same server (`wss://`).
fn load_url(r: &Running, url: &str, args: &[&str]) -> serde_json::Value {
    let load_bin = env!("CARGO_BIN_EXE_picochat-load").to_string();
    let url = url.to_string();
    let mut argv = vec![
        load_bin,
        "--url".into(),
        url,
        "--json".into(),
        "--quiet".into(),
        "--server-pid".into(),
        pid(r).to_string(),
    ];
    argv.extend(args.iter().map(|s| s.to_string()));
    let report = report_args(&mut argv);
    let out = pinned(1, &argv).output().expect("run picochat-load");
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "picochat-load output ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    keep_report(report, &r.name, &v, &text);
    v
}

/// A report without its per-second series and parameters, for the log.
fn brief(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("series");
        o.remove("params");
    }
    v
}

/// With `PICOCHAT_BENCH_REPORTS=DIR`: asks picochat-load for a report page
/// there (a numbered name until the run says what it was).
fn report_args(argv: &mut Vec<String>) -> Option<(std::path::PathBuf, usize)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let dir = std::path::PathBuf::from(std::env::var_os("PICOCHAT_BENCH_REPORTS")?);
    std::fs::create_dir_all(&dir).expect("PICOCHAT_BENCH_REPORTS: a directory");
    let n = RUNS.fetch_add(1, Ordering::Relaxed) + 1;
    let page = dir.join(format!("run-{n:02}.html"));
    argv.extend(["--report".into(), page.to_string_lossy().into_owned()]);
    Some((page, n))
}

/// Names the run's page after what it was, and keeps its JSON beside it.
fn keep_report(
    report: Option<(std::path::PathBuf, usize)>,
    server: &str,
    v: &serde_json::Value,
    json: &str,
) {
    let Some((page, n)) = report else { return };
    let clients = v["params"]["clients"].as_u64().unwrap_or(0);
    let mode = v["mode"].as_str().unwrap_or("run");
    let server: String = server
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let stem = format!("{n:02}-{server}-{mode}-{clients}c");
    let _ = std::fs::rename(&page, page.with_file_name(format!("{stem}.html")));
    let _ = std::fs::write(page.with_file_name(format!("{stem}.json")), json.trim());
}

/// A redis-server for scenario 7, on a Unix socket in a temporary directory.
struct Redis {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Redis {
    fn start() -> Option<Redis> {
        let dir = std::env::temp_dir().join(format!("picochat-bench-redis-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "everysec", "--logfile", ""])
            .arg("--unixsocket")
            .arg(dir.join("redis.sock"))
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let r = Redis { child, dir };
        let t = Instant::now();
        while std::os::unix::net::UnixStream::connect(r.dir.join("redis.sock")).is_err() {
            if t.elapsed() > Duration::from_secs(10) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(r)
    }

    fn url(&self) -> String {
        format!("unix://{}", self.dir.join("redis.sock").display())
    }

    fn cpu(&self) -> f64 {
        procfs::cpu_seconds(self.child.id()).unwrap_or(0.0)
    }
}

/// A picochat node on `redis`: pinned to core 0 like scenario 1's server
/// when `pin`, else free to run on any core.
fn start_node(server_bin: &str, redis: &Redis, pin: bool) -> Running {
    let addr = free_addr();
    let argv: Vec<String> = [
        server_bin,
        "--listen",
        &addr.to_string(),
        "--redis",
        &redis.url(),
        "--msg-rate",
        "0",
        "--log-level",
        "warn",
    ]
    .map(String::from)
    .to_vec();
    let child = command(pin.then_some(0), &argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a node");
    let t = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "a node did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    Running {
        child,
        addr,
        name: "picochat-node".into(),
    }
}

/// `argv` pinned to `core` (see [`pinned`]), or free to run anywhere.
fn command(core: Option<usize>, argv: &[String]) -> Command {
    match core {
        Some(c) => pinned(c, argv),
        None => {
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            cmd
        }
    }
}

/// picochat-load over several nodes (on core 1 like scenario 1's when
/// `pin`); returns its report and the Redis CPU-seconds the run cost.
fn load_nodes(
    nodes: &[&Running],
    redis: &Redis,
    pin: bool,
    args: &[&str],
) -> (serde_json::Value, f64) {
    let mut argv = vec![env!("CARGO_BIN_EXE_picochat-load").to_string()];
    for n in nodes {
        argv.extend(["--url".to_string(), format!("ws://{}/ws", n.addr)]);
        argv.extend(["--server-pid".to_string(), pid(n).to_string()]);
    }
    argv.extend(["--json", "--quiet"].map(String::from));
    argv.extend(args.iter().map(|s| s.to_string()));
    let report = report_args(&mut argv);
    let redis0 = redis.cpu();
    let out = command(pin.then_some(1), &argv)
        .output()
        .expect("run picochat-load");
    let redis_cpu = redis.cpu() - redis0;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "picochat-load output ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    keep_report(report, &format!("{}-nodes", nodes.len()), &v, &text);
    (v, redis_cpu)
}

/// One sample from a server's `/metrics`.
fn metric(r: &Running, name: &str) -> Option<f64> {
    let mut s = TcpStream::connect(r.addr).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Scenario 1's load: `clients` clients, 10 senders, 100 msg/s of 100 B.
fn fanout_args<'a>(clients: &'a str, dur: &'a str) -> [&'a str; 10] {
    [
        "--clients",
        clients,
        "--senders",
        "10",
        "--rate",
        "100",
        "--payload",
        "100",
        "--duration",
        dur,
    ]
}

/// Scenario 2's load: a closed loop, 10 senders with 2 messages in flight each.
fn saturation_args<'a>(clients: &'a str, dur: &'a str) -> [&'a str; 12] {
    [
        "--clients",
        clients,
        "--senders",
        "10",
        "--inflight",
        "2",
        "--rate",
        "0",
        "--payload",
        "100",
        "--duration",
        dur,
    ]
}

fn rss(pid: u32) -> u64 {
    procfs::rss_bytes(pid).map_or(0, |r| r.0)
}

/// A fresh server's RSS after start, and while `clients` idle WebSockets
/// (with `extra` picochat-load flags) are connected: sampled by picochat-load
/// during the idle period, since after it exits the departures (and their
/// leave notices) would be measured too. Returns (idle, loaded, report).
fn idle_memory(target: &Target, clients: &str, extra: &[&str]) -> (u64, u64, serde_json::Value) {
    let r = start(target);
    std::thread::sleep(Duration::from_millis(300));
    let idle = rss(pid(&r));
    let mut args = vec![
        "--clients",
        clients,
        "--idle",
        "--duration",
        "3s",
        "--connect-rate",
        "4000",
    ];
    args.extend_from_slice(extra);
    let v = load(&r, &args);
    let loaded = v["server_peak_rss_bytes"].as_u64().unwrap_or(0).max(1);
    (idle, loaded, v)
}

/// Keep-alive GET / requests per second: wrk when installed, else a simple client.
fn static_rps(r: &Running, secs: u64) -> (f64, &'static str) {
    let url = format!("http://{}/", r.addr);
    let wrk = pinned(
        1,
        &[
            "wrk".into(),
            "-t1".into(),
            "-c50".into(),
            format!("-d{secs}s"),
            url,
        ],
    )
    .output();
    if let Ok(out) = wrk {
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(v) = text.lines().find_map(|l| l.strip_prefix("Requests/sec:")) {
            return (v.trim().parse().unwrap_or(0.0), "wrk -t1 -c50");
        }
    }
    let mut s = TcpStream::connect(r.addr).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let end = Instant::now() + Duration::from_secs(secs);
    let mut n = 0u64;
    while Instant::now() < end {
        s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
            .unwrap();
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        n += 1;
    }
    (n as f64 / secs as f64, "one keep-alive connection")
}

fn main() {
    let quick = std::env::var("PICOCHAT_BENCH_QUICK").is_ok();
    let only: Option<Vec<String>> = std::env::var("PICOCHAT_BENCH_ONLY")
        .ok()
        .map(|s| s.split(',').map(String::from).collect());
    let want = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == name));
    let server_bin = env!("CARGO_BIN_EXE_picochat").to_string();
    let mut targets = vec![Target {
        name: "picochat".into(),
        argv: vec![
            server_bin.clone(),
            "--listen".into(),
            "{addr}".into(),
            "--msg-rate".into(),
            "0".into(),
            "--log-level".into(),
            "warn".into(),
        ],
    }];
    if let Ok(cmd) = std::env::var("PICOCHAT_BENCH_BASELINE") {
        targets.push(Target {
            name: "baseline".into(),
            argv: cmd.split_whitespace().map(String::from).collect(),
        });
    }
    let (clients, dur, idle_clients, step_max, step_dur) = if quick {
        ("200", "2s", "1000", "3000", "2s")
    } else {
        ("1000", "10s", "10000", "19000", "5s")
    };
    // Rooms of ten: clients / 10 rooms, each sending 1 msg/s.
    let (room_clients, rooms) = if quick {
        ("1000", "100")
    } else {
        ("10000", "1000")
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "machine: {cores} cores; server on core 0, generator on core 1{}",
        if quick { "; QUICK mode" } else { "" }
    );

    let mut rows: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    let push =
        |rows: &mut Vec<(String, Vec<Option<f64>>)>, ti: usize, label: &str, v: Option<f64>| {
            if let Some(r) = rows.iter_mut().find(|(l, _)| l == label) {
                r.1[ti] = v;
            } else {
                let mut vals = vec![None; 2];
                vals[ti] = v;
                rows.push((label.to_string(), vals));
            }
        };
    let num = |v: &serde_json::Value, k: &str| v[k].as_f64();
    // `lost` counts only deliveries to clients that got in: a client refused or
    // never connected would make the other rows look better than they are.
    let not_in = |v: &serde_json::Value| Some(num(v, "failed")? + num(v, "dropped")?);
    for (ti, target) in targets.iter().enumerate() {
        eprintln!("== {}", target.name);
        if want("fanout") {
            let r = start(target);
            let v = load(&r, &fanout_args(clients, dur));
            eprintln!("fan-out: {}", brief(&v));
            push(
                &mut rows,
                ti,
                "1 fan-out p50 latency (ms)",
                v["latency_ms"]["p50"].as_f64(),
            );
            push(
                &mut rows,
                ti,
                "1 fan-out p99 latency (ms)",
                v["latency_ms"]["p99"].as_f64(),
            );
            push(&mut rows, ti, "1 fan-out deliveries lost", num(&v, "lost"));
            push(
                &mut rows,
                ti,
                "1 fan-out clients failed or dropped",
                not_in(&v),
            );
            push(
                &mut rows,
                ti,
                "1 fan-out server CPU (s)",
                num(&v, "server_cpu_s"),
            );
        }
        if want("saturation") {
            let r = start(target);
            let v = load(&r, &saturation_args(clients, dur));
            eprintln!("saturation: {}", brief(&v));
            push(
                &mut rows,
                ti,
                "2 saturation deliveries/s",
                num(&v, "deliveries_per_s"),
            );
            push(
                &mut rows,
                ti,
                "2 saturation deliveries per server CPU-s",
                num(&v, "deliveries_per_server_cpu_s"),
            );
            push(
                &mut rows,
                ti,
                "2 saturation deliveries lost",
                num(&v, "lost"),
            );
            push(
                &mut rows,
                ti,
                "2 saturation clients failed or dropped",
                not_in(&v),
            );
            push(
                &mut rows,
                ti,
                "2 saturation p99 latency (ms)",
                v["latency_ms"]["p99"].as_f64(),
            );
            push(
                &mut rows,
                ti,
                "2 generator saturated (1 = yes)",
                v["generator_saturated"].as_bool().map(|b| b as u8 as f64),
            );
        }
        if want("memory") {
            let (idle, loaded, v) = idle_memory(target, idle_clients, &[]);
            let n: f64 = idle_clients.parse().unwrap();
            eprintln!("memory: idle {idle} loaded {loaded}: {}", brief(&v));
            push(
                &mut rows,
                ti,
                "3 idle RSS after start (KiB)",
                Some(idle as f64 / 1024.0),
            );
            push(
                &mut rows,
                ti,
                &format!("3 RSS with {idle_clients} idle WebSockets (MiB)"),
                Some(loaded as f64 / 1048576.0),
            );
            push(
                &mut rows,
                ti,
                "3 RSS per idle WebSocket (bytes)",
                Some((loaded.saturating_sub(idle)) as f64 / n),
            );
            push(
                &mut rows,
                ti,
                "3 idle clients connected",
                num(&v, "connected"),
            );
        }
        if want("step") {
            let r = start(target);
            let v = load(
                &r,
                &[
                    "--step",
                    "1000",
                    "--clients",
                    step_max,
                    "--rate",
                    "10",
                    "--step-duration",
                    step_dur,
                    "--threshold",
                    "500ms",
                    "--connect-rate",
                    "4000",
                ],
            );
            eprintln!("step: {}", brief(&v));
            push(
                &mut rows,
                ti,
                "4 step: max clients with p95 < 500 ms",
                num(&v, "max_clients_passing"),
            );
            if let Some(steps) = v["steps"].as_array() {
                let last_pass = steps.iter().rev().find(|s| s["pass"] == true);
                push(
                    &mut rows,
                    ti,
                    "4 step: p99 at that step (ms)",
                    last_pass.and_then(|s| s["p99_ms"].as_f64()),
                );
            }
        }
        if want("static") {
            let r = start(target);
            let (rps, how) = static_rps(&r, if quick { 2 } else { 5 });
            eprintln!("static: {rps:.0} req/s ({how})");
            push(&mut rows, ti, "5 GET / requests/s (keep-alive)", Some(rps));
            if ti == 0 {
                let size = std::fs::metadata(&server_bin).map_or(0, |m| m.len());
                push(
                    &mut rows,
                    ti,
                    "5 stripped binary size (KiB)",
                    Some(size as f64 / 1024.0),
                );
            }
        }
        if want("compression") && ti == 0 {
            for (mode, extra) in [("plain", None), ("compressed", Some("--compression"))] {
                let mut fan: Vec<&str> = fanout_args(clients, dur).to_vec();
                let mut sat: Vec<&str> = saturation_args(clients, dur).to_vec();
                for args in [&mut fan, &mut sat] {
                    if let Some(i) = args.iter().position(|a| *a == "--payload") {
                        args[i + 1] = "300";
                    }
                    args.extend(extra);
                }
                let r = start(target);
                let v = load(&r, &fan);
                eprintln!("compression fan-out ({mode}): {}", brief(&v));
                let label = format!("8 fan-out 300 B, {mode}: p99 latency (ms)");
                push(&mut rows, ti, &label, v["latency_ms"]["p99"].as_f64());
                let label = format!("8 fan-out 300 B, {mode}: deliveries lost");
                push(&mut rows, ti, &label, num(&v, "lost"));
                let label = format!("8 fan-out 300 B, {mode}: clients compressing");
                push(&mut rows, ti, &label, num(&v, "compressing"));
                let r = start(target);
                let v = load(&r, &sat);
                eprintln!("compression saturation ({mode}): {}", brief(&v));
                let label = format!("8 saturation 300 B, {mode}: deliveries per server CPU-s");
                push(
                    &mut rows,
                    ti,
                    &label,
                    num(&v, "deliveries_per_server_cpu_s"),
                );
                let label = format!("8 saturation 300 B, {mode}: deliveries lost");
                push(&mut rows, ti, &label, num(&v, "lost"));
            }
        }
        if want("rooms") && ti == 0 {
            let r = start(target);
            let v = load(
                &r,
                &[
                    "--clients",
                    room_clients,
                    "--rooms",
                    rooms,
                    "--senders",
                    rooms,
                    "--rate",
                    rooms,
                    "--payload",
                    "100",
                    "--duration",
                    dur,
                    "--connect-rate",
                    "4000",
                ],
            );
            eprintln!("rooms: {}", brief(&v));
            let label =
                format!("6 rooms ({room_clients} clients, {rooms} rooms of 10, 1 msg/s each)");
            push(
                &mut rows,
                ti,
                &format!("{label} p50 (ms)"),
                v["latency_ms"]["p50"].as_f64(),
            );
            push(
                &mut rows,
                ti,
                &format!("{label} p99 (ms)"),
                v["latency_ms"]["p99"].as_f64(),
            );
            push(&mut rows, ti, "6 rooms deliveries lost", num(&v, "lost"));
            push(
                &mut rows,
                ti,
                "6 rooms with a loss",
                v["rooms"]["rooms_with_losses"].as_f64(),
            );
            push(
                &mut rows,
                ti,
                "6 rooms clients failed or dropped",
                not_in(&v),
            );
            push(
                &mut rows,
                ti,
                "6 rooms deliveries per server CPU-s",
                num(&v, "deliveries_per_server_cpu_s"),
            );
            let (idle, loaded, v) = idle_memory(
                target,
                idle_clients,
                &["--rooms", rooms, "--rooms-per-client", "3"],
            );
            let n: f64 = idle_clients.parse().unwrap();
            eprintln!("rooms memory: idle {idle} loaded {loaded}: {}", brief(&v));
            push(
                &mut rows,
                ti,
                "6 RSS per idle WebSocket in 3 rooms (bytes)",
                Some((loaded.saturating_sub(idle)) as f64 / n),
            );
            push(
                &mut rows,
                ti,
                "6 idle clients joined to 3 rooms",
                v["rooms"]["joined"].as_f64(),
            );
        }
    }

    if want("redis") {
        match Redis::start() {
            None => eprintln!("redis: redis-server not found or not starting: scenario 7 skipped"),
            Some(redis) => redis_scenarios(&server_bin, &redis, clients, dur, &mut rows, push),
        }
    }

    if want("scrollback") {
        scrollback::run(&targets[0], quick, &mut |label, v| {
            push(&mut rows, 0, label, v)
        });
    }

    if want("everyday") {
        everyday::run(&targets[0], quick, &mut |label, v| {
            push(&mut rows, 0, label, v)
        });
    }

    if want("images") {
        images::run(&targets[0], quick, &mut |label, v| {
            push(&mut rows, 0, label, v)
        });
    }

    if want("tls") {
        tls::run(&targets[0], quick, &mut |label, v| {
            push(&mut rows, 0, label, v)
        });
    }

    println!();
    let has_base = targets.len() > 1;
    if has_base {
        println!("| scenario | picochat | baseline | picochat / baseline |");
        println!("|---|---:|---:|---:|");
    } else {
        println!("| scenario | picochat |");
        println!("|---|---:|");
    }
    let fmt = |v: Option<f64>| match v {
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.2}"),
        None => "—".into(),
    };
    for (label, vals) in &rows {
        if has_base {
            let ratio = match (vals[0], vals[1]) {
                (Some(a), Some(b)) if b != 0.0 => format!("{:.2}x", a / b),
                _ => "—".into(),
            };
            println!(
                "| {label} | {} | {} | {ratio} |",
                fmt(vals[0]),
                fmt(vals[1])
            );
        } else {
            println!("| {label} | {} |", fmt(vals[0]));
        }
    }
}

type Rows = Vec<(String, Vec<Option<f64>>)>;

/// Scenario 7: fan-out and saturation with the message log on Redis.
fn redis_scenarios(
    server_bin: &str,
    redis: &Redis,
    clients: &str,
    dur: &str,
    rows: &mut Rows,
    push: impl Fn(&mut Rows, usize, &str, Option<f64>),
) {
    let single_p50 = rows
        .iter()
        .find(|(l, _)| l == "1 fan-out p50 latency (ms)")
        .and_then(|(_, v)| v[0]);
    let cpu_of = |v: &serde_json::Value| -> Vec<f64> {
        v["servers"]
            .as_array()
            .map(|s| s.iter().filter_map(|x| x["cpu_s"].as_f64()).collect())
            .unwrap_or_else(|| v["server_cpu_s"].as_f64().into_iter().collect())
    };
    let not_in = |v: &serde_json::Value| {
        v["failed"]
            .as_f64()
            .zip(v["dropped"].as_f64())
            .map(|(f, d)| f + d)
    };
    let fanout = fanout_args(clients, dur);

    // 7a. The hop alone: 1 node on Redis, pinned as scenario 1 (Redis runs anywhere).
    let one = start_node(server_bin, redis, true);
    let (v, _) = load_nodes(&[&one], redis, true, &fanout);
    eprintln!("redis fan-out, 1 node pinned: {}", brief(&v));
    let rtt = metric(&one, "picochat_redis_rtt_seconds_sum")
        .zip(metric(&one, "picochat_redis_rtt_seconds_count"))
        .map(|(s, n)| s / n.max(1.0) * 1000.0);
    drop(one);
    let label = "7 Redis fan-out, 1 node (pinned as 1)";
    let p50 = v["latency_ms"]["p50"].as_f64();
    push(rows, 0, &format!("{label}: p50 latency (ms)"), p50);
    push(
        rows,
        0,
        &format!("{label}: p99 latency (ms)"),
        v["latency_ms"]["p99"].as_f64(),
    );
    push(
        rows,
        0,
        "7 Redis fan-out: p50 added by the Redis hop (ms, vs 1)",
        p50.zip(single_p50).map(|(r, s)| r - s),
    );
    push(
        rows,
        0,
        &format!("{label}: deliveries lost"),
        v["lost"].as_f64(),
    );
    push(rows, 0, "7 Redis publish round trip, mean (ms)", rtt);

    // 7a'. The same with cores to spare: 200 clients, single process vs 1 node on Redis.
    let light = fanout_args("200", dur);
    let single = start(&Target {
        name: "picochat".into(),
        argv: vec![
            server_bin.into(),
            "--listen".into(),
            "{addr}".into(),
            "--msg-rate".into(),
            "0".into(),
            "--log-level".into(),
            "warn".into(),
        ],
    });
    let base = load(&single, &light);
    drop(single);
    let one = start_node(server_bin, redis, true);
    let (v, _) = load_nodes(&[&one], redis, true, &light);
    drop(one);
    eprintln!(
        "fan-out at 200 clients: alone {}, on Redis {}",
        brief(&base),
        brief(&v)
    );
    let (a, b) = (
        base["latency_ms"]["p50"].as_f64(),
        v["latency_ms"]["p50"].as_f64(),
    );
    push(rows, 0, "7 fan-out at 200 clients: p50 alone (ms)", a);
    push(
        rows,
        0,
        "7 fan-out at 200 clients: p50 on Redis, 1 node (ms)",
        b,
    );
    push(
        rows,
        0,
        "7 fan-out at 200 clients: p50 added by the Redis hop (ms)",
        a.zip(b).map(|(a, b)| b - a),
    );

    // 7b. Fan-out over 2 nodes: nodes, Redis and the generator share the 2 cores.
    let a = start_node(server_bin, redis, false);
    let b = start_node(server_bin, redis, false);
    let (v, redis_cpu) = load_nodes(&[&a, &b], redis, false, &fanout);
    eprintln!(
        "redis fan-out, 2 nodes: {} (redis CPU {redis_cpu:.3} s)",
        brief(&v)
    );
    drop((a, b));
    let label = "7 Redis fan-out, 2 nodes";
    push(
        rows,
        0,
        &format!("{label}: p50 latency (ms)"),
        v["latency_ms"]["p50"].as_f64(),
    );
    push(
        rows,
        0,
        &format!("{label}: p99 latency (ms)"),
        v["latency_ms"]["p99"].as_f64(),
    );
    push(
        rows,
        0,
        &format!("{label}: deliveries lost"),
        v["lost"].as_f64(),
    );
    push(
        rows,
        0,
        &format!("{label}: clients failed or dropped"),
        not_in(&v),
    );
    let sent = v["sent"].as_f64().unwrap_or(0.0).max(1.0);
    push(
        rows,
        0,
        &format!("{label}: Redis CPU per message, its idle work included (µs)"),
        Some(redis_cpu / sent * 1e6),
    );
    let nodes_cpu: f64 = cpu_of(&v).iter().sum();
    let total = nodes_cpu + redis_cpu + v["generator_cpu_s"].as_f64().unwrap_or(0.0);
    push(
        rows,
        0,
        &format!("{label}: Redis share of all CPU used (%)"),
        (total > 0.0).then(|| redis_cpu / total * 100.0),
    );
    push(
        rows,
        0,
        &format!("{label}: CPU of both nodes (s)"),
        Some(nodes_cpu),
    );

    // 7c. Saturation: 1 node, then 2 nodes, on Redis.
    for n in [1, 2] {
        let nodes: Vec<Running> = (0..n)
            .map(|_| start_node(server_bin, redis, false))
            .collect();
        let refs: Vec<&Running> = nodes.iter().collect();
        let (v, redis_cpu) = load_nodes(&refs, redis, false, &saturation_args(clients, dur));
        eprintln!(
            "redis saturation, {n} node(s): {} (redis CPU {redis_cpu:.3} s)",
            brief(&v)
        );
        let label = format!(
            "7 Redis saturation, {n} node{}",
            if n == 1 { "" } else { "s" }
        );
        let secs = v["duration_s"].as_f64().unwrap_or(1.0).max(1e-9);
        let pct = |cpu: f64| Some(cpu / secs * 100.0);
        push(
            rows,
            0,
            &format!("{label}: deliveries/s"),
            v["deliveries_per_s"].as_f64(),
        );
        push(
            rows,
            0,
            &format!("{label}: deliveries lost"),
            v["lost"].as_f64(),
        );
        push(
            rows,
            0,
            &format!("{label}: clients failed or dropped"),
            not_in(&v),
        );
        for (i, cpu) in cpu_of(&v).iter().enumerate() {
            push(
                rows,
                0,
                &format!("{label}: node {} CPU (% of a core)", i + 1),
                pct(*cpu),
            );
        }
        push(
            rows,
            0,
            &format!("{label}: Redis CPU (% of a core)"),
            pct(redis_cpu),
        );
        push(
            rows,
            0,
            &format!("{label}: generator CPU (% of a core)"),
            v["generator_cpu_s"].as_f64().and_then(pct),
        );
        let sent = v["sent"].as_f64().unwrap_or(0.0).max(1.0);
        push(
            rows,
            0,
            &format!("{label}: Redis CPU per message (µs)"),
            Some(redis_cpu / sent * 1e6),
        );
    }
}
