//! The journal against real files in a temporary directory.
use super::*;
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
    }
}

fn committed(j: &mut Journal) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    j.commit(0, &mut out);
    out.into_iter()
        .map(|e| match e {
            LogEvent::Committed(r) => (r.room.to_string(), r.id),
            LogEvent::Refused { room, .. } => (format!("refused {room}"), 0),
            other => unreachable!("a journal only commits or refuses: {other:?}"),
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
