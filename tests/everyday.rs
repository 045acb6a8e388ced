//! Typing notices, reactions, read markers and direct messages over real
//! sockets: on one process, on the journal across a restart (old messages
//! read back from the files with their reactions), and on two processes
//! sharing a real `redis-server`.

mod common;
use common::redis::{node, Redis};
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn tmpdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("picochat-ev-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn join_room(ws: &mut Ws, room: &str, name: &str) -> Value {
    send_json(ws, json!({"type": "join", "room": room, "username": name}));
    recv_type(ws, "welcome")
}

fn post(ws: &mut Ws, room: &str, text: &str) -> u64 {
    send_json(
        ws,
        json!({"type": "message", "room": room, "message": text}),
    );
    loop {
        let m = recv_type(ws, "message");
        if m["room"] == room && m["message"] == text {
            return m["id"].as_u64().unwrap();
        }
    }
}

/// `who` toggles `emoji` on message `id`: the record as it comes back.
fn react(ws: &mut Ws, who: &str, room: &str, id: u64, emoji: &str) -> Value {
    send_json(
        ws,
        json!({"type": "react", "room": room, "id": id, "emoji": emoji}),
    );
    loop {
        let r = recv_type(ws, "react");
        if r["username"] == who && r["emoji"] == emoji && r["target"] == id {
            return r;
        }
    }
}

/// Every frame that arrives within `quiet` of the last one.
fn frames(ws: &mut Ws, quiet: Duration) -> Vec<Value> {
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        let _ = s.set_read_timeout(Some(quiet));
    }
    let mut got = Vec::new();
    while let Ok(m) = ws.read() {
        if let Ok(text) = m.to_text() {
            if let Ok(v) = serde_json::from_str(text) {
                got.push(v);
            }
        }
    }
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    }
    got
}

fn of_type<'a>(frames: &'a [Value], kind: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["type"] == kind).collect()
}

#[test]
fn typing_reaches_the_others_in_the_room_once_per_3_s_and_is_never_stored() {
    let s = TestServer::start(&["--msg-rate", "0"]);
    let (mut ann, mut bob, mut cy) = (s.ws(), s.ws(), s.ws());
    join_room(&mut ann, "dev", "ann");
    join_room(&mut bob, "dev", "bob");
    join_room(&mut cy, "ops", "cy");
    for _ in 0..5 {
        send_json(&mut ann, json!({"type": "typing", "room": "dev"}));
    }
    let got = frames(&mut bob, Duration::from_millis(500));
    assert_eq!(
        of_type(&got, "typing"),
        [&json!({"type": "typing", "room": "dev", "username": "ann"})],
        "five within 3 s are forwarded once: {got:?}"
    );
    assert!(of_type(&frames(&mut ann, Duration::from_millis(200)), "typing").is_empty());
    assert!(of_type(&frames(&mut cy, Duration::from_millis(200)), "typing").is_empty());
    let welcome = join_room(&mut cy, "dev", "cy");
    assert_eq!(welcome["history"], json!([]), "never in a welcome");
}

#[test]
fn reactions_survive_a_restart_and_old_messages_read_from_the_journal_carry_them() {
    let dir = tmpdir("react");
    let args = [
        "--data-dir",
        dir.to_str().unwrap(),
        "--msg-rate",
        "0",
        "--history",
        "10",
        // Memory holds a few messages: older ones come from the files.
        "--history-bytes",
        "8KiB",
    ];
    let (hot, cold);
    {
        let s = TestServer::start(&args);
        let (mut ann, mut bob) = (s.ws(), s.ws());
        join_room(&mut ann, "dev", "ann");
        join_room(&mut bob, "dev", "bob");
        cold = post(&mut ann, "dev", "an old one");
        react(&mut bob, "bob", "dev", cold, "🎉");
        react(&mut ann, "ann", "dev", cold, "👍");
        react(&mut bob, "bob", "dev", cold, "👍");
        let off = react(&mut bob, "bob", "dev", cold, "🎉");
        assert_eq!(off["on"], false, "{off}");
        for i in 0..300 {
            post(&mut ann, "dev", &format!("filler {i}"));
        }
        hot = post(&mut ann, "dev", "a new one");
        react(&mut bob, "bob", "dev", hot, "❤️");
        // Long out of memory: a reaction to it now is refused like an edit.
        send_json(
            &mut bob,
            json!({"type": "react", "room": "dev", "id": cold, "emoji": "👍"}),
        );
        assert_eq!(recv_type(&mut bob, "error")["code"], "not_found");
    }
    let s = TestServer::start(&args);
    let mut cy = s.ws();
    let welcome = join_room(&mut cy, "dev", "cy");
    let newest = welcome["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (newest["id"].as_u64(), &newest["reactions"]),
        (Some(hot), &json!({"❤️": ["bob"]})),
        "{welcome}"
    );
    send_json(
        &mut cy,
        json!({"type": "history", "room": "dev", "around": cold, "limit": 3}),
    );
    let page = recv_type(&mut cy, "history");
    let m = &page["messages"][0];
    assert_eq!(
        (m["id"].as_u64(), &m["reactions"]),
        (Some(cold), &json!({"👍": ["ann", "bob"]})),
        "{page}"
    );
    assert!(page["messages"][1].get("reactions").is_none(), "{page}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_redis_reactions_and_typing_cross_nodes_and_old_pages_carry_reactions() {
    let redis = Redis::start();
    let a = node(&redis, &[]);
    let b = node(&redis, &["--history", "5", "--history-bytes", "2KiB"]);
    let (mut ann, mut bob) = (a.ws(), b.ws());
    join_room(&mut ann, "dev", "ann");
    join_room(&mut bob, "dev", "bob");
    let first = post(&mut ann, "dev", "react to me");
    // Bob reacts to what he has seen: node b may get it a moment after
    // node a echoed it (a reaction to an id b does not know yet is refused).
    while recv_type(&mut bob, "message")["id"] != first {}
    let r = react(&mut bob, "bob", "dev", first, "👍");
    assert_eq!(
        recv_type(&mut ann, "react"),
        r,
        "the same record on both nodes"
    );
    assert_eq!(r["username"], "bob");
    react(&mut ann, "ann", "dev", first, "👍");
    react(&mut ann, "ann", "dev", first, "🚀");
    react(&mut ann, "ann", "dev", first, "🚀");
    // Typing crosses to the other node's members, not stored anywhere.
    let _ = frames(&mut bob, Duration::from_millis(300));
    send_json(&mut ann, json!({"type": "typing", "room": "dev"}));
    assert_eq!(
        recv_type(&mut bob, "typing"),
        json!({"type": "typing", "room": "dev", "username": "ann"})
    );
    for i in 0..60 {
        post(&mut ann, "dev", &format!("filler {i} {}", "x".repeat(60)));
    }
    // Node b keeps 2 KiB: the first message comes from the stream, with
    // what its reactions add up to kept by the publishing script.
    send_json(
        &mut bob,
        json!({"type": "history", "room": "dev", "around": first, "limit": 3}),
    );
    let page = recv_type(&mut bob, "history");
    let m = &page["messages"][0];
    assert_eq!(
        (m["id"].as_u64(), &m["reactions"]),
        (Some(first), &json!({"👍": ["bob", "ann"]})),
        "{page}"
    );
}

/// A message frame of conversation `room` (as this side names it) with `text`.
fn direct_message(ws: &mut Ws, room: &str, text: &str) -> Value {
    loop {
        let m = recv_type(ws, "message");
        if m["room"] == room && m["message"] == text {
            return m;
        }
    }
}

#[test]
fn direct_messages_and_read_markers_survive_a_restart_of_the_journal() {
    let dir = tmpdir("dm");
    let args = ["--data-dir", dir.to_str().unwrap(), "--msg-rate", "0"];
    let (first, read);
    {
        let s = TestServer::start(&args);
        let (mut ann, w) = join_as(&s, "Ann", "secret-of-ann-0123");
        assert_eq!(w["type"], "welcome");
        let (mut bob, _) = join_as(&s, "Bob", "secret-of-bob-0123");
        let (mut cy, _) = join_as(&s, "cy", "secret-of-cy-01234");
        send_json(
            &mut ann,
            json!({"type": "message", "room": "@bob", "message": "just us"}),
        );
        first = direct_message(&mut ann, "@Bob", "just us")["id"]
            .as_u64()
            .unwrap();
        let got = direct_message(&mut bob, "@Ann", "just us");
        assert_eq!(got["id"], first, "{got}");
        let others = frames(&mut cy, Duration::from_millis(300));
        assert!(
            others.iter().all(|f| !f.to_string().contains("just us")),
            "{others:?}"
        );
        send_json(
            &mut bob,
            json!({"type": "read", "room": "@Ann", "id": first}),
        );
        let rooms = http_get(s.addr, "/api/rooms");
        assert!(!rooms.contains('@'), "{rooms}");
        // Moved again within its second: stored at the graceful stop.
        let (mut bob2, _) = join_as(&s, "Bob", "secret-of-bob-0123");
        send_json(
            &mut ann,
            json!({"type": "message", "room": "@bob", "message": "and this"}),
        );
        read = direct_message(&mut bob2, "@Ann", "and this")["id"]
            .as_u64()
            .unwrap();
        send_json(
            &mut bob2,
            json!({"type": "read", "room": "@Ann", "id": read}),
        );
        assert_eq!(recv_type(&mut bob, "read")["id"], read);
        drop((ann, bob, bob2, cy));
        s.signal("-TERM");
        let mut s = s;
        wait_until("a graceful stop", 10, || !s.is_running());
    }
    let s = TestServer::start(&args);
    // Bob is offline, his name still held: Ann can write to him.
    let (mut ann, _) = join_as(&s, "Ann", "secret-of-ann-0123");
    send_json(
        &mut ann,
        json!({"type": "message", "room": "@Bob", "message": "while you were out"}),
    );
    let second = direct_message(&mut ann, "@Bob", "while you were out");
    assert!(second["id"].as_u64() > Some(first));
    let (mut bob, _) = join_as(&s, "Bob", "secret-of-bob-0123");
    send_json(&mut bob, json!({"type": "join", "room": "@ann"}));
    let welcome = recv_type(&mut bob, "welcome");
    assert_eq!(welcome["room"], "@Ann");
    let texts: Vec<&str> = welcome["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["just us", "and this", "while you were out"],
        "{welcome}"
    );
    assert_eq!(welcome["read"], read, "the marker came back: {welcome}");
    // Someone else taking a name later never opens the conversation: the
    // name is held, so another secret cannot even take it.
    let (_, taken) = join_as(&s, "ann", "another-secret-0123");
    assert_eq!(taken["code"], "name_taken");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_redis_a_direct_message_typing_and_read_markers_reach_the_other_node() {
    let redis = Redis::start();
    let a = node(&redis, &[]);
    let b = node(&redis, &[]);
    let (mut ann, _) = join_as(&a, "ann", "secret-of-ann-0123");
    let (mut bob_b, _) = join_as(&b, "bob", "secret-of-bob-0123");
    let (mut bob_a, _) = join_as(&a, "bob", "secret-of-bob-0123");
    let (mut cy_b, _) = join_as(&b, "cy", "secret-of-cy-01234");
    // Holds travel as settings: wait until node a knows bob's (made on b).
    wait_until("bob's hold on node a", 10, || {
        send_json(&mut ann, json!({"type": "typing", "room": "@bob"}));
        let got = recv_json(&mut ann);
        got["type"] != "error"
    });
    send_json(
        &mut ann,
        json!({"type": "message", "room": "@bob", "message": "across nodes"}),
    );
    let sent = direct_message(&mut ann, "@bob", "across nodes");
    let on_b = direct_message(&mut bob_b, "@ann", "across nodes");
    let on_a = direct_message(&mut bob_a, "@ann", "across nodes");
    assert_eq!(
        (on_b["id"].clone(), on_a["id"].clone()),
        (sent["id"].clone(), sent["id"].clone())
    );
    let seen = frames(&mut cy_b, Duration::from_millis(300));
    assert!(
        seen.iter().all(|f| !f.to_string().contains("across nodes")),
        "{seen:?}"
    );
    // Typing crosses (past the first's 3 s).
    std::thread::sleep(Duration::from_millis(3100));
    let _ = frames(&mut bob_b, Duration::from_millis(100));
    send_json(&mut ann, json!({"type": "typing", "room": "@bob"}));
    assert_eq!(
        recv_type(&mut bob_b, "typing"),
        json!({"type": "typing", "room": "@ann", "username": "ann"})
    );
    // Bob reads on b: his tab on a hears it at once.
    let id = sent["id"].as_u64().unwrap();
    send_json(
        &mut bob_b,
        json!({"type": "read", "room": "@ann", "id": id}),
    );
    assert_eq!(
        recv_type(&mut bob_a, "read"),
        json!({"type": "read", "room": "@ann", "id": id})
    );
    // The conversation opened on b: loaded from the stream, marker included.
    send_json(&mut bob_b, json!({"type": "join", "room": "@ann"}));
    let welcome = recv_type(&mut bob_b, "welcome");
    assert_eq!(welcome["room"], "@ann");
    assert_eq!(
        welcome["history"][0]["message"], "across nodes",
        "{welcome}"
    );
    assert_eq!(welcome["read"], id, "{welcome}");
    let rooms = http_get(b.addr, "/api/rooms");
    assert!(!rooms.contains('@'), "{rooms}");
}

#[test]
fn refusals_over_sockets_leave_the_connection_open() {
    let s = TestServer::start(&["--msg-rate", "0", "--max-rooms-per-client", "2"]);
    let (mut ann, _) = join_as(&s, "ann", "secret-of-ann-0123");
    let (_bob, _) = join_as(&s, "bob", "secret-of-bob-0123");
    let mut anon = s.ws();
    send_json(&mut anon, json!({"message": "hi", "username": "gopher"}));
    recv_type(&mut anon, "message");
    let id = post(&mut ann, "lobby", "react to me");
    for (anonymous, frame, code) in [
        (
            true,
            json!({"type": "message", "room": "@ann", "message": "x"}),
            "needs_identity",
        ),
        (
            false,
            json!({"type": "message", "room": "@nobody", "message": "x"}),
            "no_such_user",
        ),
        (false, json!({"type": "join", "room": "@ANN"}), "bad_room"),
        (
            false,
            json!({"type": "react", "room": "lobby", "id": id, "emoji": ":+1:"}),
            "bad_emoji",
        ),
        (
            false,
            json!({"type": "react", "room": "lobby", "id": id + 99, "emoji": "👍"}),
            "not_found",
        ),
        (false, json!({"type": "read", "room": "lobby"}), "not_found"),
        (
            true,
            json!({"type": "read", "room": "lobby", "id": id}),
            "needs_identity",
        ),
    ] {
        let ws = if anonymous { &mut anon } else { &mut ann };
        send_json(ws, frame.clone());
        let e = recv_type(ws, "error");
        assert_eq!(e["code"], code, "{frame}: {e}");
    }
    // A joined conversation counts toward --max-rooms-per-client (2 here).
    send_json(&mut ann, json!({"type": "join", "room": "@bob"}));
    assert_eq!(recv_type(&mut ann, "welcome")["room"], "@bob");
    send_json(&mut ann, json!({"type": "join", "room": "dev"}));
    assert_eq!(recv_type(&mut ann, "error")["code"], "room_limit");
    // Still open: a message goes through.
    post(&mut ann, "lobby", "still here");
}

#[test]
fn with_tokens_a_user_is_written_to_by_the_token_s_name() {
    let dir = tmpdir("token");
    std::fs::create_dir_all(&dir).unwrap();
    let secret = "a-jwt-secret-of-32-bytes-or-more!";
    let file = dir.join("jwt");
    std::fs::write(&file, secret).unwrap();
    let s = TestServer::start(&[
        "--auth",
        "token",
        "--jwt-secret-file",
        file.to_str().unwrap(),
        "--msg-rate",
        "0",
    ]);
    let join = |ws: &mut Ws, sub: &str, name: &str| {
        let t = sign_token(secret, json!({"sub": sub, "name": name}), Some(600), None);
        send_json(ws, json!({"type": "join", "token": t}));
        recv_type(ws, "welcome")
    };
    let (mut ada, mut grace, mut grace2) = (s.ws(), s.ws(), s.ws());
    join(&mut ada, "u-1", "Ada Lovelace");
    join(&mut grace, "u-2", "Grace Hopper");
    join(&mut grace2, "u-2", "Grace Hopper");
    send_json(
        &mut ada,
        json!({"type": "message", "room": "@grace hopper", "message": "hello"}),
    );
    let got = direct_message(&mut grace2, "@Ada Lovelace", "hello");
    assert_eq!(got["verified"], true, "{got}");
    direct_message(&mut grace, "@Ada Lovelace", "hello");
    direct_message(&mut ada, "@Grace Hopper", "hello");
    let _ = std::fs::remove_dir_all(&dir);
}
