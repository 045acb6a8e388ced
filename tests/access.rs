//! `--auth password` over real sockets: nothing from a connection counts until
//! it joins with the password; failures are counted and, from one address,
//! limited; the password never shows in logs, `/healthz` or `/metrics`; and a
//! missing, unreadable or empty password file stops the start with status 2.
//! `--auth token`: joins with JWTs signed here (jwt-compact, HS256): the name
//! comes from the token and is marked verified, its rooms are the only ones
//! allowed, its subject owns its messages; expired, early, forged, `alg:
//! none`, other-algorithm, malformed and over-long tokens get `bad_token`.

mod common;
use common::*;
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

fn password_server() -> (TestServer, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("picochat-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("pw-{}", rand_suffix()));
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let s = TestServer::start(&[
        "--auth",
        "password",
        "--password-file",
        file.to_str().unwrap(),
    ]);
    (s, file)
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish()
}

fn code(ws: &mut Ws) -> String {
    recv_type(ws, "error")["code"].as_str().unwrap().to_string()
}

#[test]
fn nothing_counts_before_a_join_with_the_password() {
    let (s, _file) = password_server();
    let mut gopher = s.ws();
    send_json(&mut gopher, json!({"username": "go", "message": "hello?"}));
    assert_eq!(code(&mut gopher), "bad_password");
    let mut ann = s.ws();
    send_json(&mut ann, json!({"type": "join", "username": "ann"}));
    assert_eq!(code(&mut ann), "bad_password");
    send_json(
        &mut ann,
        json!({"type": "join", "username": "ann", "password": "correct horse"}),
    );
    assert_eq!(code(&mut ann), "bad_password");
    send_json(
        &mut ann,
        json!({"type": "join", "username": "ann", "password": PASSWORD}),
    );
    assert_eq!(recv_type(&mut ann, "welcome")["you"]["username"], "ann");
    send_json(&mut ann, json!({"message": "inside"}));
    assert_eq!(recv_type(&mut ann, "message")["message"], "inside");
    assert_eq!(s.metric("picochat_auth_failures_total"), 2.0);
    // The password is in no log line, health or metrics answer.
    let seen = s.log_text() + &http_get(s.addr, "/healthz") + &http_get(s.addr, "/metrics");
    assert!(!seen.contains("horse"), "{seen}");
}

#[test]
fn ten_failures_from_one_address_block_it_and_not_the_others() {
    let (s, _file) = password_server();
    let mut guesser = ws_from([127, 0, 0, 2], &s);
    for i in 0..10 {
        send_json(
            &mut guesser,
            json!({"type": "join", "username": "x", "password": format!("guess {i}")}),
        );
        assert_eq!(code(&mut guesser), "bad_password");
    }
    // Even the right password from there is not checked for a minute.
    let mut again = ws_from([127, 0, 0, 2], &s);
    send_json(
        &mut again,
        json!({"type": "join", "username": "x", "password": PASSWORD}),
    );
    assert_eq!(code(&mut again), "rate_limited");
    let mut local = s.ws();
    send_json(
        &mut local,
        json!({"type": "join", "username": "y", "password": PASSWORD}),
    );
    assert_eq!(
        recv_type(&mut local, "welcome")["type"],
        "welcome",
        "another address gets in"
    );
    assert_eq!(s.metric("picochat_auth_failures_total"), 11.0);
}

#[test]
fn a_missing_unreadable_or_empty_password_file_stops_the_start() {
    let dir = std::env::temp_dir().join(format!("picochat-access-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let missing = dir.join("missing");
    let run = run_to_exit;
    let (status, err) = run(&["--auth", "password"]);
    assert_eq!(status, Some(2));
    assert!(err.contains("--password-file"), "{err}");
    let (status, err) = run(&[
        "--auth",
        "password",
        "--password-file",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(status, Some(2));
    assert!(err.contains("is empty"), "{err}");
    let (status, err) = run(&[
        "--auth",
        "password",
        "--password-file",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(status, Some(2));
    assert!(err.contains("cannot read"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

const JWT_SECRET: &str = "the-operator-app-shares-this-secret";

fn token_server() -> TestServer {
    let dir = std::env::temp_dir().join(format!("picochat-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("jwt-{}", rand_suffix()));
    std::fs::write(&file, format!("{JWT_SECRET}\n")).unwrap();
    TestServer::start(&[
        "--auth",
        "token",
        "--jwt-secret-file",
        file.to_str().unwrap(),
        "--msg-rate",
        "0",
    ])
}

fn join_token(ws: &mut Ws, room: &str, token: &str) -> serde_json::Value {
    send_json(
        ws,
        json!({"type": "join", "room": room, "username": "whatever I like", "token": token}),
    );
    recv_json(ws)
}

#[test]
fn a_token_names_its_user_verified_and_bounds_its_rooms() {
    let s = token_server();
    let ada = json!({"sub": "user-1", "name": "Ada", "rooms": ["dev", "lobby"]});
    let good = sign_token(JWT_SECRET, ada.clone(), Some(3600), Some(-5));
    let mut ws = s.ws();
    send_json(&mut ws, json!({"username": "gopher", "message": "hi"}));
    assert_eq!(
        recv_json(&mut ws)["code"],
        "bad_token",
        "nothing counts before a token"
    );
    let w = join_token(&mut ws, "dev", &good);
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(
        w["you"],
        json!({"username": "Ada", "verified": true}),
        "the token's name, not the join's"
    );
    send_json(&mut ws, json!({"type": "join", "room": "ops"}));
    assert_eq!(recv_type(&mut ws, "error")["code"], "forbidden_room");
    send_json(&mut ws, json!({"room": "dev", "message": "hello"}));
    let m = recv_type(&mut ws, "message");
    assert_eq!(
        (m["username"].as_str(), m["verified"].as_bool()),
        (Some("Ada"), Some(true))
    );
    // The same subject on another connection (another device) owns the message.
    let mut other_device = s.ws();
    let again = sign_token(
        JWT_SECRET,
        json!({"sub": "user-1", "name": "Ada L."}),
        Some(3600),
        None,
    );
    assert_eq!(
        join_token(&mut other_device, "dev", &again)["type"],
        "welcome"
    );
    let mut eve = s.ws();
    let eve_token = sign_token(
        JWT_SECRET,
        json!({"sub": "user-2", "name": "Eve"}),
        Some(3600),
        None,
    );
    join_token(&mut eve, "dev", &eve_token);
    send_json(
        &mut eve,
        json!({"type": "delete", "room": "dev", "id": m["id"]}),
    );
    assert_eq!(recv_type(&mut eve, "error")["code"], "not_yours");
    send_json(
        &mut other_device,
        json!({"type": "delete", "room": "dev", "id": m["id"]}),
    );
    assert_eq!(recv_type(&mut ws, "delete")["target"], m["id"]);
    assert!(!s.log_text().contains(&good), "tokens are not logged");
}

#[test]
fn expired_early_forged_and_malformed_tokens_are_bad_tokens() {
    let s = token_server();
    let user = json!({"sub": "u", "name": "ann"});
    let body = sign_token(JWT_SECRET, user.clone(), Some(3600), None);
    let claims_part = body.split('.').nth(1).unwrap().to_string();
    let bad = [
        (
            "expired",
            sign_token(JWT_SECRET, user.clone(), Some(-120), None),
        ),
        (
            "not yet valid",
            sign_token(JWT_SECRET, user.clone(), Some(3600), Some(300)),
        ),
        ("no exp", sign_token(JWT_SECRET, user.clone(), None, None)),
        (
            "wrong secret",
            sign_token("some-other-secret-entirely", user.clone(), Some(3600), None),
        ),
        // {"alg":"none","typ":"JWT"} and {"alg":"HS512","typ":"JWT"} over the same claims.
        (
            "alg none",
            format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims_part}."),
        ),
        (
            "another algorithm",
            format!("eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.{claims_part}.c2ln"),
        ),
        ("malformed", "not.a.token".to_string()),
        (
            "over 4 KiB",
            sign_token(
                JWT_SECRET,
                json!({"sub": "u", "name": "ann", "pad": "x".repeat(4096)}),
                Some(3600),
                None,
            ),
        ),
        (
            "a name no username may be",
            sign_token(
                JWT_SECRET,
                json!({"sub": "u", "name": "x".repeat(40)}),
                Some(3600),
                None,
            ),
        ),
    ];
    for (why, t) in &bad {
        let mut ws = s.ws();
        assert_eq!(
            join_token(&mut ws, "lobby", t)["code"],
            "bad_token",
            "{why}"
        );
    }
    let mut ws = s.ws();
    assert_eq!(
        join_token(&mut ws, "lobby", &body)["type"],
        "welcome",
        "the good one"
    );
    assert_eq!(s.metric("picochat_auth_failures_total"), bad.len() as f64);
}

#[test]
fn token_mode_needs_a_long_enough_secret_file() {
    let dir = std::env::temp_dir().join(format!("picochat-token-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let short = dir.join("short");
    std::fs::write(&short, "too short\n").unwrap();
    let (status, err) = run_to_exit(&["--auth", "token"]);
    assert_eq!(
        (status, err.contains("--jwt-secret-file")),
        (Some(2), true),
        "{err}"
    );
    let (status, err) = run_to_exit(&[
        "--auth",
        "token",
        "--jwt-secret-file",
        short.to_str().unwrap(),
    ]);
    assert_eq!(status, Some(2));
    assert!(
        err.contains("shorter than 16 bytes") && !err.contains("too short"),
        "{err}"
    );
}

#[test]
fn held_names_survive_a_restart_with_a_data_dir_and_last_while_online_without() {
    let dir = std::env::temp_dir().join(format!(
        "picochat-holds-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let args = ["--data-dir", dir.to_str().unwrap()];
    let s = TestServer::start(&args);
    let (ann, w) = join_as(&s, "Ann", "secret-of-ann");
    assert_eq!(w["type"], "welcome");
    let (_, refused) = join_as(&s, "ann", "another-secret");
    assert_eq!(refused["code"], "name_taken");
    drop(ann);
    // Her last connection gone is when the hold is written: wait for it to go.
    wait_until("ann's connection gone", 5, || {
        s.metric("picochat_websocket_clients") == 0.0
    });
    drop(s);
    let s = TestServer::start(&args);
    let (_, refused) = join_as(&s, "ANN", "another-secret");
    assert_eq!(refused["code"], "name_taken", "held across the restart");
    let (_, w) = join_as(&s, "Ann", "secret-of-ann");
    assert_eq!(w["type"], "welcome", "still hers");
    assert!(
        !std::fs::read_to_string(dir.join("settings.json"))
            .unwrap()
            .contains("secret-of-ann"),
        "only the hash is stored"
    );

    // Without a data dir a hold lasts while its user is online (nothing could keep it longer).
    let plain = TestServer::start(&[]);
    let (ann, _) = join_as(&plain, "Ann", "secret-of-ann");
    assert_eq!(
        join_as(&plain, "Ann", "another-secret").1["code"],
        "name_taken"
    );
    drop(ann);
    wait_until("ann's connection gone", 5, || {
        plain.metric("picochat_websocket_clients") == 0.0
    });
    assert_eq!(
        join_as(&plain, "Ann", "another-secret").1["type"],
        "welcome"
    );
}
