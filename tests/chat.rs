//! Chat features over real sockets: join/welcome/presence, history and
//! `since` catch-up, and the durable log across restarts.

mod common;
use common::*;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

fn tmpdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("picochat-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

use common::history_ids as ids;

#[test]
fn join_welcome_presence_and_leave() {
    let s = TestServer::start(&[]);
    let mut ann = s.ws();
    send_json(
        &mut ann,
        json!({"type": "join", "username": "ann", "email": "ann@example.org"}),
    );
    let w = recv_type(&mut ann, "welcome");
    assert_eq!(w["you"]["username"], "ann");
    assert_eq!(w["users"][0]["username"], "ann");
    assert!(!w.to_string().contains("ann@example.org"));
    let mut bob = s.ws();
    let w = join(&mut bob, "bob");
    assert_eq!(w["users"].as_array().unwrap().len(), 2);
    let notice = recv_type(&mut ann, "join");
    assert_eq!(
        (notice["username"].as_str(), notice["online"].as_u64()),
        (Some("bob"), Some(2))
    );
    drop(bob);
    let notice = recv_type(&mut ann, "leave");
    assert_eq!(notice["username"], "bob");
    assert_eq!(notice["online"], 1);
    // joined clients send without naming themselves again
    send_json(&mut ann, json!({"type": "message", "message": "hi"}));
    let m = recv_type(&mut ann, "message");
    assert_eq!(m["username"], "ann");
    assert_eq!(m["avatar"].as_str().unwrap().len(), 64);
}

#[test]
fn reconnect_with_since_gets_exactly_the_missed_messages() {
    let s = TestServer::start(&["--history", "50", "--msg-rate", "0"]);
    let mut talker = s.ws();
    join(&mut talker, "talker");
    let mut reader = s.ws();
    let w = join(&mut reader, "reader");
    let epoch = w["epoch"].clone();
    for i in 0..3 {
        send_json(&mut talker, json!({"message": format!("before {i}")}));
    }
    let mut last = 0;
    for _ in 0..3 {
        last = recv_type(&mut reader, "message")["id"].as_u64().unwrap();
    }
    drop(reader); // connection lost
    for i in 0..4 {
        send_json(&mut talker, json!({"message": format!("while away {i}")}));
    }
    for _ in 0..4 {
        recv_type(&mut talker, "message");
    }
    let mut back = s.ws();
    send_json(
        &mut back,
        json!({"type": "join", "username": "reader", "since": last, "epoch": epoch}),
    );
    let w = recv_type(&mut back, "welcome");
    assert_eq!(
        ids(&w),
        [last + 1, last + 2, last + 3, last + 4],
        "no gap, no duplicate"
    );
    assert_eq!(w["truncated"], false);
    assert_eq!(w["history"][0]["message"], "while away 0");
}

#[test]
fn durable_log_survives_restart_and_continues_ids() {
    let dir = tmpdir("durable");
    let args = ["--data-dir", dir.to_str().unwrap(), "--msg-rate", "0"];
    let epoch;
    {
        let s = TestServer::start(&args);
        let mut c = s.ws();
        epoch = join(&mut c, "keeper")["epoch"].clone();
        for i in 1..=5 {
            send_json(&mut c, json!({"message": format!("m{i}")}));
            recv_type(&mut c, "message");
        }
        s.signal("-TERM");
    }
    let s = TestServer::start(&args);
    let mut c = s.ws();
    let w = join(&mut c, "keeper");
    assert_eq!(w["epoch"], epoch, "same id sequence after restart");
    assert_eq!(ids(&w), [1, 2, 3, 4, 5]);
    send_json(&mut c, json!({"message": "after restart"}));
    assert_eq!(recv_type(&mut c, "message")["id"], 6);
    let log = std::fs::read_to_string(dir.join("messages.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 6);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_torn_final_record_is_skipped_with_a_warning() {
    let dir = tmpdir("torn");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("messages.jsonl"),
        "{\"type\":\"message\",\"id\":1,\"time\":1,\"username\":\"a\",\"message\":\"whole\"}\n{\"type\":\"message\",\"id\":2,\"ti",
    )
    .unwrap();
    let s = TestServer::start(&["--data-dir", dir.to_str().unwrap()]);
    assert!(
        s.log_text().contains("torn last record"),
        "{}",
        s.log_text()
    );
    let mut c = s.ws();
    let w = join(&mut c, "x");
    assert_eq!(ids(&w), [1]);
    send_json(&mut c, json!({"message": "next"}));
    assert_eq!(recv_type(&mut c, "message")["id"], 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_history_of_long_messages_never_pushes_a_joiner_over_its_output_cap() {
    // 200 messages of 8 KiB: 1.6 MB of history against a 1 MiB output limit.
    let s = TestServer::start(&[
        "--msg-rate",
        "0",
        "--max-output",
        "1MiB",
        "--output-soft-limit",
        "1MiB",
    ]);
    let mut writer = raw_ws(&s, "/ws");
    let mut writer_rx = writer.try_clone().unwrap();
    let drain =
        std::thread::spawn(move || read_all(&mut writer_rx, std::time::Duration::from_secs(3)));
    let long = "y".repeat(8000);
    for _ in 0..200 {
        writer
            .write_all(&client_frame(
                1,
                true,
                json!({"username": "w", "message": long})
                    .to_string()
                    .as_bytes(),
            ))
            .unwrap();
    }
    wait_until("the 200 messages stored", 10, || {
        s.metric("picochat_last_message_id") >= 200.0
    });
    let mut joiner = s.ws();
    let w = join(&mut joiner, "late");
    let got = ids(&w);
    assert!(
        !got.is_empty() && *got.last().unwrap() == 200,
        "the newest messages are in the welcome"
    );
    assert!(got.len() < 200, "history was cut to fit");
    assert_eq!(w["truncated"], true, "and the page is told so");
    // still connected, still chatting
    send_json(&mut joiner, json!({"message": "hello"}));
    assert_eq!(recv_type(&mut joiner, "message")["message"], "hello");
    drop(writer);
    drain.join().unwrap();
}
