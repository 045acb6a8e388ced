//! A connection without a socket: a pipe for its bytes and a shell that
//! records what it reports.

use super::testing::{Pipe, Watch};
use super::*;
use crate::net::http::{self, Status};
use crate::net::ws::apply_mask;

const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// A masked client frame, as a browser sends it.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [1, 2, 3, 4];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    let start = f.len();
    f.extend_from_slice(payload);
    apply_mask(&mut f[start..], mask);
    f
}

fn conn(input: &[&[u8]]) -> Conn<Pipe> {
    Conn::new(
        Pipe::with(input),
        "127.0.0.1:9".parse().unwrap(),
        0,
        1,
        crate::net::http_session::Listener::Main,
        false,
        0,
    )
}

fn read(c: &mut Conn<Pipe>, watch: &mut Watch, config: &Config) {
    let env = Env {
        config,
        now: 5,
        wall_ms: 1_000,
        date: "Thu, 03 Dec 2026 08:00:00 GMT",
        admin_api: false,
    };
    let mut scratch = vec![0; 4096];
    assert_eq!(c.read_ready(&mut scratch, &env, watch), ReadResult::Drained);
    c.flush(config);
}

fn written(c: &Conn<Pipe>) -> String {
    String::from_utf8_lossy(&c.stream.output).into_owned()
}

#[test]
fn a_page_request_is_answered_and_the_connection_kept() {
    let config = Config::default();
    let mut c = conn(&[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]);
    let mut watch = Watch::default();
    read(&mut c, &mut watch, &config);
    assert!(
        written(&c).starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        written(&c)
    );
    assert_eq!(watch.stats.http_requests_total, 1);
    assert!(c.closing.is_none() && !c.dead && !c.stream.shut.get());
    assert_eq!(
        c.deadline(&config),
        5 + config.keepalive_timeout.as_millis() as u64
    );
}

#[test]
fn connection_close_drains_the_reply_then_half_closes_and_lingers() {
    let config = Config::default();
    let mut c = conn(&[b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]);
    let mut watch = Watch::default();
    read(&mut c, &mut watch, &config);
    assert!(written(&c).starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(c.stream.shut.get(), "our FIN after the reply");
    assert!(!c.dead, "waits for the peer's EOF");
    assert_eq!(c.reason(), Some(EndReason::HttpDone));
    assert_eq!(c.deadline(&config), 5 + config.linger.as_millis() as u64);
}

#[test]
fn a_request_split_across_reads_waits_for_its_end_and_server_routes_are_asked() {
    let config = Config::default();
    let mut c = conn(&[b"GET /api/ro", b"oms HTTP/1.1\r\nHost: x\r\n", b"\r\n"]);
    let mut watch = Watch::default();
    read(&mut c, &mut watch, &config);
    assert_eq!(watch.served, ["Rooms /api/rooms"], "{}", written(&c));
    assert!(written(&c).starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(c.inbuf.is_empty() && c.input_started.is_none());
}

#[test]
fn a_late_answer_holds_the_next_request_until_it_is_queued() {
    let config = Config::default();
    let image = "GET /u/AAAAAAAAAAAAAAAAAAAAAA.png HTTP/1.1\r\nHost: x\r\n\r\n";
    let rooms = "GET /api/rooms HTTP/1.1\r\nHost: x\r\n\r\n";
    let both = format!("{image}{rooms}");
    let mut c = conn(&[both.as_bytes(), rooms.as_bytes()]);
    let mut watch = Watch::default();
    read(&mut c, &mut watch, &config);
    assert_eq!(watch.served.len(), 1, "the pipelined request waits");
    assert!(written(&c).is_empty());
    assert_eq!(c.stream.input.len(), 1, "nothing more read meanwhile");
    assert_eq!(
        c.deadline(&config),
        5 + config.header_timeout.as_millis() as u64,
        "the answer is due like a request head"
    );
    let env = Env {
        config: &config,
        now: 9,
        wall_ms: 1_000,
        date: "Thu, 03 Dec 2026 08:00:00 GMT",
        admin_api: false,
    };
    let answer = http::simple(Status::Ok, "text/plain", b"late", "", false, true, "d");
    assert!(c.answer(answer, &env), "input is left to read");
    read(&mut c, &mut watch, &config);
    let out = written(&c);
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n") && out.contains("\r\n\r\nlate"),
        "{out}"
    );
    assert_eq!(out.matches("HTTP/1.1 200").count(), 3, "{out}");
    assert_eq!(watch.served.len(), 3);
    assert!(c.closing.is_none() && c.inbuf.is_empty());
    let again = http::simple(Status::Ok, "text/plain", b"x", "", false, true, "d");
    assert!(
        !c.answer(again, &env),
        "an answer nobody waits for is dropped"
    );
    assert_eq!(written(&c).matches("HTTP/1.1 200").count(), 3);
}

#[test]
fn a_late_answer_that_never_comes_is_a_503_at_the_header_timeout() {
    let config = Config::default();
    let image = "GET /u/AAAAAAAAAAAAAAAAAAAAAA.png HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut c = conn(&[image.as_bytes()]);
    let mut watch = Watch::default();
    read(&mut c, &mut watch, &config);
    let due = c.deadline(&config);
    c.on_timer(&config, "d", due - 1);
    assert!(written(&c).is_empty());
    c.on_timer(&config, "d", due);
    c.flush(&config);
    assert!(written(&c).starts_with("HTTP/1.1 503 "), "{}", written(&c));
    assert_eq!(c.reason(), Some(EndReason::Timeout));
}

#[test]
fn an_upgraded_chat_socket_reports_its_messages_and_answers_pings_itself() {
    let config = Config::default();
    let text = frame(0x1, br#"{"message":"hi"}"#);
    let (first, rest) = text.split_at(5);
    let input: Vec<&[u8]> = vec![
        UPGRADE.as_bytes(),
        first,
        rest,
        &[0x89, 0x80, 0, 0, 0, 0][..], // an empty masked ping
    ];
    let binary = frame(0x2, &[1, 2, 3]);
    let mut input = input;
    input.push(&binary);
    let mut c = conn(&input);
    let mut watch = Watch::default();
    read(&mut c, &mut watch, &config);
    assert!(written(&c).starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert_eq!(watch.upgraded, [WsKind::Chat]);
    assert_eq!(
        (watch.stats.ws_upgrades_total, watch.stats.ws_clients),
        (1, 1)
    );
    assert_eq!(
        watch.chat,
        [
            (true, br#"{"message":"hi"}"#.to_vec()),
            (false, vec![1, 2, 3])
        ]
    );
    assert!(c.stream.output.ends_with(&[0x8a, 0x00]), "the pong");
    assert!(c.is_chat_client());
}

#[test]
fn bad_utf8_closes_with_1007_and_nothing_is_reported() {
    let config = Config::default();
    let bad = frame(0x1, &[0xff, 0xfe]);
    let mut c = conn(&[UPGRADE.as_bytes(), &bad]);
    let mut watch = Watch::default();
    read(&mut c, &mut watch, &config);
    assert!(watch.chat.is_empty());
    let out = &c.stream.output;
    let close = out.iter().rposition(|&b| b == 0x88).expect("a close frame");
    assert_eq!(out[close + 2..close + 4], [0x03, 0xef], "close 1007");
    assert_eq!(c.reason(), Some(EndReason::InvalidUtf8));
}

#[test]
fn a_malformed_head_gets_400_and_the_peer_eof_ends_it() {
    let config = Config::default();
    let mut c = conn(&[b"NOT HTTP\r\n\r\n"]);
    c.stream.eof = true;
    let mut watch = Watch::default();
    read(&mut c, &mut watch, &config);
    assert!(written(&c).starts_with("HTTP/1.1 400 "), "{}", written(&c));
    assert_eq!(c.reason(), Some(EndReason::BadRequest));
    assert!(c.dead, "output drained and the peer gone: freed");
}

/// A masked client frame of any length, `fin` or not.
fn long_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mask = [5, 6, 7, 8];
    let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    let start = f.len();
    f.extend_from_slice(payload);
    apply_mask(&mut f[start..], mask);
    f
}

/// A chat connection (messages up to 64 bytes) that has been told to expect an upload.
fn expecting(bytes: usize, keep: bool) -> (Conn<Pipe>, Config) {
    let config = Config {
        max_message: 64,
        ..Config::default()
    };
    let mut c = super::testing::chat_conn(3, 1, false, &config);
    c.expect_upload(bytes, keep);
    (c, config)
}

fn feed(c: &mut Conn<Pipe>, chunks: &[&[u8]], config: &Config) -> Watch {
    c.stream.input.extend(chunks.iter().map(|x| x.to_vec()));
    let mut watch = Watch::default();
    read(c, &mut watch, config);
    watch
}

fn closed_with(c: &Conn<Pipe>) -> Option<u16> {
    let out = &c.stream.output;
    let at = out.iter().rposition(|&b| b == 0x88)?;
    Some(u16::from_be_bytes([out[at + 2], out[at + 3]]))
}

#[test]
fn an_announced_upload_passes_up_to_its_size_once_then_messages_are_limited_again() {
    let (mut c, config) = expecting(3000, true);
    let image = vec![7u8; 3000];
    let bin = long_frame(0x2, true, &image);
    // It arrives in pieces, as a phone sends it.
    let watch = feed(
        &mut c,
        &[&bin[..1000], &bin[1000..2500], &bin[2500..]],
        &config,
    );
    assert_eq!(watch.chat, [(false, image)], "one binary message, whole");
    assert_eq!(closed_with(&c), None);
    // Only once: the next binary message is a message again (64 bytes at most).
    let watch = feed(&mut c, &[&long_frame(0x2, true, &[1; 100])], &config);
    assert!(watch.chat.is_empty());
    assert_eq!(closed_with(&c), Some(1009));
}

#[test]
fn an_upload_over_its_announced_size_is_refused_from_its_header() {
    let (mut c, config) = expecting(100, true);
    let bin = long_frame(0x2, true, &[7; 101]);
    let watch = feed(&mut c, &[&bin[..20]], &config);
    assert!(watch.chat.is_empty());
    assert_eq!(closed_with(&c), Some(1009), "before the payload came");
    // Fragments count together.
    let (mut c, config) = expecting(100, true);
    let first = long_frame(0x2, false, &[7; 60]);
    let second = long_frame(0x0, true, &[7; 60]);
    feed(&mut c, &[&first, &second], &config);
    assert_eq!(closed_with(&c), Some(1009));
}

#[test]
fn a_refused_upload_is_dropped_as_it_arrives_and_the_connection_goes_on() {
    let (mut c, config) = expecting(50_000, false);
    let bin = long_frame(0x2, true, &vec![9u8; 50_000]);
    let mut held = 0;
    let mut watch = Watch::default();
    for piece in bin.chunks(4096) {
        c.stream.input.push_back(piece.to_vec());
        read(&mut c, &mut watch, &config);
        held = held.max(c.inbuf.capacity());
    }
    assert!(watch.chat.is_empty(), "nothing reported");
    assert!(held < 64, "never buffered: {held} bytes held");
    assert_eq!(closed_with(&c), None);
    // Fragmented, with a ping between the fragments: the ping is answered.
    c.expect_upload(300, false);
    let first = long_frame(0x2, false, &[1; 200]);
    let ping = long_frame(0x9, true, b"p");
    let last = long_frame(0x0, true, &[1; 100]);
    let watch = feed(&mut c, &[&first, &ping, &last], &config);
    assert!(watch.chat.is_empty());
    assert!(c.stream.output.ends_with(&[0x8a, 1, b'p']), "the pong");
    // The connection goes on: a text message is reported.
    let watch = feed(&mut c, &[&frame(0x1, b"{\"message\":\"hi\"}")], &config);
    assert_eq!(watch.chat, [(true, b"{\"message\":\"hi\"}".to_vec())]);
    assert_eq!(closed_with(&c), None);
}

#[test]
fn a_text_message_ends_the_expectation() {
    let (mut c, config) = expecting(3000, true);
    let watch = feed(&mut c, &[&frame(0x1, b"{}")], &config);
    assert_eq!(watch.chat, [(true, b"{}".to_vec())]);
    let watch = feed(&mut c, &[&long_frame(0x2, true, &[1; 100])], &config);
    assert!(watch.chat.is_empty(), "no upload expected any more");
    assert_eq!(closed_with(&c), Some(1009));
}
