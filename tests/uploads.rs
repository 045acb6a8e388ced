//! Image uploads over real sockets (memory store, data dir, Redis): an
//! announced image becomes a message with an attachment, served from
//! `/u/...` with headers that let nothing in it run, cleaned of EXIF
//! location; every refusal gets its code with the connection left open (a
//! refused image's bytes dropped as they arrive); deletion removes the
//! file; the quota removes the oldest; `--upload-memory` bounds uploads in
//! flight; with Redis any process serves any file.

mod common;
use common::redis::{node, Redis};
use common::*;
use picochat::image::make::dense_png;
use serde_json::{json, Value};
use std::path::Path;
use tungstenite::Message;

fn sample(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions/image")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn join_room(ws: &mut Ws, room: &str, name: &str) -> Value {
    send_json(ws, json!({"type": "join", "room": room, "username": name}));
    recv_type(ws, "welcome")
}

/// Announces `bytes` (of size `announced`) with `caption`, then sends them.
fn upload(ws: &mut Ws, room: &str, caption: &str, bytes: &[u8], announced: usize) {
    send_json(
        ws,
        json!({"type": "upload", "room": room, "bytes": announced, "message": caption}),
    );
    ws.send(Message::binary(bytes.to_vec())).expect("send");
}

/// The next message or error frame.
fn outcome(ws: &mut Ws) -> Value {
    loop {
        let v = recv_json(ws);
        if v["type"] == "message" || v["type"] == "error" {
            return v;
        }
    }
}

/// `GET` (or `HEAD`) of `path` with extra header lines: status, headers (lower-cased), body.
fn get(s: &TestServer, method: &str, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let raw = http_raw(
        s.addr,
        &format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"),
    );
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    // Header names lower-cased for matching; values as sent.
    let head: String = String::from_utf8_lossy(&raw[..end])
        .lines()
        .map(|l| match l.split_once(": ") {
            Some((k, v)) => format!("{}: {v}\n", k.to_lowercase()),
            None => format!("{l}\n"),
        })
        .collect();
    let status = head[9..12].parse().unwrap();
    (status, head, raw[end + 4..].to_vec())
}

fn has(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_image_becomes_a_message_and_is_served_clean_and_inert() {
    let s = TestServer::start(&["--msg-rate", "0"]);
    let (mut ann, mut bob) = (s.ws(), s.ws());
    // A page secret: ann's messages are hers to delete.
    send_json(
        &mut ann,
        json!({"type": "join", "room": "dev", "username": "ann", "secret": "ann-secret-0123456"}),
    );
    recv_type(&mut ann, "welcome");
    join_room(&mut bob, "dev", "bob");
    let photo = sample("jpeg-phone-photo-gps-orientation");
    assert!(has(&photo, b"GPS") && has(&photo, b"comment"));
    upload(&mut ann, "dev", "at the beach", &photo, photo.len());
    let m = outcome(&mut bob);
    assert_eq!(m["type"], "message", "{m}");
    assert_eq!(
        (m["message"].as_str(), m["username"].as_str()),
        (Some("at the beach"), Some("ann"))
    );
    let a = &m["attachment"];
    assert_eq!(
        (
            a["type"].as_str(),
            a["width"].as_u64(),
            a["height"].as_u64()
        ),
        (Some("image/jpeg"), Some(64), Some(48)),
        "{m}"
    );
    assert_eq!(outcome(&mut ann)["id"], m["id"], "the sender too");
    let url = a["url"].as_str().unwrap();
    assert!(
        url.starts_with("/u/") && url.ends_with(".jpg") && url.len() == 3 + 22 + 4,
        "{url}"
    );
    let (status, head, body) = get(&s, "GET", url, "");
    assert_eq!(status, 200, "{head}");
    for h in [
        "content-type: image/jpeg",
        "x-content-type-options: nosniff",
        "content-security-policy: default-src 'none'",
        "cache-control: public, max-age=31536000, immutable",
        "etag: \"",
    ] {
        assert!(head.contains(h), "{h} in {head}");
    }
    assert_eq!(body.len() as u64, a["bytes"].as_u64().unwrap());
    assert!(
        !has(&body, b"GPS") && !has(&body, b"comment"),
        "location and comment gone"
    );
    assert!(has(&body, b"Exif\0\0MM"), "the orientation kept");
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap()
        .to_string();
    let (status, _, body) = get(&s, "GET", url, &format!("If-None-Match: {etag}\r\n"));
    assert_eq!((status, body.len()), (304, 0));
    let (status, head, body) = get(&s, "HEAD", url, "");
    assert!(
        status == 200 && body.is_empty() && head.contains("content-length:"),
        "{head}"
    );
    // Anything else under /u/ is not found, and no path reaches the disk.
    for path in [
        "/u/AAAAAAAAAAAAAAAAAAAAAA.jpg",
        "/u/../Cargo.toml",
        "/u/x.png",
        "/u/",
    ] {
        assert_eq!(get(&s, "GET", path, "").0, 404, "{path}");
    }
    // Deleting the message deletes its file at once.
    send_json(
        &mut ann,
        json!({"type": "delete", "room": "dev", "id": m["id"]}),
    );
    recv_type(&mut ann, "delete");
    assert_eq!(get(&s, "GET", url, "").0, 404);
    assert!(s.metric("picochat_files_served_total") >= 2.0);
    assert_eq!(
        s.metric("picochat_uploads_total{outcome=\"accepted\"}"),
        1.0
    );
}

#[test]
fn every_refusal_has_its_code_and_a_refused_image_is_dropped_as_it_arrives() {
    let s = TestServer::start(&["--msg-rate", "0", "--max-upload", "64KiB"]);
    let mut ann = s.ws();
    join_room(&mut ann, "dev", "ann");
    let png = sample("png-with-text-and-exif");
    let cases: Vec<(&str, Vec<u8>, usize, &str)> = vec![
        (
            "html",
            b"<html><script>alert(1)</script></html>".to_vec(),
            38,
            "bad_upload",
        ),
        (
            "svg",
            b"<svg onload=\"alert(1)\"/>".to_vec(),
            24,
            "bad_upload",
        ),
        (
            "polyglot",
            sample("png-polyglot-zip"),
            sample("png-polyglot-zip").len(),
            "bad_upload",
        ),
        (
            "truncated",
            png[..png.len() - 5].to_vec(),
            png.len() - 5,
            "bad_upload",
        ),
        (
            "shorter than announced",
            png.clone(),
            png.len() + 10,
            "bad_upload",
        ),
        ("too large", vec![0; 70_000], 70_000, "upload_too_large"),
        (
            "too large, announced only",
            png.clone(),
            1 << 30,
            "upload_too_large",
        ),
    ];
    for (what, bytes, announced, code) in cases {
        upload(&mut ann, "dev", "", &bytes, announced);
        let e = outcome(&mut ann);
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("error"), Some(code)),
            "{what}: {e}"
        );
    }
    ann.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(
        outcome(&mut ann)["code"],
        "binary_unsupported",
        "nothing announced"
    );
    upload(&mut ann, "ops", "", &png, png.len());
    assert_eq!(
        outcome(&mut ann)["code"],
        "not_joined",
        "and its bytes dropped"
    );
    // Still open: a message, then a good upload.
    send_json(
        &mut ann,
        json!({"type": "message", "room": "dev", "message": "still here"}),
    );
    assert_eq!(outcome(&mut ann)["message"], "still here");
    upload(&mut ann, "dev", "", &png, png.len());
    let m = outcome(&mut ann);
    assert_eq!(m["attachment"]["type"], "image/png", "{m}");
    // More than announced: refused from the frame header, 1009.
    let mut bad = s.ws();
    join_room(&mut bad, "dev", "bad");
    upload(&mut bad, "dev", "", &png, png.len() - 1);
    assert_eq!(closed_with(&mut bad).0, 1009);
    assert_eq!(
        s.metric("picochat_uploads_total{outcome=\"bad_upload\"}"),
        5.0
    );
    assert_eq!(
        s.metric("picochat_uploads_total{outcome=\"upload_too_large\"}"),
        2.0
    );
}

#[test]
fn a_deflated_image_longer_on_the_wire_than_announced_is_taken_from_python_websockets() {
    // Python's websockets deflates every message (zlib at memLevel 5): data
    // that does not compress goes out as 8 KiB stored blocks, 5 bytes each
    // longer than the image. The announced size bounds the image inflated,
    // not its deflate on the wire (it was refused with 1009).
    let s = TestServer::start(&["--msg-rate", "0"]);
    let png = dense_png(300_000);
    let file = std::env::temp_dir().join(format!("picochat-dense-{}.png", std::process::id()));
    std::fs::write(&file, &png).unwrap();
    let script = r#"
import asyncio, json, sys, websockets
async def main():
    image = open(sys.argv[1], 'rb').read()
    async with websockets.connect(sys.argv[2], max_size=None) as ws:
        print('extensions', ws.response.headers.get('Sec-WebSocket-Extensions'))
        await ws.send(json.dumps({"type": "join", "room": "dev", "username": "py"}))
        await ws.send(json.dumps({"type": "upload", "room": "dev", "bytes": len(image), "message": "dense"}))
        await ws.send(image)
        while True:
            v = json.loads(await ws.recv())
            if v.get('type') == 'error' or 'attachment' in v:
                print('outcome', json.dumps(v))
                return
asyncio.run(main())
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .arg(format!("ws://{}/ws", s.addr))
        .output()
        .expect("run python3");
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("extensions permessage-deflate"),
        "{stdout}{stderr}"
    );
    let outcome: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("outcome "))
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_else(|| panic!("no outcome: {stdout}{stderr}"));
    let url = outcome["attachment"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{outcome}"));
    assert_eq!(
        outcome["attachment"]["bytes"].as_u64(),
        Some(png.len() as u64)
    );
    let (status, _, body) = get(&s, "GET", url, "");
    assert_eq!(status, 200);
    assert!(body == png, "the stored image is the one sent");
}

#[test]
fn past_the_quota_the_oldest_images_go_first() {
    let png = sample("png-with-text-and-exif");
    let s = TestServer::start(&["--msg-rate", "0", "--upload-quota", "150"]);
    let mut ann = s.ws();
    join_room(&mut ann, "dev", "ann");
    let mut urls = Vec::new();
    for _ in 0..4 {
        upload(&mut ann, "dev", "", &png, png.len());
        let m = outcome(&mut ann);
        urls.push(m["attachment"]["url"].as_str().unwrap().to_string());
        assert!(m["attachment"]["bytes"].as_u64().unwrap() < 150, "{m}");
    }
    let served: Vec<u16> = urls.iter().map(|u| get(&s, "GET", u, "").0).collect();
    assert_eq!(served, [404, 404, 200, 200], "the oldest went");
    assert!(s.metric("picochat_upload_bytes") <= 150.0);
}

#[test]
fn upload_memory_bounds_what_is_in_flight() {
    let png = sample("png-with-text-and-exif");
    let s = TestServer::start(&["--msg-rate", "0", "--upload-memory", "300"]);
    let (mut ann, mut bob) = (s.ws(), s.ws());
    join_room(&mut ann, "dev", "ann");
    join_room(&mut bob, "dev", "bob");
    send_json(
        &mut ann,
        json!({"type": "upload", "room": "dev", "bytes": png.len()}),
    );
    // Ann's bytes have not come: bob's announcement does not fit beside them.
    upload(&mut bob, "dev", "", &png, png.len());
    assert_eq!(outcome(&mut bob)["code"], "unavailable");
    // Once hers are in, there is room again.
    ann.send(Message::binary(png.clone())).unwrap();
    assert_eq!(outcome(&mut ann)["attachment"]["type"], "image/png");
    upload(&mut bob, "dev", "", &png, png.len());
    let m = loop {
        let m = outcome(&mut bob);
        if m["username"] != "ann" {
            break m;
        }
    };
    assert_eq!(
        (m["type"].as_str(), m["username"].as_str()),
        (Some("message"), Some("bob")),
        "{m}"
    );
}

#[test]
fn upload_memory_counts_an_upload_at_the_most_it_may_take_on_the_wire() {
    let png = dense_png(10_000);
    let n = png.len();
    // With permessage-deflate on (the default) an image may come deflated,
    // longer than announced, and is held as it arrives: it counts as that.
    let wire = picochat::net::ws::deflate_bound(n);
    assert!(wire > n);
    let outcome_with = |args: &[&str]| {
        let s = TestServer::start(&[&["--msg-rate", "0"][..], args].concat());
        let mut ann = s.ws();
        join_room(&mut ann, "dev", "ann");
        upload(&mut ann, "dev", "", &png, n);
        let o = outcome(&mut ann);
        o["code"]
            .as_str()
            .unwrap_or(o["type"].as_str().unwrap())
            .to_string()
    };
    let (short, enough) = ((wire - 1).to_string(), wire.to_string());
    assert_eq!(outcome_with(&["--upload-memory", &short]), "unavailable");
    assert_eq!(outcome_with(&["--upload-memory", &enough]), "message");
    // Without compression nothing comes deflated: the announced size counts.
    let exact = n.to_string();
    let off = ["--compression", "off", "--upload-memory", &exact];
    assert_eq!(outcome_with(&off), "message");
}

#[test]
fn with_a_data_dir_images_are_stored_before_their_message_and_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("picochat-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = ["--data-dir", dir.to_str().unwrap(), "--msg-rate", "0"];
    let png = sample("png-with-text-and-exif");
    let (url, id);
    {
        let s = TestServer::start(&args);
        let mut ann = s.ws();
        send_json(
            &mut ann,
            json!({"type": "join", "room": "dev", "username": "ann", "secret": "ann-secret-0123456"}),
        );
        let w = recv_type(&mut ann, "welcome");
        assert!(w["limits"]["max_upload"].as_u64() > Some(0), "{w}");
        upload(&mut ann, "dev", "kept", &png, png.len());
        let m = outcome(&mut ann);
        url = m["attachment"]["url"].as_str().unwrap().to_string();
        id = m["id"].as_u64().unwrap();
        let name = url.trim_start_matches("/u/");
        let on_disk = std::fs::read_dir(dir.join("uploads"))
            .unwrap()
            .flatten()
            .any(|f| {
                f.file_name()
                    .to_string_lossy()
                    .ends_with(&format!(".{name}"))
            });
        assert!(on_disk, "written as uploads/<segment>.<name>");
        // Killed without a word: the file was stored before the message went out.
    }
    let s = TestServer::start(&args);
    let (status, _, body) = get(&s, "GET", &url, "");
    assert_eq!(status, 200);
    assert!(!has(&body, b"tEXt") && !has(&body, b"eXIf"), "stored clean");
    let mut ann = s.ws();
    send_json(
        &mut ann,
        json!({"type": "join", "room": "dev", "username": "ann", "secret": "ann-secret-0123456"}),
    );
    let w = recv_type(&mut ann, "welcome");
    assert_eq!(w["history"][0]["attachment"]["url"], url.as_str(), "{w}");
    send_json(&mut ann, json!({"type": "delete", "room": "dev", "id": id}));
    recv_type(&mut ann, "delete");
    assert_eq!(get(&s, "GET", &url, "").0, 404);
    let left = std::fs::read_dir(dir.join("uploads")).unwrap().count();
    assert_eq!(left, 0, "the file is gone from the disk");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_a_password_images_are_served_only_with_the_key_of_a_welcome() {
    let dir = std::env::temp_dir().join(format!("picochat-up-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("password");
    std::fs::write(&file, "family photos\n").unwrap();
    let s = TestServer::start(&[
        "--auth",
        "password",
        "--password-file",
        file.to_str().unwrap(),
        "--msg-rate",
        "0",
    ]);
    let mut ann = s.ws();
    send_json(
        &mut ann,
        json!({"type": "join", "room": "dev", "username": "ann", "password": "family photos"}),
    );
    let w = recv_type(&mut ann, "welcome");
    let key = w["files_key"]
        .as_str()
        .expect("a key to the images")
        .to_string();
    assert_eq!(key.len(), 32);
    let png = sample("png-with-text-and-exif");
    upload(&mut ann, "dev", "", &png, png.len());
    let url = outcome(&mut ann)["attachment"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get(&s, "GET", &url, "").0, 401, "no cookie");
    let wrong = "Cookie: picochat_files=00000000000000000000000000000000\r\n";
    assert_eq!(get(&s, "GET", &url, wrong).0, 401);
    let right = format!("Cookie: theme=dark; picochat_files={key}\r\n");
    assert_eq!(get(&s, "GET", &url, &right).0, 200);
    // Without --auth there is no key, and none is needed.
    let open = TestServer::start(&["--msg-rate", "0"]);
    let mut bob = open.ws();
    assert!(join_room(&mut bob, "dev", "bob").get("files_key").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn twenty_slow_uploaders_stay_within_upload_memory_and_chat_goes_on() {
    use std::io::Write as _;
    let png = sample("png-with-text-and-exif");
    // Room for four uploads of this size in flight, not twenty (each
    // counted at the most it may take deflated on the wire).
    let budget = (4 * picochat::net::ws::deflate_bound(png.len())).to_string();
    let s = TestServer::start(&["--msg-rate", "0", "--upload-memory", &budget]);
    let mut slow = Vec::new();
    for i in 0..20 {
        let mut ws = s.ws();
        join_room(&mut ws, "dev", &format!("slow{i}"));
        send_json(
            &mut ws,
            json!({"type": "upload", "room": "dev", "bytes": png.len()}),
        );
        slow.push(ws);
    }
    // Four fit; sixteen are told unavailable (and their bytes would be dropped).
    wait_until("sixteen refused", 10, || {
        s.metric("picochat_uploads_total{outcome=\"unavailable\"}") == 16.0
    });
    // The four dribble their bytes: a raw frame header and a few bytes, then stall.
    // Meanwhile others chat as usual.
    let (mut ann, mut bob) = (s.ws(), s.ws());
    join_room(&mut ann, "dev", "ann");
    join_room(&mut bob, "dev", "bob");
    for ws in slow.iter_mut().take(4) {
        if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = ws.get_mut() {
            let mut frame = vec![0x82, 0x80 | 126];
            frame.extend_from_slice(&(png.len() as u16).to_be_bytes());
            frame.extend_from_slice(&[0, 0, 0, 0]);
            frame.extend_from_slice(&png[..10]);
            tcp.write_all(&frame).unwrap();
        }
    }
    send_json(
        &mut ann,
        json!({"type": "message", "room": "dev", "message": "anyone?"}),
    );
    let m = loop {
        let m = recv_type(&mut bob, "message");
        if m["username"] == "ann" {
            break m;
        }
    };
    assert_eq!(m["message"], "anyone?");
    assert_eq!(
        s.metric("picochat_uploads_total{outcome=\"unavailable\"}"),
        16.0
    );
}

#[test]
fn with_redis_an_image_uploaded_on_one_process_is_served_by_the_other() {
    let redis = Redis::start();
    let quota = ["--upload-quota", "150"];
    let (a, b) = (node(&redis, &quota), node(&redis, &quota));
    let (mut ann, mut bob) = (a.ws(), b.ws());
    send_json(
        &mut ann,
        json!({"type": "join", "room": "dev", "username": "ann", "secret": "ann-secret-0123456"}),
    );
    let w = recv_type(&mut ann, "welcome");
    assert!(w["limits"]["max_upload"].as_u64() > Some(0), "{w}");
    join_room(&mut bob, "dev", "bob");
    let png = sample("png-with-text-and-exif");
    assert!(has(&png, b"tEXt"));
    let mut urls = Vec::new();
    for _ in 0..4 {
        upload(&mut ann, "dev", "", &png, png.len());
        let m = loop {
            let m = outcome(&mut bob);
            if m["username"] == "ann" {
                break m;
            }
        };
        urls.push(m["attachment"]["url"].as_str().unwrap().to_string());
    }
    // Stored in Redis before the message: the other process serves it
    // (one request waits for Redis; a request behind it on the same
    // connection is answered after it, in order).
    let newest = &urls[3];
    let raw = http_raw(
        b.addr,
        &format!(
            "GET {newest} HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ),
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("Content-Type: image/png") && text.contains("nosniff"),
        "{text}"
    );
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
    assert!(
        text.trim_end().ends_with('}') && text.contains("\"status\""),
        "{text}"
    );
    let (status, head, body) = get(&b, "GET", newest, "");
    assert_eq!(status, 200, "{head}");
    assert!(!has(&body, b"tEXt"), "text chunks stripped before storing");
    assert_eq!(
        get(&a, "GET", newest, "").2,
        body,
        "the same bytes from either"
    );
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap()
        .to_string();
    let (status, _, _) = get(&b, "GET", newest, &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(status, 304);
    assert_eq!(get(&b, "HEAD", newest, "").2.len(), 0);
    // The quota holds across processes: the oldest went first.
    let served: Vec<u16> = urls.iter().map(|u| get(&b, "GET", u, "").0).collect();
    assert_eq!(served, [404, 404, 200, 200], "the oldest went");
    assert!(a.metric("picochat_upload_bytes") <= 150.0);
    assert!(a.metric("picochat_upload_bytes") > 0.0);
    assert_eq!(get(&b, "GET", "/u/AAAAAAAAAAAAAAAAAAAAAA.png", "").0, 404);
    // Deleting the message (on its process) removes the file for all.
    let newest_id = {
        // The newest upload's message: find its id from bob's catch-up.
        let mut c = b.ws();
        let w = join_room(&mut c, "dev", "carol");
        w["history"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["attachment"]["url"] == newest.as_str())
            .map(|m| m["id"].clone())
            .expect("in the history")
    };
    send_json(
        &mut ann,
        json!({"type": "delete", "room": "dev", "id": newest_id}),
    );
    wait_until("the file gone on the other process", 10, || {
        get(&b, "GET", newest, "").0 == 404
    });
    // Redis gone: images cannot be read, said plainly (not "not found").
    drop(redis);
    wait_until("b sees redis down", 10, || {
        get(&b, "GET", &urls[2], "").0 == 503
    });
}

#[test]
fn with_redis_an_image_goes_when_the_stream_no_longer_keeps_its_message() {
    let redis = Redis::start();
    let a = node(&redis, &["--redis-retain", "5"]);
    let mut ann = a.ws();
    join_room(&mut ann, "dev", "ann");
    let png = sample("png-with-text-and-exif");
    upload(&mut ann, "dev", "", &png, png.len());
    let url = outcome(&mut ann)["attachment"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get(&a, "GET", &url, "").0, 200);
    // Redis trims a stream by whole nodes (100 entries): past them, the
    // image's message is gone from the stream, and so is the image.
    for i in 0..150 {
        send_json(
            &mut ann,
            json!({"type": "message", "room": "dev", "message": format!("m{i}")}),
        );
        assert_eq!(outcome(&mut ann)["type"], "message");
    }
    assert_eq!(get(&a, "GET", &url, "").0, 404);
    assert_eq!(a.metric("picochat_upload_bytes"), 0.0);
}
