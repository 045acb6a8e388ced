//! Test helpers: run the real `picochat` binary on an ephemeral port, talk to
//! it over real sockets (raw TCP, and tungstenite's WebSocket client).
#![allow(dead_code)]

/// CPU and memory of a process from /proc (shared with picochat-load).
#[path = "../../src/bin/picochat-load/procfs.rs"]
pub mod procfs;
pub mod redis;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub struct TestServer {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

impl TestServer {
    /// Starts the binary with `args` on 127.0.0.1:0 and waits for its "listening" line.
    pub fn start(args: &[&str]) -> TestServer {
        TestServer::start_under(&[], args)
    }

    /// Like [`start`](Self::start), with the binary run by `wrapper` (e.g.
    /// `strace -o FILE`); then `pid()` is the wrapper's.
    pub fn start_under(wrapper: &[&str], args: &[&str]) -> TestServer {
        let bin = env!("CARGO_BIN_EXE_picochat");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--log-level", "debug"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn picochat");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let addr = loop {
            let line = lines
                .next()
                .expect("picochat exited before listening")
                .expect("read stderr");
            log.lock().unwrap().push_str(&line);
            log.lock().unwrap().push('\n');
            if let Some(rest) = line.split(" listening on ").nth(1) {
                let addr = rest.split([' ', ',']).next().unwrap();
                break addr.parse().expect("listen address");
            }
        };
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        TestServer { child, addr, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle` (or panics after `secs`).
    pub fn wait_log(&self, needle: &str, secs: u64) {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if self.log_text().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("log never showed {needle:?}:\n{}", self.log_text());
    }

    /// A raw TCP connection with a read timeout.
    pub fn tcp(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// A chat WebSocket client.
    pub fn ws(&self) -> Ws {
        ws_connect(&self.url("/ws"))
    }

    /// Reads `/metrics` and returns the value of one sample line (exact name incl. labels).
    pub fn metric(&self, sample: &str) -> f64 {
        metric_at(self.addr, sample)
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary through `sh -c "<shell_setup> && exec picochat --listen 127.0.0.1:0 <args>"`
/// (e.g. to set `ulimit`s first) and returns it with the address it listens on.
pub fn start_via_shell(shell_setup: &str, args: &str) -> (Child, SocketAddr) {
    let script = format!(
        "{shell_setup} && exec {} --listen 127.0.0.1:0 {args}",
        env!("CARGO_BIN_EXE_picochat")
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn via sh");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("picochat exited before listening")
            .expect("read stderr");
        if let Some(rest) = line.split(" listening on ").nth(1) {
            break rest
                .split([' ', ','])
                .next()
                .unwrap()
                .parse()
                .expect("listen address");
        }
    };
    // Keep draining its log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    (child, addr)
}

pub type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// How long `recv_json` waits for a frame on this client before failing
/// (10 s unless set): for an answer that takes long in a debug build.
pub fn set_wait(ws: &Ws, wait: Duration) {
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(wait)).unwrap();
    }
}

pub fn ws_connect(url: &str) -> Ws {
    let (ws, _) = tungstenite::connect(url).expect("websocket connect");
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    ws
}

/// Next text frame as JSON (answers pings on the way, via tungstenite).
pub fn recv_json(ws: &mut Ws) -> serde_json::Value {
    loop {
        match ws.read().expect("read frame") {
            Message::Text(t) => {
                return serde_json::from_str(t.as_str()).expect("one JSON object per frame")
            }
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// Next JSON frame of the given type, skipping others (presence notices...).
pub fn recv_type(ws: &mut Ws, kind: &str) -> serde_json::Value {
    loop {
        let v = recv_json(ws);
        if v["type"] == kind {
            return v;
        }
    }
}

pub fn send_json(ws: &mut Ws, v: serde_json::Value) {
    ws.send(Message::text(v.to_string())).expect("send");
}

pub fn join(ws: &mut Ws, name: &str) -> serde_json::Value {
    send_json(ws, serde_json::json!({"type": "join", "username": name}));
    recv_type(ws, "welcome")
}

/// Reads until the peer closes or `timeout` passes; returns everything read.
pub fn read_all(s: &mut TcpStream, timeout: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return out,
        }
    }
}

/// One GET with `Connection: close`; returns the body.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    let raw = http_raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
    );
    let text = String::from_utf8_lossy(&raw).to_string();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// Waits until `done()` holds, checking it every few milliseconds, for at
/// most `secs` seconds; panics naming `what` otherwise. Tests wait on the
/// condition itself (a metric, a reply, a process state), never on a guess
/// of how long something takes.
pub fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < end, "waited {secs} s for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One sample of `/metrics` at `addr`, or `None` when the server does not
/// answer with it (refused, over a limit, still starting).
pub fn try_metric_at(addr: SocketAddr, sample: &str) -> Option<f64> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

/// Reads `/metrics` at `addr` and returns the value of one sample line (exact name incl. labels).
pub fn metric_at(addr: SocketAddr, sample: &str) -> f64 {
    let body = http_get(addr, "/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {sample} in\n{body}"))
        .trim()
        .parse()
        .unwrap()
}

/// Sends raw bytes, reads until close; returns the raw response bytes.
pub fn http_raw(addr: SocketAddr, request: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    read_all(&mut s, Duration::from_secs(10))
}

/// A raw WebSocket upgrade on a plain TcpStream (for hand-made frames).
pub fn raw_ws(server: &TestServer, path: &str) -> TcpStream {
    let mut s = server.tcp();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// A masked client frame.
pub fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len < 65536 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [0x11, 0x22, 0x33, 0x44];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Reads one unmasked server frame: (opcode, payload).
pub fn read_frame(s: &mut impl Read) -> (u8, Vec<u8>) {
    try_read_frame(s).expect("read a frame")
}

/// Reads one unmasked server frame, or the error that stopped it (EOF, timeout).
pub fn try_read_frame(s: &mut impl Read) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h)?;
    let mut len = (h[1] & 0x7f) as u64;
    if len == 126 {
        let mut b = [0u8; 2];
        s.read_exact(&mut b)?;
        len = u16::from_be_bytes(b) as u64;
    } else if len == 127 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b)?;
        len = u64::from_be_bytes(b);
    }
    assert_eq!(h[1] & 0x80, 0, "server frames are unmasked");
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload)?;
    Ok((h[0] & 0x0f, payload))
}

/// Reads frames until a close frame; returns its code.
pub fn read_close_code(s: &mut TcpStream) -> u16 {
    loop {
        let (op, payload) = read_frame(s);
        if op == 8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

/// Runs `picochat-load` with `args` (plus `--json --quiet`) and returns its report.
pub fn run_load(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_picochat-load"))
        .args(args)
        .args(["--json", "--quiet"])
        .output()
        .expect("run picochat-load");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The ids of a history page's or search answer's messages.
pub fn page_ids(answer: &serde_json::Value) -> Vec<u64> {
    answer["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages: {answer}"))
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect()
}

/// The ids of a welcome's history, oldest first.
pub fn history_ids(welcome: &serde_json::Value) -> Vec<u64> {
    welcome["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect()
}

/// A TCP connection to `to` from the local address `from` (bound first).
pub fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let sin = |ip: [u8; 4], port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a socket we own; the sockaddr_in values outlive the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let local = sin(from, 0);
        assert_eq!(
            libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len),
            0,
            "bind {from:?}"
        );
        let remote = sin([127, 0, 0, 1], to.port());
        assert_eq!(
            libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len),
            0,
            "connect"
        );
        let s = TcpStream::from_raw_fd(fd);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }
}

/// A chat WebSocket to `server` from the local address `from`.
///
/// A read with a timeout is not restarted after a signal (the kernel answers
/// EINTR instead), and tungstenite's handshake gives up on it: a handshake
/// cut that way is tried again on a new connection, as a browser would.
pub fn ws_from(from: [u8; 4], server: &TestServer) -> Ws {
    let url = format!("ws://127.0.0.1:{}/ws", server.addr.port());
    for _ in 0..3 {
        let stream = connect_from(from, server.addr);
        match tungstenite::client::client(url.as_str(), MaybeTlsStream::Plain(stream)) {
            Ok((ws, _)) => return ws,
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Io(e)))
                if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("websocket handshake: {e:?}"),
        }
    }
    panic!("websocket handshake interrupted three times");
}

/// Runs the binary with `args` (on 127.0.0.1:0) to its exit, for settings
/// that must stop the start: its exit status and stderr.
pub fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_picochat"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .output()
        .expect("run picochat");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// One admin API call on a new connection: (status, JSON body).
pub fn admin_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    admin_call_on(&mut TcpStream::connect(addr).unwrap(), method, path, token)
}

/// One admin API call on `s` (`Connection: close`): (status, JSON body).
pub fn admin_call_on(
    s: &mut TcpStream,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let raw = read_all(s, Duration::from_secs(5));
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// The close code a client gets next (skipping other frames).
pub fn closed_with(ws: &mut Ws) -> (u16, String) {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(Some(f))) => {
                let _ = ws.flush(); // the close reply, so the server frees it now
                return (f.code.into(), f.reason.to_string());
            }
            Ok(tungstenite::Message::Close(None)) => return (0, String::new()),
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

/// A new chat socket that joins the default room as `name` with a page
/// `secret`; returns it and the first frame answered (welcome or error).
pub fn join_as(s: &TestServer, name: &str, secret: &str) -> (Ws, serde_json::Value) {
    let mut ws = s.ws();
    send_json(
        &mut ws,
        serde_json::json!({"type": "join", "username": name, "secret": secret}),
    );
    let answer = recv_json(&mut ws);
    (ws, answer)
}

/// A token signed with `secret`, valid from `nbf` to `exp` (seconds from now).
pub fn sign_token(
    secret: &str,
    claims: serde_json::Value,
    exp: Option<i64>,
    nbf: Option<i64>,
) -> String {
    use jwt_compact::{alg::Hs256, alg::Hs256Key, AlgorithmExt, Claims, Header};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = |d: i64| chrono::DateTime::<chrono::Utc>::from_timestamp(now + d, 0).unwrap();
    let mut c = Claims::new(claims);
    c.expiration = exp.map(at);
    c.not_before = nbf.map(at);
    Hs256
        .token(&Header::empty(), &c, &Hs256Key::new(secret.as_bytes()))
        .unwrap()
}
