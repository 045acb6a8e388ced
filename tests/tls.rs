//! Native TLS (`--tls-cert`) with real clients: curl, `openssl s_client`,
//! Python's `websockets` over `wss://`, and a rustls client for what those
//! cannot hold open (a connection across a reload). Certificates come from a
//! test CA made with the `openssl` command in a temporary directory.
#![cfg(feature = "tls")]

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A test CA and the server certificates it signs (EC P-256, `localhost`
/// and 127.0.0.1), in a fresh directory.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("picochat-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki { dir };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=picochat test CA",
        ]);
        std::fs::write(
            pki.dir.join("ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        pki
    }

    fn openssl(&self, args: &[&str]) -> String {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Issues `NAME.pem` and `NAME.key` with this serial (hex); returns the paths.
    fn issue(&self, name: &str, serial: &str) -> (String, String) {
        let (pem, key, csr) = (
            format!("{name}.pem"),
            format!("{name}.key"),
            format!("{name}.csr"),
        );
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=localhost",
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &format!("0x{serial}"),
            "-out",
            &pem,
            "-days",
            "10",
            "-extfile",
            "ext",
        ]);
        (self.path(&pem), self.path(&key))
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server on TLS, with its plain admin listener (for `/metrics`).
fn tls_server(cert: &str, key: &str, extra: &[&str]) -> (TestServer, SocketAddr) {
    let mut args = vec![
        "--tls-cert",
        cert,
        "--tls-key",
        key,
        "--admin-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let s = TestServer::start(&args);
    let admin = s
        .log_text()
        .split("admin on ")
        .nth(1)
        .and_then(|r| r.split([' ', ',']).next())
        .and_then(|a| a.parse().ok())
        .expect("admin address in the start line");
    (s, admin)
}

/// A TLS server with `--http-redirect` and a webroot holding one ACME
/// challenge, `TOKEN` answered with `TOKEN.thumbprint`: the server, its
/// admin and redirect addresses, and the webroot.
fn acme_server(
    pki: &Pki,
    cert: &str,
    key: &str,
    token: &str,
) -> (TestServer, SocketAddr, SocketAddr, std::path::PathBuf) {
    let webroot = pki.dir.join("webroot");
    let challenges = webroot.join(".well-known/acme-challenge");
    std::fs::create_dir_all(&challenges).unwrap();
    std::fs::write(challenges.join(token), format!("{token}.thumbprint")).unwrap();
    let webroot_arg = webroot.display().to_string();
    let (server, admin) = tls_server(
        cert,
        key,
        &[
            "--http-redirect",
            "127.0.0.1:0",
            "--acme-webroot",
            &webroot_arg,
        ],
    );
    let redirect = redirect_addr(&server);
    (server, admin, redirect, webroot)
}

/// The `--http-redirect` listener's address, from the start line.
fn redirect_addr(server: &TestServer) -> SocketAddr {
    server
        .log_text()
        .split("redirecting http on ")
        .nth(1)
        .and_then(|r| r.split([' ', ',']).next())
        .and_then(|a| a.parse().ok())
        .expect("redirect address")
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

/// `openssl s_client` with these extra flags: (handshake done, its output).
fn s_client(pki: &Pki, addr: SocketAddr, flags: &[&str]) -> (bool, String) {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-CAfile",
            &pki.path("ca.pem"),
        ])
        .args(flags)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl s_client");
    drop(child.stdin.take()); // EOF: s_client ends after the handshake
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (
        out.status.success() && text.contains("Verify return code: 0 (ok)"),
        text,
    )
}

/// The serial (hex, upper case) a new connection is shown.
fn served_serial(pki: &Pki, addr: SocketAddr) -> String {
    let (ok, text) = s_client(pki, addr, &["-showcerts"]);
    assert!(ok, "{text}");
    let start = text.find("-----BEGIN CERTIFICATE-----").unwrap();
    let end = text.find("-----END CERTIFICATE-----").unwrap() + 25;
    std::fs::write(pki.dir.join("served.pem"), &text[start..end]).unwrap();
    let serial = pki.openssl(&["x509", "-in", "served.pem", "-noout", "-serial"]);
    serial.trim().trim_start_matches("serial=").to_string()
}

/// A rustls client that trusts the test CA.
fn tls_client(
    pki: &Pki,
    addr: SocketAddr,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.path("ca.pem")).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = "localhost".try_into().unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// One keep-alive GET on an open TLS connection: the response head and body.
fn get_on(stream: &mut impl ReadWrite, path: &str) -> String {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    stream.flush().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len: usize = text[..head_end]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= head_end + 4 + len {
                return text.to_string();
            }
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

#[test]
fn https_and_wss_with_curl_openssl_and_python_websockets() {
    let pki = Pki::new("clients");
    let (cert, key) = pki.issue("server", "1001");
    let (server, admin) = tls_server(&cert, &key, &[]);
    let base = format!("https://localhost:{}", server.addr.port());
    let ca = pki.path("ca.pem");
    // curl checks the chain against the test CA and the name.
    let (ok, page) = curl(&["--cacert", &ca, &format!("{base}/")]);
    assert!(ok && page.contains("<title>"), "{page}");
    let (ok, version) = curl(&[
        "--cacert",
        &ca,
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        &format!("{base}/api/rooms"),
    ]);
    assert!(ok && version == "1.1", "{version}");
    // Without the CA, curl refuses it: the server is not trusted by accident.
    assert!(!curl(&[&format!("{base}/")]).0);
    // Two Python websockets clients chat over wss://.
    let script = r#"
import asyncio, json, ssl, sys, websockets
async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[1])
    url = sys.argv[2]
    async with websockets.connect(url, ssl=ctx) as a, websockets.connect(url, ssl=ctx) as b:
        await a.send(json.dumps({"type": "join", "username": "ann", "email": "ann@example.org"}))
        await b.send(json.dumps({"type": "join", "username": "bob", "email": "bob@example.org"}))
        await asyncio.sleep(0.2)
        await a.send(json.dumps({"email": "ann@example.org", "username": "ann", "message": "over wss"}))
        while True:
            m = json.loads(await asyncio.wait_for(b.recv(), 10))
            if m.get("message") == "over wss":
                print("delivered", m["username"])
                return
asyncio.run(main())
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &ca,
            &format!("wss://localhost:{}/ws", server.addr.port()),
        ])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("delivered ann"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(metric_at(admin, "picochat_tls_handshakes_total{result=\"ok\"}") >= 4.0);
    assert_eq!(
        metric_at(admin, "picochat_tls_handshakes_total{result=\"failed\"}"),
        1.0,
        "curl without the CA"
    );
    let not_after = pki.openssl(&["x509", "-in", "server.pem", "-noout", "-enddate"]);
    let expires = metric_at(admin, "picochat_tls_cert_not_after_seconds");
    let date = Command::new("date")
        .args([
            "-u",
            "-d",
            not_after.trim().trim_start_matches("notAfter="),
            "+%s",
        ])
        .output()
        .unwrap();
    assert_eq!(
        expires,
        String::from_utf8_lossy(&date.stdout)
            .trim()
            .parse::<f64>()
            .unwrap()
    );
}

#[test]
fn only_tls_1_2_and_1_3_with_alpn_http_1_1() {
    let pki = Pki::new("versions");
    let (cert, key) = pki.issue("server", "1002");
    let (server, _) = tls_server(&cert, &key, &[]);
    let (ok, text) = s_client(&pki, server.addr, &["-tls1_1"]);
    assert!(
        !ok && !text.contains("Protocol  : TLSv1.1\n    Cipher    : ECDHE"),
        "{text}"
    );
    assert!(
        text.contains("alert") || text.contains("no protocols available"),
        "{text}"
    );
    for (flag, name) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let (ok, text) = s_client(&pki, server.addr, &[flag, "-alpn", "h2,http/1.1"]);
        assert!(ok, "{flag}: {text}");
        assert!(
            text.contains(&format!("New, {name}, Cipher is")),
            "{flag}: {text}"
        );
        assert!(text.contains("ALPN protocol: http/1.1"), "{flag}: {text}");
    }
}

#[test]
fn sighup_reloads_the_pair_open_connections_keep_theirs_a_bad_pair_changes_nothing() {
    let pki = Pki::new("reload");
    let (cert, key) = pki.issue("server", "2001");
    let (server, admin) = tls_server(&cert, &key, &[]);
    assert_eq!(served_serial(&pki, server.addr), "2001");
    let mut open = tls_client(&pki, server.addr);
    assert!(get_on(&mut open, "/api/rooms").starts_with("HTTP/1.1 200"));
    // Renewal: new files in place, then SIGHUP.
    let (new_cert, new_key) = pki.issue("renewed", "2002");
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    server.signal("-HUP");
    server.wait_log("TLS certificate reloaded (serial 2002", 10);
    assert_eq!(served_serial(&pki, server.addr), "2002");
    let serial = |c: &rustls::StreamOwned<rustls::ClientConnection, TcpStream>| {
        c.conn.peer_certificates().map(|certs| certs[0].to_vec())
    };
    let before = serial(&open);
    assert!(
        get_on(&mut open, "/api/rooms").starts_with("HTTP/1.1 200"),
        "the open connection goes on"
    );
    assert_eq!(serial(&open), before);
    let expires = metric_at(admin, "picochat_tls_cert_not_after_seconds");
    // A broken renewal: the old certificate with a key that is not its own.
    let (_, other_key) = pki.issue("other", "2003");
    std::fs::copy(&other_key, &key).unwrap();
    server.signal("-HUP");
    server.wait_log("TLS certificate not reloaded, keeping the old one", 10);
    assert_eq!(served_serial(&pki, server.addr), "2002");
    std::fs::write(&cert, "not a certificate\n").unwrap();
    server.signal("-HUP");
    wait_until("the second refusal", 10, || {
        server
            .log_text()
            .matches("not reloaded, keeping the old one")
            .count()
            == 2
    });
    assert_eq!(served_serial(&pki, server.addr), "2002");
    assert_eq!(
        metric_at(admin, "picochat_tls_cert_not_after_seconds"),
        expires
    );
}

#[test]
fn plain_http_garbage_silence_and_a_hello_flood_on_the_tls_port_never_stop_it() {
    let pki = Pki::new("bad");
    let (cert, key) = pki.issue("server", "3001");
    let (server, admin) = tls_server(&cert, &key, &["--header-timeout", "1s"]);
    // Plain HTTP on the TLS port: a plain 400 that says why.
    let answer = http_raw(server.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.contains("use an https:// URL"), "{answer}");
    // Garbage where a ClientHello belongs: closed.
    let mut g = server.tcp();
    g.write_all(&[0x16, 0x03, 0x01, 0x00, 0x04, 1, 2, 3, 4, 0xff, 0xee])
        .unwrap();
    assert!(read_all(&mut g, Duration::from_secs(5)).len() < 64);
    // Silent, and dribbling, clients are cut at the header timeout.
    let started = Instant::now();
    let mut silent = server.tcp();
    let mut dribble = server.tcp();
    let hello_start = [
        0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    let dribbler = std::thread::spawn(move || {
        for b in hello_start.iter().cycle().take(40) {
            if dribble.write_all(&[*b]).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    });
    assert_eq!(silent.read(&mut [0u8; 16]).unwrap_or(0), 0);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert!(dribbler.join().unwrap(), "the dribbling handshake was cut");
    // A flood of half ClientHellos, then a real client still gets in.
    let flood: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            let _ = s.write_all(&hello_start);
            s
        })
        .collect();
    let (ok, page) = curl(&[
        "--cacert",
        &pki.path("ca.pem"),
        &format!("https://localhost:{}/", server.addr.port()),
    ]);
    assert!(ok && page.contains("<title>"), "{page}");
    drop(flood);
    assert!(metric_at(admin, "picochat_tls_handshakes_total{result=\"failed\"}") >= 2.0);
    assert!(metric_at(admin, "picochat_disconnects_total{reason=\"tls_error\"}") >= 2.0);
    assert!(metric_at(admin, "picochat_disconnects_total{reason=\"timeout\"}") >= 2.0);
}

#[test]
fn http_redirect_sends_to_https_and_serves_acme_challenges_only() {
    let pki = Pki::new("redirect");
    let (cert, key) = pki.issue("server", "4001");
    let (server, _, redirect, webroot) = acme_server(&pki, &cert, &key, "tok_EN-1");
    std::fs::create_dir_all(webroot.join(".well-known/acme-challenge/a-dir")).unwrap();
    std::fs::write(webroot.join("secret"), "not for the web").unwrap();
    let port = server.addr.port();
    let get = |path: &str| {
        String::from_utf8_lossy(&http_raw(
            redirect,
            &format!("GET {path} HTTP/1.1\r\nHost: localhost:80\r\nConnection: close\r\n\r\n"),
        ))
        .to_string()
    };
    let r = get("/r/general?x=1");
    assert!(r.starts_with("HTTP/1.1 308 Permanent Redirect\r\n"), "{r}");
    assert!(
        r.contains(&format!(
            "\r\nLocation: https://localhost:{port}/r/general?x=1\r\n"
        )),
        "{r}"
    );
    // curl follows it to the TLS listener.
    let (ok, body) = curl(&[
        "-L",
        "--cacert",
        &pki.path("ca.pem"),
        &format!("http://localhost:{}/", redirect.port()),
    ]);
    assert!(ok && body.contains("<title>"), "{body}");
    let c = get("/.well-known/acme-challenge/tok_EN-1");
    assert!(
        c.starts_with("HTTP/1.1 200 OK\r\n") && c.ends_with("\r\n\r\ntok_EN-1.thumbprint"),
        "{c}"
    );
    assert!(get("/.well-known/acme-challenge/missing").starts_with("HTTP/1.1 404"));
    assert!(get("/.well-known/acme-challenge/a-dir").starts_with("HTTP/1.1 404"));
    for path in [
        "/.well-known/acme-challenge/../../secret",
        "/.well-known/acme-challenge/..%2F..%2Fsecret",
        "/.well-known/acme-challenge/",
    ] {
        let r = get(path);
        assert!(
            r.starts_with("HTTP/1.1 308") && !r.contains("not for the web"),
            "{path}: {r}"
        );
    }
}

#[test]
fn the_first_certificate_comes_after_the_start_when_this_process_serves_its_challenge() {
    // A first install: --tls-cert names where certbot will put the pair,
    // which does not exist yet. Serving the ACME challenge itself, the
    // server starts, refuses TLS meanwhile, and SIGHUP (the deploy hook)
    // brings HTTPS up. Without the challenge listener it stops the start.
    let pki = Pki::new("first");
    let live = pki.dir.join("live");
    let (cert, key) = (
        live.join("fullchain.pem").display().to_string(),
        live.join("privkey.pem").display().to_string(),
    );
    let (code, err) = run_to_exit(&["--tls-cert", &cert, "--tls-key", &key]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--tls-cert"), "{err}");
    let (server, admin, redirect, _) = acme_server(&pki, &cert, &key, "first-token");
    assert!(server.log_text().contains("does not exist yet"));
    let challenge = String::from_utf8_lossy(&http_raw(
        redirect,
        "GET /.well-known/acme-challenge/first-token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ))
    .to_string();
    assert!(
        challenge.ends_with("\r\n\r\nfirst-token.thumbprint"),
        "{challenge}"
    );
    // No certificate yet: a TLS client is turned away, never answered in plain.
    let base = format!("https://localhost:{}/", server.addr.port());
    assert!(!curl(&["--cacert", &pki.path("ca.pem"), &base]).0);
    let plain = http_raw(server.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(plain.is_empty(), "{}", String::from_utf8_lossy(&plain));
    // certbot's deploy hook: the pair in place, then SIGHUP.
    let (issued_cert, issued_key) = pki.issue("server", "6001");
    std::fs::create_dir_all(&live).unwrap();
    std::fs::copy(&issued_cert, &cert).unwrap();
    std::fs::copy(&issued_key, &key).unwrap();
    server.signal("-HUP");
    server.wait_log("TLS certificate reloaded (serial 6001", 10);
    assert_eq!(served_serial(&pki, server.addr), "6001");
    let (ok, page) = curl(&["--cacert", &pki.path("ca.pem"), &base]);
    assert!(ok && page.contains("<title>"), "{page}");
    assert!(metric_at(admin, "picochat_tls_handshakes_total{result=\"failed\"}") >= 2.0);
    assert!(metric_at(admin, "picochat_tls_cert_not_after_seconds") > 0.0);
}

#[test]
fn a_key_that_is_not_the_certificates_or_a_missing_half_stops_the_start() {
    let pki = Pki::new("start");
    let (cert, _) = pki.issue("server", "5001");
    let (_, other_key) = pki.issue("other", "5002");
    let (code, err) = run_to_exit(&["--tls-cert", &cert, "--tls-key", &other_key]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--tls-cert") && err.contains("KeyMismatch"),
        "{err}"
    );
    let (code, err) = run_to_exit(&["--tls-cert", &cert]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--tls-cert and --tls-key go together"),
        "{err}"
    );
    let (code, err) = run_to_exit(&["--http-redirect", "127.0.0.1:0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--http-redirect needs --tls-cert"), "{err}");
    assert!(Path::new(&cert).exists());
}

/// `picochat-load --json` with these arguments: its report.
fn load_report(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_picochat-load"))
        .args(args)
        .args(["--json", "--quiet"])
        .output()
        .expect("run picochat-load");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "picochat-load ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn the_load_generator_chats_over_wss_and_trusts_only_its_ca() {
    let pki = Pki::new("load");
    let (cert, key) = pki.issue("server", "2001");
    let (server, _admin) = tls_server(&cert, &key, &["--msg-rate", "0"]);
    let url = format!("wss://localhost:{}/ws", server.addr.port());
    let ca = pki.path("ca.pem");
    let r = load_report(&[
        "--url",
        &url,
        "--tls-ca",
        &ca,
        "--clients",
        "40",
        "--senders",
        "4",
        "--rate",
        "40",
        "--duration",
        "1s",
        "--rooms",
        "1",
        "--images-rate",
        "3",
        "--image-size",
        "20KiB",
    ]);
    assert_eq!(r["connected"], 40, "{r}");
    assert_eq!(r["lost"], 0, "{r}");
    assert!(r["received"].as_u64().unwrap_or(0) >= 40 * 30, "{r}");
    assert_eq!(r["params"]["urls"][0], url.as_str(), "{r}");
    // Images uploaded over wss and fetched over https by all forty.
    let i = &r["requests"]["images"];
    let stored = i["uploads"]["answered"].as_u64().unwrap_or(0);
    assert!(stored >= 2, "{i}");
    assert_eq!(i["fetches"]["answered"], 40 * stored, "{i}");
    assert_eq!(i["fetched_bytes"], 40 * stored * 20 * 1024, "{i}");
    assert_eq!(i["fetch_failed"], 0, "{i}");
    // A CA that did not sign the server's certificate: every handshake fails.
    let (other, _) = pki.issue("other", "2002");
    let r = load_report(&[
        "--url",
        &url,
        "--tls-ca",
        &other,
        "--clients",
        "3",
        "--idle",
        "--duration",
        "200ms",
    ]);
    assert_eq!(r["connected"], 0, "{r}");
    assert_eq!(r["failed"], 3, "{r}");
    assert!(
        r["first_error"]
            .as_str()
            .unwrap_or("")
            .contains("certificate"),
        "{r}"
    );
}
