//! A reaction: `{"type":"react","room":R,"id":N,"emoji":E}` toggles the
//! sender's reaction E on message N, appended as a record of its own
//! (`Kind::React`) and applied to the message when committed (`room.rs`),
//! so welcomes, catch-up, restarts and other nodes agree. What an emoji is
//! and a message's reactions are `chat/reactions.rs`.

use super::*;
use crate::chat::incoming::StrField;
use crate::chat::reactions::{self, Reactions};

impl Core {
    pub(super) fn react(
        &mut self,
        client: ClientId,
        room: &RoomName,
        id: Option<u64>,
        emoji: &StrField,
        now: u64,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        let Some(session) = self.session_in(client, room)? else {
            return Ok(());
        };
        // Who reacted: the identity's name (a client that never joined has none).
        let Some(who) = session.identity.as_deref() else {
            return Err(ErrorCode::NotJoined);
        };
        let StrField::Name(raw) = emoji else {
            return Err(ErrorCode::BadEmoji);
        };
        let emoji = reactions::known(raw).ok_or(ErrorCode::BadEmoji)?;
        let target = self
            .rooms
            .get(room)
            .zip(id)
            .and_then(|(r, id)| r.message(id))
            .ok_or(ErrorCode::NotFound)?;
        let present = Reactions::of(&target.json);
        let on = !present.has(emoji, &who.username);
        if on && present.full_for(emoji) {
            return Err(ErrorCode::ReactionLimit);
        }
        out.push(Command::Append(Draft {
            room: room.clone(),
            sender: Some(client),
            time: now,
            kind: Kind::React,
            fields: protocol::react_fields(now, &who.username, target.id, emoji, on),
            owner: None,
            file: None,
        }));
        Ok(())
    }
}
