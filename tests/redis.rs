//! Scale-out on Redis with real processes: a real `redis-server` per test
//! and several picochat nodes on it. Messages cross nodes once, in order,
//! with the same ids; catch-up works on any node; and every fault the issue
//! lists (Redis absent at start, kill -9 and back with its AOF, restarted
//! without data, stalled by SIGSTOP, foreign data, a refused password, a
//! node killed) ends with nothing lost, duplicated or delivered unstored.

mod common;
use common::procfs;
use common::redis::{node, Redis};
use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};
use tungstenite::Message;

fn join_room(ws: &mut Ws, room: &str, name: &str) -> Value {
    send_json(ws, json!({"type": "join", "room": room, "username": name}));
    recv_type(ws, "welcome")
}

/// Every frame until none came for `quiet`.
fn frames(ws: &mut Ws, quiet: Duration) -> Vec<Value> {
    set_timeout(ws, quiet);
    let mut out = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => out.push(serde_json::from_str(t.as_str()).unwrap()),
            Ok(Message::Close(c)) => panic!("closed: {c:?}"),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    set_timeout(ws, Duration::from_secs(10));
    out
}

fn set_timeout(ws: &mut Ws, t: Duration) {
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(t)).unwrap();
    }
}

fn of_type(frames: &[Value], kind: &str) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f["type"] == kind)
        .cloned()
        .collect()
}

/// (id, text) of each chat message, in arrival order.
fn messages(frames: &[Value]) -> Vec<(u64, String)> {
    of_type(frames, "message")
        .iter()
        .map(|m| {
            (
                m["id"].as_u64().unwrap(),
                m["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn health(s: &TestServer) -> (u16, String) {
    let raw = http_raw(
        s.addr,
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&raw).to_string();
    let code = text[9..12].parse().unwrap();
    (code, text)
}

fn wait_healthy(s: &TestServer, within: Duration) -> Duration {
    let start = Instant::now();
    wait_until("healthy", within.as_secs().max(1), || health(s).0 == 200);
    start.elapsed()
}

#[test]
fn three_nodes_deliver_every_message_once_in_order_with_the_same_ids() {
    let redis = Redis::start();
    let nodes: Vec<TestServer> = (0..3).map(|_| node(&redis, &[])).collect();
    let mut pages: Vec<Ws> = nodes.iter().map(|n| n.ws()).collect();
    // The Go tutorial's clients: no join, no room, the default room.
    let mut gophers: Vec<Ws> = nodes.iter().map(|n| n.ws()).collect();
    let epochs: Vec<u64> = pages
        .iter_mut()
        .enumerate()
        .map(|(i, p)| {
            join_room(p, "dev", &format!("user{i}"))["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(
        epochs[0] > 0 && epochs.iter().all(|e| *e == epochs[0]),
        "one epoch for the room on every node: {epochs:?}"
    );
    let epoch = epochs[0];
    for round in 0..20 {
        for (i, p) in pages.iter_mut().enumerate() {
            send_json(p, json!({"room": "dev", "message": format!("{i}-{round}")}));
        }
    }
    for (i, g) in gophers.iter_mut().enumerate() {
        for round in 0..5 {
            send_json(
                g,
                json!({"email": "", "username": format!("gopher{i}"), "message": format!("g{i}-{round}")}),
            );
        }
    }
    let seen: Vec<Vec<(u64, String)>> = pages
        .iter_mut()
        .map(|p| messages(&frames(p, Duration::from_millis(700))))
        .collect();
    assert_eq!(seen[0].len(), 60, "{:?}", seen[0]);
    let ids: Vec<u64> = seen[0].iter().map(|m| m.0).collect();
    assert_eq!(
        ids,
        (1..=60).collect::<Vec<_>>(),
        "ids from the log, in order"
    );
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(
            s, &seen[0],
            "node {i} delivered the same messages in the same order"
        );
    }
    for i in 0..3 {
        let own: Vec<&String> = seen[0]
            .iter()
            .map(|m| &m.1)
            .filter(|t| t.starts_with(&format!("{i}-")))
            .collect();
        let sent: Vec<String> = (0..20).map(|r| format!("{i}-{r}")).collect();
        assert_eq!(
            own,
            sent.iter().collect::<Vec<_>>(),
            "a sender's order is kept"
        );
    }
    let lobby: Vec<Vec<(u64, String)>> = gophers
        .iter_mut()
        .map(|g| messages(&frames(g, Duration::from_millis(300))))
        .collect();
    assert_eq!(lobby[0].len(), 15);
    assert!(lobby.iter().all(|l| l == &lobby[0]));
    assert!(
        lobby[0].iter().all(|m| m.1.starts_with('g')),
        "rooms stay apart"
    );

    // Catch-up on a node other than the senders': exactly what is new.
    let mut late = nodes[2].ws();
    send_json(
        &mut late,
        json!({"type": "join", "room": "dev", "username": "late", "since": 45, "epoch": epoch}),
    );
    let w = recv_type(&mut late, "welcome");
    let history = history_ids(&w);
    assert_eq!(history, (46..=60).collect::<Vec<_>>());
    assert_eq!(w["last_id"], 60);
    for n in &nodes {
        assert_eq!(n.metric("picochat_redis_up"), 1.0);
    }

    // /api/rooms on any node lists rooms active anywhere, with everyone online.
    let mut quiet = nodes[0].ws();
    join_room(&mut quiet, "elsewhere", "solo");
    let mut listing = Vec::new();
    wait_until("the directory to list a room of the other node", 5, || {
        let body: Value = serde_json::from_str(&http_get(nodes[1].addr, "/api/rooms")).unwrap();
        listing = body["rooms"].as_array().unwrap().clone();
        listing.iter().any(|r| r["room"] == "elsewhere")
    });
    let find = |name: &str| listing.iter().find(|r| r["room"] == name).cloned();
    assert_eq!(find("dev").unwrap()["online"], 4, "{listing:?}");
    let elsewhere = find("elsewhere").expect("a room only node 0 holds");
    assert_eq!(
        (
            elsewhere["online"].as_u64(),
            elsewhere["last_message_time"].as_u64()
        ),
        (Some(1), None)
    );
}

#[test]
fn redis_absent_at_start_degraded_then_in_use_within_about_a_second() {
    let mut redis = Redis::prepared(false, None);
    let n = node(&redis, &["--redis-retry-max", "1s"]);
    let (code, body) = health(&n);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("degraded"), "{body}");
    assert!(
        http_get(n.addr, "/").contains("<html"),
        "the page is served"
    );
    assert_eq!(n.metric("picochat_redis_up"), 0.0);
    let mut gopher = n.ws();
    send_json(
        &mut gopher,
        json!({"username": "g", "message": "nobody stores this"}),
    );
    assert_eq!(recv_type(&mut gopher, "error")["code"], "unavailable");
    let mut page = n.ws();
    send_json(
        &mut page,
        json!({"type": "join", "room": "dev", "username": "ann"}),
    );
    let cpu0 = procfs::cpu_seconds(n.pid()).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let down = n.log_text().matches("redis: unavailable").count();
    assert_eq!(
        down,
        1,
        "logged once per state change, not per try:\n{}",
        n.log_text()
    );
    let cpu = procfs::cpu_seconds(n.pid()).unwrap() - cpu0;
    assert!(
        cpu < 0.3,
        "waiting for Redis is no busy loop: {cpu} s of CPU in 2.5 s"
    );

    redis.spawn();
    let took = wait_healthy(&n, Duration::from_secs(5));
    assert!(took < Duration::from_secs(2), "back in use after {took:?}");
    assert_eq!(n.log_text().matches("redis: connected").count(), 1);
    // The join that waited is answered, and messages flow.
    let w = recv_type(&mut page, "welcome");
    assert_eq!(w["room"], "dev");
    send_json(&mut page, json!({"room": "dev", "message": "now stored"}));
    let m = recv_type(&mut page, "message");
    assert_eq!(
        (m["id"].as_u64(), m["message"].as_str()),
        (Some(1), Some("now stored"))
    );
    assert!(messages(&frames(&mut gopher, Duration::from_millis(300))).is_empty());
}

/// Sends `texts` to `room` from `ws`; returns those refused with `unavailable`.
fn send_all(ws: &mut Ws, room: &str, texts: &[String]) {
    for t in texts {
        send_json(ws, json!({"room": room, "message": t}));
    }
}

fn batch(who: &str, phase: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{who}-{phase}-{i}")).collect()
}

#[test]
fn redis_killed_and_back_with_its_aof_loses_and_duplicates_nothing_acknowledged() {
    let mut redis = Redis::start_aof();
    let nodes: Vec<TestServer> = (0..2)
        .map(|_| node(&redis, &["--redis-retry-max", "200ms"]))
        .collect();
    let mut senders: Vec<Ws> = nodes.iter().map(|n| n.ws()).collect();
    let mut readers: Vec<Ws> = nodes.iter().map(|n| n.ws()).collect();
    let mut epoch = 0;
    for (i, ws) in senders.iter_mut().chain(readers.iter_mut()).enumerate() {
        epoch = join_room(ws, "dev", &format!("u{i}"))["epoch"]
            .as_u64()
            .unwrap();
    }
    // Each message of "before" and "during" is either refused (the sender
    // hears `unavailable`) or stored and delivered to everyone; "after" all arrive.
    let mut in_doubt: Vec<String> = Vec::new();
    for (i, s) in senders.iter_mut().enumerate() {
        let b = batch(&format!("s{i}"), "before", 30);
        send_all(s, "dev", &b);
        in_doubt.extend(b);
    }
    // Killed as soon as Redis has stored some (a publish answered), while
    // the rest may still be in flight; more are sent while it is down.
    let stored = |n: &TestServer| n.metric("picochat_redis_rtt_seconds_count");
    wait_until("a publish answered", 5, || {
        nodes.iter().map(stored).sum::<f64>() >= 1.0
    });
    redis.kill9();
    for (i, s) in senders.iter_mut().enumerate() {
        let b = batch(&format!("s{i}"), "during", 10);
        send_all(s, "dev", &b);
        in_doubt.extend(b);
    }
    for n in &nodes {
        wait_until("degraded while Redis is down", 5, || health(n).0 == 503);
    }
    redis.spawn();
    for n in &nodes {
        wait_healthy(n, Duration::from_secs(5));
    }
    let mut sent: Vec<String> = Vec::new();
    for (i, s) in senders.iter_mut().enumerate() {
        let b = batch(&format!("s{i}"), "after", 30);
        send_all(s, "dev", &b);
        sent.extend(b);
    }
    let mut refused: HashSet<String> = HashSet::new();
    let mut views = Vec::new();
    for (i, ws) in senders.iter_mut().chain(readers.iter_mut()).enumerate() {
        let f = frames(ws, Duration::from_millis(1500));
        assert!(
            of_type(&f, "welcome").iter().all(|w| w["epoch"] == epoch),
            "the AOF kept the epoch: no page starts over"
        );
        if i < 2 {
            // A sender learns of a refusal in order: match them to its "during" batch.
            let errors = of_type(&f, "error");
            assert!(
                errors.iter().all(|e| e["code"] == "unavailable"),
                "{errors:?}"
            );
            let delivered: HashSet<String> = messages(&f).into_iter().map(|m| m.1).collect();
            let mine: Vec<&String> = in_doubt
                .iter()
                .filter(|t| t.starts_with(&format!("s{i}-")))
                .collect();
            let not_delivered: Vec<&String> = mine
                .into_iter()
                .filter(|t| !delivered.contains(*t))
                .collect();
            assert_eq!(
                errors.len(),
                not_delivered.len(),
                "every message of the outage is either refused or delivered, never both or neither"
            );
            refused.extend(not_delivered.into_iter().cloned());
        }
        views.push(messages(&f));
    }
    for (i, v) in views.iter().enumerate() {
        let ids: Vec<u64> = v.iter().map(|m| m.0).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "client {i}: ids in order, none twice: {ids:?}"
        );
        assert_eq!(v, &views[0], "client {i} saw what client 0 saw");
        let texts: HashSet<&String> = v.iter().map(|m| &m.1).collect();
        for t in &sent {
            assert!(
                texts.contains(t),
                "client {i} lost the acknowledged message {t}"
            );
        }
        for t in &in_doubt {
            assert!(
                texts.contains(t) != refused.contains(t),
                "{t}: refused and delivered"
            );
        }
    }
    assert!(
        views[0].len() > sent.len() && !refused.is_empty(),
        "the kill fell amid traffic: some stored before it, some refused ({} refused)",
        refused.len()
    );
    // What was delivered is what Redis kept: a page joining now gets it all.
    let mut fresh = nodes[1].ws();
    let w = join_room(&mut fresh, "dev", "fresh");
    let history: Vec<(u64, String)> = w["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_u64().unwrap(),
                m["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        history, views[0],
        "the stream holds exactly what was delivered"
    );
}

#[test]
fn redis_restarted_without_its_data_gives_pages_a_new_epoch_never_a_silent_gap() {
    let mut redis = Redis::start();
    let n = node(&redis, &["--redis-retry-max", "200ms"]);
    let mut page = n.ws();
    let first = join_room(&mut page, "dev", "ann");
    send_all(&mut page, "dev", &batch("a", "old", 3));
    assert_eq!(
        messages(&frames(&mut page, Duration::from_millis(400))).len(),
        3
    );
    redis.kill9();
    redis.spawn();
    let w = recv_type(&mut page, "welcome");
    assert_ne!(w["epoch"], first["epoch"], "a new id sequence is announced");
    assert_eq!(w["history"], json!([]));
    send_all(&mut page, "dev", &batch("a", "new", 1));
    let m = recv_type(&mut page, "message");
    assert_eq!(m["id"], 1, "ids start over in the new epoch");
}

#[test]
fn a_stalled_redis_bounds_pending_publishes_and_the_node_keeps_serving() {
    let redis = Redis::start();
    let n = node(&redis, &["--redis-max-pending", "5"]);
    let mut page = n.ws();
    join_room(&mut page, "dev", "ann");
    redis.signal("-STOP");
    let stopped = Instant::now();
    send_all(&mut page, "dev", &batch("a", "stalled", 8));
    let f = frames(&mut page, Duration::from_millis(500));
    let errors = of_type(&f, "error");
    assert_eq!(
        errors.len(),
        3,
        "only what is past --redis-max-pending is refused: {f:?}"
    );
    assert!(errors.iter().all(|e| e["code"] == "unavailable"));
    assert!(
        messages(&f).is_empty(),
        "nothing is delivered before Redis stored it"
    );
    // The loop is not blocked: the page, health and a new WebSocket all answer.
    let started = Instant::now();
    assert!(http_get(n.addr, "/").contains("<html"));
    assert_eq!(health(&n).0, 200, "links are up, only slow (for now)");
    let mut other = n.ws();
    other.send(Message::Ping(vec![1, 2].into())).unwrap();
    let got_pong = loop {
        match other.read().unwrap() {
            Message::Pong(p) => break p.to_vec() == [1, 2],
            _ => continue,
        }
    };
    assert!(got_pong);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(n.metric("picochat_redis_pending_publishes"), 5.0);
    // No reply for 5 s: degraded (a delivery that stopped shows), still nothing failed.
    let cpu0 = procfs::cpu_seconds(n.pid()).unwrap();
    std::thread::sleep(Duration::from_millis(5600).saturating_sub(stopped.elapsed()));
    let (code, body) = health(&n);
    assert_eq!(code, 503, "{body}");
    assert_eq!(n.metric("picochat_redis_stalled"), 1.0);
    n.wait_log("redis: no reply for 5 s", 3);
    let cpu = procfs::cpu_seconds(n.pid()).unwrap() - cpu0;
    assert!(
        cpu < 0.3,
        "waiting on a stalled Redis is no busy loop: {cpu} s"
    );
    // Never told "failed" for what Redis may still store: after SIGCONT they arrive.
    redis.signal("-CONT");
    let f = frames(&mut page, Duration::from_millis(700));
    assert!(of_type(&f, "error").is_empty(), "{f:?}");
    let texts: Vec<String> = messages(&f).into_iter().map(|m| m.1).collect();
    assert_eq!(texts, batch("a", "stalled", 5));
    assert_eq!(health(&n).0, 200);
    assert!(n.log_text().contains("redis: answering again"));
}

#[test]
fn foreign_data_under_our_keys_is_logged_and_skipped() {
    let redis = Redis::start();
    let n = node(&redis, &[]);
    let mut page = n.ws();
    join_room(&mut page, "dev", "ann");
    // Someone else's value where a room's meta hash belongs, and junk on a channel.
    assert!(redis
        .command(&["SET", "picochat:meta:bad", "x"])
        .unwrap()
        .contains("OK"));
    redis.command(&["PUBLISH", "picochat:room:dev", "not ours"]);
    redis.command(&["PUBLISH", "picochat:room:dev", "1 2 3 [\"array\"]"]);
    let mut other = n.ws();
    send_json(
        &mut other,
        json!({"type": "join", "room": "bad", "username": "bob"}),
    );
    let e = recv_type(&mut other, "error");
    assert_eq!(
        (e["code"].as_str(), e["room"].as_str()),
        (Some("unavailable"), Some("bad"))
    );
    send_all(&mut page, "dev", &batch("a", "ok", 2));
    let texts: Vec<String> = messages(&frames(&mut page, Duration::from_millis(500)))
        .into_iter()
        .map(|m| m.1)
        .collect();
    assert_eq!(texts, batch("a", "ok", 2), "the room goes on");
    assert!(n.metric("picochat_redis_bad_data_total") >= 3.0);
    let log = n.log_text();
    assert!(log.contains("skipped a foreign message on dev"), "{log}");
    assert!(log.contains("reading bad failed"), "{log}");
    let mut n = n;
    assert!(n.is_running());
}

use common::run_to_exit as picochat_fails;

#[test]
fn a_refused_password_or_an_unusable_setting_stops_the_start_with_status_2() {
    let redis = Redis::start_with(false, Some("s3cret"));
    let dir = redis.dir.clone();
    let wrong = dir.join("wrong");
    std::fs::write(&wrong, "nope\n").unwrap();
    let right = dir.join("right");
    std::fs::write(&right, "s3cret\n").unwrap();
    let url = redis.url();

    let (code, err) = picochat_fails(&[
        "--redis",
        &url,
        "--redis-password-file",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("Redis refused picochat") && err.contains("WRONGPASS"),
        "{err}"
    );
    let (code, err) = picochat_fails(&["--redis", &url]);
    assert_eq!(code, Some(2), "no password: {err}");
    assert!(err.contains("NOAUTH"), "{err}");
    let missing = dir.join("missing");
    let (code, err) = picochat_fails(&[
        "--redis",
        &url,
        "--redis-password-file",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--redis-password-file: cannot read"), "{err}");
    let (code, err) = picochat_fails(&["--redis", "rediss://127.0.0.1:6380"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("TLS"), "{err}");
    let (code, err) = picochat_fails(&["--redis", &url, "--data-dir", dir.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("appendonly"), "{err}");

    let n = node(&redis, &["--redis-password-file", right.to_str().unwrap()]);
    let mut page = n.ws();
    join_room(&mut page, "dev", "ann");
    send_all(&mut page, "dev", &batch("a", "auth", 1));
    assert_eq!(recv_type(&mut page, "message")["message"], "a-auth-0");
}

#[test]
fn a_node_killed_its_pages_catch_up_on_another_without_a_gap() {
    let redis = Redis::start();
    let mut a = node(&redis, &[]);
    let b = node(&redis, &[]);
    let mut on_a = a.ws();
    let w = join_room(&mut on_a, "dev", "ann");
    let epoch = w["epoch"].as_u64().unwrap();
    let mut on_b = b.ws();
    join_room(&mut on_b, "dev", "bob");
    send_all(&mut on_a, "dev", &batch("a", "x", 5));
    let seen = messages(&frames(&mut on_a, Duration::from_millis(400)));
    let last = seen.last().unwrap().0;
    a.signal("-KILL");
    let _ = a.child.wait();
    send_all(&mut on_b, "dev", &batch("b", "y", 5));
    assert_eq!(
        messages(&frames(&mut on_b, Duration::from_millis(400))).len(),
        10
    );
    // The page reconnects to the other node, as the page's own code does.
    let mut again = b.ws();
    send_json(
        &mut again,
        json!({"type": "join", "room": "dev", "username": "ann", "since": last, "epoch": epoch}),
    );
    let w = recv_type(&mut again, "welcome");
    let texts: Vec<&str> = w["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(texts, batch("b", "y", 5), "exactly what it missed");
    assert!(a.log_text().contains("listening"));
}

/// Stores a message in `room` the way publish.lua does, but without
/// PUBLISH: a message the subscription missed.
fn store_unpublished(redis: &Redis, room: &str, text: &str) {
    let script = "local id = redis.call('HINCRBY', KEYS[1], 'seq', 1) \
                  redis.call('XADD', KEYS[2], id .. '-0', 't', '1', 'f', ARGV[1]) return id";
    let fields = format!(r#"{{"time":1,"username":"ghost","message":"{text}"}}"#);
    let reply = redis
        .command(&[
            "EVAL",
            script,
            "2",
            &format!("picochat:meta:{room}"),
            &format!("picochat:stream:{room}"),
            &fields,
        ])
        .unwrap();
    assert!(reply.starts_with(':'), "{reply}");
}

#[test]
fn a_message_the_subscription_missed_is_filled_from_the_stream_in_order() {
    let redis = Redis::start();
    // A long check interval: here the gap is found by the next message's id.
    let n = node(&redis, &["--redis-check-interval", "1h"]);
    let mut page = n.ws();
    join_room(&mut page, "dev", "ann");
    send_all(&mut page, "dev", &batch("a", "x", 1));
    assert_eq!(recv_type(&mut page, "message")["id"], 1);
    store_unpublished(&redis, "dev", "missed");
    send_all(&mut page, "dev", &batch("a", "y", 1));
    let seen = messages(&frames(&mut page, Duration::from_millis(400)));
    let expected: Vec<(u64, String)> = vec![(2, "missed".into()), (3, "a-y-0".into())];
    assert_eq!(seen, expected);
    assert_eq!(n.metric("picochat_redis_gaps_filled_total"), 1.0);

    // With nothing after it, the periodic position check finds it.
    let m = node(&redis, &["--redis-check-interval", "300ms"]);
    let mut other = m.ws();
    join_room(&mut other, "dev", "bob");
    store_unpublished(&redis, "dev", "silent");
    let seen = messages(&frames(&mut other, Duration::from_millis(900)));
    assert_eq!(seen, vec![(4, "silent".to_string())]);
    assert!(m.metric("picochat_redis_position_checks_total") >= 1.0);
}

#[test]
fn presence_spans_nodes_and_a_dead_node_s_users_leave_within_the_ttl() {
    let redis = Redis::start();
    let ttl = ["--redis-presence-ttl", "2s"];
    let mut a = node(&redis, &ttl);
    let b = node(&redis, &ttl);
    // A long TTL here: a graceful stop must not wait for it.
    let c = node(&redis, &["--redis-presence-ttl", "60s"]);
    let mut ann = a.ws();
    join_room(&mut ann, "dev", "ann");
    let mut bob = b.ws();
    let w = join_room(&mut bob, "dev", "bob");
    let names: Vec<&str> = w["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    if names != ["ann", "bob"] {
        // Presence across nodes is eventually consistent: if bob's node read
        // the room a moment before ann's arrival reached Redis, the join
        // notice for her follows at once.
        assert_eq!(names, ["bob"]);
        let j = recv_type(&mut bob, "join");
        assert_eq!(
            (j["username"].as_str(), j["online"].as_u64()),
            (Some("ann"), Some(2))
        );
    } else {
        assert_eq!(w["online"], 2);
    }
    let j = recv_type(&mut ann, "join");
    assert_eq!(
        (j["username"].as_str(), j["online"].as_u64()),
        (Some("bob"), Some(2))
    );

    // ann opens a second tab on b and closes it: she was online all along.
    let mut ann2 = b.ws();
    let w = join_room(&mut ann2, "dev", "ann");
    assert_eq!(w["online"], 2, "one user on two nodes is listed once");
    drop(ann2);
    // carol on a third node, gracefully stopped: her leave is at once.
    let mut carol = c.ws();
    join_room(&mut carol, "dev", "carol");
    assert_eq!(recv_type(&mut bob, "join")["username"], "carol");
    c.signal("-TERM");
    let started = Instant::now();
    let l = recv_type(&mut bob, "leave");
    assert_eq!(l["username"], "carol", "no leave for ann's second tab");
    // Within the shutdown (its connections are closed with a handshake first).
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );

    // a dies: ann leaves within the TTL (2 s) plus one refresh interval.
    a.signal("-KILL");
    let _ = a.child.wait();
    let started = Instant::now();
    let l = recv_type(&mut bob, "leave");
    assert_eq!(
        (l["username"].as_str(), l["online"].as_u64()),
        (Some("ann"), Some(1))
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(frames(&mut bob, Duration::from_millis(300))
        .iter()
        .all(|f| f["type"] != "leave"));
}

#[test]
fn with_reuse_port_several_nodes_share_one_port_and_one_set_of_rooms() {
    let redis = Redis::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let shared = ["--listen", listen.as_str(), "--reuse-port", "on"];
    let a = node(&redis, &shared);
    let b = node(&redis, &shared);
    assert_eq!(a.addr, b.addr);
    let (code, err) = picochat_fails(&["--listen", &listen]);
    assert_eq!(
        code,
        Some(1),
        "without --reuse-port the port is taken: {err}"
    );
    assert!(err.contains("cannot listen"), "{err}");

    // The kernel spreads connections over both; every page sees every message.
    let mut pages: Vec<Ws> = (0..16).map(|_| a.ws()).collect();
    for (i, p) in pages.iter_mut().enumerate() {
        join_room(p, "dev", &format!("u{i}"));
    }
    let opened = |s: &TestServer| s.log_text().matches("websocket open (chat)").count();
    assert_eq!(opened(&a) + opened(&b), 16);
    assert!(
        opened(&a) > 0 && opened(&b) > 0,
        "{} and {}",
        opened(&a),
        opened(&b)
    );
    send_all(&mut pages[0], "dev", &batch("a", "shared", 1));
    for p in pages.iter_mut() {
        assert_eq!(recv_type(p, "message")["message"], "a-shared-0");
    }
}

use common::run_load as load;

#[test]
fn the_load_generator_spreads_clients_over_nodes_and_counts_every_delivery_on_all() {
    let redis = Redis::start();
    let nodes: Vec<TestServer> = (0..2).map(|_| node(&redis, &[])).collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.url("/ws")).collect();
    let pids: Vec<String> = nodes.iter().map(|n| n.pid().to_string()).collect();
    let mut args = vec![
        "--url",
        &urls[0],
        "--url",
        &urls[1],
        "--server-pid",
        &pids[0],
        "--server-pid",
        &pids[1],
        "--clients",
        "60",
        "--senders",
        "6",
        "--rate",
        "200",
        "--duration",
        "2s",
    ];
    let r = load(&args);
    assert_eq!(
        (r["failed"].as_u64(), r["dropped"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    assert!(r["sent"].as_u64().unwrap() > 100, "{r}");
    assert_eq!(r["lost"], 0, "every node delivered every message: {r}");
    assert_eq!(r["expected"], r["received"]);
    assert_eq!(
        r["expected"].as_u64(),
        Some(r["sent"].as_u64().unwrap() * 60),
        "{r}"
    );
    let per_node = r["nodes"].as_array().unwrap();
    assert_eq!(per_node.len(), 2);
    for n in per_node {
        assert_eq!(n["clients"], 30, "{r}");
        // Everyone is in the one room: each node's 30 expect every message.
        assert_eq!(
            n["expected"].as_u64(),
            Some(r["sent"].as_u64().unwrap() * 30)
        );
        assert_eq!(n["received"], n["expected"], "{r}");
        assert!(n["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(r["servers"].as_array().unwrap().len(), 2);
    assert_breakdowns_add_up(&r);
    // Each second of the series has both processes.
    for row in r["series"].as_array().unwrap() {
        assert_eq!(row["servers"].as_array().unwrap().len(), 2, "{row}");
    }

    args.extend(["--rooms", "3"]);
    let r = load(&args);
    assert_eq!(
        (r["lost"].as_u64(), r["dropped"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    assert_eq!(r["rooms"]["per_room"].as_array().unwrap().len(), 3);
    assert_breakdowns_add_up(&r);
}

/// The per-node and per-room breakdowns (and the per-second series) sum to the totals.
fn assert_breakdowns_add_up(r: &serde_json::Value) {
    let sum = |list: &serde_json::Value, key: &str| -> u64 {
        list.as_array()
            .unwrap()
            .iter()
            .map(|x| x[key].as_u64().unwrap())
            .sum()
    };
    let nodes = &r["nodes"];
    assert_eq!(
        sum(nodes, "expected"),
        r["expected"].as_u64().unwrap(),
        "{r}"
    );
    assert_eq!(
        sum(nodes, "received"),
        r["received"].as_u64().unwrap(),
        "{r}"
    );
    assert_eq!(sum(nodes, "lost"), r["lost"].as_u64().unwrap(), "{r}");
    assert_eq!(sum(nodes, "dropped"), r["dropped"].as_u64().unwrap(), "{r}");
    assert_eq!(
        sum(nodes, "clients"),
        r["connected"].as_u64().unwrap(),
        "{r}"
    );
    if let Some(rooms) = r["rooms"]["per_room"].as_array() {
        let rooms = serde_json::Value::from(rooms.clone());
        assert_eq!(
            sum(&rooms, "expected"),
            r["expected"].as_u64().unwrap(),
            "{r}"
        );
        assert_eq!(
            sum(&rooms, "received"),
            r["received"].as_u64().unwrap(),
            "{r}"
        );
        assert_eq!(sum(&rooms, "lost"), r["lost"].as_u64().unwrap(), "{r}");
        assert_eq!(
            sum(&rooms, "dropped"),
            r["dropped"].as_u64().unwrap(),
            "{r}"
        );
    }
    assert_eq!(
        sum(&r["series"], "received"),
        r["received"].as_u64().unwrap()
    );
    assert_eq!(sum(&r["series"], "sent"), r["sent"].as_u64().unwrap());
}

#[test]
fn a_client_dropped_on_purpose_is_lost_in_its_own_room_and_node() {
    let redis = Redis::start();
    let dir = std::env::temp_dir().join(format!("picochat-redis-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    let secret = "an-admin-token-of-some-length";
    std::fs::write(&token, secret).unwrap();
    let nodes: Vec<TestServer> = (0..2)
        .map(|_| node(&redis, &["--admin-token-file", token.to_str().unwrap()]))
        .collect();
    // Client i goes through node i mod 2 into room load-(i mod 3) as "load{i}":
    // load7 is on node 1 in room load-1, and not a sender (the senders are
    // the first two members of each room: load0..load5).
    let child = Command::new(env!("CARGO_BIN_EXE_picochat-load"))
        .args([
            "--url",
            &nodes[0].url("/ws"),
            "--url",
            &nodes[1].url("/ws"),
            "--clients",
            "12",
            "--rooms",
            "3",
            "--senders",
            "6",
            "--rate",
            "60",
            "--duration",
            "3s",
            "--json",
            "--quiet",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("load7 in its room on node 1", 10, || {
        let (_, rooms) = admin_call(nodes[1].addr, "GET", "/api/admin/rooms", Some(secret));
        rooms.to_string().contains("\"load7\"")
    });
    let (status, body) = admin_call(
        nodes[1].addr,
        "POST",
        "/api/admin/users/load7/kick",
        Some(secret),
    );
    assert_eq!((status, &body["kicked"]), (200, &json!(1)), "{body}");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lost = r["lost"].as_u64().unwrap();
    assert_eq!(r["dropped"], 1, "{r}");
    assert!(lost > 0, "the dropped client's deliveries are lost: {r}");
    let nodes_r = r["nodes"].as_array().unwrap();
    assert_eq!(
        (nodes_r[0]["lost"].as_u64(), nodes_r[0]["dropped"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    assert_eq!(
        (nodes_r[1]["lost"].as_u64(), nodes_r[1]["dropped"].as_u64()),
        (Some(lost), Some(1)),
        "{r}"
    );
    let rooms = r["rooms"]["per_room"].as_array().unwrap();
    for (i, room) in rooms.iter().enumerate() {
        assert_eq!(room["room"], format!("load-{i}"));
        let want = if i == 1 { (lost, 1) } else { (0, 0) };
        assert_eq!(
            (
                room["lost"].as_u64().unwrap(),
                room["dropped"].as_u64().unwrap()
            ),
            want,
            "{r}"
        );
    }
    assert_eq!(r["rooms"]["rooms_with_losses"], 1);
    assert_eq!(r["rooms"]["max_lost_in_a_room"].as_u64(), Some(lost));
    assert_breakdowns_add_up(&r);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_redis_that_lost_its_newest_writes_gives_a_new_epoch_not_reused_ids() {
    let redis = Redis::start();
    let n = node(&redis, &[]);
    let mut page = n.ws();
    let first = join_room(&mut page, "dev", "ann");
    send_all(&mut page, "dev", &batch("a", "kept", 3));
    assert_eq!(
        messages(&frames(&mut page, Duration::from_millis(400))).len(),
        3
    );
    // What an appendfsync-everysec crash leaves: the last two writes gone.
    // At once, so no read by the node falls between the two.
    let lose = "redis.call('HSET', KEYS[1], 'seq', 1) \
                local n = redis.call('XDEL', KEYS[2], '2-0', '3-0') \
                redis.call('XSETID', KEYS[2], '1-0') return n";
    let reply = redis
        .command(&[
            "EVAL",
            lose,
            "2",
            "picochat:meta:dev",
            "picochat:stream:dev",
        ])
        .unwrap();
    assert!(reply.starts_with(":2"), "{reply}");
    // The periodic check (500 ms here) reads the room and finds it behind.
    let f = frames(&mut page, Duration::from_millis(1500));
    let w = of_type(&f, "welcome")
        .pop()
        .unwrap_or_else(|| panic!("{f:?}\n{}", n.log_text()));
    assert_ne!(w["epoch"], first["epoch"], "pages start the room over");
    let history = history_ids(&w);
    assert_eq!(history, [1]);
    send_all(&mut page, "dev", &batch("a", "new", 1));
    let f = frames(&mut page, Duration::from_millis(1000));
    assert_eq!(
        messages(&f),
        [(2, "a-new-0".to_string())],
        "id 2 again, in the new epoch: delivered, not taken for a duplicate: {f:?}\n{}",
        n.log_text()
    );
}

#[test]
fn a_password_refused_later_is_degraded_and_logged_then_recovers() {
    let mut redis = Redis::start_with(false, Some("s3cret"));
    let file = redis.dir.join("password");
    std::fs::write(&file, "s3cret\n").unwrap();
    let n = node(
        &redis,
        &[
            "--redis-password-file",
            file.to_str().unwrap(),
            "--redis-retry-max",
            "200ms",
        ],
    );
    wait_healthy(&n, Duration::from_secs(5));
    // The password changes under a running node, and its connections are cut.
    redis.command(&["CONFIG", "SET", "requirepass", "changed"]);
    redis.password = Some("changed".into());
    redis.command(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    wait_until("degraded after the password changed", 5, || {
        health(&n).0 == 503
    });
    n.wait_log("WRONGPASS", 5);
    let refusals = n.log_text().matches("refused: WRONGPASS").count();
    assert_eq!(refusals, 1, "logged once, not per try:\n{}", n.log_text());
    // Back to the password the node has: it recovers by itself.
    redis.command(&["CONFIG", "SET", "requirepass", "s3cret"]);
    wait_healthy(&n, Duration::from_secs(5));
    let mut page = n.ws();
    join_room(&mut page, "dev", "ann");
    send_all(&mut page, "dev", &batch("a", "again", 1));
    assert_eq!(recv_type(&mut page, "message")["message"], "a-again-0");
}

#[test]
fn edits_deletes_and_their_owners_travel_between_nodes() {
    let redis = Redis::start();
    let dir = std::env::temp_dir().join(format!("picochat-redis-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "an-admin-token-of-some-length").unwrap();
    let a = node(&redis, &[]);
    let b = node(&redis, &["--admin-token-file", token.to_str().unwrap()]);
    let joined = |s: &TestServer, name: &str, secret: &str| {
        let mut ws = s.ws();
        send_json(
            &mut ws,
            json!({"type": "join", "room": "dev", "username": name, "secret": secret}),
        );
        recv_type(&mut ws, "welcome");
        ws
    };
    let mut ann_a = joined(&a, "ann", "secret-of-ann");
    let mut bob_b = joined(&b, "bob", "secret-of-bob");
    for text in ["helo", "second", "spam"] {
        send_json(&mut ann_a, json!({"room": "dev", "message": text}));
    }
    let ids: Vec<u64> = (0..3)
        .map(|_| recv_type(&mut bob_b, "message")["id"].as_u64().unwrap())
        .collect();
    // An edit made on A reaches B; B knows the message is not bob's.
    send_json(
        &mut ann_a,
        json!({"type": "edit", "room": "dev", "id": ids[0], "message": "hello"}),
    );
    assert_eq!(
        recv_type(&mut bob_b, "edit")["target"].as_u64(),
        Some(ids[0])
    );
    send_json(
        &mut bob_b,
        json!({"type": "delete", "room": "dev", "id": ids[1]}),
    );
    assert_eq!(recv_type(&mut bob_b, "error")["code"], "not_yours");
    // Ann's tab on B, same secret: the message sent through A is hers there too.
    let mut ann_b = joined(&b, "ann", "secret-of-ann");
    send_json(
        &mut ann_b,
        json!({"type": "delete", "room": "dev", "id": ids[1]}),
    );
    assert_eq!(
        recv_type(&mut ann_a, "delete")["target"].as_u64(),
        Some(ids[1])
    );
    // A moderator on B deletes for everyone.
    let (status, _) = admin_call(
        b.addr,
        "DELETE",
        &format!("/api/admin/rooms/dev/messages/{}", ids[2]),
        Some("an-admin-token-of-some-length"),
    );
    assert_eq!(status, 202);
    let d = recv_type(&mut ann_a, "delete");
    assert_eq!(
        (d["target"].as_u64(), d["by"].as_str()),
        (Some(ids[2]), Some("admin"))
    );
    // A page joining on a third node sees the result.
    let c = node(&redis, &[]);
    let mut cy = c.ws();
    let w = join_room(&mut cy, "dev", "cy");
    let shown: Vec<(u64, String)> = messages(w["history"].as_array().unwrap());
    assert_eq!(shown, [(ids[0], "hello".to_string())]);
    assert_eq!(w["history"][0]["edited"], true);
    // C read those from the stream: the owner came with them.
    let mut ann_c = joined(&c, "ann", "secret-of-ann");
    send_json(
        &mut ann_c,
        json!({"type": "delete", "room": "dev", "id": ids[0]}),
    );
    assert_eq!(
        recv_type(&mut cy, "delete")["target"].as_u64(),
        Some(ids[0])
    );
}

#[test]
fn bans_and_room_settings_reach_every_node_and_a_node_started_later() {
    let redis = Redis::start();
    let dir = std::env::temp_dir().join(format!("picochat-redis-bans-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    let secret = "an-admin-token-of-some-length";
    std::fs::write(&token, secret).unwrap();
    let a = node(&redis, &[]);
    let b = node(&redis, &["--admin-token-file", token.to_str().unwrap()]);
    let mut troll = a.ws();
    join_room(&mut troll, "dev", "troll");
    let mut ann = a.ws();
    join_room(&mut ann, "dev", "ann");
    let mut bob = b.ws();
    join_room(&mut bob, "dev", "bob");

    // A kick made on B closes the user's connections on A.
    let mut dee = a.ws();
    join_room(&mut dee, "dev", "dee");
    wait_until("B to hear of dee's presence", 5, || {
        let body: Value = serde_json::from_str(&http_get(b.addr, "/api/rooms")).unwrap();
        body["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["room"] == "dev" && r["online"] == 4)
    });
    let (status, body) = admin_call(b.addr, "POST", "/api/admin/users/dee/kick", Some(secret));
    assert_eq!(
        (status, body["elsewhere"].as_bool()),
        (202, Some(true)),
        "{body}"
    );
    assert_eq!(
        closed_with(&mut dee),
        (1008, "removed by a moderator".into())
    );
    let (status, _) = admin_call(b.addr, "POST", "/api/admin/users/nobody/kick", Some(secret));
    assert_eq!(status, 404);

    let (status, _) = admin_call(b.addr, "POST", "/api/admin/bans?name=troll", Some(secret));
    assert_eq!(status, 202);
    assert_eq!(closed_with(&mut troll).0, 1008, "closed on the other node");
    let path = "/api/admin/rooms/dev/settings?topic=Quiet+please&slow_mode=60";
    assert_eq!(admin_call(b.addr, "PUT", path, Some(secret)).0, 202);
    assert_eq!(recv_type(&mut ann, "room")["topic"], "Quiet please");
    send_json(&mut ann, json!({"room": "dev", "message": "one"}));
    recv_type(&mut ann, "message");
    send_json(&mut ann, json!({"room": "dev", "message": "two"}));
    assert_eq!(recv_type(&mut ann, "error")["code"], "slow_mode");

    // A node started afterwards reads them from Redis.
    let c = node(&redis, &[]);
    let mut cy = c.ws();
    let w = join_room(&mut cy, "dev", "cy");
    assert_eq!(
        (w["topic"].as_str(), w["slow_mode"].as_u64()),
        (Some("Quiet please"), Some(60))
    );
    let mut again = c.ws();
    send_json(
        &mut again,
        json!({"type": "join", "room": "dev", "username": "Troll"}),
    );
    assert_eq!(recv_type(&mut again, "error")["code"], "banned");
}

#[test]
fn held_names_are_held_on_every_node_and_on_a_node_started_later() {
    let redis = Redis::start();
    let a = node(&redis, &[]);
    let b = node(&redis, &[]);
    let (ann, w) = join_as(&a, "Ann", "secret-of-ann");
    assert_eq!(w["type"], "welcome");
    // Stored in the settings hash and published in one script: B's
    // subscription has it before this test can read the hash.
    let hold = || {
        redis
            .command(&["HGET", "picochat:settings", "hold/ann"])
            .unwrap_or_default()
    };
    wait_until("ann's hold stored", 5, || {
        let reply = hold();
        reply.starts_with('$') && !reply.starts_with("$-1")
    });
    assert_eq!(
        join_as(&b, "ann", "another-secret").1["code"],
        "name_taken",
        "online on A"
    );
    drop(ann);
    // Her presence gone from Redis (B is told in the same script): what
    // refuses the name now is the hold alone.
    wait_until("ann offline", 5, || {
        !redis
            .command(&["HKEYS", "picochat:presence:lobby"])
            .unwrap_or_default()
            .contains("Ann")
    });
    assert_eq!(
        join_as(&b, "Ann", "another-secret").1["code"],
        "name_taken",
        "held after she left"
    );
    let c = node(&redis, &[]);
    // C reads the settings hash once its subscription is confirmed, a reply
    // no outside observer can see: the one wait here that is a guess.
    wait_healthy(&c, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        join_as(&c, "Ann", "another-secret").1["code"],
        "name_taken",
        "a node started later"
    );
    assert_eq!(join_as(&c, "Ann", "secret-of-ann").1["type"], "welcome");
}

#[test]
fn a_verified_name_is_marked_on_every_node() {
    let redis = Redis::start();
    let dir = std::env::temp_dir().join(format!("picochat-redis-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret_file = dir.join("jwt");
    let secret = "a-secret-the-site-and-nodes-share";
    std::fs::write(&secret_file, secret).unwrap();
    let args = [
        "--auth",
        "token",
        "--jwt-secret-file",
        secret_file.to_str().unwrap(),
    ];
    let (a, b) = (node(&redis, &args), node(&redis, &args));
    let join_with_token = |s: &TestServer, sub: &str, name: &str| {
        let mut ws = s.ws();
        let t = sign_token(secret, json!({"sub": sub, "name": name}), Some(3600), None);
        send_json(&mut ws, json!({"type": "join", "room": "dev", "token": t}));
        let w = recv_type(&mut ws, "welcome");
        (ws, w)
    };
    let (_ada, _) = join_with_token(&a, "u1", "Ada");
    // B reads the room's presence from Redis when Bob's join loads it.
    wait_until("Ada's presence stored", 5, || {
        redis
            .command(&["HKEYS", "picochat:presence:dev"])
            .unwrap_or_default()
            .contains("Ada")
    });
    let (mut bob, w) = join_with_token(&b, "u2", "Bob");
    let ada = w["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "Ada")
        .cloned();
    assert_eq!(ada.map(|u| u["verified"].clone()), Some(json!(true)), "{w}");
    // And in a live presence notice from the other node.
    let (_cy, _) = join_with_token(&a, "u3", "Cy");
    let joined = recv_type(&mut bob, "join");
    assert_eq!(
        (joined["username"].as_str(), joined["verified"].as_bool()),
        (Some("Cy"), Some(true))
    );
}

fn ask(ws: &mut Ws, frame: Value) -> Value {
    let kind = frame["type"].as_str().unwrap().to_string();
    send_json(ws, frame);
    recv_type(ws, &kind)
}

#[test]
fn paging_and_search_on_the_node_that_did_not_receive_the_messages() {
    let redis = Redis::start();
    let a = node(&redis, &[]);
    // Node b keeps little in memory: its pages come from the stream.
    let b = node(&redis, &["--history", "20", "--history-bytes", "16KiB"]);
    let mut writer = a.ws();
    join_room(&mut writer, "alpha", "ann");
    join_room(&mut writer, "beta", "ann");
    let mut sent = Vec::new();
    for i in 0..300 {
        for room in ["alpha", "beta"] {
            send_json(
                &mut writer,
                json!({"type": "message", "room": room, "message": format!("{room} {i} needle{} end", i % 97)}),
            );
            let m = recv_type(&mut writer, "message");
            if m["room"] == "alpha" {
                sent.push(m["id"].as_u64().unwrap());
            }
        }
    }
    let secret = "redis-pages-secret-0123456789";
    let (mut cy, _) = join_as(&a, "cy", secret);
    send_json(
        &mut cy,
        json!({"type": "join", "room": "alpha", "username": "cy", "secret": secret}),
    );
    recv_type(&mut cy, "welcome");
    let mut mine = Vec::new();
    for text in ["typo here", "regret"] {
        send_json(
            &mut cy,
            json!({"type": "message", "room": "alpha", "message": text}),
        );
        mine.push(recv_type(&mut cy, "message")["id"].as_u64().unwrap());
    }
    ask(
        &mut cy,
        json!({"type": "edit", "room": "alpha", "id": mine[0], "message": "fixed it"}),
    );
    ask(
        &mut cy,
        json!({"type": "delete", "room": "alpha", "id": mine[1]}),
    );
    sent.push(mine[0]);
    for i in 0..100 {
        send_json(
            &mut cy,
            json!({"type": "message", "room": "alpha", "message": format!("later {i}")}),
        );
        sent.push(recv_type(&mut cy, "message")["id"].as_u64().unwrap());
    }

    let mut reader = b.ws();
    let w = join_room(&mut reader, "alpha", "dee");
    assert_eq!(
        history_ids(&w),
        sent[sent.len() - 20..],
        "a welcome shows --history messages"
    );
    let mut v = ask(
        &mut reader,
        json!({"type": "history", "room": "alpha", "limit": 70}),
    );
    let mut all = page_ids(&v);
    while v["older"] == true {
        v = ask(
            &mut reader,
            json!({"type": "history", "room": "alpha", "before": all[0], "limit": 70}),
        );
        let page = page_ids(&v);
        assert!(
            v["older"] == false || page.len() == 70,
            "a full page unless at the start"
        );
        all.splice(0..0, page);
    }
    assert_eq!(
        all, sent,
        "every message of alpha once, in order, none of beta's, the deleted one left out"
    );
    let around = ask(
        &mut reader,
        json!({"type": "history", "room": "alpha", "around": mine[0], "limit": 3}),
    );
    let m = &around["messages"][1];
    assert_eq!(
        (m["id"].as_u64(), m["message"].clone(), m["edited"].clone()),
        (Some(mine[0]), json!("fixed it"), json!(true))
    );
    let after = ask(
        &mut reader,
        json!({"type": "history", "room": "alpha", "after": sent[9], "limit": 5}),
    );
    assert_eq!(page_ids(&after), sent[10..15]);
    // Search pages through the stream: "needle5 " is in alpha's messages 5, 102, 199 and 296.
    let found = ask(
        &mut reader,
        json!({"type": "search", "room": "alpha", "q": "NEEDLE5 "}),
    );
    assert_eq!(
        page_ids(&found),
        [296, 199, 102, 5].map(|i| sent[i]),
        "{found}"
    );
    assert_eq!(found["older"], false);
    let none: Vec<u64> = Vec::new();
    assert_eq!(
        page_ids(&ask(
            &mut reader,
            json!({"type": "search", "room": "alpha", "q": "regret"})
        )),
        none
    );
    assert_eq!(
        page_ids(&ask(
            &mut reader,
            json!({"type": "search", "room": "alpha", "q": "typo"})
        )),
        none
    );
    assert_eq!(
        page_ids(&ask(
            &mut reader,
            json!({"type": "search", "room": "alpha", "q": "fixed it"})
        )),
        vec![mine[0]]
    );
}

#[test]
fn redis_retain_bounds_what_pages_and_searches_reach() {
    let redis = Redis::start();
    let a = node(&redis, &["--redis-retain", "100"]);
    let mut ws = a.ws();
    join_room(&mut ws, "gen", "ann");
    let mut sent = Vec::new();
    for i in 0..600 {
        send_json(
            &mut ws,
            json!({"type": "message", "room": "gen", "message": format!("m{i} x")}),
        );
        sent.push(recv_type(&mut ws, "message")["id"].as_u64().unwrap());
    }
    // A node that did not see them pages back to where the stream starts.
    let b = node(&redis, &["--history", "10", "--history-bytes", "4KiB"]);
    let mut reader = b.ws();
    join_room(&mut reader, "gen", "bob");
    let mut v = ask(
        &mut reader,
        json!({"type": "history", "room": "gen", "limit": 200}),
    );
    let mut all = page_ids(&v);
    while v["older"] == true {
        v = ask(
            &mut reader,
            json!({"type": "history", "room": "gen", "before": all[0], "limit": 200}),
        );
        all.splice(0..0, page_ids(&v));
    }
    // MAXLEN ~ trims whole stream nodes: at least 100 kept, never all 600.
    assert!((100..600).contains(&all.len()), "{}", all.len());
    assert_eq!(
        all[..],
        sent[sent.len() - all.len()..],
        "the newest, contiguous"
    );
    let none: Vec<u64> = Vec::new();
    assert_eq!(
        page_ids(&ask(
            &mut reader,
            json!({"type": "search", "room": "gen", "q": "m0 x"})
        )),
        none
    );
}

#[test]
fn amendments_of_messages_the_stream_no_longer_keeps_are_swept() {
    let redis = Redis::start();
    let a = node(&redis, &["--redis-retain", "5"]);
    let secret = "sweep-secret-0123456789abc";
    let (mut cy, _) = join_as(&a, "cy", secret);
    let post = |ws: &mut Ws, text: String| {
        send_json(ws, json!({"type": "message", "message": text}));
        recv_type(ws, "message")["id"].as_u64().unwrap()
    };
    let early: Vec<u64> = (0..8)
        .map(|i| post(&mut cy, format!("early {i}")))
        .collect();
    for &id in &early {
        ask(
            &mut cy,
            json!({"type": "edit", "id": id, "message": "changed"}),
        );
    }
    let hlen = || {
        redis
            .command(&["HLEN", "picochat:amend:lobby"])
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(hlen(), ":8", "an edit is noted for pages of old messages");
    // The stream moves on past them (MAXLEN ~ trims whole nodes of 100).
    let later: Vec<u64> = (0..400)
        .map(|i| post(&mut cy, format!("later {i}")))
        .collect();
    for &id in &later[390..] {
        ask(
            &mut cy,
            json!({"type": "edit", "id": id, "message": "changed"}),
        );
    }
    // Past twice --redis-retain, the sweep drops the early ones the stream no longer has.
    assert_eq!(hlen(), ":10", "only the amendments of messages still kept");
}

#[test]
fn a_page_redis_cannot_answer_is_unavailable_never_an_early_start() {
    let mut redis = Redis::start();
    let a = node(&redis, &["--history", "5", "--history-bytes", "2KiB"]);
    let mut ws = a.ws();
    join_room(&mut ws, "gen", "ann");
    let mut ids = Vec::new();
    for i in 0..60 {
        send_json(
            &mut ws,
            json!({"type": "message", "room": "gen", "message": format!("m{i}")}),
        );
        ids.push(recv_type(&mut ws, "message")["id"].as_u64().unwrap());
    }
    let old = json!({"type": "history", "room": "gen", "before": ids[10], "limit": 5});
    assert_eq!(
        page_ids(&ask(&mut ws, old.clone())),
        ids[5..10],
        "from the stream"
    );
    // Asked while Redis hangs, then the link drops: the page that was waiting fails.
    redis.signal("-STOP");
    send_json(&mut ws, old.clone());
    std::thread::sleep(Duration::from_millis(200));
    redis.kill9();
    let e = recv_type(&mut ws, "error");
    assert_eq!(
        (e["code"].clone(), e["room"].clone()),
        (json!("unavailable"), json!("gen"))
    );
    // Asked while Redis is away: refused at once, not an empty page with older:false.
    send_json(&mut ws, old);
    let e = recv_type(&mut ws, "error");
    assert_eq!(e["code"], "unavailable");
    send_json(&mut ws, json!({"type": "search", "room": "gen", "q": "m1"}));
    let e = recv_type(&mut ws, "error");
    assert_eq!(
        e["code"], "unavailable",
        "a search that needs the stream too"
    );
}
