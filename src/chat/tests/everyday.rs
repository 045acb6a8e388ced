//! Typing notices, reactions, read markers and direct messages, driven
//! through the core with the memory log.

use super::*;

#[test]
fn typing_reaches_the_rooms_other_members_at_most_once_per_3_s_per_connection() {
    let mut chat = Chat::new(limits());
    chat.join(c(1), r#"{"type":"join","room":"dev","username":"ann"}"#);
    chat.join(c(2), r#"{"type":"join","room":"dev","username":"bob"}"#);
    chat.join(c(3), r#"{"type":"join","room":"ops","username":"cy"}"#);
    chat.now = 10_000;
    chat.send(c(1), r#"{"type":"typing","room":"dev"}"#);
    let notice = chat.last_to(c(2));
    assert_eq!(
        notice,
        serde_json::json!({"type":"typing","room":"dev","username":"ann"})
    );
    let typing = |chat: &Chat, client| {
        chat.received(client)
            .iter()
            .filter(|v| v["type"] == "typing")
            .count()
    };
    assert_eq!(typing(&chat, c(1)), 0, "not back to the typist");
    assert_eq!(typing(&chat, c(3)), 0, "not to other rooms");
    chat.now = 12_999;
    chat.send(c(1), r#"{"type":"typing","room":"dev"}"#);
    assert_eq!(typing(&chat, c(2)), 1, "dropped within 3 s");
    assert_ne!(chat.last_to(c(1))["type"], "error", "silently");
    chat.send(c(2), r#"{"type":"typing","room":"dev"}"#);
    assert_eq!(typing(&chat, c(1)), 1, "each connection has its own 3 s");
    chat.now = 13_000;
    chat.send(c(1), r#"{"type":"typing","room":"dev"}"#);
    assert_eq!(typing(&chat, c(2)), 2, "forwarded again after 3 s");
    chat.send(c(3), r#"{"type":"typing","room":"dev"}"#);
    assert_eq!(chat.error_to(c(3)), "not_joined");
    chat.connect(c(4));
    chat.send(c(4), r#"{"type":"typing"}"#);
    assert_eq!(chat.error_to(c(4)), "not_joined", "no name to show");
    let welcome = chat.join(c(5), r#"{"type":"join","room":"dev","username":"dee"}"#);
    assert_eq!(history_ids(&welcome), Vec::<u64>::new(), "never stored");
    // A crowded room forwards five typists per 3 s.
    chat.now = 20_000;
    for k in 10..20 {
        chat.join(
            c(k),
            &format!(r#"{{"type":"join","room":"dev","username":"u{k}"}}"#),
        );
        chat.send(c(k), r#"{"type":"typing","room":"dev"}"#);
    }
    let heard = |chat: &Chat| {
        chat.received(c(5))
            .iter()
            .filter(|v| v["type"] == "typing")
            .count()
    };
    assert_eq!(heard(&chat), 5, "five of the ten");
    chat.now = 23_000;
    chat.send(c(19), r#"{"type":"typing","room":"dev"}"#);
    assert_eq!(heard(&chat), 6, "a place again 3 s later");
}

#[test]
fn a_reaction_toggles_as_a_record_and_messages_carry_what_they_add_up_to() {
    let mut chat = Chat::new(limits());
    chat.join(
        c(1),
        r#"{"type":"join","room":"dev","username":"ann","secret":"a"}"#,
    );
    chat.join(c(2), r#"{"type":"join","room":"dev","username":"bob"}"#);
    chat.send(
        c(1),
        r#"{"type":"message","room":"dev","message":"ship it"}"#,
    );
    let id = chat.last_to(c(2))["id"].as_u64().unwrap();
    chat.send(
        c(2),
        &format!(r#"{{"type":"react","room":"dev","id":{id},"emoji":"👍"}}"#),
    );
    let react = chat.last_to(c(2));
    assert_eq!(
        (
            react["type"].as_str(),
            react["target"].as_u64(),
            react["emoji"].as_str(),
            react["username"].as_str(),
            react["on"].as_bool()
        ),
        (Some("react"), Some(id), Some("👍"), Some("bob"), Some(true)),
        "{react}"
    );
    assert!(react["id"].as_u64() > Some(id), "an id of its own: {react}");
    assert_eq!(chat.last_to(c(1)), react, "the whole room, the reactor too");
    // ❤ without its variation selector is the same emoji as ❤️.
    chat.send(
        c(1),
        &format!(r#"{{"type":"react","room":"dev","id":{id},"emoji":"❤"}}"#),
    );
    assert_eq!(chat.last_to(c(1))["emoji"], "❤️");
    chat.send(
        c(1),
        &format!(r#"{{"type":"react","room":"dev","id":{id},"emoji":"👍"}}"#),
    );
    let welcome = chat.join(c(3), r#"{"type":"join","room":"dev","username":"cy"}"#);
    assert_eq!(
        welcome["history"][0]["reactions"],
        serde_json::json!({"👍":["bob","ann"],"❤️":["ann"]}),
        "{welcome}"
    );
    // Toggled off: an emoji nobody reacts with any more is left out.
    chat.send(
        c(1),
        &format!(r#"{{"type":"react","room":"dev","id":{id},"emoji":"❤️\ufe0f"}}"#),
    );
    assert_eq!(chat.last_to(c(1))["on"], false);
    chat.send(
        c(1),
        &format!(r#"{{"type":"edit","room":"dev","id":{id},"message":"ship it now"}}"#),
    );
    let welcome = chat.join(c(4), r#"{"type":"join","room":"dev","username":"dee"}"#);
    let shown = &welcome["history"][0];
    assert_eq!(
        (shown["message"].as_str(), &shown["reactions"]),
        (
            Some("ship it now"),
            &serde_json::json!({"👍":["bob","ann"]})
        ),
        "an edit keeps the reactions: {welcome}"
    );
    // With `since`, the records are replayed: the reactions among them.
    let since = chat.join(
        c(5),
        &format!(r#"{{"type":"join","room":"dev","username":"eve","since":{id}}}"#),
    );
    let kinds: Vec<&str> = since["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["react", "react", "edit"],
        "the newest --history (3)"
    );
    // Both toggles of bob's reaction off remove him only.
    chat.send(
        c(2),
        &format!(r#"{{"type":"react","room":"dev","id":{id},"emoji":"👍"}}"#),
    );
    let welcome = chat.join(c(6), r#"{"type":"join","room":"dev","username":"fay"}"#);
    assert_eq!(
        welcome["history"][0]["reactions"],
        serde_json::json!({"👍":["ann"]})
    );
}

#[test]
fn reactions_are_refused_for_bad_emoji_unknown_messages_and_past_20_emoji() {
    let mut chat = Chat::new(limits());
    chat.join(c(1), r#"{"type":"join","room":"dev","username":"ann"}"#);
    chat.send(c(1), r#"{"type":"message","room":"dev","message":"hi"}"#);
    let id = chat.last_to(c(1))["id"].as_u64().unwrap();
    for (emoji, code) in [
        (r#""thumbsup""#, "bad_emoji"),
        (r#"":+1:""#, "bad_emoji"),
        (r#""👍👍""#, "bad_emoji"),
        ("7", "bad_emoji"),
        ("null", "bad_emoji"),
    ] {
        chat.send(
            c(1),
            &format!(r#"{{"type":"react","room":"dev","id":{id},"emoji":{emoji}}}"#),
        );
        assert_eq!(chat.error_to(c(1)), code, "{emoji}");
    }
    for json in [
        r#"{"type":"react","room":"dev","id":999,"emoji":"👍"}"#.to_string(),
        r#"{"type":"react","room":"dev","emoji":"👍"}"#.to_string(),
    ] {
        chat.send(c(1), &json);
        assert_eq!(chat.error_to(c(1)), "not_found", "{json}");
    }
    chat.send(
        c(1),
        &format!(r#"{{"type":"react","room":"dev","id":{id},"emoji":"👍"}}"#),
    );
    let reaction = chat.last_to(c(1))["id"].as_u64().unwrap();
    chat.send(
        c(1),
        &format!(r#"{{"type":"react","room":"dev","id":{reaction},"emoji":"👍"}}"#),
    );
    assert_eq!(
        chat.error_to(c(1)),
        "not_found",
        "a reaction is not a message"
    );
    chat.join(c(2), r#"{"type":"join","room":"ops","username":"bob"}"#);
    chat.send(
        c(2),
        &format!(r#"{{"type":"react","room":"dev","id":{id},"emoji":"👍"}}"#),
    );
    assert_eq!(chat.error_to(c(2)), "not_joined");
    let faces = ["😀", "😃", "😄", "😁", "😆", "😅", "🤣", "😂", "🙂", "🙃"];
    let more = ["😉", "😊", "😇", "🥰", "😍", "🤩", "😘", "😗", "😚"];
    for emoji in faces.iter().chain(&more) {
        chat.send(
            c(1),
            &format!(r#"{{"type":"react","room":"dev","id":{id},"emoji":"{emoji}"}}"#),
        );
        assert_eq!(chat.last_to(c(1))["type"], "react");
    }
    chat.send(
        c(1),
        &format!(r#"{{"type":"react","room":"dev","id":{id},"emoji":"🎉"}}"#),
    );
    assert_eq!(chat.error_to(c(1)), "reaction_limit", "a 21st emoji");
    chat.send(
        c(1),
        &format!(r#"{{"type":"react","room":"dev","id":{id},"emoji":"😀"}}"#),
    );
    assert_eq!(
        chat.last_to(c(1))["on"],
        false,
        "taking one back is always allowed"
    );
}

#[test]
fn a_read_marker_moves_forward_reaches_the_identitys_other_tabs_and_is_stored_once_a_second() {
    let mut chat = Chat::new(limits());
    let ann = r#"{"type":"join","room":"dev","username":"ann","secret":"s-ann"}"#;
    chat.join(c(1), ann);
    chat.join(c(2), ann);
    chat.join(c(3), r#"{"type":"join","room":"dev","username":"bob"}"#);
    for text in ["one", "two", "three"] {
        chat.send(
            c(3),
            &format!(r#"{{"type":"message","room":"dev","message":"{text}"}}"#),
        );
    }
    let last = chat.last_to(c(3))["id"].as_u64().unwrap();
    chat.now = 10_000;
    chat.send(
        c(1),
        &format!(r#"{{"type":"read","room":"dev","id":{}}}"#, last - 1),
    );
    assert_eq!(
        chat.last_to(c(2)),
        serde_json::json!({"type":"read","room":"dev","id": last - 1}),
        "the identity's other tab, at once"
    );
    let reads = |chat: &Chat, client| {
        chat.received(client)
            .iter()
            .filter(|v| v["type"] == "read")
            .count()
    };
    assert_eq!(
        (reads(&chat, c(1)), reads(&chat, c(3))),
        (0, 0),
        "nobody else"
    );
    let key = chat.stored.last().unwrap().0.clone();
    assert!(key.starts_with("read/") && key.ends_with("/dev"), "{key}");
    assert_eq!(chat.stored.last().unwrap().1, (last - 1).to_string());
    chat.send(
        c(2),
        &format!(r#"{{"type":"read","room":"dev","id":{}}}"#, last - 2),
    );
    assert_eq!(reads(&chat, c(1)), 0, "a lower id changes nothing");
    chat.now = 10_500;
    chat.send(
        c(2),
        &format!(r#"{{"type":"read","room":"dev","id":{}}}"#, last + 50),
    );
    assert_eq!(
        chat.last_to(c(1))["id"],
        last,
        "forwarded at once, never past the room's last id"
    );
    let stored = |chat: &Chat| chat.stored.iter().filter(|(k, _)| k == &key).count();
    assert_eq!(stored(&chat), 1, "stored at most once a second");
    chat.now = 11_000;
    chat.event(Event::Tick { now: 11_000 });
    assert_eq!(stored(&chat), 2, "the newest, once its second passed");
    assert_eq!(chat.stored.last().unwrap().1, last.to_string());
    let welcome = chat.join(c(4), ann);
    assert_eq!(welcome["read"], last, "a welcome carries the marker");
    let bob = chat.join(c(5), r#"{"type":"join","room":"dev","username":"bo"}"#);
    assert!(bob.get("read").is_none(), "none without an identity: {bob}");
    chat.send(
        c(5),
        &format!(r#"{{"type":"read","room":"dev","id":{last}}}"#),
    );
    assert_eq!(chat.error_to(c(5)), "needs_identity");
    chat.send(c(1), r#"{"type":"read","room":"ops","id":1}"#);
    assert_eq!(chat.error_to(c(1)), "not_joined");
    // Pending at shutdown: stored then.
    chat.send(
        c(1),
        &format!(r#"{{"type":"read","room":"dev","id":{last}}}"#),
    );
    chat.send(c(3), r#"{"type":"message","room":"dev","message":"four"}"#);
    chat.send(
        c(1),
        &format!(r#"{{"type":"read","room":"dev","id":{}}}"#, last + 1),
    );
    let before = stored(&chat);
    let mut out = Vec::new();
    chat.core.shutdown(&mut out);
    chat.carry_out(out);
    assert_eq!(stored(&chat), before + 1);
    // A restart reads the markers back from the stored settings.
    let restored = Restored {
        epoch: 7,
        settings: chat.stored.clone(),
        ..Restored::default()
    };
    let mut again = Chat::restored(limits(), restored);
    let welcome = again.join(c(1), ann);
    assert_eq!(welcome["read"], last + 1, "{welcome}");
}

#[test]
fn a_direct_message_reaches_both_identities_everywhere_and_nobody_else() {
    let mut chat = Chat::new(limits());
    let ann = r#"{"type":"join","room":"dev","username":"Ann","secret":"s-ann"}"#;
    chat.join(c(1), ann);
    chat.join(
        c(2),
        r#"{"type":"join","room":"ops","username":"Ann","secret":"s-ann"}"#,
    );
    chat.join(
        c(3),
        r#"{"type":"join","room":"ops","username":"Bob Ross","secret":"s-bob"}"#,
    );
    chat.join(c(4), r#"{"type":"join","room":"dev","username":"cy"}"#);
    chat.join(
        c(5),
        r#"{"type":"join","room":"dev","username":"dee","secret":"s-dee"}"#,
    );
    chat.send(
        c(1),
        r#"{"type":"message","room":"@bob ross","message":"psst"}"#,
    );
    let mine = chat.last_to(c(1));
    assert_eq!(
        (
            mine["type"].as_str(),
            mine["room"].as_str(),
            mine["username"].as_str()
        ),
        (Some("message"), Some("@Bob Ross"), Some("Ann")),
        "the sender's side names the other, as they show it: {mine}"
    );
    assert_eq!(mine["to"], "Bob Ross");
    assert_eq!(
        chat.last_to(c(2)),
        mine,
        "the sender's other tab, not joined to it"
    );
    let theirs = chat.last_to(c(3));
    assert_eq!(theirs["room"], "@Ann", "the recipient's side: {theirs}");
    assert_eq!(theirs["id"], mine["id"]);
    for nobody in [c(4), c(5)] {
        assert!(
            chat.received(nobody).iter().all(|v| v["type"] != "message"),
            "{:?}",
            chat.received(nobody)
        );
    }
    // Refusals.
    chat.send(c(4), r#"{"type":"message","room":"@Ann","message":"hi"}"#);
    assert_eq!(chat.error_to(c(4)), "needs_identity");
    chat.send(
        c(1),
        r#"{"type":"message","room":"@nobody","message":"hi"}"#,
    );
    assert_eq!(chat.error_to(c(1)), "no_such_user");
    assert_eq!(chat.last_to(c(1))["room"], "@nobody");
    chat.send(c(1), r#"{"type":"message","room":"@cy","message":"hi"}"#);
    assert_eq!(chat.error_to(c(1)), "no_such_user", "cy holds no name");
    chat.send(c(1), r#"{"type":"message","room":"@ANN","message":"hi"}"#);
    assert_eq!(chat.error_to(c(1)), "bad_room", "oneself");
    chat.send(
        c(1),
        r#"{"type":"message","room":"@Bob Ross","message":"   "}"#,
    );
    assert_eq!(chat.error_to(c(1)), "bad_message");
    // Bob opens the conversation: a welcome with its history, named for his side.
    chat.send(c(3), r#"{"type":"join","room":"@ann"}"#);
    let welcome = chat.last_to(c(3));
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["room"], "@Ann");
    assert_eq!(welcome["history"][0]["room"], "@Ann");
    assert_eq!(welcome["history"][0]["message"], "psst");
    let id = mine["id"].as_u64().unwrap();
    // Reactions, edits and typing in a conversation keep to its two people.
    chat.send(
        c(3),
        &format!(r#"{{"type":"react","room":"@Ann","id":{id},"emoji":"👍"}}"#),
    );
    assert_eq!(chat.last_to(c(2))["room"], "@Bob Ross");
    assert_eq!(chat.last_to(c(3))["room"], "@Ann");
    chat.send(
        c(1),
        &format!(r#"{{"type":"edit","room":"@Bob Ross","id":{id},"message":"psst!"}}"#),
    );
    assert_eq!(chat.last_to(c(3))["type"], "edit");
    chat.send(c(1), r#"{"type":"typing","room":"@bob ross"}"#);
    assert_eq!(
        chat.last_to(c(3)),
        serde_json::json!({"type":"typing","room":"@Ann","username":"Ann"})
    );
    assert_ne!(
        chat.last_to(c(2))["type"],
        "typing",
        "not to the typist's own tabs"
    );
    chat.send(
        c(3),
        &format!(r#"{{"type":"read","room":"@Ann","id":{id}}}"#),
    );
    for nobody in [c(4), c(5)] {
        let got = chat.received(nobody);
        assert!(
            got.iter().all(|v| !v.to_string().contains("psst")
                && v["type"] != "react"
                && v["type"] != "typing"),
            "{got:?}"
        );
    }
    assert!(!chat.core.rooms_json().contains('@'), "never listed");
    assert!(!chat.core.admin_rooms_json().contains('@'));
    let reopened = chat.join(
        c(6),
        r#"{"type":"join","room":"ops","username":"Bob Ross","secret":"s-bob"}"#,
    );
    assert_eq!(reopened["type"], "welcome");
    chat.send(c(6), r#"{"type":"join","room":"@Ann"}"#);
    let w = chat.last_to(c(6));
    assert_eq!(
        (w["room"].as_str(), w["read"].as_u64()),
        (Some("@Ann"), Some(id)),
        "{w}"
    );
}
