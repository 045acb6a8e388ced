//! What `--data-dir` promises, each checked where it can fail:
//! - a message is written to the log before any client can receive it, so
//!   killing the process (kill -9) never loses a message a client saw;
//! - with `--fsync always` the log is also synced before any client can
//!   receive it. kill -9 cannot show that (the page cache survives the
//!   process), so the order of the system calls is read with strace.

mod common;
use common::*;
use serde_json::json;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

fn tmpdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("picochat-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn kill_9_loses_no_message_a_client_received() {
    let dir = tmpdir("kill9");
    let args = [
        "--data-dir",
        dir.to_str().unwrap(),
        // The order write-then-send is what is tested, not the sync.
        "--fsync",
        "never",
        "--msg-rate",
        "0",
        "--history",
        "5000",
    ];
    let s = TestServer::start(&args);
    let mut observer = raw_ws(&s, "/ws");
    observer
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut sender = raw_ws(&s, "/ws");
    let pid = s.pid();
    let writer = std::thread::spawn(move || {
        for i in 0..5000 {
            let f = client_frame(
                1,
                true,
                json!({"username": "w", "message": format!("m{i}")})
                    .to_string()
                    .as_bytes(),
            );
            if sender.write_all(&f).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            if i == 300 {
                Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .unwrap();
            }
        }
    });
    let mut seen = Vec::new();
    let mut buf = std::io::BufReader::new(&mut observer);
    while let Ok((1, payload)) = try_read_frame(&mut buf) {
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        seen.push(v["id"].as_u64().unwrap());
    }
    writer.join().unwrap();
    drop(s);
    assert!(
        seen.len() > 50,
        "the observer saw messages before the kill ({})",
        seen.len()
    );
    let s = TestServer::start(&args);
    let mut c = s.ws();
    let w = join(&mut c, "after");
    let kept: std::collections::HashSet<u64> = w["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    let lost: Vec<&u64> = seen.iter().filter(|id| !kept.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "{} messages a client received were lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs picochat under strace with `fsync`, sends `n` messages one at a
/// time, and returns the trace.
fn traced_run(fsync: &str, n: usize) -> String {
    let dir = tmpdir(&format!("strace-{fsync}"));
    let trace = dir.with_extension("trace");
    let trace_arg = trace.to_str().unwrap().to_string();
    let wrapper = [
        "strace",
        "-f",
        "-qq",
        "-s",
        "120",
        "-e",
        "trace=write,writev,fdatasync,fsync",
        "-o",
        &trace_arg,
    ];
    let s = TestServer::start_under(
        &wrapper,
        &[
            "--data-dir",
            dir.to_str().unwrap(),
            "--fsync",
            fsync,
            "--msg-rate",
            "0",
        ],
    );
    let mut a = s.ws();
    let mut b = s.ws();
    for i in 0..n {
        send_json(
            &mut a,
            json!({"username": "a", "message": format!("traced {i}")}),
        );
        recv_type(&mut b, "message");
    }
    // SIGTERM to picochat itself (strace's child): a clean exit ends strace too.
    Command::new("pkill")
        .args(["-TERM", "-P", &s.pid().to_string()])
        .status()
        .unwrap();
    let mut s = s;
    let _ = s.child.wait();
    let text =
        std::fs::read_to_string(&trace).expect("strace wrote a trace (is strace installed?)");
    let _ = std::fs::remove_file(&trace);
    let _ = std::fs::remove_dir_all(&dir);
    text
}

/// For each message id, the trace's line numbers of: its write to the log,
/// the first sync after that, and the first socket write carrying it.
fn order_per_message(trace: &str, n: u64) -> Vec<(u64, usize, Option<usize>, usize)> {
    let lines: Vec<&str> = trace.lines().collect();
    (1..=n)
        .map(|id| {
            let needle = format!("\\\"id\\\":{id},");
            let logged = lines
                .iter()
                .position(|l| {
                    l.contains(" write(")
                        && l.contains("\"{\\\"type\\\":\\\"message\\\"")
                        && l.contains(&needle)
                })
                .unwrap_or_else(|| panic!("no log write of id {id}"));
            let sent = lines
                .iter()
                .position(|l| l.contains("writev(") && l.contains(&needle))
                .unwrap_or_else(|| panic!("no socket write of id {id}"));
            let synced = lines[logged..]
                .iter()
                .position(|l| l.contains("fdatasync(") || l.contains("fsync("))
                .map(|i| i + logged);
            (id, logged, synced, sent)
        })
        .collect()
}

#[test]
fn fsync_always_syncs_each_message_before_any_client_is_sent_it() {
    let n = 20;
    let trace = traced_run("always", n as usize);
    for (id, logged, synced, sent) in order_per_message(&trace, n) {
        let synced = synced.unwrap_or_else(|| panic!("id {id}: never synced"));
        assert!(
            logged < synced && synced < sent,
            "id {id}: log write at line {logged}, sync at {synced}, first socket write at {sent}"
        );
    }
}

#[test]
fn without_fsync_always_messages_still_reach_the_log_before_any_socket() {
    let n = 20;
    let trace = traced_run("never", n as usize);
    let orders = order_per_message(&trace, n);
    for (id, logged, _, sent) in &orders {
        assert!(
            logged < sent,
            "id {id}: log write at line {logged}, socket at {sent}"
        );
    }
    // And the check above can fail: `never` does not sync before sending.
    assert!(
        orders
            .iter()
            .any(|(_, _, synced, sent)| synced.is_none_or(|s| s > *sent)),
        "--fsync never synced before sending?"
    );
}
