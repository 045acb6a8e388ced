//! The chat core's rules, driven without sockets: events in, commands out,
//! with the memory log in the loop exactly as the server runs it.

use super::protocol::{gravatar_hash, ErrorCode};
use super::*;
use crate::log::memory::MemoryLog;
use crate::log::{LogEvent, MessageLog, Restored};
use serde_json::Value;

/// A core and a memory log, run the way the server runs them.
struct Chat {
    core: Core,
    log: MemoryLog,
    /// Every frame sent, as (who it was for, the JSON).
    /// Each frame sent, with the clients it reached, resolved when the
    /// command was carried out (as the server does), not when a test asks.
    sent: Vec<(Audience, Vec<ClientId>, Value)>,
    closed: Vec<(ClientId, Farewell)>,
    forgotten: Vec<String>,
    /// Rooms the core asked a shared log to watch.
    watched: Vec<String>,
    /// Presence changes the core told a shared log: (room, username, online).
    presence: Vec<(String, String, bool)>,
    /// Settings the core asked the log to store, in order.
    stored: Vec<(String, String)>,
    now: u64,
}

fn limits() -> Limits {
    Limits {
        max_text: 100,
        ..Limits::new(3)
    }
}

fn c(key: usize) -> ClientId {
    ClientId::new(key, 1)
}

impl Chat {
    fn new(limits: Limits) -> Chat {
        Chat::restored(
            limits,
            Restored {
                epoch: 7,
                ..Restored::default()
            },
        )
    }

    fn restored(limits: Limits, restored: Restored) -> Chat {
        let mut chat = Chat {
            log: MemoryLog::restored(&restored),
            core: Core::new(limits, restored, 0),
            sent: Vec::new(),
            closed: Vec::new(),
            forgotten: Vec::new(),
            watched: Vec::new(),
            presence: Vec::new(),
            stored: Vec::new(),
            now: 0,
        };
        let mut out = Vec::new();
        chat.core.start(&mut out);
        chat.carry_out(out);
        chat
    }

    fn event(&mut self, event: Event) {
        let mut out = Vec::new();
        self.core.handle(event, &mut out);
        self.carry_out(out);
    }

    /// What the server does: appends to the log, commits, feeds the records back.
    fn carry_out(&mut self, mut out: Vec<Command>) {
        while !out.is_empty() {
            for command in std::mem::take(&mut out) {
                match command {
                    Command::Append(draft) => self.log.append(draft),
                    Command::Read(read) => self.log.read(read),
                    Command::Send { to, json } => self.record(to, &json),
                    Command::Deliver { room, json } => {
                        self.record(Audience::Room { room, except: None }, &json)
                    }
                    Command::Report(_) => {}
                    Command::Close { client, reason } => self.closed.push((client, reason)),
                    Command::Forget(room) => {
                        self.log.forget(&room);
                        self.forgotten.push(room.to_string())
                    }
                    Command::Watch(room) => self.watched.push(room.to_string()),
                    Command::WatchIdentity { .. } => {}
                    Command::ExpectUpload { .. } => {}
                    Command::RemoveFile(name) => self.log.remove_file(&name),
                    Command::Set { key, value } => {
                        self.stored.push((key.clone(), value.clone()));
                        self.log.set(key, value)
                    }
                    Command::Notify { .. } => {} // a local log has no one to tell
                    Command::Presence {
                        room,
                        username,
                        online,
                        ..
                    } => self
                        .presence
                        .push((room.to_string(), username.to_string(), online)),
                }
            }
            let mut events = Vec::new();
            self.log.commit(self.now, &mut events);
            for e in events {
                self.core.handle(Event::Log(e), &mut out);
            }
        }
    }

    /// Notes a frame and who it reaches now: the room's members at this moment.
    fn record(&mut self, to: Audience, json: &str) {
        let recipients = match &to {
            Audience::One(c) => vec![*c],
            Audience::Identity { owner, except } => self
                .core
                .connections_of(*owner)
                .iter()
                .copied()
                .filter(|c| Some(*c) != *except)
                .collect(),
            Audience::Room { room, except } => self
                .core
                .members(room)
                .iter()
                .copied()
                .filter(|c| Some(*c) != *except)
                .collect(),
        };
        let value = serde_json::from_str(json).expect("the core sends JSON");
        self.sent.push((to, recipients, value));
    }

    fn connect(&mut self, client: ClientId) {
        self.event(Event::Connected {
            client,
            now: self.now,
            addr: Some([10, 0, 0, client.key as u8].into()),
        });
    }

    fn send(&mut self, client: ClientId, json: &str) {
        self.event(Event::Text {
            client,
            text: json.as_bytes(),
            now: self.now,
        });
    }

    fn join(&mut self, client: ClientId, json: &str) -> Value {
        self.connect(client);
        self.send(client, json);
        self.last_to(client)
    }

    /// The frames that reached `client` (directly or through a room), oldest first.
    fn received(&self, client: ClientId) -> Vec<Value> {
        self.sent
            .iter()
            .filter(|(_, recipients, _)| recipients.contains(&client))
            .map(|(_, _, v)| v.clone())
            .collect()
    }

    fn last_to(&self, client: ClientId) -> Value {
        self.received(client).pop().expect("a frame for the client")
    }

    fn room_frames(&self, room: &str, kind: &str) -> Vec<Value> {
        self.sent
            .iter()
            .filter(|(to, _, v)| {
                matches!(to, Audience::Room { room: r, .. } if &**r == room) && v["type"] == kind
            })
            .map(|(_, _, v)| v.clone())
            .collect()
    }

    fn error_to(&self, client: ClientId) -> String {
        let last = self.last_to(client);
        assert_eq!(last["type"], "error", "{last}");
        last["code"].as_str().unwrap().to_string()
    }
}

fn history_ids(welcome: &Value) -> Vec<u64> {
    welcome["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_tutorial_message_goes_to_the_default_room_with_an_avatar_and_never_the_email() {
    let mut chat = Chat::new(limits());
    chat.connect(c(0));
    chat.now = 1234;
    chat.send(
        c(0),
        r#"{"email":" Bob@Example.com ","username":"  bob ","message":"hi <b>"}"#,
    );
    let m = &chat.room_frames("lobby", "message")[0];
    assert_eq!(m["room"], "lobby");
    assert_eq!(m["id"], 1);
    assert_eq!(m["time"], 1234);
    assert_eq!(m["username"], "bob");
    assert_eq!(m["message"], "hi <b>");
    assert_eq!(m["avatar"], gravatar_hash("bob@example.com"));
    assert!(!m.to_string().to_lowercase().contains("example.com"));
}

#[test]
fn a_message_is_delivered_only_as_the_record_the_log_committed() {
    let mut chat = Chat::new(limits());
    chat.connect(c(0));
    let mut out = Vec::new();
    chat.core.handle(
        Event::Text {
            client: c(0),
            text: br#"{"username":"a","message":"x"}"#,
            now: 0,
        },
        &mut out,
    );
    assert!(
        matches!(&out[..], [Command::Append(d)] if &*d.room == "lobby"),
        "a message is an append, not a send: {out:?}"
    );
    // The log refuses it (disk full): nothing is sent to the room, the sender hears why.
    out.clear();
    chat.core.handle(
        Event::Log(LogEvent::Refused {
            room: "lobby".into(),
            sender: Some(c(0)),
        }),
        &mut out,
    );
    let [Command::Send {
        to: Audience::One(to),
        json,
    }] = &out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!(*to, c(0));
    assert!(json.contains(r#""code":"unavailable""#), "{json}");
    assert_eq!(chat.core.history_ids("lobby"), Vec::<u64>::new());
}

#[test]
fn a_frame_reaches_the_members_it_was_sent_to_not_later_joiners() {
    let mut chat = Chat::new(limits());
    chat.join(c(0), r#"{"type":"join","room":"a","username":"ann"}"#);
    chat.send(
        c(0),
        r#"{"room":"a","username":"ann","message":"before bob"}"#,
    );
    chat.join(c(1), r#"{"type":"join","room":"a","username":"bob"}"#);
    // Bob sees the earlier message in his welcome's history only, never as a live frame.
    let live: Vec<Value> = chat
        .received(c(1))
        .into_iter()
        .filter(|v| v["message"] == "before bob")
        .collect();
    assert!(live.is_empty(), "{live:?}");
    chat.send(c(1), r#"{"type":"leave","room":"a"}"#);
    // Ann hears bob leave; bob, gone from the room, does not hear his own leave.
    let leaves = |chat: &Chat, who| {
        chat.received(who)
            .iter()
            .filter(|v| v["type"] == "leave" && v["username"] == "bob")
            .count()
    };
    assert_eq!(leaves(&chat, c(0)), 1);
    assert_eq!(leaves(&chat, c(1)), 0);
}

#[test]
fn bad_input_gets_an_error_to_the_sender_only() {
    let mut chat = Chat::new(limits());
    chat.connect(c(0));
    chat.connect(c(1));
    for (frame, code) in [
        ("not json", "bad_json"),
        (r#"{"username":"","message":"x"}"#, "bad_username"),
        (r#"{"username":"a\u0007","message":"x"}"#, "bad_username"),
        (
            r#"{"username":"123456789012345678901234567890123","message":"x"}"#,
            "bad_username",
        ),
        (r#"{"username":"a","message":"   "}"#, "bad_message"),
        (
            r#"{"username":"a","email":"nope","message":"x"}"#,
            "bad_email",
        ),
        (r#"{"type":"dance"}"#, "bad_type"),
        (r#"{"username":"a","room":7,"message":"x"}"#, "bad_room"),
        (
            r#"{"type":"join","username":"a","room":"no spaces"}"#,
            "bad_room",
        ),
        (
            r#"{"type":"join","username":"a","room":{"x":1}}"#,
            "bad_room",
        ),
    ] {
        let before = chat.sent.len();
        chat.send(c(0), frame);
        assert_eq!(chat.sent.len(), before + 1, "{frame}");
        assert_eq!(chat.error_to(c(0)), code, "{frame}");
        assert!(chat.received(c(1)).is_empty());
    }
    chat.send(
        c(0),
        &format!(r#"{{"username":"a","message":"{}"}}"#, "x".repeat(101)),
    );
    assert_eq!(chat.error_to(c(0)), "message_too_long");
    assert_eq!(chat.core.last_id(), 0, "nothing was stored");
}

#[test]
fn join_welcomes_with_history_and_users_and_announces_presence() {
    let mut chat = Chat::new(limits());
    let w = chat.join(
        c(0),
        r#"{"type":"join","username":"ann","email":"ann@x.org"}"#,
    );
    assert_eq!(w["type"], "welcome");
    assert_eq!(w["room"], "lobby");
    assert_eq!(w["you"]["username"], "ann");
    assert_eq!(w["users"].as_array().unwrap().len(), 1);
    assert_eq!(w["truncated"], false);
    assert!(!w.to_string().contains("ann@x.org"));
    for i in 0..4 {
        chat.send(c(0), &format!(r#"{{"message":"m{i}"}}"#));
    }
    let w = chat.join(c(1), r#"{"type":"join","username":"bob"}"#);
    assert_eq!(history_ids(&w), [2, 3, 4], "history keeps the last 3");
    assert_eq!(w["truncated"], true);
    assert_eq!(w["users"].as_array().unwrap().len(), 2);
    let notice = chat.last_to(c(0));
    assert_eq!(
        (notice["type"].as_str(), notice["room"].as_str()),
        (Some("join"), Some("lobby"))
    );
    chat.event(Event::Gone {
        client: c(0),
        now: 8,
    });
    let leave = chat.last_to(c(1));
    assert_eq!(leave["type"], "leave");
    assert_eq!(leave["online"], 1);
}

#[test]
fn since_returns_exactly_the_missed_messages_and_a_new_epoch_resets() {
    let mut chat = Chat::new(Limits {
        history: 10,
        ..limits()
    });
    chat.connect(c(0));
    for i in 0..5 {
        chat.send(c(0), &format!(r#"{{"username":"a","message":"m{i}"}}"#));
    }
    let w = chat.join(
        c(1),
        r#"{"type":"join","username":"b","since":3,"epoch":7}"#,
    );
    assert_eq!(history_ids(&w), [4, 5]);
    assert_eq!(w["truncated"], false);
    let w = chat.join(
        c(2),
        r#"{"type":"join","username":"c","since":3,"epoch":99}"#,
    );
    assert_eq!(history_ids(&w).len(), 5, "other epoch: full history");
    let w = chat.join(
        c(3),
        r#"{"type":"join","username":"d","since":900,"epoch":7}"#,
    );
    assert_eq!(
        history_ids(&w),
        Vec::<u64>::new(),
        "since beyond the last id: empty, not an error"
    );
    assert_eq!(w["truncated"], false);
}

#[test]
fn a_welcome_keeps_the_newest_history_that_fits_its_byte_budget() {
    let mut chat = Chat::new(Limits {
        history: 10,
        welcome_bytes: 600,
        ..limits()
    });
    chat.connect(c(0));
    for i in 0..6 {
        chat.send(
            c(0),
            &format!(r#"{{"username":"a","message":"{i}{}"}}"#, "x".repeat(90)),
        );
    }
    let w = chat.join(c(1), r#"{"type":"join","username":"a"}"#);
    assert_eq!(
        history_ids(&w),
        [4, 5, 6],
        "three ~170-byte messages fit in 600 bytes, newest first"
    );
    assert_eq!(w["truncated"], true);
}

#[test]
fn a_welcome_in_a_crowded_room_lists_what_fits_and_counts_everyone() {
    let mut chat = Chat::new(Limits {
        welcome_bytes: 2000,
        ..limits()
    });
    for id in 0..100 {
        chat.join(
            c(id),
            &format!(r#"{{"type":"join","username":"user{id:03}"}}"#),
        );
    }
    let w = chat
        .received(c(99))
        .into_iter()
        .find(|v| v["type"] == "welcome")
        .unwrap();
    assert_eq!(w["online"], 100);
    // 1,000 bytes of names at ~40 bytes each: exactly 25 listed.
    assert_eq!(w["users"].as_array().unwrap().len(), 25);
    assert_eq!(w["users"][0]["username"], "user000", "alphabetical");
}

#[test]
fn presence_counts_a_user_once_across_tabs() {
    let mut chat = Chat::new(limits());
    chat.join(c(0), r#"{"type":"join","username":"ann"}"#);
    let before = chat.sent.len();
    chat.join(c(1), r#"{"type":"join","username":"ann"}"#);
    assert_eq!(
        chat.sent.len(),
        before + 1,
        "second tab: welcome only, no join notice"
    );
    assert_eq!(chat.core.users_online(), 1);
    let before = chat.sent.len();
    chat.event(Event::Gone {
        client: c(0),
        now: 0,
    });
    assert_eq!(chat.sent.len(), before, "still online in the other tab");
    chat.event(Event::Gone {
        client: c(1),
        now: 0,
    });
    assert_eq!(chat.room_frames("lobby", "leave").len(), 1);
    assert_eq!(chat.core.users_online(), 0);
}

#[test]
fn rate_limit_refuses_excess_then_closes_a_flooder() {
    let mut chat = Chat::new(Limits {
        msg_rate: 2,
        ..limits()
    });
    chat.connect(c(0));
    let msg = r#"{"username":"a","message":"x"}"#;
    for _ in 0..4 {
        chat.send(c(0), msg);
    }
    assert_eq!(
        chat.room_frames("lobby", "message").len(),
        4,
        "burst of 2x rate passes"
    );
    chat.send(c(0), msg);
    assert_eq!(chat.error_to(c(0)), "rate_limited");
    let published = chat.room_frames("lobby", "message").len();
    for _ in 0..10 {
        chat.send(c(0), msg);
    }
    assert_eq!(chat.closed.first(), Some(&(c(0), Farewell::Flooding)));
    assert_eq!(
        chat.room_frames("lobby", "message").len(),
        published,
        "nothing more was published"
    );
}

#[test]
fn restored_rooms_continue_their_ids_and_new_rooms_start_above_all() {
    let stored = |id: u64| super::record::Stored {
        id,
        json: format!(r#"{{"type":"message","room":"general","id":{id},"time":5}}"#).into(),
        owner: None,
    };
    let restored = Restored {
        epoch: 7,
        high_water: 42,
        rooms: vec![("general".into(), 42, vec![stored(41), stored(42)])],
        on_demand: false,
        settings: Vec::new(),
        readable: false,
        files: false,
    };
    let mut chat = Chat::restored(limits(), restored);
    let w = chat.join(c(0), r#"{"type":"join","room":"general","username":"a"}"#);
    assert_eq!(history_ids(&w), [41, 42]);
    assert_eq!(w["last_id"], 42);
    chat.send(c(0), r#"{"room":"general","message":"next"}"#);
    assert_eq!(chat.room_frames("general", "message")[0]["id"], 43);
    chat.send(c(0), r#"{"type":"join","room":"fresh"}"#);
    let w = chat.last_to(c(0));
    assert_eq!(
        (w["last_id"].as_u64(), w["truncated"].as_bool()),
        (Some(43), Some(false))
    );
    chat.send(c(0), r#"{"room":"fresh","message":"first"}"#);
    assert_eq!(chat.room_frames("fresh", "message")[0]["id"], 44);
}

#[test]
fn rooms_keep_their_messages_and_presence_to_themselves() {
    let mut chat = Chat::new(limits());
    let w = chat.join(c(0), r#"{"type":"join","room":"General","username":"ann"}"#);
    assert_eq!(w["room"], "general", "trimmed and lower-cased");
    chat.join(c(1), r#"{"type":"join","room":"random","username":"bob"}"#);
    chat.send(c(1), r#"{"type":"join","room":"general"}"#);
    assert_eq!(
        chat.last_to(c(1))["room"],
        "general",
        "a later join needs no identity"
    );
    assert_eq!(
        chat.core.members("lobby").len(),
        0,
        "the first join left the default room"
    );
    chat.send(
        c(0),
        r#"{"type":"message","room":"general","message":"hello general"}"#,
    );
    chat.send(
        c(1),
        r#"{"type":"message","room":"random","message":"only random"}"#,
    );
    let ann: Vec<Value> = chat
        .received(c(0))
        .into_iter()
        .filter(|v| v["type"] == "message")
        .collect();
    assert_eq!(ann.len(), 1, "ann is not in random: {ann:?}");
    assert_eq!(ann[0]["message"], "hello general");
    let bob = chat
        .received(c(1))
        .into_iter()
        .filter(|v| v["type"] == "message")
        .count();
    assert_eq!(bob, 2);
    // Not in a room: messages and leaves are refused.
    chat.send(c(0), r#"{"room":"random","message":"x"}"#);
    assert_eq!(chat.error_to(c(0)), "not_joined");
    chat.send(c(0), r#"{"type":"leave","room":"random"}"#);
    assert_eq!(chat.error_to(c(0)), "not_joined");
    chat.send(c(0), r#"{"message":"to the lobby"}"#);
    assert_eq!(
        chat.error_to(c(0)),
        "not_joined",
        "the lobby was left by joining general"
    );
    // A different identity on a later join.
    chat.send(c(0), r#"{"type":"join","room":"x","username":"mallory"}"#);
    assert_eq!(chat.error_to(c(0)), "already_joined");
    // Leaving announces to those still there.
    chat.send(c(1), r#"{"type":"leave","room":"general"}"#);
    assert_eq!(chat.received(c(1)).last().unwrap()["type"], "left");
    let leave = chat.last_to(c(0));
    assert_eq!(
        (leave["type"].as_str(), leave["username"].as_str()),
        (Some("leave"), Some("bob"))
    );
}

#[test]
fn joining_a_room_again_resyncs_with_since() {
    let mut chat = Chat::new(Limits {
        history: 10,
        ..limits()
    });
    chat.join(c(0), r#"{"type":"join","room":"a","username":"ann"}"#);
    for i in 0..3 {
        chat.send(c(0), &format!(r#"{{"room":"a","message":"m{i}"}}"#));
    }
    chat.send(c(0), r#"{"type":"join","room":"a","since":1}"#);
    let w = chat.last_to(c(0));
    assert_eq!(w["type"], "welcome");
    assert_eq!(history_ids(&w), [2, 3]);
    assert_eq!(
        chat.room_frames("a", "join").len(),
        1,
        "the first join's notice only"
    );
    assert_eq!(chat.core.members("a"), [c(0)]);
}

#[test]
fn room_limits_per_client_and_per_server() {
    let mut chat = Chat::new(Limits {
        max_rooms_per_client: 2,
        max_rooms: 3,
        ..limits()
    });
    chat.join(c(0), r#"{"type":"join","room":"a","username":"ann"}"#);
    chat.send(c(0), r#"{"type":"join","room":"b"}"#);
    chat.send(c(0), r#"{"type":"join","room":"c"}"#);
    assert_eq!(chat.error_to(c(0)), "room_limit");
    chat.send(c(0), r#"{"type":"join","room":"b"}"#);
    assert_eq!(
        chat.last_to(c(0))["type"],
        "welcome",
        "a room it is in is not a new one"
    );
    // Rooms made by joining that have members: a, b, and now d. The default
    // room (where c(1) starts) is always there and does not count.
    chat.join(c(1), r#"{"type":"join","username":"bob"}"#);
    chat.send(c(1), r#"{"type":"join","room":"d"}"#);
    assert_eq!(chat.last_to(c(1))["room"], "d");
    chat.join(c(2), r#"{"type":"join","room":"e","username":"cy"}"#);
    assert_eq!(
        chat.error_to(c(2)),
        "room_limit",
        "a fourth room made by joining"
    );
    chat.send(c(2), r#"{"type":"join","room":"a","username":"cy"}"#);
    assert_eq!(
        chat.last_to(c(2))["type"],
        "welcome",
        "an existing room is fine"
    );
    chat.send(c(2), r#"{"type":"join","room":"lobby"}"#);
    assert_eq!(
        chat.last_to(c(2))["room"],
        "lobby",
        "so is the default room"
    );
}

#[test]
fn a_fixed_set_of_rooms_refuses_others() {
    let mut chat = Chat::new(Limits {
        fixed_rooms: Some(vec!["general".into()]),
        ..limits()
    });
    chat.join(c(0), r#"{"type":"join","room":"random","username":"ann"}"#);
    assert_eq!(chat.error_to(c(0)), "bad_room");
    chat.send(c(0), r#"{"type":"join","room":"general","username":"ann"}"#);
    assert_eq!(chat.last_to(c(0))["type"], "welcome");
    chat.send(c(0), r#"{"type":"join","room":"lobby"}"#);
    assert_eq!(
        chat.last_to(c(0))["type"],
        "welcome",
        "the default room is always in the set"
    );
    let rooms: Value = serde_json::from_str(&chat.core.rooms_json()).unwrap();
    let names: Vec<&str> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["general", "lobby"]);
}

#[test]
fn a_stale_client_id_never_reaches_a_newcomer_with_the_same_key() {
    let mut chat = Chat::new(limits());
    let old = ClientId::new(0, 1);
    let new = ClientId::new(0, 2);
    chat.join(old, r#"{"type":"join","username":"ann"}"#);
    chat.event(Event::Gone {
        client: old,
        now: 0,
    });
    chat.connect(new);
    let before = chat.sent.len();
    chat.send(old, r#"{"type":"join","username":"ghost"}"#);
    assert_eq!(
        chat.sent.len(),
        before,
        "a frame from the old id is ignored"
    );
    chat.event(Event::Gone {
        client: old,
        now: 0,
    });
    assert_eq!(
        chat.core.members("lobby"),
        [new],
        "the newcomer was not removed"
    );
}

#[test]
fn history_bytes_are_bounded_idle_rooms_first_then_the_biggest_room() {
    let msg = |room: &str, i: usize| format!(r#"{{"room":"{room}","message":"{i:0>60}"}}"#);
    let mut chat = Chat::new(Limits {
        history: 100,
        history_bytes: 4000,
        ..limits()
    });
    chat.join(c(0), r#"{"type":"join","room":"idle","username":"ann"}"#);
    for i in 0..5 {
        chat.send(c(0), &msg("idle", i));
    }
    chat.send(c(0), r#"{"type":"leave","room":"idle"}"#);
    chat.send(c(0), r#"{"type":"join","room":"big"}"#);
    chat.send(c(0), r#"{"type":"join","room":"small"}"#);
    for i in 0..2 {
        chat.send(c(0), &msg("small", i));
    }
    for i in 0..40 {
        chat.send(c(0), &msg("big", i));
    }
    assert!(
        chat.core.history_bytes() <= 4000,
        "{}",
        chat.core.history_bytes()
    );
    assert!(
        chat.core.history_ids("idle").is_empty(),
        "the idle room went first"
    );
    assert!(chat.forgotten.contains(&"idle".to_string()));
    assert_eq!(
        chat.core.history_ids("small").len(),
        2,
        "the small room kept its messages"
    );
    let big = chat.core.history_ids("big");
    assert_eq!(
        *big.last().unwrap(),
        chat.core.last_id(),
        "the biggest room lost its oldest"
    );
    assert!(big.len() < 40);
}

#[test]
fn the_implicit_default_room_can_be_joined_or_left() {
    let mut chat = Chat::new(limits());
    // A first join to the default room itself keeps the client there.
    chat.join(c(0), r#"{"type":"join","username":"ann"}"#);
    chat.send(c(0), r#"{"type":"join","room":"x"}"#);
    chat.send(c(0), r#"{"message":"still in the lobby"}"#);
    assert_eq!(chat.room_frames("lobby", "message").len(), 1);
    assert_eq!(chat.core.members("lobby"), [c(0)]);
    // A client that never joined can leave the default room, and is then in none.
    chat.connect(c(1));
    chat.send(c(1), r#"{"type":"leave"}"#);
    assert_eq!(chat.last_to(c(1))["type"], "left");
    chat.send(c(1), r#"{"username":"b","message":"x"}"#);
    assert_eq!(chat.error_to(c(1)), "not_joined");
    assert_eq!(chat.core.members("lobby"), [c(0)]);
}

/// A core on a shared log (Redis): rooms are loaded when first joined.
fn on_demand() -> Chat {
    Chat::restored(
        limits(),
        Restored {
            epoch: 7,
            on_demand: true,
            ..Restored::default()
        },
    )
}

fn record(room: &str, id: u64) -> crate::log::Record {
    crate::log::Record {
        room: room.into(),
        id,
        json: format!(r#"{{"type":"message","room":"{room}","id":{id},"time":5}}"#).into(),
        time: 5,
        sender: None,
        owner: None,
    }
}

fn loaded(chat: &mut Chat, room: &str, epoch: u64, last_id: u64, ids: &[u64]) {
    chat.event(Event::Log(LogEvent::Loaded {
        room: room.into(),
        epoch,
        last_id,
        history: ids.iter().map(|&id| record(room, id)).collect(),
        presence: Vec::new(),
    }));
}

#[test]
fn with_a_shared_log_a_join_waits_for_its_room_to_be_loaded() {
    let mut chat = on_demand();
    assert_eq!(
        chat.watched,
        ["lobby"],
        "the default room is watched from the start"
    );
    chat.connect(c(0));
    chat.send(c(0), r#"{"type":"join","room":"dev","username":"ann"}"#);
    assert!(
        chat.received(c(0)).is_empty(),
        "no welcome before the room is loaded"
    );
    assert_eq!(chat.watched, ["lobby", "dev"]);
    // A record for a room not loaded here is not delivered, and makes no room.
    chat.event(Event::Log(LogEvent::Committed(record("elsewhere", 3))));
    assert!(chat.sent.is_empty());
    assert!(chat.core.members("elsewhere").is_empty());

    loaded(&mut chat, "dev", 99, 5, &[4, 5]);
    let w = chat.last_to(c(0));
    assert_eq!(
        (w["type"].as_str(), w["epoch"].as_u64()),
        (Some("welcome"), Some(99))
    );
    assert_eq!(history_ids(&w), [4, 5]);
    assert_eq!(w["last_id"], 5);

    // A second join with since of this epoch gets only what is new.
    chat.connect(c(1));
    chat.send(
        c(1),
        r#"{"type":"join","room":"dev","username":"bob","since":4,"epoch":99}"#,
    );
    assert_eq!(
        history_ids(&chat.last_to(c(1))),
        [5],
        "the room is ready: answered at once"
    );
}

#[test]
fn with_a_shared_log_a_new_epoch_rewelcomes_members_and_an_empty_room_is_forgotten() {
    let mut chat = on_demand();
    chat.connect(c(0));
    chat.send(c(0), r#"{"type":"join","room":"dev","username":"ann"}"#);
    loaded(&mut chat, "dev", 99, 5, &[4, 5]);
    // The log lost its data: the room starts over, and the page is told.
    loaded(&mut chat, "dev", 100, 0, &[]);
    let w = chat.last_to(c(0));
    assert_eq!(
        (w["type"].as_str(), w["epoch"].as_u64()),
        (Some("welcome"), Some(100))
    );
    assert!(history_ids(&w).is_empty());
    assert!(chat.core.history_ids("dev").is_empty());

    chat.event(Event::Log(LogEvent::Committed(record("dev", 1))));
    assert_eq!(chat.core.history_ids("dev"), [1]);
    chat.send(c(0), r#"{"type":"leave","room":"dev"}"#);
    assert_eq!(
        chat.forgotten,
        ["dev"],
        "no member here: unwatched, history and all"
    );
    assert_eq!(chat.core.history_bytes(), 0);
}

#[test]
fn with_a_shared_log_a_client_gone_while_waiting_releases_the_room() {
    let mut chat = on_demand();
    chat.connect(c(0));
    chat.send(c(0), r#"{"type":"join","room":"dev","username":"ann"}"#);
    chat.event(Event::Gone {
        client: c(0),
        now: 0,
    });
    assert_eq!(chat.forgotten, ["dev"]);
    loaded(&mut chat, "dev", 99, 5, &[5]);
    assert!(
        chat.sent.is_empty(),
        "a late load for a forgotten room is ignored"
    );
}

#[test]
fn with_a_shared_log_joins_waiting_count_toward_the_room_limit() {
    let mut chat = Chat::restored(
        Limits {
            max_rooms_per_client: 2,
            ..limits()
        },
        Restored {
            epoch: 7,
            on_demand: true,
            ..Restored::default()
        },
    );
    chat.connect(c(0));
    for room in ["a", "b"] {
        chat.send(
            c(0),
            &format!(r#"{{"type":"join","room":"{room}","username":"ann"}}"#),
        );
    }
    chat.send(c(0), r#"{"type":"join","room":"c","username":"ann"}"#);
    assert_eq!(chat.error_to(c(0)), "room_limit");
    assert_eq!(chat.watched, ["lobby", "a", "b"]);
}

fn remote(room: &str, node: &str, username: &str, online: bool) -> Event<'static> {
    Event::Log(LogEvent::Presence(crate::log::RemotePresence {
        room: room.into(),
        node: node.into(),
        username: username.into(),
        avatar: None,
        verified: false,
        online,
    }))
}

#[test]
fn with_a_shared_log_presence_spans_processes_and_each_user_is_listed_once() {
    let mut chat = on_demand();
    chat.connect(c(0));
    chat.send(c(0), r#"{"type":"join","room":"dev","username":"ann"}"#);
    chat.event(Event::Log(LogEvent::Loaded {
        room: "dev".into(),
        epoch: 9,
        last_id: 0,
        history: Vec::new(),
        presence: vec![crate::log::RemotePresence {
            room: "dev".into(),
            node: "n2".into(),
            username: "bob".into(),
            avatar: None,
            verified: true,
            online: true,
        }],
    }));
    let w = chat.last_to(c(0));
    assert_eq!(w["online"], 2, "{w}");
    assert_eq!(w["users"][1]["username"], "bob");
    assert_eq!(
        w["users"][1]["verified"], true,
        "the mark travels with presence"
    );
    assert_eq!(chat.presence, [("dev".into(), "ann".into(), true)]);

    // ann's own arrival was announced (to nobody else here yet).
    let joins = |chat: &Chat| chat.room_frames("dev", "join").len() - 1;
    let leaves = |chat: &Chat| chat.room_frames("dev", "leave").len();
    chat.event(remote("dev", "n2", "carol", true));
    assert_eq!(
        (joins(&chat), chat.last_to(c(0))["online"].as_u64()),
        (1, Some(3))
    );
    chat.event(remote("dev", "n3", "bob", true));
    chat.event(remote("dev", "n2", "bob", false));
    assert_eq!((joins(&chat), leaves(&chat)), (1, 0), "bob is still on n3");
    chat.event(remote("dev", "n3", "bob", false));
    assert_eq!(leaves(&chat), 1, "bob's last process went");
    chat.event(remote("dev", "n3", "bob", false));
    assert_eq!(leaves(&chat), 1, "a repeated notice changes nothing");

    // carol, online elsewhere, opens a tab here: no join, but this process tells the others.
    chat.connect(c(1));
    chat.send(c(1), r#"{"type":"join","room":"dev","username":"carol"}"#);
    assert_eq!(joins(&chat), 1);
    assert_eq!(
        chat.presence.last(),
        Some(&("dev".into(), "carol".into(), true))
    );
    chat.event(Event::Gone {
        client: c(1),
        now: 0,
    });
    assert_eq!(leaves(&chat), 1, "carol is still on n2");
    assert_eq!(
        chat.presence.last(),
        Some(&("dev".into(), "carol".into(), false))
    );
}

#[test]
fn with_a_password_nothing_counts_until_a_join_carries_it() {
    let mut chat = Chat::new(Limits {
        password: Some(super::access::Secret::new(b"family")),
        ..limits()
    });
    chat.connect(c(0));
    // The Go tutorial's frame: refused, not broadcast.
    chat.send(c(0), r#"{"username":"go","message":"hi"}"#);
    assert_eq!(chat.error_to(c(0)), "bad_password");
    chat.send(c(0), r#"{"type":"join","username":"ann"}"#);
    assert_eq!(chat.error_to(c(0)), "bad_password", "no password");
    chat.send(
        c(0),
        r#"{"type":"join","username":"ann","password":"famil"}"#,
    );
    assert_eq!(chat.error_to(c(0)), "bad_password", "a wrong one");
    assert!(chat.room_frames("lobby", "message").is_empty());
    let w = chat.join(
        c(0),
        r#"{"type":"join","username":"ann","password":"family"}"#,
    );
    assert_eq!(w["type"], "welcome");
    chat.send(c(0), r#"{"message":"in"}"#);
    assert_eq!(
        chat.last_to(c(0))["message"],
        "in",
        "joined once, it speaks freely"
    );
    assert_eq!(
        chat.core.auth_failures(),
        2,
        "joins without it or with a wrong one"
    );
}

#[test]
fn with_a_password_ten_failures_block_that_address_not_others() {
    let mut chat = Chat::new(Limits {
        password: Some(super::access::Secret::new(b"family")),
        ..limits()
    });
    chat.connect(c(1));
    for _ in 0..10 {
        chat.send(c(1), r#"{"type":"join","username":"x","password":"guess"}"#);
        assert_eq!(chat.error_to(c(1)), "bad_password");
    }
    chat.send(
        c(1),
        r#"{"type":"join","username":"x","password":"family"}"#,
    );
    assert_eq!(
        chat.error_to(c(1)),
        "rate_limited",
        "blocked, even with the right one"
    );
    // Another connection from another address (10.0.0.2) gets in.
    let w = chat.join(
        c(2),
        r#"{"type":"join","username":"y","password":"family"}"#,
    );
    assert_eq!(w["type"], "welcome");
    // A minute later the address may try again.
    chat.now += super::access::BLOCK_MS;
    let w = chat.join(
        c(1),
        r#"{"type":"join","username":"x","password":"family"}"#,
    );
    assert_eq!(w["type"], "welcome");
}

#[test]
fn a_name_is_held_for_the_secret_that_took_it() {
    let mut chat = Chat::new(Limits {
        name_hold_ms: 1000,
        ..limits()
    });
    let w = chat.join(c(0), r#"{"type":"join","username":"Ann","secret":"s-ann"}"#);
    assert_eq!(w["type"], "welcome");
    for frame in [
        r#"{"type":"join","username":"ann","secret":"s-other"}"#,
        r#"{"type":"join","username":"Ann"}"#,
    ] {
        chat.connect(c(1));
        chat.send(c(1), frame);
        assert_eq!(chat.error_to(c(1)), "name_taken", "{frame}");
    }
    // The Go tutorial's frames name themselves per message: not as a held name.
    chat.connect(c(2));
    chat.send(c(2), r#"{"username":"ANN","message":"it's me"}"#);
    assert_eq!(chat.error_to(c(2)), "name_taken");
    chat.send(c(2), r#"{"username":"gopher","message":"hello"}"#);
    assert_eq!(chat.last_to(c(2))["message"], "hello");
    // Ann's second tab, same secret.
    let w = chat.join(c(3), r#"{"type":"join","username":"Ann","secret":"s-ann"}"#);
    assert_eq!(w["type"], "welcome");
    for client in [c(0), c(3)] {
        chat.event(Event::Gone { client, now: 0 });
    }
    chat.now = 999;
    chat.connect(c(4));
    chat.send(
        c(4),
        r#"{"type":"join","username":"Ann","secret":"s-other"}"#,
    );
    assert_eq!(
        chat.error_to(c(4)),
        "name_taken",
        "held for --name-hold after leaving"
    );
    chat.now = 1000;
    chat.send(
        c(4),
        r#"{"type":"join","username":"Ann","secret":"s-other"}"#,
    );
    assert_eq!(chat.last_to(c(4))["type"], "welcome", "then free");
}

#[test]
fn a_sender_edits_and_deletes_its_own_messages_as_records_of_the_log() {
    let mut chat = Chat::new(limits());
    chat.join(c(0), r#"{"type":"join","username":"ann","secret":"s-ann"}"#);
    chat.join(c(1), r#"{"type":"join","username":"bob","secret":"s-bob"}"#);
    chat.now = 10;
    chat.send(c(0), r#"{"message":"helo"}"#);
    chat.send(c(0), r#"{"message":"second"}"#);
    let ids: Vec<u64> = chat
        .room_frames("lobby", "message")
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert!(
        !chat.last_to(c(1)).to_string().contains("owner"),
        "the owner is never sent"
    );
    // Someone else's message, a missing id, an empty text: refused.
    chat.send(
        c(1),
        &format!(r#"{{"type":"edit","id":{},"message":"x"}}"#, ids[0]),
    );
    assert_eq!(chat.error_to(c(1)), "not_yours");
    chat.send(c(1), &format!(r#"{{"type":"delete","id":{}}}"#, ids[0]));
    assert_eq!(chat.error_to(c(1)), "not_yours");
    chat.send(c(0), r#"{"type":"edit","id":999,"message":"x"}"#);
    assert_eq!(chat.error_to(c(0)), "not_found");
    chat.send(
        c(0),
        &format!(r#"{{"type":"edit","id":{},"message":" "}}"#, ids[0]),
    );
    assert_eq!(chat.error_to(c(0)), "bad_message");
    let long = "x".repeat(101);
    chat.send(
        c(0),
        &format!(r#"{{"type":"edit","id":{},"message":"{long}"}}"#, ids[0]),
    );
    assert_eq!(chat.error_to(c(0)), "message_too_long");
    // The edit and the delete are broadcast with ids of their own.
    chat.send(
        c(0),
        &format!(r#"{{"type":"edit","id":{},"message":"hello"}}"#, ids[0]),
    );
    let edit = chat.last_to(c(1));
    assert_eq!(edit["type"], "edit", "{edit}");
    assert_eq!(
        (edit["target"].as_u64(), edit["message"].as_str()),
        (Some(ids[0]), Some("hello"))
    );
    assert!(edit["id"].as_u64() > Some(ids[1]));
    chat.send(c(0), &format!(r#"{{"type":"delete","id":{}}}"#, ids[1]));
    let delete = chat.last_to(c(1));
    assert_eq!(
        (delete["type"].as_str(), delete["target"].as_u64()),
        (Some("delete"), Some(ids[1]))
    );
    chat.send(c(0), &format!(r#"{{"type":"delete","id":{}}}"#, ids[1]));
    assert_eq!(chat.error_to(c(0)), "not_found", "already deleted");
    // A later welcome shows the messages as a page does: the edited text,
    // the deleted message gone, the edit and delete records not repeated;
    // a catch-up (`since`) replays the records in order.
    let w = chat.join(c(2), r#"{"type":"join","username":"cy"}"#);
    let history = w["history"].as_array().unwrap();
    assert_eq!(history[0]["message"], "hello");
    assert_eq!(history[0]["edited"], true);
    assert!(history.iter().all(|m| m["id"] != ids[1]), "{w}");
    assert_eq!(history_ids(&w), vec![ids[0]]);
    let since = chat.join(
        c(3),
        &format!(
            r#"{{"type":"join","username":"dee","since":{},"epoch":7}}"#,
            ids[1]
        ),
    );
    let kinds: Vec<&str> = since["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["edit", "delete"]);
}

#[test]
fn without_a_secret_nothing_can_be_changed_and_edits_close_after_the_window() {
    let mut chat = Chat::new(Limits {
        edit_window_ms: 1000,
        ..limits()
    });
    chat.connect(c(0));
    chat.send(c(0), r#"{"username":"gopher","message":"hi"}"#);
    chat.send(c(0), r#"{"type":"delete","id":1}"#);
    assert_eq!(
        chat.error_to(c(0)),
        "not_yours",
        "a tutorial client owns nothing"
    );
    chat.join(c(1), r#"{"type":"join","username":"ann","secret":"s"}"#);
    chat.now = 5000;
    chat.send(c(1), r#"{"message":"typo"}"#);
    let id = chat.room_frames("lobby", "message").last().unwrap()["id"]
        .as_u64()
        .unwrap();
    chat.now = 6000;
    chat.send(
        c(1),
        &format!(r#"{{"type":"edit","id":{id},"message":"ok"}}"#),
    );
    assert_eq!(chat.last_to(c(1))["type"], "edit", "within the window");
    chat.now = 6001;
    chat.send(
        c(1),
        &format!(r#"{{"type":"edit","id":{id},"message":"late"}}"#),
    );
    assert_eq!(chat.error_to(c(1)), "edit_window");
    chat.send(c(1), &format!(r#"{{"type":"delete","id":{id}}}"#));
    assert_eq!(
        chat.last_to(c(1))["type"],
        "delete",
        "a delete has no window"
    );
    // A moderator's delete needs no owner.
    chat.send(c(1), r#"{"message":"spam"}"#);
    let spam = chat.room_frames("lobby", "message").last().unwrap()["id"]
        .as_u64()
        .unwrap();
    let mut out = Vec::new();
    assert_eq!(
        chat.core.admin_delete("lobby", 999, &mut out),
        Err(ErrorCode::NotFound)
    );
    chat.core.admin_delete("lobby", spam, &mut out).unwrap();
    chat.carry_out(out);
    let d = chat.last_to(c(1));
    assert_eq!(
        (d["type"].as_str(), d["by"].as_str()),
        (Some("delete"), Some("admin"))
    );
}

fn set(chat: &mut Chat, key: &str, value: &str) {
    let command = Command::Set {
        key: key.into(),
        value: value.into(),
    };
    chat.carry_out(vec![command]);
}

#[test]
fn a_ban_closes_who_it_covers_and_refuses_them_until_it_ends() {
    let mut chat = Chat::new(Limits {
        keep_addresses: true,
        ..limits()
    });
    chat.join(c(1), r#"{"type":"join","username":"Troll"}"#);
    chat.join(c(2), r#"{"type":"join","username":"ann"}"#);
    set(&mut chat, "ban/name/troll", r#"{"until":5000}"#);
    assert_eq!(chat.closed, vec![(c(1), Farewell::Banned)]);
    chat.connect(c(3));
    chat.send(c(3), r#"{"type":"join","username":"TROLL"}"#);
    assert_eq!(chat.error_to(c(3)), "banned", "names compare without case");
    chat.send(c(3), r#"{"username":"troll","message":"hi"}"#);
    assert_eq!(chat.error_to(c(3)), "banned", "tutorial frames too");
    chat.now = 5000;
    chat.send(c(3), r#"{"type":"join","username":"troll"}"#);
    assert_eq!(chat.last_to(c(3))["type"], "welcome", "the ban ended");
    // An address ban: its connections go, and new ones are closed at once.
    chat.closed.clear();
    set(&mut chat, "ban/address/10.0.0.2", r#"{"until":null}"#);
    assert_eq!(chat.closed, vec![(c(2), Farewell::Banned)]);
    chat.connect(ClientId::new(2, 2));
    assert_eq!(
        chat.closed.last(),
        Some(&(ClientId::new(2, 2), Farewell::Banned))
    );
    chat.closed.clear();
    set(&mut chat, "ban/address/10.0.0.2", "");
    chat.connect(ClientId::new(2, 3));
    assert!(chat.closed.is_empty(), "lifted");
}

#[test]
fn room_settings_reach_members_and_rule_their_messages() {
    let mut chat = Chat::new(limits());
    chat.join(
        c(0),
        r#"{"type":"join","room":"dev","username":"ann","secret":"a"}"#,
    );
    set(
        &mut chat,
        "room/dev",
        r#"{"topic":"release day","slow_mode":10}"#,
    );
    let frame = chat.last_to(c(0));
    assert_eq!(frame["type"], "room");
    assert_eq!(
        (frame["topic"].as_str(), frame["slow_mode"].as_u64()),
        (Some("release day"), Some(10))
    );
    chat.send(c(0), r#"{"room":"dev","message":"one"}"#);
    assert_eq!(chat.last_to(c(0))["type"], "message");
    chat.now = 9_999;
    chat.send(c(0), r#"{"room":"dev","message":"two"}"#);
    assert_eq!(chat.error_to(c(0)), "slow_mode");
    chat.now = 10_000;
    chat.send(c(0), r#"{"room":"dev","message":"two"}"#);
    assert_eq!(chat.last_to(c(0))["type"], "message");
    let id = chat.last_to(c(0))["id"].as_u64().unwrap();
    // Read-only: nobody posts or edits, a moderator does.
    set(
        &mut chat,
        "room/dev",
        r#"{"topic":"release day","read_only":true}"#,
    );
    chat.now = 30_000;
    chat.send(c(0), r#"{"room":"dev","message":"three"}"#);
    assert_eq!(chat.error_to(c(0)), "read_only");
    chat.send(
        c(0),
        &format!(r#"{{"type":"edit","room":"dev","id":{id},"message":"x"}}"#),
    );
    assert_eq!(chat.error_to(c(0)), "read_only");
    let mut out = Vec::new();
    chat.core
        .admin_post("dev", "moderator", "we ship at 5", &mut out)
        .unwrap();
    chat.carry_out(out);
    let m = chat.last_to(c(0));
    assert_eq!(
        (m["message"].as_str(), m["by"].as_str()),
        (Some("we ship at 5"), Some("admin"))
    );
    // A later welcome carries the settings.
    let w = chat.join(c(1), r#"{"type":"join","room":"dev","username":"bob"}"#);
    assert_eq!(
        (w["topic"].as_str(), w["read_only"].as_bool()),
        (Some("release day"), Some(true))
    );
    assert!(w.get("slow_mode").is_none(), "defaults are left out: {w}");
}

#[test]
fn running_searches_take_slices_in_turn() {
    let mut chat = Chat::new(Limits::new(3));
    chat.join(c(0), r#"{"type":"join","room":"big","username":"a"}"#);
    chat.join(c(1), r#"{"type":"join","room":"small","username":"b"}"#);
    let text = "w".repeat(600);
    for _ in 0..1500 {
        chat.send(
            c(0),
            &format!(r#"{{"type":"message","room":"big","message":"{text}"}}"#),
        );
    }
    chat.send(
        c(1),
        r#"{"type":"message","room":"small","message":"a needle here"}"#,
    );
    // A search of every message of the big room (about 1 MB) first, then a small one.
    chat.send(
        c(0),
        r#"{"type":"search","room":"big","q":"no such words"}"#,
    );
    chat.send(c(1), r#"{"type":"search","room":"small","q":"needle"}"#);
    let searched = |chat: &Chat, who| chat.received(who).iter().any(|v| v["type"] == "search");
    for _ in 0..3 {
        assert!(chat.core.has_work());
        let mut out = Vec::new();
        chat.core.work(chat.now, &mut out);
        chat.carry_out(out);
    }
    assert!(
        searched(&chat, c(1)),
        "the small search was answered in its turn"
    );
    assert!(
        !searched(&chat, c(0)),
        "the big one is still going, a slice at a time"
    );
    while chat.core.has_work() {
        let mut out = Vec::new();
        chat.core.work(chat.now, &mut out);
        chat.carry_out(out);
    }
    let answer = chat.last_to(c(0));
    assert_eq!(
        (answer["type"].clone(), answer["messages"].clone()),
        (serde_json::json!("search"), serde_json::json!([]))
    );
}

mod everyday;
