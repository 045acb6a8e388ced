//! Micro-benchmarks of the hot paths, without sockets: `cargo bench --bench hot_paths`.
//!
//! A plain timing loop (no criterion: it would add dozens of crates to every
//! `cargo test` build). Each case runs for about half a second after a warm-up
//! and prints nanoseconds per operation; run it twice and compare, the numbers
//! are for spotting regressions, not for quoting.

use picochat::chat::{ClientId, Command, Core, Event, Limits};
use picochat::log::memory::MemoryLog;
use picochat::log::{MessageLog, Restored};
use picochat::net::http::{self, Parsed};
use picochat::net::write_queue::{Chunk, WriteQueue};
use picochat::net::ws;
use std::hint::black_box;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Runs `op` repeatedly for about `budget`, returns ns per call.
///
/// `PICOCHAT_HOT_ONLY=TEXT` runs only the rows whose name contains TEXT;
/// `PICOCHAT_HOT_CALLS=N` runs each exactly N times, with no warm-up, so an
/// instruction counter sees the same work every time: the instructions of
/// one call are the difference between two counts over the difference in N,
/// e.g. `valgrind --tool=callgrind` with N = 1000 and N = 11000.
fn measure(name: &str, per_call: u64, mut op: impl FnMut()) {
    if std::env::var("PICOCHAT_HOT_ONLY").is_ok_and(|only| !name.contains(&only)) {
        return;
    }
    if let Some(n) = std::env::var("PICOCHAT_HOT_CALLS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    {
        for _ in 0..n {
            op();
        }
        println!("{name:<52} {n} calls");
        return;
    }
    for _ in 0..1000 {
        op();
    }
    let budget = Duration::from_millis(500);
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < budget {
        for _ in 0..100 {
            op();
        }
        calls += 100;
    }
    let ns = start.elapsed().as_nanos() as f64 / calls as f64;
    if per_call > 1 {
        println!(
            "{name:<52} {ns:>10.1} ns/op   {:>7.2} ns per item",
            ns / per_call as f64
        );
    } else {
        println!("{name:<52} {ns:>10.1} ns/op");
    }
}

/// A writer that accepts everything, like a socket with room, via writev.
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(black_box(buf).len())
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Ok(bufs.iter().map(|b| black_box(b).len()).sum())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn main() {
    let json = r#"{"type":"message","id":123456,"time":1795795569123,"username":"load7","avatar":"84059b07d4be67b806386c0aad8070a23f18836bbaae342275dc0a83414c32ee","message":"hello, this is a one hundred byte chat message used for the fan-out benchmark of picochat...."}"#;
    measure("ws::text: frame a 250-byte broadcast", 1, || {
        black_box(ws::text(black_box(json.as_bytes())));
    });

    let mut queues: Vec<WriteQueue> = (0..1000).map(|_| WriteQueue::default()).collect();
    let frame: Rc<[u8]> = Rc::from(ws::text(json.as_bytes()));
    measure(
        "fan-out: queue one Rc frame on 1,000 clients + writev",
        1000,
        || {
            for q in queues.iter_mut() {
                q.push(Chunk::Shared(frame.clone()));
            }
            for q in queues.iter_mut() {
                let _ = black_box(q.flush_to(&mut Sink, usize::MAX));
            }
        },
    );
    measure(
        "fan-out: 10 frames per client per turn, 1,000 clients",
        10_000,
        || {
            for q in queues.iter_mut() {
                for _ in 0..10 {
                    q.push(Chunk::Shared(frame.clone()));
                }
            }
            for q in queues.iter_mut() {
                let _ = black_box(q.flush_to(&mut Sink, usize::MAX));
            }
        },
    );

    let request = b"GET /app.js HTTP/1.1\r\nHost: raspberrypi.local:8000\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-GB,en;q=0.9\r\nIf-None-Match: \"4ae68d7fbe610056-gz\"\r\nConnection: keep-alive\r\n\r\n";
    measure("http::parse: a browser's conditional GET", 1, || {
        if let Parsed::Request(req, _) = http::parse(black_box(request), 8192) {
            black_box(req.path);
        }
    });

    let mut frame_bytes = ws::encode_masked(
        tungstenite::protocol::frame::coding::OpCode::Data(tungstenite::protocol::frame::coding::Data::Text),
        br#"{"email":"a@example.org","username":"load1","message":"hello, this is a one hundred byte chat message used for the benchmarks"}"#,
        [1, 2, 3, 4],
    );
    let pristine = frame_bytes.clone();
    measure(
        "ws::parse_frame + unmask: a 130-byte client frame",
        1,
        || {
            frame_bytes.copy_from_slice(&pristine);
            black_box(ws::parse_frame(&mut frame_bytes, ws::Role::Server, 16384, 0, false).ok());
        },
    );

    let mut core = Core::new(Limits::new(200), Restored::default(), 0);
    let client = ClientId::new(0, 1);
    core.handle(
        Event::Connected {
            client,
            now: 0,
            addr: None,
        },
        &mut Vec::new(),
    );
    let mut out: Vec<Command> = Vec::new();
    let text = br#"{"email":"a@example.org","username":"load1","message":"hello, this is a one hundred byte chat message used for the benchmarks"}"#;
    measure(
        "core: tutorial message -> validated, hashed, Append",
        1,
        || {
            out.clear();
            core.handle(
                Event::Text {
                    client,
                    text: black_box(text),
                    now: 1,
                },
                &mut out,
            );
            black_box(&out);
        },
    );

    // A message in a room of 10 costs the room's members, not every
    // connection: the same work with 100 or 10,000 clients connected.
    for total in [100usize, 10_000] {
        let (mut core, mut log) = rooms_of_ten(total);
        let mut queues: Vec<WriteQueue> = (0..total).map(|_| WriteQueue::default()).collect();
        let sender = ClientId::new(total / 2, 1);
        let text =
            br#"{"room":"room-0","message":"hello, this is a chat message in a room of ten"}"#;
        let mut out: Vec<Command> = Vec::new();
        let mut events = Vec::new();
        measure(
            &format!("room of 10 among {total:>6} clients: message -> 10 queues"),
            1,
            || {
                core.handle(
                    Event::Text {
                        client: sender,
                        text,
                        now: 1,
                    },
                    &mut out,
                );
                for command in out.drain(..) {
                    if let Command::Append(d) = command {
                        log.append(d);
                    }
                }
                log.commit(1, &mut events);
                for e in events.drain(..) {
                    core.handle(Event::Log(e), &mut out);
                }
                for command in out.drain(..) {
                    if let Command::Deliver { room, json } = command {
                        let frame: Rc<[u8]> = Rc::from(ws::text(json.as_bytes()));
                        for &c in core.members(&room) {
                            queues[c.key as usize].push(Chunk::Shared(frame.clone()));
                        }
                    }
                }
                for q in queues.iter_mut().skip(total / 2 - 5).take(20) {
                    let _ = black_box(q.flush_to(&mut Sink, usize::MAX));
                }
            },
        );
    }
    deflate_cases(json);
}

/// permessage-deflate: a chat frame and a welcome of 200 messages of 100 B,
/// compressed once (what one broadcast costs whatever the number of clients)
/// and inflated; with the sizes on the wire.
fn deflate_cases(message: &str) {
    use picochat::net::deflate::{Compressor, Inflater};
    let mut c = Compressor::default();
    let mut i = Inflater::default();
    let history: Vec<String> = (0..200)
        .map(|n| {
            format!(
                r#"{{"type":"message","room":"lobby","id":{},"time":{},"username":"user{}","message":"{}"}}"#,
                1000 + n,
                1_795_795_569_123u64 + n * 977,
                n % 17,
                // 100 bytes of varied text, as people write.
                format!("message {n} about the plan for {} and the {} items we need by friday, ok?", ["monday", "the trip", "lunch"][n as usize % 3], n * 7)
                    .chars()
                    .chain(std::iter::repeat('.'))
                    .take(100)
                    .collect::<String>()
            )
        })
        .collect();
    let welcome = format!(
        r#"{{"type":"welcome","room":"lobby","you":{{"username":"ann"}},"users":[],"online":1,"epoch":1,"last_id":1200,"truncated":false,"history":[{}]}}"#,
        history.join(",")
    );
    for (name, payload) in [
        ("a 100 B chat frame", message),
        ("a welcome with 200 messages of 100 B", &welcome),
    ] {
        let small = c.compress(payload.as_bytes()).unwrap_or_default();
        println!(
            "deflate {name}: {} -> {} bytes ({:.0}%)",
            payload.len(),
            small.len(),
            100.0 * small.len() as f64 / payload.len() as f64
        );
        measure(&format!("deflate once: {name}"), 1, || {
            black_box(c.compress(black_box(payload.as_bytes())));
        });
        measure(&format!("inflate: {name}"), 1, || {
            let _ = black_box(i.inflate(black_box(&small), 1 << 20));
        });
    }
}

/// `total` clients in rooms of ten (`room-0` holds clients total/2 .. total/2+9).
fn rooms_of_ten(total: usize) -> (Core, MemoryLog) {
    let limits = Limits {
        max_rooms: total,
        ..Limits::new(50)
    };
    let mut core = Core::new(limits, Restored::default(), 0);
    let mut out = Vec::new();
    for key in 0..total {
        let client = ClientId::new(key, 1);
        core.handle(
            Event::Connected {
                client,
                now: 0,
                addr: None,
            },
            &mut out,
        );
        let room = (key + total - total / 2) / 10 % (total / 10);
        let join = format!(r#"{{"type":"join","room":"room-{room}","username":"u{key}"}}"#);
        core.handle(
            Event::Text {
                client,
                text: join.as_bytes(),
                now: 0,
            },
            &mut out,
        );
        out.clear();
    }
    assert_eq!(core.members("room-0").len(), 10);
    (core, MemoryLog::new(32 << 20))
}
