//! The admin API over real sockets: absent without `--admin-token-file`;
//! 401 without a token, 403 with a wrong one (and the token in no log line),
//! 429 after 10 failures from one address while others still get in; the
//! rooms listing with each connection's id and address; kicking a connection
//! and every connection of a user (close 1008), nobody else; only on the
//! admin listener when there is one; a short token file stops the start; the
//! /admin page and its one-a-second samples.

mod common;
use common::*;
use serde_json::json;

const TOKEN: &str = "an-admin-token-of-some-length";

fn token_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("picochat-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

fn join_room(ws: &mut Ws, room: &str, name: &str) {
    send_json(ws, json!({"type": "join", "room": room, "username": name}));
    recv_type(ws, "welcome");
}

#[test]
fn without_a_token_file_there_is_no_admin_api() {
    let s = TestServer::start(&[]);
    assert_eq!(
        admin_call(s.addr, "GET", "/api/admin/rooms", Some(TOKEN)).0,
        404
    );
}

#[test]
fn tokens_are_checked_and_failures_limited_per_address() {
    let file = token_file("t1", &format!("{TOKEN}\n"));
    let s = TestServer::start(&["--admin-token-file", file.to_str().unwrap()]);
    let (status, body) = admin_call(s.addr, "GET", "/api/admin/rooms", None);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, body) = admin_call(s.addr, "GET", "/api/admin/rooms", Some("not-the-token"));
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    assert_eq!(
        admin_call(s.addr, "GET", "/api/admin/rooms", Some(TOKEN)).0,
        200
    );
    assert_eq!(
        admin_call(s.addr, "GET", "/api/admin/users/x/kick", Some(TOKEN)).0,
        405
    );
    // Ten failures from 127.0.0.2: refused there, even with the token, not here.
    for _ in 0..10 {
        let mut c = connect_from([127, 0, 0, 2], s.addr);
        assert_eq!(
            admin_call_on(&mut c, "GET", "/api/admin/rooms", Some("guess")).0,
            403
        );
    }
    let mut c = connect_from([127, 0, 0, 2], s.addr);
    let (status, body) = admin_call_on(&mut c, "GET", "/api/admin/rooms", Some(TOKEN));
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("rate_limited"))
    );
    assert_eq!(
        admin_call(s.addr, "GET", "/api/admin/rooms", Some(TOKEN)).0,
        200
    );
    let log = s.log_text();
    assert!(log.contains("admin API: wrong token"), "{log}");
    assert!(!log.contains(TOKEN) && !log.contains("guess"), "{log}");
}

#[test]
fn admins_list_rooms_and_kick_a_connection_or_a_user() {
    let file = token_file("t2", TOKEN);
    let s = TestServer::start(&["--admin-token-file", file.to_str().unwrap()]);
    let mut ann = s.ws();
    join_room(&mut ann, "dev", "Ann Lee");
    let mut ann_tab = s.ws();
    join_room(&mut ann_tab, "dev", "Ann Lee");
    let mut bob = s.ws();
    join_room(&mut bob, "dev", "bob");
    let (status, body) = admin_call(s.addr, "GET", "/api/admin/rooms", Some(TOKEN));
    assert_eq!(status, 200);
    let dev = body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room"] == "dev")
        .unwrap()
        .clone();
    assert_eq!(dev["online"], 2);
    let users = dev["users"].as_array().unwrap();
    assert_eq!(users[0]["username"], "Ann Lee");
    assert_eq!(users[0]["connections"].as_array().unwrap().len(), 2);
    assert_eq!(users[0]["connections"][0]["address"], "127.0.0.1");
    let bob_id = users[1]["connections"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // One connection.
    let (status, body) = admin_call(
        s.addr,
        "POST",
        &format!("/api/admin/connections/{bob_id}/kick"),
        Some(TOKEN),
    );
    assert_eq!((status, body["kicked"].as_u64()), (200, Some(1)));
    assert_eq!(
        closed_with(&mut bob),
        (1008, "removed by a moderator".into())
    );
    // Every connection of a user, by name (percent-encoded).
    let (status, body) = admin_call(
        s.addr,
        "POST",
        "/api/admin/users/Ann%20Lee/kick",
        Some(TOKEN),
    );
    assert_eq!((status, body["kicked"].as_u64()), (200, Some(2)));
    for ws in [&mut ann, &mut ann_tab] {
        assert_eq!(closed_with(ws).0, 1008);
    }
    let (status, body) = admin_call(s.addr, "POST", "/api/admin/users/nobody/kick", Some(TOKEN));
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    // The others chat on.
    let mut carol = s.ws();
    join(&mut carol, "carol");
    send_json(&mut carol, json!({"message": "still here"}));
    assert_eq!(recv_type(&mut carol, "message")["message"], "still here");
    // Counted when freed (after the close handshake, within --linger).
    drop((ann, ann_tab, bob));
    let kicked = "picochat_disconnects_total{reason=\"kicked\"}";
    wait_until("three kicked connections freed", 5, || {
        s.metric(kicked) >= 3.0
    });
    assert_eq!(s.metric(kicked), 3.0);
}

#[test]
fn with_an_admin_listener_the_api_is_only_there_and_short_tokens_are_refused() {
    let file = token_file("t3", TOKEN);
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let s = TestServer::start(&[
        "--admin-token-file",
        file.to_str().unwrap(),
        "--admin-listen",
        &admin_port.to_string(),
    ]);
    assert_eq!(
        admin_call(s.addr, "GET", "/api/admin/rooms", Some(TOKEN)).0,
        404
    );
    assert_eq!(
        admin_call(admin_port, "GET", "/api/admin/rooms", Some(TOKEN)).0,
        200
    );

    let short = token_file("short", "too-short\n");
    let (status, err) = run_to_exit(&["--admin-token-file", short.to_str().unwrap()]);
    assert_eq!(status, Some(2), "{err}");
    assert!(
        err.contains("--admin-token-file") && !err.contains("too-short"),
        "{err}"
    );
}

#[test]
fn the_admin_page_is_served_with_the_api_and_its_samples_cover_every_second() {
    let plain = TestServer::start(&[]);
    assert!(http_raw(
        plain.addr,
        "GET /admin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .starts_with(b"HTTP/1.1 404"));
    let file = token_file("t5", TOKEN);
    let s = TestServer::start(&["--admin-token-file", file.to_str().unwrap()]);
    let page = http_get(s.addr, "/admin");
    assert!(page.contains("<title>picochat admin</title>"), "{page}");
    assert!(http_get(s.addr, "/admin.js").contains("Bearer"));
    let mut ws = s.ws();
    join(&mut ws, "ann");
    send_json(&mut ws, json!({"message": "hi"}));
    recv_type(&mut ws, "message");
    // A sample per second, quiet seconds included: wait for a second one
    // after the message's.
    let samples = || admin_call(s.addr, "GET", "/api/admin/samples", Some(TOKEN));
    let mut body = json!(null);
    wait_until("two samples after the message", 5, || {
        let (status, b) = samples();
        assert_eq!(status, 200);
        body = b;
        body["messages"].as_array().is_some_and(|m| {
            m.iter()
                .position(|v| v.as_u64() > Some(0))
                .is_some_and(|at| at + 1 < m.len())
        })
    });
    let t = body["t"].as_array().unwrap();
    assert!(t.len() >= 2, "{body}");
    assert_eq!(
        body["connections"].as_array().unwrap().last(),
        Some(&json!(1))
    );
    let messages: u64 = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(messages, 1, "{body}");
    // The RSS sampled is the server's own, as /proc shows it now (it moves a little).
    let sampled = body["rss_kib"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_u64()
        .unwrap();
    let (now, _) = procfs::rss_bytes(s.pid()).unwrap();
    let now_kib = now / 1024;
    assert!(
        sampled.abs_diff(now_kib) * 10 <= now_kib,
        "sampled {sampled} KiB, /proc says {now_kib} KiB"
    );
    assert_eq!(admin_call(s.addr, "GET", "/api/admin/samples", None).0, 401);
}
