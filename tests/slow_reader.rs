//! A client that never reads is dropped at its output cap, while a reading
//! client receives every message in order and the server's memory stays bounded.

mod common;
use common::*;
use serde_json::json;
use std::io::Write;
use std::time::Duration;

#[test]
fn slow_reader_is_dropped_at_output_cap_while_readers_get_everything_in_order() {
    let s = TestServer::start(&[
        "--msg-rate",
        "0",
        "--log-level",
        "info",
        "--max-output",
        "1MiB",
        "--output-soft-limit",
        "1MiB",
    ]);
    // The silent client: upgrades, then never reads a byte.
    let silent = raw_ws(&s, "/ws");
    // A fast reader: buffered raw frames, only the id is parsed.
    let mut reader = std::io::BufReader::with_capacity(1 << 16, raw_ws(&s, "/ws"));
    let mut sender = raw_ws(&s, "/ws");
    let text = "x".repeat(8000);
    // 20 MB per client: past the kernel's socket buffers (several MB on loopback)
    // plus a 1 MiB output limit.
    const N: usize = 2500;
    let reader_thread = std::thread::spawn(move || {
        let mut expect = 1;
        while expect <= N as u64 {
            let (op, payload) = read_frame(&mut reader);
            assert_eq!(
                op,
                1,
                "text frames only, no close; got {expect} first: {:?}",
                String::from_utf8_lossy(&payload)
            );
            let text = String::from_utf8(payload).unwrap();
            let id: u64 = text
                .strip_prefix(r#"{"type":"message","room":"lobby","id":"#)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(id, expect, "in order, none lost");
            expect += 1;
        }
    });
    // The sender reads its own copies on another thread, as a browser would.
    let mut sender_rx = sender.try_clone().unwrap();
    let sender_drain =
        std::thread::spawn(move || read_all(&mut sender_rx, Duration::from_secs(20)).len());
    let frame = client_frame(
        1,
        true,
        json!({"username": "firehose", "message": text})
            .to_string()
            .as_bytes(),
    );
    // Paced at about 16 MB/s, a rate a reading client keeps up with; the cap is
    // for clients that stop reading, not for a burst the reader absorbs.
    for i in 0..N {
        sender.write_all(&frame).unwrap();
        if i % 10 == 9 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    wait_until("the silent client dropped", 60, || {
        s.metric("picochat_disconnects_total{reason=\"slow_consumer\"}") >= 1.0
    });
    reader_thread.join().unwrap();
    sender.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(
        sender_drain.join().unwrap() >= N * 8000,
        "the sender got its copies"
    );
    s.wait_log("disconnecting slow client", 5);
    let (_, peak) = procfs::rss_bytes(s.pid()).unwrap();
    assert!(
        peak < 64 << 20,
        "server peak RSS {peak} bytes: output is not bounded"
    );
    drop(silent);
}
