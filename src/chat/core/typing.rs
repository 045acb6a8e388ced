//! Someone is typing: `{"type":"typing","room":R}` is forwarded to the
//! room's other members (with a shared log, to other processes' members as
//! a notice), at most once per [`TYPING_EVERY_MS`] per connection and room,
//! and from at most [`TYPING_PER_ROOM`] connections per room in that time
//! (a page says "several people are typing" past a few: in a room of a
//! thousand, everyone's notice would cost more than the messages); extra
//! ones are dropped without an error. Never stored, never in a welcome.

use super::*;

/// The least time between two typing notices forwarded for one connection in one room.
pub const TYPING_EVERY_MS: u64 = 3000;

/// The most connections whose typing one room forwards per [`TYPING_EVERY_MS`].
pub const TYPING_PER_ROOM: usize = 5;

impl Core {
    pub(super) fn typing(
        &mut self,
        client: ClientId,
        room: &RoomName,
        now: u64,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        let Some(session) = self.session_in(client, room)? else {
            return Ok(());
        };
        // A client that never joined has no name to show.
        let Some(who) = session.identity.as_deref() else {
            return Err(ErrorCode::NotJoined);
        };
        if direct::is_direct(room) {
            let who = who.clone();
            self.direct_typing(client, room, &who, now, out);
            return Ok(());
        }
        let username = who.username.clone();
        let Some(r) = self.rooms.get_mut(room) else {
            return Ok(());
        };
        if !r.typing_allows(client, now, TYPING_EVERY_MS, TYPING_PER_ROOM) {
            return Ok(());
        }
        send_room(
            out,
            room,
            Some(client),
            protocol::typing_json(room, &username),
        );
        if self.on_demand {
            out.push(Command::Notify {
                key: format!("typing/{room}"),
                value: username.to_string(),
            });
        }
        Ok(())
    }

    /// Another process forwarded a typing notice for `room`: to its members here.
    pub(super) fn remote_typing(&mut self, room: &str, username: &str, out: &mut Out) {
        if let Some(r) = self.rooms.get(room).filter(|r| r.ready && !r.is_empty()) {
            let json = protocol::typing_json(&r.name, username);
            send_room(out, &r.name.clone(), None, json);
        }
    }
}
