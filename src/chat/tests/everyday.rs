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
