//! `--auth password` over real sockets: nothing from a connection counts until
//! it joins with the password; failures are counted and, from one address,
//! limited; the password never shows in logs, `/healthz` or `/metrics`; and a
//! missing, unreadable or empty password file stops the start with status 2.

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
