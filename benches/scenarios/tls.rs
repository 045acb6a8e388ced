//! Scenario 12 (picochat only): native TLS (`--tls-cert`) against plain,
//! the same build in the same run, a certificate of a CA made here with
//! `openssl` (EC P-256, like a Let's Encrypt ECDSA certificate):
//! - handshakes: 1,000 clients connecting at once (`--connect-rate 0`),
//!   each a full handshake (`picochat-load` resumes no session) -> handshakes
//!   per second, and the server's CPU per handshake, against plain upgrades;
//! - fan-out as in 1 (1,000 clients, 10 senders, 100 msg/s of 100 B) over
//!   `wss://` and `ws://` -> p50/p99, losses, server CPU;
//! - memory as in 3: the RSS per idle WebSocket at 10,000 (goal ≤ 16 KiB
//!   with TLS; plain ≤ 400 B).
//!
//! Skipped (with a line on stderr) without the `openssl` command.

use super::{fanout_args, load_url, rss, start, Running, Target};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A CA and a `localhost`/127.0.0.1 certificate it signed, in `dir`.
fn make_pki(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).ok()?;
    let openssl = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .ok()?;
    let ok = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=bench CA",
    ]) && openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.csr",
        "-subj",
        "/CN=localhost",
    ]) && openssl(&[
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "30",
        "-extfile",
        "ext",
    ]);
    ok.then(|| {
        (
            dir.join("ca.pem"),
            dir.join("cert.pem"),
            dir.join("key.pem"),
        )
    })
}

pub fn run(picochat: &Target, quick: bool, push: &mut dyn FnMut(&str, Option<f64>)) {
    let dir = std::env::temp_dir().join(format!("picochat-bench-tls-{}", std::process::id()));
    let Some((ca, cert, key)) = make_pki(&dir) else {
        eprintln!("tls: openssl could not make a test certificate: scenario 12 skipped");
        return;
    };
    let ca = ca.display().to_string();
    let mut argv = picochat.argv.clone();
    argv.extend([
        "--tls-cert".into(),
        cert.display().to_string(),
        "--tls-key".into(),
        key.display().to_string(),
    ]);
    let tls = Target {
        name: "picochat-tls".into(),
        argv,
    };
    let (clients, dur, idle) = if quick {
        ("200", "3s", "1000")
    } else {
        ("1000", "10s", "10000")
    };
    // picochat-load over wss:// (trusting the CA) or ws://.
    let run_load = |r: &Running, on: bool, args: &[&str]| {
        let mut args = args.to_vec();
        let url = if on {
            args.extend(["--tls-ca", ca.as_str()]);
            format!("wss://localhost:{}/ws", r.addr.port())
        } else {
            format!("ws://{}/ws", r.addr)
        };
        load_url(r, &url, &args)
    };
    for (mode, on) in [("plain", false), ("TLS", true)] {
        let target = if on { &tls } else { picochat };

        // Handshakes: everyone at once, held for a second.
        let r = start(target);
        let cpu = || super::procfs::cpu_seconds(super::pid(&r)).unwrap_or(0.0);
        let cpu_before = cpu();
        let v = run_load(
            &r,
            on,
            &[
                "--clients",
                clients,
                "--idle",
                "--duration",
                "1s",
                "--connect-rate",
                "0",
            ],
        );
        let connect_cpu = cpu() - cpu_before;
        let connected = v["connected"].as_f64().unwrap_or(0.0);
        let connect_s = v["connect_s"].as_f64().unwrap_or(0.0);
        eprintln!(
            "tls connect ({mode}): {connected} in {connect_s:.3} s, server CPU {connect_cpu:.3} s, failed {}, first error {}",
            v["failed"], v["first_error"]
        );
        push(
            &format!("12 {mode}: {clients} connecting at once, per second"),
            (connect_s > 0.0).then(|| connected / connect_s),
        );
        push(
            &format!("12 {mode}: server CPU per connection (ms)"),
            (connected > 0.0).then(|| connect_cpu * 1000.0 / connected),
        );
        push(
            &format!("12 {mode}: connections failed"),
            v["failed"].as_f64(),
        );
        drop(r);

        // Fan-out.
        let r = start(target);
        let v = run_load(&r, on, &fanout_args(clients, dur));
        eprintln!(
            "tls fan-out ({mode}): p50 {} p99 {} lost {} cpu {}",
            v["latency_ms"]["p50"], v["latency_ms"]["p99"], v["lost"], v["server_cpu_s"]
        );
        push(
            &format!("12 {mode}: fan-out p50 (ms)"),
            v["latency_ms"]["p50"].as_f64(),
        );
        push(
            &format!("12 {mode}: fan-out p99 (ms)"),
            v["latency_ms"]["p99"].as_f64(),
        );
        push(
            &format!("12 {mode}: fan-out deliveries lost"),
            v["lost"].as_f64(),
        );
        push(
            &format!("12 {mode}: fan-out server CPU (s)"),
            v["server_cpu_s"].as_f64(),
        );
        drop(r);

        // Memory per idle WebSocket.
        let r = start(target);
        std::thread::sleep(Duration::from_millis(300));
        let before = rss(super::pid(&r));
        let v = run_load(
            &r,
            on,
            &[
                "--clients",
                idle,
                "--idle",
                "--duration",
                "3s",
                "--connect-rate",
                "1500",
            ],
        );
        let loaded = v["server_peak_rss_bytes"].as_u64().unwrap_or(0);
        let n: f64 = idle.parse().unwrap_or(1.0);
        eprintln!(
            "tls memory ({mode}): before {before} loaded {loaded} connected {}",
            v["connected"]
        );
        push(
            &format!("12 {mode}: RSS per idle WebSocket at {idle} (bytes)"),
            Some(loaded.saturating_sub(before) as f64 / n),
        );
        push(
            &format!("12 {mode}: idle clients connected"),
            v["connected"].as_f64(),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
