//! The fuzz targets' bodies, shared by the libFuzzer binaries in this folder
//! and by `tests/fuzz_regressions.rs`, which replays saved inputs (crashes the
//! fuzzer found, and hand-made tricky cases) under plain `cargo test`.

use picochat::chat::{ClientId, Command, Core, Event, Limits};
use picochat::log::memory::MemoryLog;
use picochat::log::redis::resp::{self, Value};
use picochat::log::{MessageLog, Restored};
use picochat::net::http::{self, Parsed, Route, Routes};
use picochat::net::ws::{self, Assembler, Message, Parse, Role};

const MAX_MESSAGE: usize = 4096;

/// Any bytes through the request parser, the router, the upgrade check and the
/// response builders: nothing may panic.
pub fn http_request(data: &[u8]) {
    let routes = Routes {
        chat: true,
        ops: true,
        admin: true,
        echo_path: Some("/echo"),
    };
    let mut rest = data;
    // Pipelined requests: keep parsing what follows each complete head.
    while let Parsed::Request(req, len) = http::parse(rest, 8192) {
        match http::route(req.path, routes) {
            Route::ChatSocket | Route::EchoSocket => {
                let _ = http::upgrade(&req, &["http://allowed.example".to_string()], true, "date");
            }
            Route::Asset(a) => {
                let _ = http::asset(&req, a, "date", "'none'");
            }
            Route::Admin => {
                let _ = picochat::net::admin::route(req.method, req.path);
            }
            _ => {
                let _ = http::error(http::Status::NotFound, "x", req.keep_alive, "date");
            }
        }
        if len == 0 || len > rest.len() {
            break;
        }
        rest = &rest[len..];
    }
}

/// Any bytes, cut into reads of sizes the input chooses, through frame parsing,
/// unmasking, reassembly and the chat hub: nothing may panic, and the buffered
/// remainder stays within one frame.
pub fn ws_chat(data: &[u8]) {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let limits = Limits {
        max_text: 1024,
        max_message: MAX_MESSAGE,
        msg_rate: 5,
        history: 8,
        history_bytes: 4096,
        welcome_bytes: 1 << 16,
        max_rooms_per_client: 3,
        max_rooms: 4,
        ..Limits::new(8)
    };
    let restored = Restored {
        files: true,
        ..Restored::default()
    };
    let mut core = Core::new(limits, restored, 0);
    let mut log = MemoryLog::new(32 << 20);
    let (a, b) = (ClientId::new(0, 1), ClientId::new(1, 1));
    let mut actions: Vec<Command> = Vec::new();
    core.handle(
        Event::Connected {
            client: a,
            now: 0,
            addr: None,
        },
        &mut actions,
    );
    core.handle(
        Event::Connected {
            client: b,
            now: 0,
            addr: None,
        },
        &mut actions,
    );
    let mut asm = Assembler::default();
    let mut inflater = picochat::net::deflate::Inflater::default();
    let mut buf: Vec<u8> = Vec::new();
    let mut now = 0;
    'reads: for read in data.chunks(chunk) {
        buf.extend_from_slice(read);
        now += 7;
        loop {
            let frame =
                match ws::parse_frame(&mut buf, Role::Server, MAX_MESSAGE, asm.pending_len(), true)
                {
                    Ok(Parse::Frame(f)) => f,
                    Ok(Parse::Incomplete { arriving, .. }) => {
                        if arriving.is_some_and(|a| asm.check_arrived(&buf, &a).is_err()) {
                            break 'reads;
                        }
                        break;
                    }
                    Err(_) => break 'reads,
                };
            let payload = buf[frame.payload.clone()].to_vec();
            let pushed = match asm.push(&frame, &payload) {
                // permessage-deflate: inflated by the shared inflater, within the limit.
                Ok(Some(Message::Deflated {
                    text: true,
                    payload,
                })) => match inflater.inflate(&payload, MAX_MESSAGE) {
                    Ok(bytes) if std::str::from_utf8(&bytes).is_ok() => {
                        assert!(bytes.len() <= MAX_MESSAGE);
                        Ok(Some(Message::Text(ws::Payload::Owned(bytes))))
                    }
                    _ => break 'reads,
                },
                other => other,
            };
            match pushed {
                Ok(Some(Message::Text(text))) => {
                    core.handle(
                        Event::Text {
                            client: a,
                            text: &text,
                            now,
                        },
                        &mut actions,
                    );
                    if run(&mut core, &mut log, &mut actions, now) {
                        break 'reads;
                    }
                }
                // A binary message: an announced upload's image, or refused.
                Ok(Some(Message::Binary(data))) => {
                    core.handle(
                        Event::Binary {
                            client: a,
                            data: &data,
                            nonce: u128::from(now),
                        },
                        &mut actions,
                    );
                    if run(&mut core, &mut log, &mut actions, now) {
                        break 'reads;
                    }
                }
                Ok(_) => {}
                Err(_) => break 'reads,
            }
            buf.drain(..frame.consumed());
            actions.clear();
        }
        assert!(
            buf.len() <= MAX_MESSAGE + 14 + read.len(),
            "remainder grew past one frame"
        );
    }
    core.handle(Event::Gone { client: a, now }, &mut actions);
    run(&mut core, &mut log, &mut actions, now);
    assert!(core.history_bytes() <= 4096, "history over its byte bound");
    assert_eq!(core.clients(), 1);
}

/// Carries out commands as the server does (appends committed and fed back);
/// true when the core closed the client.
fn run(core: &mut Core, log: &mut MemoryLog, actions: &mut Vec<Command>, now: u64) -> bool {
    let mut closed = false;
    while !actions.is_empty() {
        for command in std::mem::take(actions) {
            match command {
                Command::Append(draft) => log.append(draft),
                Command::Read(read) => log.read(read),
                Command::Close { .. } => closed = true,
                Command::Forget(room) => log.forget(&room),
                Command::Watch(_) | Command::WatchIdentity { .. } => {} // a local log loads nothing on demand
                Command::Set { key, value } => log.set(key, value),
                Command::Notify { .. } | Command::ExpectUpload { .. } => {}
                Command::RemoveFile(name) => log.remove_file(&name),
                Command::Send { .. }
                | Command::Deliver { .. }
                | Command::Presence { .. }
                | Command::Report(_) => {}
            }
        }
        let mut events = Vec::new();
        log.commit(now, &mut events);
        for e in events {
            core.handle(Event::Log(e), actions);
        }
        // A search's slices, as the loop gives them one per turn.
        if actions.is_empty() && core.has_work() {
            core.work(now, actions);
        }
    }
    closed
}

/// Any bytes through the RESP decoder, as a Redis link reads them: replies
/// taken one at a time from the front. Each whole reply must take at most the
/// bytes there are, read back the same when encoded again, and give "not all
/// there yet" (never an error, never another reply) when cut at any byte
/// before its end. Nesting and bulk lengths past the limits are errors.
pub fn resp(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some((v, used))) = resp::decode(rest) {
        assert!(used > 0 && used <= rest.len(), "{used} of {}", rest.len());
        let whole = &rest[..used];
        if used <= 4096 {
            for cut in 0..used {
                assert_eq!(resp::decode(&whole[..cut]), Ok(None), "cut at {cut}");
            }
        }
        let mut again = Vec::new();
        encode_value(&v, &mut again);
        assert_eq!(resp::decode(&again), Ok(Some((v, again.len()))));
        rest = &rest[used..];
    }
}

/// A reply as Redis would send it.
fn encode_value(v: &Value, out: &mut Vec<u8>) {
    let line = |out: &mut Vec<u8>, kind: u8, text: &[u8]| {
        out.push(kind);
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    };
    match v {
        Value::Status(s) => line(out, b'+', s.as_bytes()),
        Value::Error(s) => line(out, b'-', s.as_bytes()),
        Value::Int(n) => line(out, b':', n.to_string().as_bytes()),
        Value::Nil => line(out, b'$', b"-1"),
        Value::Bulk(b) => {
            line(out, b'$', b.len().to_string().as_bytes());
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        Value::Array(items) => {
            line(out, b'*', items.len().to_string().as_bytes());
            for item in items {
                encode_value(item, out);
            }
        }
    }
}

/// Any bytes through the image checker and cleaner (`picochat::image`):
/// nothing may panic; what passes passes again unchanged (cleaning twice
/// is cleaning once), is recognised as the same format when served, and a
/// PNG keeps none of its text or EXIF chunks.
pub fn image(data: &[u8]) {
    use picochat::image::{check, format_of, Format};
    let Ok(first) = check(data) else {
        return;
    };
    let again = check(&first.bytes).expect("a cleaned image passes again");
    assert_eq!(again, first, "cleaning is idempotent");
    assert_eq!(format_of(&first.bytes), Some(first.format));
    if first.format == Format::Png {
        let b = &first.bytes;
        let mut at = 8;
        while at + 8 <= b.len() {
            let len = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
            let kind = &b[at + 4..at + 8];
            assert!(
                ![&b"tEXt"[..], b"zTXt", b"iTXt", b"eXIf"].contains(&kind),
                "a {kind:?} chunk left"
            );
            at += 12 + len;
        }
    }
}

/// A config file (`--config`): any text is applied or refused with a
/// message naming the file and a line within it, never a panic; what
/// applies prints a file that reads back to the same text.
pub fn config(data: &[u8]) {
    use picochat::config::{file, Config};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut c = Config::default();
    match file::apply(&mut c, text, "f.toml") {
        Ok(()) => {
            let printed = file::print(&c);
            let mut again = Config::default();
            file::apply(&mut again, &printed, "f.toml").expect("a printed config reads back");
            assert_eq!(
                file::print(&again),
                printed,
                "print, read, print: the same text"
            );
        }
        Err(e) => {
            let line = e
                .strip_prefix("f.toml:")
                .and_then(|rest| rest.split(':').next())
                .and_then(|n| n.parse::<usize>().ok());
            assert!(
                line.is_some_and(|n| n >= 1 && n <= text.lines().count().max(1) + 1),
                "{e}"
            );
        }
    }
}
