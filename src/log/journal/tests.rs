//! The journal against real files in a temporary directory.
use super::*;
use crate::chat::record::Range;
use crate::chat::session::ClientId;

fn tmpdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("picochat-journal-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn open(
    dir: &Path,
    retain: u64,
    policy: FsyncPolicy,
    keep: usize,
    wall: u64,
) -> (Journal, Restored) {
    let retention = Retention {
        bytes: retain,
        days: 0,
    };
    Journal::open(dir, retention, policy, keep, "lobby", wall).unwrap()
}

fn draft(room: &str, text: &str) -> Draft {
    Draft {
        room: room.into(),
        sender: Some(ClientId::new(0, 1)),
        time: 0,
        kind: crate::chat::record::Kind::Message,
        fields: format!(r#"{{"time":0,"username":"u","message":"{text}"}}"#),
        owner: None,
        file: None,
    }
}

fn committed(j: &mut Journal) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    j.commit(0, &mut out);
    out.into_iter()
        .filter_map(|e| match e {
            LogEvent::Committed(r) => Some((r.room.to_string(), r.id)),
            LogEvent::Refused { room, .. } => Some((format!("refused {room}"), 0)),
            LogEvent::Dropped { .. } => None,
            other => unreachable!("a journal commits, refuses or drops: {other:?}"),
        })
        .collect()
}

fn ids(restored: &Restored, room: &str) -> Vec<u64> {
    restored
        .rooms
        .iter()
        .find(|(r, _, _)| &**r == room)
        .map(|(_, _, h)| h.iter().map(|s| s.id).collect())
        .unwrap_or_default()
}

#[test]
fn reload_restores_every_room_its_ids_and_the_epoch() {
    let dir = tmpdir("reload");
    let (mut j, restored) = open(&dir, 1 << 20, FsyncPolicy::Always, 3, 42);
    assert_eq!((restored.high_water, restored.epoch), (0, 42));
    for i in 1..=5 {
        j.append(draft("general", &format!("g{i}")));
    }
    j.append(draft("random", "r1"));
    assert_eq!(
        committed(&mut j),
        [
            ("general", 1),
            ("general", 2),
            ("general", 3),
            ("general", 4),
            ("general", 5),
            ("random", 6)
        ]
        .map(|(r, i)| (r.to_string(), i))
    );
    drop(j);
    let (mut j, restored) = open(&dir, 1 << 20, FsyncPolicy::Always, 3, 99);
    assert_eq!(restored.epoch, 42);
    assert_eq!(restored.high_water, 6);
    assert_eq!(ids(&restored, "general"), [3, 4, 5]);
    assert_eq!(ids(&restored, "random"), [6]);
    j.append(draft("general", "after"));
    j.append(draft("new", "first"));
    assert_eq!(
        committed(&mut j),
        [("general".to_string(), 6), ("new".to_string(), 7)],
        "rooms continue; a new room starts above every id used"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn lines_from_before_rooms_belong_to_the_default_room() {
    let dir = tmpdir("legacy");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join(CURRENT),
        "{\"type\":\"message\",\"id\":1,\"time\":0,\"username\":\"u\",\"message\":\"old\"}\n",
    )
    .unwrap();
    let (_, restored) = open(&dir, 1 << 20, FsyncPolicy::Never, 10, 1);
    assert_eq!(ids(&restored, "lobby"), [1]);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_torn_last_record_is_cut_and_the_rest_survives() {
    let dir = tmpdir("torn");
    fs::create_dir_all(&dir).unwrap();
    let line = |id| {
        format!("{{\"type\":\"message\",\"room\":\"lobby\",\"id\":{id},\"time\":0,\"username\":\"u\",\"message\":\"m\"}}\n")
    };
    let good = format!("{}{}", line(1), line(2));
    fs::write(
        dir.join(CURRENT),
        format!("{good}{{\"type\":\"message\",\"room\":\"lobby\",\"id\":3,\"ti"),
    )
    .unwrap();
    let (mut j, restored) = open(&dir, 1 << 20, FsyncPolicy::Never, 10, 1);
    assert_eq!(restored.high_water, 2);
    assert_eq!(
        fs::read_to_string(dir.join(CURRENT)).unwrap(),
        good,
        "torn tail removed"
    );
    j.append(draft("lobby", "m"));
    assert_eq!(committed(&mut j), [("lobby".to_string(), 3)]);
    drop(j);
    let (_, restored) = open(&dir, 1 << 20, FsyncPolicy::Never, 10, 1);
    assert_eq!(ids(&restored, "lobby"), [1, 2, 3]);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn retain_days_removes_segments_last_written_longer_ago() {
    let dir = tmpdir("days");
    fs::create_dir_all(&dir).unwrap();
    let line = |id: u64| {
        format!("{{\"type\":\"message\",\"room\":\"lobby\",\"id\":{id},\"time\":0,\"username\":\"u\",\"message\":\"m\"}}\n")
    };
    fs::write(dir.join("messages.1.jsonl"), line(1)).unwrap();
    fs::write(dir.join("messages.2.jsonl"), line(2)).unwrap();
    fs::write(dir.join("messages.jsonl"), line(3)).unwrap();
    let day = 86_400_000u64;
    let now = 100 * day;
    let at = |ms: u64| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    for (name, written) in [
        ("messages.1.jsonl", now - 9 * day),
        ("messages.2.jsonl", now - 3 * day),
        ("messages.jsonl", now - 2 * day),
    ] {
        let file = File::options().write(true).open(dir.join(name)).unwrap();
        file.set_modified(at(written)).unwrap();
    }
    let retention = Retention {
        bytes: 1 << 20,
        days: 7,
    };
    let open = |now| Journal::open(&dir, retention, FsyncPolicy::Never, 10, "lobby", now).unwrap();
    let (mut j, restored) = open(now);
    assert_eq!(
        ids(&restored, "lobby"),
        [2, 3],
        "the segment 9 days old went at start"
    );
    assert!(!dir.join("messages.1.jsonl").exists());
    // Six days on, with nothing written: the closed segment and then the
    // current one (closed first) pass 7 days and go; the core hears it.
    let later = now + 6 * day;
    let mut out = Vec::new();
    j.commit(later, &mut out);
    let dropped: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            LogEvent::Dropped { room, below } => Some((room.to_string(), *below)),
            _ => None,
        })
        .collect();
    assert_eq!(
        dropped,
        [("lobby".to_string(), 3), ("lobby".to_string(), u64::MAX)]
    );
    j.append(draft("lobby", "new"));
    assert_eq!(committed(&mut j), [("lobby".to_string(), 4)], "ids go on");
    drop(j);
    let (_, restored) = open(later);
    assert_eq!(ids(&restored, "lobby"), [4]);
    fs::remove_dir_all(dir).unwrap();
}

/// Every message of `room` through the index, newest first.
fn read_all(j: &mut Journal, room: &str) -> Vec<(u64, String)> {
    let (found, exhausted, _) = j
        .index
        .read(
            &mut j.files,
            room,
            "lobby",
            Range::Before(u64::MAX),
            usize::MAX,
            u64::MAX,
        )
        .unwrap();
    assert!(exhausted);
    found
        .iter()
        .map(|f| {
            let text = crate::chat::scrollback::shown(f);
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            (
                f.message.id,
                v["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn edit(room: &str, target: u64, text: &str) -> Draft {
    Draft {
        kind: crate::chat::record::Kind::Edit,
        fields: format!(r#"{{"target":{target},"time":0,"username":"u","message":"{text}"}}"#),
        ..draft(room, "")
    }
}

#[test]
fn a_closed_segment_is_compacted_by_room_and_reads_the_same() {
    let dir = tmpdir("compact");
    let (mut j, _) = open(&dir, 64 << 20, FsyncPolicy::Never, 10, 1);
    // 100 rooms taking turns: in the segment being written every record of a
    // room lies 100 lines from its last, so each gets a block of its own.
    let rooms: Vec<String> = (0..100).map(|r| format!("room{r}")).collect();
    for round in 0..12 {
        for room in &rooms {
            j.append(draft(
                room,
                &format!("{room} round {round} {}", "x".repeat(350)),
            ));
        }
        committed(&mut j);
    }
    // An edit of room7's first message, in the same segment.
    let first7 = read_all(&mut j, "room7").last().unwrap().0;
    j.append(edit("room7", first7, "edited later"));
    committed(&mut j);
    let before: Vec<_> = rooms.iter().map(|r| read_all(&mut j, r)).collect();
    let (blocks, _) = j.index.shape(j.files.current);
    assert_eq!(blocks, 100 * 12 + 1, "a block per record while interleaved");
    j.rotate().unwrap();
    let segment = j.files.closed.back().unwrap().number;
    assert_eq!(
        j.compact_queue.iter().copied().collect::<Vec<_>>(),
        [segment]
    );
    let mut steps = 0;
    while j.compacting.is_some() || !j.compact_queue.is_empty() {
        j.compact_step();
        steps += 1;
        assert!(steps < 100, "bounded steps");
    }
    let (blocks, rooms_in) = j.index.shape(segment);
    assert_eq!((blocks, rooms_in), (100, 100), "one dense block per room");
    let after: Vec<_> = rooms.iter().map(|r| read_all(&mut j, r)).collect();
    assert_eq!(
        after, before,
        "every room reads the same, the edit found at its new place"
    );
    assert_eq!(after[7].last().unwrap().1, "edited later");
    // The file holds each room's lines together, and reloads the same.
    let text = fs::read_to_string(dir.join(format!("messages.{segment}.jsonl"))).unwrap();
    let order: Vec<&str> = text
        .lines()
        .map(|l| &l[l.find("\"room\":\"").unwrap() + 8..][..6])
        .collect();
    assert!(
        order.windows(2).filter(|w| w[0] != w[1]).count() < 100,
        "grouped by room"
    );
    drop(j);
    fs::write(
        dir.join(format!("messages.{segment}.jsonl.compact")),
        "left by a crash",
    )
    .unwrap();
    let (mut j, restored) = open(&dir, 64 << 20, FsyncPolicy::Never, 10, 1);
    assert!(!dir
        .join(format!("messages.{segment}.jsonl.compact"))
        .exists());
    assert!(
        j.compact_queue.is_empty(),
        "a compacted segment is not compacted again"
    );
    assert_eq!(restored.high_water, 100 + 11, "room99 numbered 100 to 111");
    let reloaded: Vec<_> = rooms.iter().map(|r| read_all(&mut j, r)).collect();
    assert_eq!(reloaded, before);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn ids_never_repeat_after_retention_removed_every_record_of_a_room() {
    let dir = tmpdir("highwater");
    let (mut j, _) = open(&dir, 1 << 20, FsyncPolicy::Never, 10, 1);
    let text = "z".repeat(250);
    j.append(draft("a", &text));
    assert_eq!(committed(&mut j), [("a".to_string(), 1)]);
    // Room b starts above it and goes on to 5,001 ...
    for _ in 0..5000 {
        j.append(draft("b", &text));
        committed(&mut j);
    }
    // ... then room a writes more than --retain: every record of b goes.
    for _ in 0..4000 {
        j.append(draft("a", &text));
        committed(&mut j);
    }
    drop(j);
    let (mut j, restored) = open(&dir, 1 << 20, FsyncPolicy::Never, 10, 1);
    assert!(ids(&restored, "b").is_empty(), "b's records are gone");
    assert!(restored.rooms.iter().all(|(r, _, _)| &**r != "b"));
    assert_eq!(restored.high_water, 5001, "kept in the high-water file");
    j.append(draft("b", "back"));
    assert_eq!(
        committed(&mut j),
        [("b".to_string(), 5002)],
        "b's ids go on above 5,001"
    );
    fs::remove_dir_all(dir).unwrap();
}
