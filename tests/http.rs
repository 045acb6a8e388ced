//! The page over real HTTP: headers, gzip, ETag/304, HEAD, errors, keep-alive,
//! pipelining and requests split across writes.

mod common;
use common::*;
use std::io::Write;
use std::time::Duration;

fn head_of(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.split("\r\n\r\n").next().unwrap().to_string()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn page_is_served_with_type_length_etag_and_gzip() {
    let s = TestServer::start(&[]);
    let raw = http_raw(
        s.addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let head = head_of(&raw);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(
        header(&head, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let len: usize = header(&head, "content-length").unwrap().parse().unwrap();
    let body = &raw[head.len() + 4..];
    assert_eq!(body.len(), len);
    assert!(String::from_utf8_lossy(body).contains("<title>picochat</title>"));
    // The binary keeps one gzipped copy: a client without gzip gets it inflated, byte for byte.
    let file = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/index.html")).unwrap();
    assert_eq!(body, &file[..]);
    let etag = header(&head, "etag").unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong ETag: {etag}"
    );
    assert!(header(&head, "content-encoding").is_none());

    let gz = http_raw(
        s.addr,
        "GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip, br\r\nConnection: close\r\n\r\n",
    );
    let gz_head = head_of(&gz);
    assert_eq!(header(&gz_head, "content-encoding"), Some("gzip"));
    assert_eq!(header(&gz_head, "vary"), Some("Accept-Encoding"));
    let gz_body = &gz[gz_head.len() + 4..];
    assert_eq!(&gz_body[..2], &[0x1f, 0x8b], "gzip magic");
    assert!(gz_body.len() < body.len());
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz_body), &mut unzipped).unwrap();
    assert_eq!(unzipped, file);
    assert_ne!(
        header(&gz_head, "etag").unwrap(),
        etag,
        "each encoding has its own ETag"
    );

    for (path, ctype) in [
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let raw = http_raw(
            s.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        let head = head_of(&raw);
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        assert!(
            header(&head, "content-type").unwrap().starts_with(ctype),
            "{path}"
        );
    }
}

#[test]
fn if_none_match_gives_304_and_head_has_no_body() {
    let s = TestServer::start(&[]);
    let raw = http_raw(
        s.addr,
        "GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let etag = header(&head_of(&raw), "etag").unwrap().to_string();
    let raw = http_raw(
        s.addr,
        &format!(
            "GET /app.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"
        ),
    );
    let text = String::from_utf8_lossy(&raw).to_string();
    assert!(text.starts_with("HTTP/1.1 304 Not Modified"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "no body on 304");

    let raw = http_raw(
        s.addr,
        "HEAD /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&raw).to_string();
    let head = head_of(&raw);
    assert!(head.starts_with("HTTP/1.1 200"));
    assert!(
        header(&head, "content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 100
    );
    assert!(text.ends_with("\r\n\r\n"), "HEAD has no body");
}

#[test]
fn errors_have_the_right_status_and_the_server_keeps_running() {
    let s = TestServer::start(&[]);
    let cases: &[(&str, &str)] = &[
        (
            "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "404",
        ),
        (
            "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "404",
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
            "405",
        ),
        ("DELETE /ws HTTP/1.1\r\nHost: x\r\n\r\n", "405"),
        ("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", "426"),
        (
            "\x16\x03\x01\x02\x00\x01\x00\x01\x7f\x03\x03\r\n\r\n",
            "400",
        ),
        ("GET / HTTP/1.1\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", "400"),
    ];
    for (req, status) in cases {
        let raw = http_raw(s.addr, req);
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status}")),
            "{req:?} -> {text}"
        );
    }
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let text = String::from_utf8_lossy(&http_raw(s.addr, &big)).to_string();
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
    let text = String::from_utf8_lossy(&http_raw(
        s.addr,
        &format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n"),
    ))
    .to_string();
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    // Still serving after all that, unlike the Go original on a plain GET /ws.
    assert!(http_get(s.addr, "/").contains("picochat"));
}

#[test]
fn keep_alive_pipelining_and_split_requests_work() {
    let s = TestServer::start(&[]);
    let mut c = s.tcp();
    // Three pipelined requests in one write; the last one closes.
    c.write_all(
        b"GET /style.css HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let text = String::from_utf8_lossy(&read_all(&mut c, Duration::from_secs(5))).to_string();
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "200", "404"], "{text}");

    // One request dribbled in small pieces across writes.
    let mut c = s.tcp();
    for piece in [
        "GE",
        "T /app",
        ".js HT",
        "TP/1.1\r\nHo",
        "st: x\r\nConnection: cl",
        "ose\r\n",
        "\r\n",
    ] {
        c.write_all(piece.as_bytes()).unwrap();
        c.flush().unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    let text = String::from_utf8_lossy(&read_all(&mut c, Duration::from_secs(5))).to_string();
    assert!(
        text.starts_with("HTTP/1.1 200 OK") && text.contains("text/javascript"),
        "{text}"
    );

    // Keep-alive: two requests, one after the other, on one connection.
    let mut c = s.tcp();
    for _ in 0..2 {
        c.write_all(b"GET /favicon.svg HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("</svg>") {
            let n = std::io::Read::read(&mut c, &mut buf).unwrap();
            assert!(n > 0, "connection kept open");
            got.extend_from_slice(&buf[..n]);
        }
    }
}

#[test]
fn the_page_may_be_framed_only_by_the_sites_named_and_the_admin_page_never() {
    let head = |addr, path: &str| {
        let raw = http_raw(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        );
        let text = String::from_utf8_lossy(&raw).to_string();
        text.split("\r\n\r\n").next().unwrap().to_string()
    };
    let plain = TestServer::start(&[]);
    assert!(head(plain.addr, "/").contains("frame-ancestors 'none'\r\n"));
    let dir = std::env::temp_dir().join(format!("picochat-frames-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "an-admin-token-of-some-length").unwrap();
    let s = TestServer::start(&[
        "--frame-ancestors",
        "https://example.org https://*.example.net",
        "--admin-token-file",
        token.to_str().unwrap(),
    ]);
    assert!(
        head(s.addr, "/").contains("frame-ancestors https://example.org https://*.example.net\r\n")
    );
    assert!(head(s.addr, "/admin").contains("frame-ancestors 'none'\r\n"));
    let (status, err) = run_to_exit(&["--frame-ancestors", "https://a.org; script-src *"]);
    assert_eq!(status, Some(2), "{err}");
}
