//! One client address cannot take the whole server: past
//! `--max-connections-per-address` or `--upgrades-per-address` its new
//! connections get 503, while other addresses still get in and chat. Clients
//! here connect from 127.0.0.2 (bound before connecting) and from 127.0.0.1;
//! behind a trusted proxy the address is the rightmost `X-Forwarded-For`.

mod common;
use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;

const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// Sends a WebSocket upgrade (with `extra` header lines) and returns the status line.
fn upgrade(s: &mut TcpStream, extra: &str) -> String {
    write!(s, "{UPGRADE}{extra}\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// A chat client from 127.0.0.1 still gets in and its message goes round.
fn still_chats(s: &TestServer) {
    let mut ws = s.ws();
    join(&mut ws, "local");
    send_json(&mut ws, json!({"message": "still here"}));
    assert_eq!(recv_type(&mut ws, "message")["message"], "still here");
}

#[test]
fn one_address_at_its_connection_limit_gets_503_and_others_still_chat() {
    let s = TestServer::start(&["--max-connections-per-address", "5"]);
    let mut held: Vec<TcpStream> = (0..5)
        .map(|_| connect_from([127, 0, 0, 2], s.addr))
        .collect();
    for c in held.iter_mut().take(2) {
        assert!(upgrade(c, "").contains("101"), "within the limit");
    }
    let mut sixth = connect_from([127, 0, 0, 2], s.addr);
    let status = upgrade(&mut sixth, "");
    assert!(status.contains("503"), "{status}");
    still_chats(&s);
    assert!(s.metric("picochat_per_address_refused_total") >= 1.0);
    // A slot freed is a slot again.
    drop(held.pop());
    drop(sixth);
    // Four held, and this metric request itself: the two dropped are freed.
    wait_until("the dropped connections freed", 5, || {
        s.metric("picochat_connections_open") <= 5.0
    });
    let mut again = connect_from([127, 0, 0, 2], s.addr);
    assert!(upgrade(&mut again, "").contains("101"));
}

#[test]
fn one_address_upgrading_too_fast_gets_503_and_others_still_chat() {
    let s = TestServer::start(&["--upgrades-per-address", "3"]);
    let mut ok = 0;
    let mut refused = 0;
    let mut open = Vec::new();
    for _ in 0..10 {
        let mut c = connect_from([127, 0, 0, 2], s.addr);
        let status = upgrade(&mut c, "");
        if status.contains("101") {
            ok += 1;
        } else if status.contains("503") {
            refused += 1;
        }
        open.push(c);
    }
    // Ten attempts well within two wall-clock seconds: at most 3 per second.
    assert!(
        refused >= 4 && ok <= 6 && ok + refused == 10,
        "{ok} upgraded, {refused} refused"
    );
    still_chats(&s);
}

#[test]
fn behind_a_trusted_proxy_the_forwarded_address_is_the_one_limited() {
    let s = TestServer::start(&["--trust-proxy", "on", "--max-connections-per-address", "2"]);
    let from = |client: &str| format!("X-Forwarded-For: 198.51.100.1, {client}\r\n");
    // All from the proxy (127.0.0.1), for two different clients.
    let mut a1 = s.tcp();
    let mut a2 = s.tcp();
    assert!(upgrade(&mut a1, &from("203.0.113.9")).contains("101"));
    assert!(upgrade(&mut a2, &from("203.0.113.9")).contains("101"));
    let mut a3 = s.tcp();
    let status = upgrade(&mut a3, &from("203.0.113.9"));
    assert!(
        status.contains("503"),
        "a third for the same client: {status}"
    );
    let mut b = s.tcp();
    assert!(
        upgrade(&mut b, &from("203.0.113.10")).contains("101"),
        "another client"
    );
}
