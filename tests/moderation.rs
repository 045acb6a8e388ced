//! Users' own messages and a moderator's delete, over real sockets: an edit
//! and a delete are records of the log with ids of their own, broadcast to
//! the room; only the page whose secret sent a message may change it (and
//! only within `--edit-window` for an edit); with `--data-dir` the edited
//! text, the deleted message's absence and who owns what survive a restart;
//! the admin API lists a room's messages and deletes one for everyone.

mod common;
use common::*;
use serde_json::{json, Value};

const TOKEN: &str = "an-admin-token-of-some-length";

fn tmpdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("picochat-mod-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn join_with(ws: &mut Ws, name: &str, secret: &str) -> Value {
    send_json(
        ws,
        json!({"type": "join", "room": "dev", "username": name, "secret": secret}),
    );
    recv_type(ws, "welcome")
}

fn say(ws: &mut Ws, text: &str) -> u64 {
    send_json(ws, json!({"room": "dev", "message": text}));
    loop {
        let m = recv_type(ws, "message");
        if m["message"] == text {
            return m["id"].as_u64().unwrap();
        }
    }
}

fn error_code(ws: &mut Ws) -> String {
    recv_type(ws, "error")["code"].as_str().unwrap().to_string()
}

#[test]
fn own_edits_and_deletes_reach_the_room_and_survive_a_restart() {
    let dir = tmpdir("restart");
    let args = ["--data-dir", dir.to_str().unwrap(), "--msg-rate", "0"];
    let s = TestServer::start(&args);
    let mut ann = s.ws();
    join_with(&mut ann, "ann", "secret-of-ann");
    let mut bob = s.ws();
    join_with(&mut bob, "bob", "secret-of-bob");
    let first = say(&mut ann, "helo");
    let second = say(&mut ann, "second");
    let third = say(&mut ann, "third");

    send_json(
        &mut bob,
        json!({"type": "edit", "room": "dev", "id": first, "message": "mine"}),
    );
    assert_eq!(error_code(&mut bob), "not_yours");
    send_json(
        &mut ann,
        json!({"type": "edit", "room": "dev", "id": first, "message": "hello"}),
    );
    let edit = recv_type(&mut bob, "edit");
    assert_eq!(
        (edit["target"].as_u64(), edit["message"].as_str()),
        (Some(first), Some("hello"))
    );
    assert!(edit["id"].as_u64().unwrap() > third, "{edit}");
    send_json(
        &mut ann,
        json!({"type": "delete", "room": "dev", "id": second}),
    );
    let delete = recv_type(&mut bob, "delete");
    assert_eq!(delete["target"].as_u64(), Some(second));
    send_json(
        &mut ann,
        json!({"type": "delete", "room": "dev", "id": second}),
    );
    assert_eq!(error_code(&mut ann), "not_found");
    drop((ann, bob, s));

    let s = TestServer::start(&args);
    let mut cy = s.ws();
    let w = join_with(&mut cy, "cy", "secret-of-cy");
    let history = w["history"].as_array().unwrap();
    let texts: Vec<(u64, &str, bool)> = history
        .iter()
        .filter(|m| m["type"] == "message")
        .map(|m| {
            (
                m["id"].as_u64().unwrap(),
                m["message"].as_str().unwrap(),
                m["edited"] == true,
            )
        })
        .collect();
    assert_eq!(texts, [(first, "hello", true), (third, "third", false)]);
    assert!(
        !w.to_string().contains("owner"),
        "owners are never sent: {w}"
    );
    // Who owns what was stored with the messages.
    send_json(
        &mut cy,
        json!({"type": "delete", "room": "dev", "id": third}),
    );
    assert_eq!(error_code(&mut cy), "not_yours");
    let mut ann = s.ws();
    join_with(&mut ann, "ann", "secret-of-ann");
    send_json(
        &mut ann,
        json!({"type": "delete", "room": "dev", "id": third}),
    );
    assert_eq!(recv_type(&mut cy, "delete")["target"].as_u64(), Some(third));
}

#[test]
fn edits_close_after_the_window_and_tutorial_clients_own_nothing() {
    // When the window closes is the core's rule, tested with its clock in
    // chat/tests.rs; here the refusal travels: with `--edit-window 0` no
    // edit is ever in time.
    let closed = TestServer::start(&["--edit-window", "0", "--msg-rate", "0"]);
    let mut ann = closed.ws();
    join_with(&mut ann, "ann", "secret-of-ann");
    let id = say(&mut ann, "typo");
    send_json(
        &mut ann,
        json!({"type": "edit", "room": "dev", "id": id, "message": "late"}),
    );
    assert_eq!(error_code(&mut ann), "edit_window");
    let s = TestServer::start(&["--edit-window", "1m", "--msg-rate", "0"]);
    let mut ann = s.ws();
    join_with(&mut ann, "ann", "secret-of-ann");
    let id = say(&mut ann, "typo");
    send_json(
        &mut ann,
        json!({"type": "edit", "room": "dev", "id": id, "message": "fixed"}),
    );
    assert_eq!(recv_type(&mut ann, "edit")["message"], "fixed");
    // The Go tutorial's frames carry no secret: nothing they send is theirs to change.
    let mut gopher = s.ws();
    send_json(&mut gopher, json!({"username": "gopher", "message": "hi"}));
    let id = recv_type(&mut gopher, "message")["id"].as_u64().unwrap();
    send_json(&mut gopher, json!({"type": "delete", "id": id}));
    assert_eq!(error_code(&mut gopher), "not_yours");
}

#[test]
fn a_moderator_lists_a_room_s_messages_and_deletes_one_for_everyone() {
    let dir = tmpdir("admin");
    let file = dir.join("token");
    std::fs::write(&file, TOKEN).unwrap();
    let s = TestServer::start(&[
        "--admin-token-file",
        file.to_str().unwrap(),
        "--msg-rate",
        "0",
    ]);
    let mut ann = s.ws();
    join_with(&mut ann, "ann", "secret-of-ann");
    let mut watcher = s.ws();
    join_with(&mut watcher, "watcher", "secret-of-w");
    let keep = say(&mut ann, "fine");
    let spam = say(&mut ann, "buy now");

    let path = format!("/api/admin/rooms/dev/messages/{spam}");
    assert_eq!(admin_call(s.addr, "DELETE", &path, None).0, 401);
    let (status, body) = admin_call(
        s.addr,
        "DELETE",
        "/api/admin/rooms/dev/messages/999",
        Some(TOKEN),
    );
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    assert_eq!(
        admin_call(
            s.addr,
            "DELETE",
            "/api/admin/rooms/nowhere/messages/1",
            Some(TOKEN)
        )
        .0,
        404
    );
    let (status, body) = admin_call(s.addr, "DELETE", &path, Some(TOKEN));
    assert_eq!((status, body["deleting"].as_u64()), (202, Some(spam)));
    let d = recv_type(&mut watcher, "delete");
    assert_eq!(
        (d["target"].as_u64(), d["by"].as_str()),
        (Some(spam), Some("admin"))
    );
    assert_eq!(
        admin_call(s.addr, "DELETE", &path, Some(TOKEN)).0,
        404,
        "already gone"
    );

    let (status, body) = admin_call(s.addr, "GET", "/api/admin/rooms/dev/messages", Some(TOKEN));
    assert_eq!(status, 200);
    let ids: Vec<u64> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [keep]);
    assert!(!s.log_text().contains(TOKEN));
}

#[test]
fn bans_and_room_settings_are_stored_and_survive_a_restart() {
    let dir = tmpdir("bans");
    let file = dir.join("token");
    std::fs::write(&file, TOKEN).unwrap();
    let data = dir.join("data");
    let args = [
        "--admin-token-file",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--msg-rate",
        "0",
    ];
    let s = TestServer::start(&args);
    let mut troll = s.ws();
    join_with(&mut troll, "Troll", "secret-of-troll");
    let mut ann = s.ws();
    join_with(&mut ann, "ann", "secret-of-ann");

    // Bad calls first: nothing is stored for them.
    assert_eq!(
        admin_call(s.addr, "POST", "/api/admin/bans", Some(TOKEN)).0,
        400
    );
    assert_eq!(
        admin_call(
            s.addr,
            "POST",
            "/api/admin/bans?name=x&for=soon",
            Some(TOKEN)
        )
        .0,
        400
    );
    let put = |q: &str| {
        admin_call(
            s.addr,
            "PUT",
            &format!("/api/admin/rooms/dev/settings?{q}"),
            Some(TOKEN),
        )
        .0
    };
    assert_eq!(put("slow_mode=abc"), 400);
    assert_eq!(put("read_only=maybe"), 400);

    let (status, body) = admin_call(
        s.addr,
        "POST",
        "/api/admin/bans?name=troll&for=1h&reason=spam",
        Some(TOKEN),
    );
    assert_eq!(
        (status, body["key"].as_str()),
        (202, Some("ban/name/troll"))
    );
    assert_eq!(
        closed_with(&mut troll),
        (1008, "banned by a moderator".into())
    );
    let mut again = s.ws();
    send_json(
        &mut again,
        json!({"type": "join", "room": "dev", "username": "TROLL"}),
    );
    assert_eq!(error_code(&mut again), "banned");
    // An address: its connections are closed at once.
    let (status, _) = admin_call(
        s.addr,
        "POST",
        "/api/admin/bans?address=127.0.0.2",
        Some(TOKEN),
    );
    assert_eq!(status, 202);
    assert_eq!(closed_with(&mut ws_from([127, 0, 0, 2], &s)).0, 1008);

    assert_eq!(put("topic=Release+day&read_only=true"), 202);
    let frame = recv_type(&mut ann, "room");
    assert_eq!(
        (frame["topic"].as_str(), frame["read_only"].as_bool()),
        (Some("Release day"), Some(true))
    );
    send_json(&mut ann, json!({"room": "dev", "message": "can I?"}));
    assert_eq!(error_code(&mut ann), "read_only");
    let (status, _) = admin_call(
        s.addr,
        "POST",
        "/api/admin/rooms/dev/messages?text=We+ship+at+5",
        Some(TOKEN),
    );
    assert_eq!(status, 202);
    let m = recv_type(&mut ann, "message");
    assert_eq!(
        (m["message"].as_str(), m["by"].as_str()),
        (Some("We ship at 5"), Some("admin"))
    );

    let (_, bans) = admin_call(s.addr, "GET", "/api/admin/bans", Some(TOKEN));
    let listed: Vec<String> = bans["bans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.to_string())
        .collect();
    assert_eq!(listed.len(), 2, "{bans}");
    assert!(listed
        .iter()
        .any(|b| b.contains("\"name\":\"troll\"") && b.contains("spam")));
    // Counted when freed (after the close handshake, within --linger).
    let banned = "picochat_disconnects_total{reason=\"banned\"}";
    wait_until("both banned connections freed", 5, || {
        s.metric(banned) >= 2.0
    });
    assert_eq!(s.metric(banned), 2.0);
    drop((ann, again, s));

    let s = TestServer::start(&args);
    let mut troll = s.ws();
    send_json(
        &mut troll,
        json!({"type": "join", "room": "dev", "username": "troll"}),
    );
    assert_eq!(
        error_code(&mut troll),
        "banned",
        "the ban survived the restart"
    );
    assert_eq!(closed_with(&mut ws_from([127, 0, 0, 2], &s)).0, 1008);
    let mut bob = s.ws();
    let w = join_with(&mut bob, "bob", "secret-of-bob");
    assert_eq!(
        (w["topic"].as_str(), w["read_only"].as_bool()),
        (Some("Release day"), Some(true))
    );
    assert_eq!(
        admin_call(s.addr, "DELETE", "/api/admin/bans?name=Troll", Some(TOKEN)).0,
        202
    );
    // The 202 leaves after the log committed the lift (the same loop turn).
    // (The name is still held for the page that used it before the ban.)
    let w = join_with(&mut troll, "troll", "secret-of-troll");
    assert_eq!(w["you"]["username"], "troll");
}
