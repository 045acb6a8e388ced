//! WebSocket behaviour over real sockets: upgrade, broadcast, framing rules
//! and close codes, with tungstenite's client and hand-made frames.

mod common;
use common::*;
use serde_json::json;
use std::io::Write;
use tungstenite::Message;

#[test]
fn upgrade_is_refused_for_bad_version_key_or_foreign_origin() {
    let s = TestServer::start(&["--allow-origin", "http://friend.example"]);
    let base =
        "GET /ws HTTP/1.1\r\nHost: chat.lan\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let cases = [
        (
            format!("{base}{key}Sec-WebSocket-Version: 8\r\n\r\n"),
            "426",
        ),
        (
            format!("{base}Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n"),
            "400",
        ),
        (
            format!("{base}{key}Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n\r\n"),
            "403",
        ),
        (
            format!("{base}{key}Sec-WebSocket-Version: 13\r\nOrigin: http://chat.lan\r\n\r\n"),
            "101",
        ),
        (
            format!(
                "{base}{key}Sec-WebSocket-Version: 13\r\nOrigin: http://friend.example\r\n\r\n"
            ),
            "101",
        ),
    ];
    for (req, status) in cases {
        let mut c = s.tcp();
        c.write_all(req.as_bytes()).unwrap();
        let mut buf = [0u8; 12];
        std::io::Read::read_exact(&mut c, &mut buf).unwrap();
        assert_eq!(&buf[9..12], status.as_bytes(), "{req}");
    }
    let mut ws = s.ws();
    join(&mut ws, "still-works");
}

#[test]
fn a_message_reaches_every_client_including_the_sender_and_never_the_email() {
    let s = TestServer::start(&[]);
    let mut clients: Vec<Ws> = (0..5).map(|_| s.ws()).collect();
    let mut raw_frames = Vec::new();
    send_json(
        &mut clients[2],
        json!({"email": "Secret@Example.org", "username": "carol", "message": "hello all"}),
    );
    for c in clients.iter_mut() {
        let m = recv_type(c, "message");
        raw_frames.push(m.to_string());
        assert_eq!(m["username"], "carol");
        assert_eq!(m["message"], "hello all");
        assert_eq!(m["id"], 1);
        assert!(m["time"].as_u64().unwrap() > 1_700_000_000_000);
        assert_eq!(m["avatar"].as_str().unwrap().len(), 64);
    }
    for f in raw_frames {
        assert!(!f.to_lowercase().contains("secret@example.org"), "{f}");
    }
    // ids strictly increase across senders
    send_json(&mut clients[0], json!({"username": "a", "message": "two"}));
    send_json(
        &mut clients[4],
        json!({"username": "b", "message": "three"}),
    );
    let ids: Vec<u64> = (0..2)
        .map(|_| {
            recv_type(&mut clients[1], "message")["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids, [2, 3]);
    assert!(
        !s.log_text().to_lowercase().contains("secret@example.org"),
        "email never logged"
    );
}

#[test]
fn bad_json_and_bad_fields_get_an_error_and_the_connection_stays_open() {
    let s = TestServer::start(&[]);
    let mut a = s.ws();
    let mut b = s.ws();
    a.send(Message::text("this is not json")).unwrap();
    assert_eq!(recv_json(&mut a)["code"], "bad_json");
    send_json(&mut a, json!({"username": "", "message": "x"}));
    assert_eq!(recv_json(&mut a)["code"], "bad_username");
    a.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(recv_json(&mut a)["code"], "binary_unsupported");
    send_json(&mut a, json!({"username": "a", "message": "fine"}));
    assert_eq!(recv_type(&mut a, "message")["message"], "fine");
    // b saw only the good message, no errors
    assert_eq!(recv_json(&mut b)["message"], "fine");
}

#[test]
fn fragments_reassemble_and_pings_get_pongs() {
    let s = TestServer::start(&[]);
    let mut c = raw_ws(&s, "/ws");
    let text = r#"{"username":"frag","message":"in pieces é"}"#.as_bytes();
    let (a, rest) = text.split_at(10);
    let (b, d) = rest.split_at(rest.len() - 2); // the é is split between b and d
    c.write_all(&client_frame(1, false, a)).unwrap();
    c.write_all(&client_frame(9, true, b"are you there"))
        .unwrap(); // ping between fragments
    c.write_all(&client_frame(0, false, b)).unwrap();
    c.write_all(&client_frame(0, true, d)).unwrap();
    assert_eq!(
        read_frame(&mut c),
        (10, b"are you there".to_vec()),
        "pong echoes the ping payload"
    );
    let (op, payload) = read_frame(&mut c);
    assert_eq!(op, 1);
    let m: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(m["message"], "in pieces é");
}

#[test]
fn close_is_echoed_with_the_same_code() {
    let s = TestServer::start(&[]);
    let mut c = raw_ws(&s, "/ws");
    let mut body = 4001u16.to_be_bytes().to_vec();
    body.extend_from_slice(b"bye");
    c.write_all(&client_frame(8, true, &body)).unwrap();
    assert_eq!(read_close_code(&mut c), 4001);
    assert!(
        read_all(&mut c, std::time::Duration::from_secs(3)).is_empty(),
        "server closes the TCP connection"
    );
}

#[test]
fn protocol_violations_get_their_close_codes() {
    let s = TestServer::start(&["--max-message", "1KiB", "--max-text", "512"]);
    // unmasked client frame -> 1002
    let mut c = raw_ws(&s, "/ws");
    c.write_all(&[0x81, 0x02, b'h', b'i']).unwrap();
    assert_eq!(read_close_code(&mut c), 1002);
    // invalid UTF-8 in a text frame -> 1007
    let mut c = raw_ws(&s, "/ws");
    c.write_all(&client_frame(
        1,
        true,
        &[
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80,
        ],
    ))
    .unwrap();
    assert_eq!(read_close_code(&mut c), 1007);
    // over the message limit -> 1009, decided from the header alone
    let mut c = raw_ws(&s, "/ws");
    let frame = client_frame(1, true, &vec![b'a'; 2000]);
    c.write_all(&frame[..8]).unwrap();
    assert_eq!(read_close_code(&mut c), 1009);
    // too big across fragments -> 1009
    let mut c = raw_ws(&s, "/ws");
    c.write_all(&client_frame(1, false, &[b'a'; 800])).unwrap();
    c.write_all(&client_frame(0, true, &[b'a'; 800])).unwrap();
    assert_eq!(read_close_code(&mut c), 1009);
    // reserved opcode, reserved bits, continuation without start, long ping -> 1002
    for bad in [
        client_frame(3, true, b"x"),
        {
            let mut f = client_frame(1, true, b"x");
            f[0] |= 0x40;
            f
        },
        client_frame(0, true, b"x"),
        client_frame(9, true, &[0; 126]),
    ] {
        let mut c = raw_ws(&s, "/ws");
        c.write_all(&bad).unwrap();
        assert_eq!(read_close_code(&mut c), 1002, "{:?}", &bad[..2]);
    }
    // and a normal client is unaffected
    let mut ws = s.ws();
    join(&mut ws, "ok");
}
