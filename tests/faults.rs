//! Hostile and broken peers, over real sockets, bounded in count and time:
//! the server keeps serving everyone else and never exits.

mod common;
use common::*;
use serde_json::json;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A normal user sends and receives within `limit`.
fn chat_roundtrip(s: &TestServer, limit: Duration) {
    let mut ws = s.ws();
    join(&mut ws, "calm");
    let t = Instant::now();
    send_json(&mut ws, json!({"message": "still here"}));
    assert_eq!(recv_type(&mut ws, "message")["message"], "still here");
    assert!(t.elapsed() < limit, "round trip took {:?}", t.elapsed());
}

#[test]
fn slowloris_connections_are_cut_off_while_chat_goes_on() {
    let s = TestServer::start(&["--header-timeout", "1s"]);
    // A valid request line, then a header dribbled a byte at a time that never ends.
    let mut loris: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut c = s.tcp();
            c.write_all(b"GET / HTTP/1.1\r\n").unwrap();
            c
        })
        .collect();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1600) {
        for c in loris.iter_mut() {
            let _ = c.write_all(b"X");
        }
        chat_roundtrip(&s, Duration::from_millis(500));
        std::thread::sleep(Duration::from_millis(100));
    }
    for mut c in loris {
        let got = read_all(&mut c, Duration::from_secs(3));
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    }
    // Every one of the 50 is cut for its timeout (counted once freed), and nothing else is.
    let timeouts = "picochat_disconnects_total{reason=\"timeout\"}";
    wait_until("all 50 freed", 5, || s.metric(timeouts) >= 50.0);
    assert_eq!(s.metric(timeouts), 50.0);
}

#[test]
fn idle_keep_alive_connections_are_closed_after_the_timeout() {
    let s = TestServer::start(&["--keepalive-timeout", "300ms"]);
    let mut c = s.tcp();
    c.write_all(b"GET /favicon.svg HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let t = Instant::now();
    let got = read_all(&mut c, Duration::from_secs(5));
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "answered first"
    );
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(2),
        "closed after {waited:?}"
    );
    assert!(s.metric("picochat_disconnects_total{reason=\"timeout\"}") >= 1.0);
}

#[test]
fn a_silent_websocket_is_pinged_then_closed_and_a_live_one_stays() {
    let s = TestServer::start(&["--ping-interval", "300ms", "--pong-timeout", "300ms"]);
    let mut silent = raw_ws(&s, "/ws");
    let mut live = raw_ws(&s, "/ws");
    // live answers every ping with a pong, on a thread
    let mut live_rx = live.try_clone().unwrap();
    let answered = std::thread::spawn(move || {
        let mut pongs = 0;
        let end = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < end {
            let (op, payload) = read_frame(&mut live_rx);
            if op == 9 {
                live.write_all(&client_frame(10, true, &payload)).unwrap();
                pongs += 1;
            }
        }
        (pongs, live)
    });
    let (op, _) = read_frame(&mut silent);
    assert_eq!(op, 9, "a quiet client is pinged");
    let t = Instant::now();
    assert_eq!(read_close_code(&mut silent), 1001);
    assert!(t.elapsed() < Duration::from_secs(2));
    let (pongs, _live) = answered.join().unwrap();
    assert!(pongs >= 2, "the live client was pinged repeatedly and kept");
    assert_eq!(s.metric("picochat_websocket_clients"), 1.0);
}

#[test]
fn a_message_dribbled_byte_by_byte_is_cut_off() {
    let s = TestServer::start(&["--message-timeout", "500ms"]);
    let mut c = raw_ws(&s, "/ws");
    let frame = client_frame(1, true, &[b' '; 100]);
    let t = Instant::now();
    let mut rx = c.try_clone().unwrap();
    let dribble = std::thread::spawn(move || {
        for b in frame {
            if c.write_all(&[b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    assert_eq!(read_close_code(&mut rx), 1008);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "cut off after {:?}",
        t.elapsed()
    );
    dribble.join().unwrap();
    chat_roundtrip(&s, Duration::from_millis(500));
}

#[test]
fn connection_flood_gets_503_past_the_limit_and_service_resumes() {
    let s = TestServer::start(&["--max-connections", "20"]);
    // Accepted in the order they connected: these 20 fill the limit before the next.
    let held: Vec<TcpStream> = (0..20).map(|_| s.tcp()).collect();
    let text =
        String::from_utf8_lossy(&http_raw(s.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")).to_string();
    assert!(
        text.starts_with("HTTP/1.1 503") && text.contains("Retry-After"),
        "{text}"
    );
    let mut c = s.tcp();
    c.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let text = String::from_utf8_lossy(&read_all(&mut c, Duration::from_secs(3))).to_string();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    // Far past the limit: closed at once, no answer, no hang.
    let flood: Vec<TcpStream> = (0..150).map(|_| s.tcp()).collect();
    drop(flood);
    drop(held);
    // Every connection past the limit is counted when accepted: the two
    // answered 503 above, the 150 (64 held for a 503, the rest closed at
    // once), and any metric request of ours refused while the held ones are
    // still being freed (they connected after the flood, so it is all counted).
    let (mut rejected, mut refused) = (0.0, 0.0);
    wait_until("the held connections freed", 5, || {
        match try_metric_at(s.addr, "picochat_connections_rejected_total") {
            Some(v) => rejected = v,
            None => refused += 1.0,
        }
        rejected > 0.0
    });
    assert_eq!(rejected, 152.0 + refused);
    chat_roundtrip(&s, Duration::from_secs(1));
}

#[test]
fn out_of_file_descriptors_does_not_spin_or_crash() {
    // A hard fd limit of 64 and a connection limit above it: accept() hits EMFILE.
    let (mut child, addr) = start_via_shell("ulimit -n 64", "--max-connections 1000");
    let pid = child.id();
    let flood: Vec<TcpStream> = (0..120)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    // The server has filled its descriptor table (the spare one is given up
    // and taken back at each EMFILE, so one may be free at a time).
    let fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    wait_until("the descriptor table full", 5, || fds() >= 63);
    let cpu0 = procfs::cpu_seconds(pid).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let cpu = procfs::cpu_seconds(pid).unwrap() - cpu0;
    assert!(
        cpu < 0.3,
        "server burned {cpu:.2}s of CPU in 1s: busy loop on EMFILE"
    );
    drop(flood);
    // Still serving once descriptors are free again, and it really hit EMFILE.
    wait_until("descriptors free again", 5, || {
        try_metric_at(addr, "picochat_accept_fd_exhausted_total").is_some()
    });
    let exhausted = metric_at(addr, "picochat_accept_fd_exhausted_total");
    assert!(exhausted >= 1.0, "EMFILE was really hit");
    assert!(child.try_wait().unwrap().is_none());
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_flooder_is_limited_then_dropped_while_a_calm_user_is_served_promptly() {
    let s = TestServer::start(&["--msg-rate", "10"]);
    let mut observer = s.ws();
    join(&mut observer, "observer");
    let mut flooder = raw_ws(&s, "/ws");
    let mut flooder_rx = flooder.try_clone().unwrap();
    let frame = client_frame(
        1,
        true,
        json!({"username": "flood", "message": "spam"})
            .to_string()
            .as_bytes(),
    );
    let flood = std::thread::spawn(move || {
        for _ in 0..2000 {
            if flooder.write_all(&frame).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    let mut codes = Vec::new();
    let close = loop {
        let (op, payload) = read_frame(&mut flooder_rx);
        if op == 8 {
            break u16::from_be_bytes([payload[0], payload[1]]);
        }
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        if v["type"] == "error" {
            codes.push(v["code"].as_str().unwrap().to_string());
        }
    };
    assert!(codes.iter().any(|c| c == "rate_limited"), "{codes:?}");
    assert_eq!(close, 1008, "a flooder that keeps going is disconnected");
    chat_roundtrip(&s, Duration::from_millis(500));
    // The observer saw at most the burst (2N) of the flood, then the calm message.
    let mut spam = 0;
    loop {
        let m = recv_type(&mut observer, "message");
        if m["message"] == "still here" {
            break;
        }
        spam += 1;
    }
    assert!(spam <= 25, "{spam} flood messages got through");
    flood.join().unwrap();
}

#[test]
fn garbage_never_takes_the_server_down() {
    let s = TestServer::start(&[]);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..100 {
        let mut c = s.tcp();
        let bytes: Vec<u8> = (0..(rand() % 4000)).map(|_| rand() as u8).collect();
        if i % 2 == 0 {
            let _ = c.write_all(&bytes); // raw garbage as HTTP
        } else {
            drop(c);
            c = raw_ws(&s, "/ws");
            let _ = c.write_all(&bytes); // garbage as WebSocket frames
        }
        let _ = c.write_all(b"\r\n\r\n");
        drop(c);
    }
    let mut c = raw_ws(&s, "/ws");
    c.write_all(&client_frame(1, true, b"{\"message\": [1,2"))
        .unwrap();
    let (_, payload) = read_frame(&mut c);
    assert!(String::from_utf8_lossy(&payload).contains("bad_json"));
    chat_roundtrip(&s, Duration::from_secs(1));
}

#[test]
fn sigterm_closes_websockets_with_1001_and_exits_zero() {
    let mut s = TestServer::start(&[]);
    let mut a = raw_ws(&s, "/ws");
    let mut b = raw_ws(&s, "/ws");
    s.signal("-TERM");
    assert_eq!(read_close_code(&mut a), 1001);
    assert_eq!(read_close_code(&mut b), 1001);
    // The clients answer the close; the server exits 0 well within its 5 s bound.
    a.write_all(&client_frame(8, true, &1001u16.to_be_bytes()))
        .unwrap();
    let mut status = None;
    wait_until("the exit after SIGTERM", 7, || {
        status = s.child.try_wait().unwrap();
        status.is_some()
    });
    assert!(status.is_some_and(|st| st.success()), "{status:?}");
    s.wait_log("shutting down", 1);
}
