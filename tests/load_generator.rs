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
fn rooms_without_enough_clients_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_picochat-load"))
        .args(["--clients", "3", "--rooms", "4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rooms must not exceed --clients"));
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
