//! permessage-deflate over real sockets: the 101 answers an offer this server
//! can honour and declines others; a broadcast reaches a compressing client
//! deflated (RSV1) and a plain client as it is; compressed messages from a
//! client, in one frame or split over several, are inflated; and bad input
//! gets its close code: RSV1 without the extension or on a continuation
//! (1002), data that does not inflate or text that is not UTF-8 once
//! inflated (1007), a message that inflates past `--max-message` (1009).

mod common;
use common::*;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;

/// Upgrades with these `Sec-WebSocket-Extensions` lines; returns the socket and the 101 head.
fn upgrade(s: &TestServer, extensions: &[&str]) -> (TcpStream, String) {
    let mut sock = s.tcp();
    let lines: String = extensions
        .iter()
        .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
        .collect();
    write!(
        sock,
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{lines}\r\n",
        s.addr
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        sock.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    (sock, head)
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut d = Decompress::new(false);
    let mut input = data.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

/// A masked client frame with RSV1 as given.
fn frame(opcode: u8, fin: bool, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = client_frame(opcode, fin, payload);
    if rsv1 {
        f[0] |= 0x40;
    }
    f
}

/// The next text frame as (compressed, JSON), skipping others.
fn next_text(sock: &mut TcpStream) -> (bool, Value) {
    loop {
        let mut h = [0u8; 2];
        sock.read_exact(&mut h).unwrap();
        let mut len = (h[1] & 0x7f) as usize;
        if len == 126 {
            let mut b = [0u8; 2];
            sock.read_exact(&mut b).unwrap();
            len = u16::from_be_bytes(b) as usize;
        } else if len == 127 {
            let mut b = [0u8; 8];
            sock.read_exact(&mut b).unwrap();
            len = u64::from_be_bytes(b) as usize;
        }
        let mut payload = vec![0u8; len];
        sock.read_exact(&mut payload).unwrap();
        if h[0] & 0x0f != 1 {
            continue;
        }
        let compressed = h[0] & 0x40 != 0;
        let bytes = if compressed {
            inflate(&payload)
        } else {
            payload
        };
        return (compressed, serde_json::from_slice(&bytes).unwrap());
    }
}

fn next_of(sock: &mut TcpStream, kind: &str) -> (bool, Value) {
    loop {
        let (c, v) = next_text(sock);
        if v["type"] == kind {
            return (c, v);
        }
    }
}

#[test]
fn offers_are_answered_or_declined() {
    let s = TestServer::start(&[]);
    let (_, head) = upgrade(&s, &["permessage-deflate; client_max_window_bits"]);
    assert!(head.contains(
        "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"
    ), "{head}");
    for declined in [
        &["permessage-deflate; server_max_window_bits=10"][..],
        &["permessage-deflate; mystery=1"],
        &["permessage-deflate; client_no_context_takeover; client_no_context_takeover"],
        &["x-webkit-deflate-frame"],
        &[],
    ] {
        let (_, head) = upgrade(&s, declined);
        assert!(
            !head.contains("Sec-WebSocket-Extensions"),
            "{declined:?}: {head}"
        );
    }
    // A list over two lines is one list.
    let (_, head) = upgrade(&s, &["permessage-deflate; foo", "permessage-deflate"]);
    assert!(head.contains("permessage-deflate"), "{head}");
    let off = TestServer::start(&["--compression", "off"]);
    let (_, head) = upgrade(&off, &["permessage-deflate"]);
    assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
}

#[test]
fn broadcasts_reach_each_client_in_its_form_and_compressed_messages_are_read() {
    let s = TestServer::start(&["--msg-rate", "0"]);
    let (mut zip, _) = upgrade(&s, &["permessage-deflate"]);
    let mut plain = s.ws();
    join(&mut plain, "plain");
    // A compressed join, in one frame.
    let join_frame = json!({"type": "join", "username": "zip"}).to_string();
    zip.write_all(&frame(1, true, true, &deflate(join_frame.as_bytes())))
        .unwrap();
    let (compressed, welcome) = next_of(&mut zip, "welcome");
    assert!(compressed, "the welcome is over --compress-min: deflated");
    assert_eq!(welcome["you"]["username"], "zip");
    // A compressed message split over three frames (RSV1 on the first only).
    let text = "hello ".repeat(60);
    let body = deflate(json!({"message": text}).to_string().as_bytes());
    let (a, rest) = body.split_at(body.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    zip.write_all(&frame(1, false, true, a)).unwrap();
    zip.write_all(&frame(0, false, false, b)).unwrap();
    zip.write_all(&frame(0, true, false, c)).unwrap();
    let (compressed, m) = next_of(&mut zip, "message");
    assert!(compressed);
    assert_eq!(m["message"], text.as_str());
    let got = recv_type(&mut plain, "message");
    assert_eq!(
        got["message"],
        text.as_str(),
        "the plain client reads it as it is"
    );
    // A short one stays uncompressed (under --compress-min).
    zip.write_all(&frame(1, true, false, br#"{"message":"hi"}"#))
        .unwrap();
    let (compressed, m) = next_of(&mut zip, "message");
    assert_eq!((compressed, m["message"].as_str()), (false, Some("hi")));
}

#[test]
fn bad_compressed_input_gets_its_close_code() {
    let s = TestServer::start(&["--max-message", "16KiB"]);
    let check = |deflate_on: bool, frames: Vec<Vec<u8>>, code: u16, why: &str| {
        let (mut sock, _) = if deflate_on {
            upgrade(&s, &["permessage-deflate"])
        } else {
            upgrade(&s, &[])
        };
        for f in frames {
            let _ = sock.write_all(&f);
        }
        assert_eq!(read_close_code(&mut sock), code, "{why}");
    };
    let hi = deflate(br#"{"message":"hi"}"#);
    check(
        false,
        vec![frame(1, true, true, &hi)],
        1002,
        "RSV1 without the extension",
    );
    check(
        true,
        vec![frame(9, true, true, b"")],
        1002,
        "RSV1 on a ping",
    );
    check(
        true,
        vec![frame(1, false, true, &hi), frame(0, true, true, b"")],
        1002,
        "RSV1 on a continuation",
    );
    check(
        true,
        vec![frame(1, true, true, b"\xff\xfe\xfd not deflate")],
        1007,
        "corrupt",
    );
    check(
        true,
        vec![frame(1, true, true, &deflate(b"\xc3\x28 not utf-8"))],
        1007,
        "bad UTF-8 once inflated",
    );
    let bomb = deflate(&vec![b'a'; 1 << 20]);
    assert!(bomb.len() < 16 << 10);
    check(
        true,
        vec![frame(1, true, true, &bomb)],
        1009,
        "inflates past --max-message",
    );
}

#[test]
fn a_broadcast_is_compressed_once_for_every_client_that_compresses() {
    let s = TestServer::start(&["--msg-rate", "0"]);
    let mut clients: Vec<TcpStream> = (0..5)
        .map(|i| {
            let (mut sock, _) = upgrade(&s, &["permessage-deflate"]);
            let join = json!({"type": "join", "username": format!("z{i}")}).to_string();
            sock.write_all(&frame(1, true, false, join.as_bytes()))
                .unwrap();
            next_of(&mut sock, "welcome");
            sock
        })
        .collect();
    let before = s.metric("picochat_deflate_messages_total");
    let text = "a broadcast long enough to be compressed ".repeat(10);
    let body = json!({"message": text}).to_string();
    clients[0]
        .write_all(&frame(1, true, false, body.as_bytes()))
        .unwrap();
    for c in &mut clients {
        let (compressed, m) = next_of(c, "message");
        assert!(compressed && m["message"] == text.as_str());
    }
    assert_eq!(
        s.metric("picochat_deflate_messages_total") - before,
        1.0,
        "once, not five times"
    );
    assert!(
        s.metric("picochat_deflate_bytes_out_total") < s.metric("picochat_deflate_bytes_in_total")
    );
}
