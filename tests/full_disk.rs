//! A full disk under `--data-dir`, for real: a small tmpfs mounted by the test.
//! While the log cannot take a message, the message is not delivered, the
//! sender hears `unavailable`, `/healthz` says 503 `degraded` and the error is
//! counted; the first message after space returns goes through at once; and
//! after a restart the disk holds exactly what was delivered, with no short
//! write left behind. Needs root (mount), as `tests/run-all.sh` has.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` at a fresh directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = std::env::temp_dir().join(format!("picochat-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(
            ok.success(),
            "mounting a tmpfs failed (this test needs root)"
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Writes zeros into `path` until the filesystem says it is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let block = [0u8; 4096];
    loop {
        if let Err(e) = f.write_all(&block) {
            assert_eq!(e.raw_os_error(), Some(libc_enospc()), "{e}");
            return;
        }
    }
}

fn libc_enospc() -> i32 {
    28 // ENOSPC on Linux
}

fn status_of(addr: std::net::SocketAddr, path: &str) -> (u16, Value) {
    let raw = http_raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    );
    let text = String::from_utf8_lossy(&raw).to_string();
    let code = text[9..12].parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn a_full_disk_refuses_messages_says_so_and_recovers_by_itself() {
    if unsafe_euid() != 0 {
        panic!("this test mounts a tmpfs and needs root; tests/run-all.sh runs as root");
    }
    let fs = Tmpfs::mount("512k");
    let data = fs.0.join("data");
    let args = [
        "--data-dir",
        data.to_str().unwrap(),
        "--fsync",
        "always",
        "--msg-rate",
        "0",
    ];
    let s = TestServer::start(&args);
    let mut sender = s.ws();
    let mut observer = s.ws();
    send_json(
        &mut sender,
        json!({"type": "join", "room": "general", "username": "ann"}),
    );
    recv_type(&mut sender, "welcome");
    send_json(
        &mut observer,
        json!({"type": "join", "room": "general", "username": "obs"}),
    );
    recv_type(&mut observer, "welcome");
    let mut delivered = Vec::new();
    let say = |text: &str, sender: &mut Ws| {
        send_json(sender, json!({"room": "general", "message": text}))
    };
    for i in 0..5 {
        say(&format!("before {i}"), &mut sender);
        delivered.push(recv_type(&mut observer, "message")["id"].as_u64().unwrap());
    }
    assert_eq!(status_of(s.addr, "/healthz").0, 200);

    // The disk fills up. A message longer than a page cannot fit in the slack
    // of the journal's last tmpfs page (a short one may, and is then stored).
    fill(&fs.0.join("filler"));
    let long = "f".repeat(4000);
    say(&long, &mut sender);
    let refusal = recv_type(&mut sender, "error");
    assert_eq!(
        (refusal["code"].as_str(), refusal["room"].as_str()),
        (Some("unavailable"), Some("general"))
    );
    let (code, health) = status_of(s.addr, "/healthz");
    assert_eq!((code, health["status"].as_str()), (503, Some("degraded")));
    assert!(s.metric("picochat_log_errors_total") >= 1.0);
    assert_eq!(s.metric("picochat_log_up"), 0.0);
    say(&long.replace('f', "g"), &mut sender);
    assert_eq!(
        recv_type(&mut sender, "error")["code"],
        "unavailable",
        "no message while full"
    );

    // Space comes back: the very next message goes through, health is ok again.
    std::fs::remove_file(fs.0.join("filler")).unwrap();
    say("after", &mut sender);
    let after = recv_type(&mut observer, "message");
    assert_eq!(
        after["message"], "after",
        "the observer never saw a refused message"
    );
    assert_eq!(
        after["id"].as_u64(),
        Some(delivered.last().unwrap() + 1),
        "refused ids were taken back"
    );
    delivered.push(after["id"].as_u64().unwrap());
    assert_eq!(
        status_of(s.addr, "/healthz"),
        (200, status_of(s.addr, "/healthz").1)
    );
    assert_eq!(status_of(s.addr, "/healthz").1["status"], "ok");

    // After a restart, the disk holds exactly what was delivered.
    Command::new("kill")
        .args(["-9", &s.pid().to_string()])
        .status()
        .unwrap();
    drop(s);
    let journal = std::fs::read_to_string(data.join("messages.jsonl")).unwrap();
    assert!(journal.ends_with('\n'), "no short write left at the end");
    assert!(
        !journal.contains("fff") && !journal.contains("ggg"),
        "the refused messages are not on disk"
    );
    let s = TestServer::start(&args);
    assert!(!s.log_text().contains("torn"), "{}", s.log_text());
    let mut back = s.ws();
    send_json(
        &mut back,
        json!({"type": "join", "room": "general", "username": "back"}),
    );
    let w = recv_type(&mut back, "welcome");
    let ids: Vec<u64> = w["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, delivered);
}

fn unsafe_euid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}
