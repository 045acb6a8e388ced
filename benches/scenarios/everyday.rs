//! Scenario 10 (picochat only): what the everyday chat costs the chat.
//! - typing: 1,000 clients in one room, 10 senders at 100 msg/s in all,
//!   without and then with every client typing every 3 s
//!   (`picochat-load --typing-interval 3s`) -> delivery p99 both ways (the
//!   goal: typing costs real messages' p99 less than 10%) and the typing
//!   notices delivered;
//! - a hot message: 200 clients, 10 msg/s, without and then with 100
//!   reactions/s toggling 👍 on one message (`--reactions-rate 100`) ->
//!   delivery p99 both ways, then a
//!   newcomer's welcome to that room: its bytes against the welcome budget
//!   (half of `--output-soft-limit`) and how long it took.
//!
//! RSS per idle WebSocket is scenario 3's (and 6's, in rooms): the
//! everyday features add nothing to a connection that never joins.

use super::{load, start, Target};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A join of `room` as `name` on a raw WebSocket: the welcome's bytes and
/// the time from the join to the whole welcome.
fn welcome(addr: std::net::SocketAddr, room: &str, name: &str) -> Option<(usize, Duration)> {
    let stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let (mut ws, _) = tungstenite::client::client(format!("ws://{addr}/ws"), stream).ok()?;
    let join = format!(r#"{{"type":"join","room":"{room}","username":"{name}"}}"#);
    let began = Instant::now();
    ws.send(tungstenite::Message::text(join)).ok()?;
    loop {
        let m = ws.read().ok()?;
        if let Ok(text) = m.to_text() {
            if text.starts_with(r#"{"type":"welcome""#) {
                return Some((text.len(), began.elapsed()));
            }
        }
    }
}

/// The welcome budget at the defaults: half of `--output-soft-limit` (8 MiB).
const WELCOME_BUDGET: usize = 4 << 20;

pub fn run(picochat: &Target, quick: bool, push: &mut dyn FnMut(&str, Option<f64>)) {
    let dur = if quick { "3s" } else { "10s" };
    let r = start(picochat);
    let clients = if quick { "200" } else { "1000" };
    let base = [
        "--rooms",
        "1",
        "--clients",
        clients,
        "--senders",
        "10",
        "--rate",
        "100",
        "--duration",
        dur,
    ];
    let calm = load(&r, &base);
    let mut typing_args = base.to_vec();
    typing_args.extend(["--typing-interval", "3s"]);
    let typing = load(&r, &typing_args);
    for (label, v) in [("without typing", &calm), ("with everyone typing", &typing)] {
        eprintln!(
            "everyday fan-out {label}: p99 {} ms, lost {}, {}",
            v["latency_ms"]["p99"], v["lost"], v["requests"]
        );
        push(
            &format!("10 fan-out p99 {label} (ms)"),
            v["latency_ms"]["p99"].as_f64(),
        );
        push(
            &format!("10 fan-out deliveries lost {label}"),
            v["lost"].as_f64(),
        );
    }
    push(
        "10 typing notices sent",
        typing["requests"]["typing"]["sent"].as_f64(),
    );
    push(
        "10 typing notices delivered",
        typing["requests"]["typing"]["received"].as_f64(),
    );
    drop(r);

    let r = start(picochat);
    let hot = [
        "--rooms",
        "1",
        "--clients",
        "200",
        "--senders",
        "10",
        "--rate",
        "10",
        "--duration",
        dur,
    ];
    // The first run is the baseline, and leaves messages: the hot message
    // of the next is the room's newest.
    let calm = load(&r, &hot);
    push(
        "10 fan-out p99 of 200 clients without reactions (ms)",
        calm["latency_ms"]["p99"].as_f64(),
    );
    let mut storm_args = hot.to_vec();
    storm_args.extend(["--reactions-rate", "100"]);
    let storm = load(&r, &storm_args);
    eprintln!(
        "everyday hot message: p99 {} ms, lost {}, {}",
        storm["latency_ms"]["p99"], storm["lost"], storm["requests"]
    );
    push(
        "10 fan-out p99 of 200 clients with 100 reactions/s on one message (ms)",
        storm["latency_ms"]["p99"].as_f64(),
    );
    push(
        "10 reactions sent",
        storm["requests"]["reactions"]["sent"].as_f64(),
    );
    push(
        "10 reaction records delivered",
        storm["requests"]["reactions"]["received"].as_f64(),
    );
    let seen = welcome(r.addr, "load-0", "newcomer");
    if let Some((bytes, took)) = seen {
        eprintln!("everyday welcome after the storm: {bytes} B in {took:?}");
    }
    push(
        "10 welcome after the storm (KiB)",
        seen.map(|(b, _)| b as f64 / 1024.0),
    );
    push(
        "10 welcome after the storm, share of its budget (%)",
        seen.map(|(b, _)| 100.0 * b as f64 / WELCOME_BUDGET as f64),
    );
    push(
        "10 welcome after the storm: join to welcome (ms)",
        seen.map(|(_, t)| t.as_secs_f64() * 1000.0),
    );
}
