//! Reactions as data: which emoji the server knows (the Unicode emoji set,
//! compiled in by `build.rs` from the `emojis` crate's data), and one
//! message's reactions, kept in its frame as `"reactions":{"👍":["ann"]}`
//! (emoji in the order first used, names in the order they reacted).
//! Who may react and the records that carry a reaction are the core's
//! (`core/reactions.rs`); the frames are `protocol.rs`.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// Every known emoji as shown, one per line, sorted by their forms without
/// U+FE0F: raw deflate, inflated once, when the first reaction comes.
static KNOWN_DEFLATED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/emoji_table.deflate"));

fn table() -> &'static str {
    static KNOWN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut out = Vec::with_capacity(64 * 1024);
        let _ = flate2::Decompress::new(false).decompress_vec(
            KNOWN_DEFLATED,
            &mut out,
            flate2::FlushDecompress::Finish,
        );
        String::from_utf8(out).unwrap_or_default()
    })
}

/// The most different emoji one message may carry (`reaction_limit` past it).
pub const MAX_EMOJI_PER_MESSAGE: usize = 20;

/// `raw` as the one known emoji it is, in its shown (fully qualified) form;
/// `None` when it is not exactly one emoji of the table. U+FE0F variation
/// selectors do not count: `❤` and `❤️` are the same emoji.
pub fn known(raw: &str) -> Option<&'static str> {
    if raw.is_empty() || raw.len() > 64 {
        return None;
    }
    let bare = |s: &'static str| s.chars().filter(|&c| c != '\u{fe0f}');
    // About 4,000 short lines: a scan is a few microseconds, and only a
    // reaction (rate-limited like every frame) asks.
    table()
        .lines()
        .find(|shown| bare(shown).eq(raw.chars().filter(|&c| c != '\u{fe0f}')))
}

/// How many emoji the table knows.
pub fn known_count() -> usize {
    table().lines().count()
}

/// One message's reactions: each emoji (in the order it was first used)
/// with the names that reacted with it, in the order they did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reactions(pub Vec<(String, Vec<String>)>);

impl Reactions {
    /// The reactions a message's frame carries (none when it has no `"reactions"`).
    pub fn of(frame: &str) -> Reactions {
        #[derive(Deserialize)]
        struct Carrier {
            #[serde(default)]
            reactions: Option<Reactions>,
        }
        serde_json::from_str::<Carrier>(frame)
            .ok()
            .and_then(|c| c.reactions)
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `username` reacted with `emoji`.
    pub fn has(&self, emoji: &str, username: &str) -> bool {
        self.0
            .iter()
            .any(|(e, names)| e == emoji && names.iter().any(|n| n == username))
    }

    /// Whether adding `emoji` would pass [`MAX_EMOJI_PER_MESSAGE`].
    pub fn full_for(&self, emoji: &str) -> bool {
        self.0.len() >= MAX_EMOJI_PER_MESSAGE && !self.0.iter().any(|(e, _)| e == emoji)
    }

    /// `username`'s reaction with `emoji` is there (`on`) or not; an emoji
    /// nobody reacts with any more is left out. Returns whether anything changed.
    pub fn set(&mut self, emoji: &str, username: &str, on: bool) -> bool {
        let at = self.0.iter().position(|(e, _)| e == emoji);
        match (at, on) {
            (Some(i), true) => {
                let names = &mut self.0[i].1;
                if names.iter().any(|n| n == username) {
                    return false;
                }
                names.push(username.to_string());
            }
            (None, true) => self.0.push((emoji.to_string(), vec![username.to_string()])),
            (Some(i), false) => {
                let names = &mut self.0[i].1;
                let Some(j) = names.iter().position(|n| n == username) else {
                    return false;
                };
                names.remove(j);
                if names.is_empty() {
                    self.0.remove(i);
                }
            }
            (None, false) => return false,
        }
        true
    }

    /// As a JSON object: `{"👍":["ann","bob"]}`.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (emoji, names)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(emoji).unwrap_or_default());
            out.push(':');
            out.push_str(&serde_json::to_string(names).unwrap_or_default());
        }
        out.push('}');
        out
    }
}

impl<'de> Deserialize<'de> for Reactions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Reactions;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of emoji to names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Reactions, A::Error> {
                let mut all = Vec::new();
                while let Some((emoji, names)) = map.next_entry::<String, Vec<String>>()? {
                    if !names.is_empty() {
                        all.push((emoji, names));
                    }
                }
                Ok(Reactions(all))
            }
        }
        d.deserialize_map(InOrder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_emoji_are_one_emoji_of_the_table_whatever_their_variation_selectors() {
        assert_eq!(known("👍"), Some("👍"));
        assert_eq!(known("👍🏽"), Some("👍🏽"), "skin tones are emoji too");
        assert_eq!(known("❤"), Some("❤️"), "shown fully qualified");
        assert_eq!(known("❤️"), known("❤\u{fe0f}\u{fe0f}"));
        assert_eq!(known("👨‍👩‍👧"), Some("👨‍👩‍👧"), "a ZWJ sequence is one emoji");
        for bad in ["", "a", ":+1:", "👍👍", "👍 ", "\u{fe0f}", &"👍".repeat(20)] {
            assert_eq!(known(bad), None, "{bad:?}");
        }
        assert!(known_count() > 3000, "{}", known_count());
    }

    #[test]
    fn reactions_keep_their_order_and_drop_an_emoji_nobody_uses() {
        let mut r = Reactions::default();
        assert!(r.set("👍", "ann", true));
        assert!(r.set("🎉", "bob", true));
        assert!(r.set("👍", "bob", true));
        assert!(!r.set("👍", "ann", true), "already there");
        assert_eq!(r.to_json(), r#"{"👍":["ann","bob"],"🎉":["bob"]}"#);
        let back = Reactions::of(&format!(r#"{{"id":1,"reactions":{}}}"#, r.to_json()));
        assert_eq!(back, r, "read back in the same order");
        assert!(r.set("🎉", "bob", false));
        assert!(!r.set("🎉", "bob", false));
        assert_eq!(r.to_json(), r#"{"👍":["ann","bob"]}"#);
        assert!(r.has("👍", "bob") && !r.has("🎉", "bob"));
        assert!(Reactions::of(r#"{"id":1}"#).is_empty());
        for i in 0..MAX_EMOJI_PER_MESSAGE {
            r.set(&format!("e{i}"), "x", true);
        }
        assert!(r.full_for("new") && !r.full_for("👍"));
    }
}
