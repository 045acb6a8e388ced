//! History pages and search over real sockets, on the memory store and the
//! journal (across a restart, through retention): every retained message
//! can be paged back exactly once and found, edits and deletes show as they
//! do in a welcome, every bad request gets its error code and the connection
//! stays open, and the loop keeps answering while a large search runs.
//! (Redis with two processes is in `redis.rs`; the timings are benches.)

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::Write;

fn tmpdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("picochat-sb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn page(ws: &mut Ws, room: &str, fields: Value) -> Value {
    let mut ask = json!({"type": "history", "room": room});
    for (k, v) in fields.as_object().unwrap() {
        ask[k] = v.clone();
    }
    send_json(ws, ask);
    let v = recv_type(ws, "history");
    assert_eq!(v["room"], room);
    v
}

fn search(ws: &mut Ws, room: &str, fields: Value) -> Value {
    let mut ask = json!({"type": "search", "room": room});
    for (k, v) in fields.as_object().unwrap() {
        ask[k] = v.clone();
    }
    send_json(ws, ask);
    recv_type(ws, "search")
}

fn join_room(ws: &mut Ws, room: &str, name: &str) -> Value {
    send_json(ws, json!({"type": "join", "room": room, "username": name}));
    recv_type(ws, "welcome")
}

/// Sends `n` messages to `room` and waits until the last is back: returns their ids.
fn post(ws: &mut Ws, room: &str, texts: impl IntoIterator<Item = String>) -> Vec<u64> {
    let texts: Vec<String> = texts.into_iter().collect();
    for t in &texts {
        send_json(ws, json!({"type": "message", "room": room, "message": t}));
    }
    let mut got = Vec::new();
    while got.len() < texts.len() {
        let m = recv_type(ws, "message");
        if m["room"] == room {
            got.push(m["id"].as_u64().unwrap());
        }
    }
    got
}

/// Pages from the newest back to the start; every page checked for order and flags.
fn page_back_to_start(ws: &mut Ws, room: &str, limit: u64) -> Vec<u64> {
    let mut v = page(ws, room, json!({"limit": limit}));
    assert_eq!(v["newer"], false, "the newest page has nothing newer");
    let mut all = page_ids(&v);
    while v["older"] == true {
        let before = all[0];
        v = page(ws, room, json!({"before": before, "limit": limit}));
        let got = page_ids(&v);
        assert_eq!(v["newer"], true, "a page before {before}: {v}");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "ascending: {got:?}");
        if v["older"] == true {
            assert_eq!(got.len() as u64, limit, "a full page unless at the start");
        }
        all.splice(0..0, got);
    }
    all
}

#[test]
fn memory_pages_and_searches_every_message_a_room_keeps() {
    let s = TestServer::start(&["--msg-rate", "0", "--history", "30", "--page-max", "60"]);
    let mut ann = s.ws();
    join_room(&mut ann, "general", "ann");
    let texts = (0..120).map(|i| match i {
        7 => "Das WLAN-Passwort ist ÜBER geheim".to_string(),
        50 => "über alles".to_string(),
        _ => format!("message {i}"),
    });
    let sent = post(&mut ann, "general", texts);
    // Another room's messages never show in this room's pages or searches.
    join_room(&mut ann, "random", "ann");
    post(
        &mut ann,
        "random",
        (0..10).map(|i| format!("über random {i}")),
    );

    let welcome = join_room(&mut s.ws(), "general", "bob");
    assert_eq!(
        history_ids(&welcome),
        sent[90..],
        "a welcome shows --history messages"
    );

    let newest = page(&mut ann, "general", json!({}));
    assert_eq!(page_ids(&newest), sent[70..], "default limit 50");
    assert_eq!(
        (newest["older"].clone(), newest["newer"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(
        page_ids(&page(&mut ann, "general", json!({"limit": 1000}))),
        sent[60..],
        "clamped to --page-max"
    );
    assert_eq!(
        page_back_to_start(&mut ann, "general", 17),
        sent,
        "every message once, in order"
    );

    let after = page(&mut ann, "general", json!({"after": sent[9], "limit": 5}));
    assert_eq!(page_ids(&after), sent[10..15]);
    assert_eq!(
        (after["older"].clone(), after["newer"].clone()),
        (json!(true), json!(true))
    );
    let end = page(&mut ann, "general", json!({"after": sent[117], "limit": 5}));
    assert_eq!(
        (page_ids(&end), end["newer"].clone()),
        (sent[118..].to_vec(), json!(false))
    );
    let empty = page(&mut ann, "general", json!({"after": sent[119]}));
    assert_eq!(
        (
            page_ids(&empty),
            empty["newer"].clone(),
            empty["older"].clone()
        ),
        (vec![], json!(false), json!(true))
    );
    let around = page(&mut ann, "general", json!({"around": sent[60], "limit": 5}));
    assert_eq!(
        page_ids(&around),
        sent[58..63],
        "centred on the id, which is included"
    );
    let start = page(&mut ann, "general", json!({"before": sent[0]}));
    assert_eq!(
        (page_ids(&start), start["older"].clone()),
        (vec![], json!(false))
    );
    let first = page(&mut ann, "general", json!({"before": sent[1]}));
    assert_eq!(
        (page_ids(&first), first["older"].clone()),
        (vec![sent[0]], json!(false))
    );

    // Search: text only, ignoring case (Unicode), newest first.
    let found = search(&mut ann, "general", json!({"q": "über"}));
    assert_eq!(page_ids(&found), vec![sent[50], sent[7]], "{found}");
    assert_eq!(
        (found["q"].clone(), found["older"].clone()),
        (json!("über"), json!(false))
    );
    assert_eq!(
        page_ids(&search(
            &mut ann,
            "general",
            json!({"q": "ÜBER", "limit": 1})
        )),
        vec![sent[50]]
    );
    assert_eq!(
        page_ids(&search(
            &mut ann,
            "general",
            json!({"q": "über", "before": sent[50]})
        )),
        vec![sent[7]]
    );
    assert_eq!(
        page_ids(&search(&mut ann, "general", json!({"q": "ann"}))),
        Vec::<u64>::new(),
        "names are not searched"
    );
    let many = search(&mut ann, "general", json!({"q": "message", "limit": 1000}));
    assert_eq!(
        (page_ids(&many).len(), many["older"].clone()),
        (50, json!(true)),
        "limit clamped to 50"
    );

    // Edits and deletes: a page and a search show messages as they read now.
    let secret = "s3cret-for-ann-0123456789";
    let (mut cy, _) = join_as(&s, "cy", secret);
    send_json(
        &mut cy,
        json!({"type": "join", "room": "general", "username": "cy", "secret": secret}),
    );
    recv_type(&mut cy, "welcome");
    let mine = post(
        &mut cy,
        "general",
        ["first words".into(), "to be deleted".into()],
    );
    send_json(
        &mut cy,
        json!({"type": "edit", "room": "general", "id": mine[0], "message": "second thoughts"}),
    );
    recv_type(&mut cy, "edit");
    send_json(
        &mut cy,
        json!({"type": "delete", "room": "general", "id": mine[1]}),
    );
    recv_type(&mut cy, "delete");
    let newest = page(&mut cy, "general", json!({"limit": 3}));
    let shown = newest["messages"].as_array().unwrap();
    assert_eq!(
        page_ids(&newest),
        vec![sent[118], sent[119], mine[0]],
        "records are not messages; deleted ones skipped"
    );
    assert_eq!(
        (shown[2]["message"].clone(), shown[2]["edited"].clone()),
        (json!("second thoughts"), json!(true))
    );
    assert_eq!(
        page_ids(&search(&mut cy, "general", json!({"q": "thoughts"}))),
        vec![mine[0]]
    );
    assert!(
        page_ids(&search(&mut cy, "general", json!({"q": "first words"}))).is_empty(),
        "an edited message is found by its current text"
    );
    assert!(page_ids(&search(&mut cy, "general", json!({"q": "to be deleted"}))).is_empty());
}

#[test]
fn every_bad_request_gets_its_code_and_the_connection_stays_open() {
    let s = TestServer::start(&["--msg-rate", "0"]);
    let mut ws = s.ws();
    join_room(&mut ws, "general", "ann");
    for bad in [
        json!({"limit": 0}),
        json!({"limit": -1}),
        json!({"limit": 2.5}),
        json!({"limit": "5"}),
        json!({"before": -1}),
        json!({"before": "7"}),
        json!({"after": 1.5}),
        json!({"around": [1]}),
        json!({"before": 3, "after": 1}),
        json!({"before": 3, "around": 1}),
    ] {
        let mut ask = json!({"type": "history", "room": "general"});
        for (k, v) in bad.as_object().unwrap() {
            ask[k] = v.clone();
        }
        send_json(&mut ws, ask);
        let e = recv_type(&mut ws, "error");
        assert_eq!(
            (e["code"].clone(), e["room"].clone()),
            (json!("bad_history"), json!("general")),
            "{bad}"
        );
    }
    for bad in [
        json!({"q": "a"}),
        json!({"q": "x".repeat(101)}),
        json!({"q": 12}),
        json!({}),
        json!({"q": "ok", "limit": 0}),
        json!({"q": "ok", "limit": "3"}),
        json!({"q": "ok", "before": -2}),
    ] {
        let mut ask = json!({"type": "search", "room": "general"});
        for (k, v) in bad.as_object().unwrap() {
            ask[k] = v.clone();
        }
        send_json(&mut ws, ask);
        assert_eq!(recv_type(&mut ws, "error")["code"], "bad_search", "{bad}");
    }
    for ask in [
        json!({"type": "history", "room": "elsewhere"}),
        json!({"type": "search", "room": "elsewhere", "q": "hello"}),
    ] {
        send_json(&mut ws, ask);
        assert_eq!(recv_type(&mut ws, "error")["code"], "not_joined");
    }
    // Still open, and a hundred characters (not bytes) is a valid query.
    let ok = search(&mut ws, "general", json!({"q": "é".repeat(100)}));
    assert_eq!(ok["messages"], json!([]));
    // Only answered requests are counted.
    page(&mut ws, "general", json!({}));
    assert_eq!(s.metric("picochat_history_pages_total"), 1.0);
    assert_eq!(s.metric("picochat_searches_total"), 1.0);
}

#[test]
fn the_journal_pages_back_two_interleaved_rooms_after_a_restart() {
    let dir = tmpdir("restart");
    let args = [
        "--data-dir",
        dir.to_str().unwrap(),
        "--msg-rate",
        "0",
        "--history",
        "20",
        // Memory holds a few messages: the rest comes from the files.
        "--history-bytes",
        "16KiB",
    ];
    let mut sent_a = Vec::new();
    let mut sent_b = Vec::new();
    let (edited, deleted);
    {
        let s = TestServer::start(&args);
        let mut ws = s.ws();
        join_room(&mut ws, "alpha", "ann");
        join_room(&mut ws, "beta", "ann");
        for i in 0..400 {
            sent_a.extend(post(
                &mut ws,
                "alpha",
                [format!("alpha {i} needle{} end", i % 97)],
            ));
            sent_b.extend(post(
                &mut ws,
                "beta",
                [format!("beta {i} needle{} end", i % 97)],
            ));
        }
        // An old message edited and another deleted, long after they were sent:
        // only messages in memory can be changed, so change recent ones, then
        // push them out of memory with more traffic.
        let secret = "journal-secret-0123456789";
        let (mut cy, _) = join_as(&s, "cy", secret);
        send_json(
            &mut cy,
            json!({"type": "join", "room": "alpha", "username": "cy", "secret": secret}),
        );
        recv_type(&mut cy, "welcome");
        let mine = post(&mut cy, "alpha", ["typo here".into(), "regret".into()]);
        send_json(
            &mut cy,
            json!({"type": "edit", "room": "alpha", "id": mine[0], "message": "fixed it"}),
        );
        recv_type(&mut cy, "edit");
        send_json(
            &mut cy,
            json!({"type": "delete", "room": "alpha", "id": mine[1]}),
        );
        recv_type(&mut cy, "delete");
        edited = mine[0];
        deleted = mine[1];
        sent_a.push(edited);
        for i in 0..200 {
            sent_a.extend(post(&mut cy, "alpha", [format!("later {i}")]));
        }
    }
    let s = TestServer::start(&args);
    // The index of 1,202 records in two rooms: a few blocks each.
    let index = s.metric("picochat_log_index_bytes");
    assert!(index > 0.0 && index < 2048.0, "{index}");
    let mut ws = s.ws();
    join_room(&mut ws, "alpha", "dee");
    let all = page_back_to_start(&mut ws, "alpha", 50);
    assert_eq!(all.len(), sent_a.len(), "every message once");
    assert_eq!(
        all, sent_a,
        "in order, none of beta's, the deleted one left out"
    );
    assert!(!all.contains(&deleted));
    let around = page(&mut ws, "alpha", json!({"around": edited, "limit": 3}));
    let m = &around["messages"][1];
    assert_eq!(
        (m["id"].as_u64(), m["message"].clone(), m["edited"].clone()),
        (Some(edited), json!("fixed it"), json!(true))
    );
    // Search reaches the files: "needle5" is in alpha messages 5, 102, 199, 296, 393.
    let found = search(&mut ws, "alpha", json!({"q": "NEEDLE5 "}));
    let want: Vec<u64> = [393, 296, 199, 102, 5].iter().map(|&i| sent_a[i]).collect();
    assert_eq!(page_ids(&found), want, "{found}");
    assert!(page_ids(&search(&mut ws, "alpha", json!({"q": "regret"}))).is_empty());
    assert!(page_ids(&search(&mut ws, "alpha", json!({"q": "typo"}))).is_empty());
    assert_eq!(
        page_ids(&search(&mut ws, "alpha", json!({"q": "fixed it"}))),
        vec![edited]
    );
    let few = search(&mut ws, "alpha", json!({"q": "needle5 ", "limit": 2}));
    assert_eq!(
        (page_ids(&few), few["older"].clone()),
        (want[..2].to_vec(), json!(true))
    );
    let rest = search(
        &mut ws,
        "alpha",
        json!({"q": "needle5 ", "before": want[1]}),
    );
    assert_eq!(page_ids(&rest), want[2..]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn retention_removes_whole_segments_and_pages_end_at_the_boundary() {
    let dir = tmpdir("retain");
    let s = TestServer::start(&[
        "--data-dir",
        dir.to_str().unwrap(),
        "--msg-rate",
        "0",
        "--retain",
        "1MiB",
        // Memory could hold every message: what retention drops must go from it too.
        "--history-bytes",
        "8MiB",
    ]);
    let mut ws = s.ws();
    join_room(&mut ws, "general", "ann");
    let pad = "x".repeat(200);
    let mut sent = Vec::new();
    for chunk in 0..60 {
        sent.extend(post(
            &mut ws,
            "general",
            (0..100).map(|i| format!("c{chunk}-{i} {pad}")),
        ));
    }
    let files: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("messages"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    let total: u64 = files.iter().map(|f| f.1).sum();
    assert!(
        total <= (1 << 20) + (1 << 17),
        "within --retain plus a segment: {files:?}"
    );
    assert!(
        files.iter().all(|f| f.1 <= 1 << 17),
        "segments are an eighth of --retain: {files:?}"
    );
    assert!(
        !files.iter().any(|f| f.0 == "messages.1.jsonl"),
        "the oldest segment went: {files:?}"
    );
    let all = page_back_to_start(&mut ws, "general", 200);
    assert!(all[0] > sent[0], "retention dropped the oldest messages");
    assert_eq!(
        all[..],
        sent[sent.len() - all.len()..],
        "and kept a contiguous newest part"
    );
    let gone = page(&mut ws, "general", json!({"before": all[0]}));
    assert_eq!(
        (page_ids(&gone), gone["older"].clone()),
        (vec![], json!(false)),
        "nothing before the boundary"
    );
    assert!(
        page_ids(&search(&mut ws, "general", json!({"q": "c0-1 x"}))).is_empty(),
        "a dropped message is never found"
    );
    drop(ws);
    drop(s);
    // Restarted, it holds the same and numbers on.
    let s = TestServer::start(&[
        "--data-dir",
        dir.to_str().unwrap(),
        "--retain",
        "1MiB",
        "--msg-rate",
        "0",
    ]);
    let mut ws = s.ws();
    join_room(&mut ws, "general", "ann");
    assert_eq!(page_back_to_start(&mut ws, "general", 200), all);
    let next = post(&mut ws, "general", ["after the restart".into()]);
    assert!(next[0] > *sent.last().unwrap(), "ids never repeat");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_data_directory_of_the_two_segment_layout_loads_unchanged() {
    let dir = tmpdir("legacy");
    std::fs::create_dir_all(&dir).unwrap();
    let line = |id: u64, room: &str| {
        format!("{{\"type\":\"message\",\"room\":\"{room}\",\"id\":{id},\"time\":1700000000000,\"username\":\"old\",\"message\":\"from before {id}\"}}\n")
    };
    let mut previous = String::new();
    for id in 1..=30 {
        previous.push_str(&line(id, "general"));
    }
    let mut current = String::new();
    for id in 31..=60 {
        current.push_str(&line(id, "general"));
    }
    std::fs::write(dir.join("messages.1.jsonl"), previous).unwrap();
    std::fs::write(dir.join("messages.jsonl"), current).unwrap();
    std::fs::write(dir.join("epoch"), "1700000000000\n").unwrap();
    let s = TestServer::start(&["--data-dir", dir.to_str().unwrap(), "--history", "10"]);
    let mut ws = s.ws();
    let w = join_room(&mut ws, "general", "ann");
    assert_eq!(
        (w["epoch"].as_u64(), history_ids(&w)),
        (Some(1700000000000), (51..=60).collect())
    );
    assert_eq!(
        page_back_to_start(&mut ws, "general", 25),
        (1..=60).collect::<Vec<u64>>()
    );
    assert_eq!(
        page_ids(&search(&mut ws, "general", json!({"q": "before 3"}))),
        vec![39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 3]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_loop_keeps_answering_while_a_large_search_runs_and_a_new_search_replaces_it() {
    let dir = tmpdir("large");
    std::fs::create_dir_all(&dir).unwrap();
    // 400,000 messages (about 60 MB) written as the journal holds them.
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(dir.join("messages.jsonl")).unwrap());
    for id in 1..=400_000u64 {
        writeln!(
            file,
            "{{\"type\":\"message\",\"room\":\"general\",\"id\":{id},\"time\":1700000000000,\"username\":\"bulk\",\"message\":\"filler text number {id} with some words to look through\"}}"
        )
        .unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let s = TestServer::start(&["--data-dir", dir.to_str().unwrap(), "--msg-rate", "0"]);
    let mut searcher = s.ws();
    // Each search reads all 60 MB; in a debug build on a busy 2-core CI
    // machine one took over the usual 10 s. What is checked here is the
    // order of answers, not the speed (that is benchmark scenario 9's).
    set_wait(&searcher, std::time::Duration::from_secs(60));
    join_room(&mut searcher, "general", "ann");
    let mut other = s.ws();
    join_room(&mut other, "general", "bob");
    // A search that matches nothing looks at every message: it takes many turns.
    send_json(
        &mut searcher,
        json!({"type": "search", "room": "general", "q": "no such words"}),
    );
    // Meanwhile another client's message is stored and delivered, to the
    // searcher too, before the search answers: the search did not hold the loop.
    post(&mut other, "general", ["during".into()]);
    let mut seen_message_first = false;
    let result = loop {
        let v = recv_json(&mut searcher);
        if v["type"] == "message" && v["message"] == "during" {
            seen_message_first = true;
        }
        if v["type"] == "search" {
            break v;
        }
    };
    assert_eq!(
        (
            result["q"].clone(),
            result["messages"].clone(),
            result["older"].clone()
        ),
        (json!("no such words"), json!([]), json!(false))
    );
    assert!(
        seen_message_first,
        "a message sent after the search started was delivered before its answer"
    );
    // A new search replaces the running one: only its answer comes.
    send_json(
        &mut searcher,
        json!({"type": "search", "room": "general", "q": "no such words"}),
    );
    send_json(
        &mut searcher,
        json!({"type": "search", "room": "general", "q": "number 399999 "}),
    );
    let v = recv_type(&mut searcher, "search");
    assert_eq!(
        (v["q"].clone(), page_ids(&v)),
        (json!("number 399999 "), vec![399_999])
    );
    post(&mut other, "general", ["marker".into()]);
    loop {
        let v = recv_json(&mut searcher);
        assert_ne!(
            v["type"], "search",
            "the replaced search never answers: {v}"
        );
        if v["message"] == "marker" {
            break;
        }
    }
    assert_eq!(
        s.metric("picochat_searches_total"),
        2.0,
        "the replaced search is not counted"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn segments_written_by_many_rooms_at_once_are_compacted_and_read_the_same() {
    let dir = tmpdir("compact");
    // Segments of 128 KiB; 20 rooms writing in turn fill several.
    let s = TestServer::start(&[
        "--data-dir",
        dir.to_str().unwrap(),
        "--msg-rate",
        "0",
        "--retain",
        "1MiB",
        "--history-bytes",
        "16KiB",
    ]);
    let mut ws = s.ws();
    let rooms: Vec<String> = (0..20).map(|r| format!("r{r}")).collect();
    for room in &rooms {
        join_room(&mut ws, room, "ann");
    }
    let mut sent: Vec<Vec<u64>> = vec![Vec::new(); rooms.len()];
    let pad = "y".repeat(250);
    for round in 0..60 {
        for (i, room) in rooms.iter().enumerate() {
            sent[i].extend(post(&mut ws, room, [format!("{room} {round} {pad}")]));
        }
    }
    let segments = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("messages.") && n != "messages.jsonl")
            .collect::<Vec<_>>()
    };
    assert!(segments().len() >= 2, "{:?}", segments());
    // Compaction runs in the background: every closed segment ends up
    // grouped by room (each room's lines in one run), with no copy left over.
    wait_until("closed segments compacted", 10, || {
        segments().iter().all(|name| {
            if name.ends_with(".compact") {
                return false;
            }
            let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            let order: Vec<&str> = text
                .lines()
                .map(|l| {
                    l.split("\"room\":\"")
                        .nth(1)
                        .unwrap_or("")
                        .split('"')
                        .next()
                        .unwrap_or("")
                })
                .collect();
            let runs = 1 + order.windows(2).filter(|w| w[0] != w[1]).count();
            let distinct: std::collections::HashSet<&&str> = order.iter().collect();
            runs == distinct.len()
        })
    });
    for (i, room) in rooms.iter().enumerate() {
        assert_eq!(page_back_to_start(&mut ws, room, 25), sent[i], "{room}");
    }
    let found = search(&mut ws, "r7", json!({"q": "r7 3 y"}));
    assert_eq!(page_ids(&found), vec![sent[7][3]]);
    let _ = std::fs::remove_dir_all(dir);
}
