//! A change to one's own message: an edit (within `--edit-window`) or a
//! delete, appended as a record of its own and applied when committed
//! (`room.rs`). A moderator's delete is `admin.rs`.

use super::*;

impl Core {
    /// `{"type":"edit"|"delete","room":R,"id":N}`: a change to one's own
    /// message `id` (an edit when it brings a new text), appended as a
    /// record of its own (applied when committed).
    pub(super) fn change(
        &mut self,
        client: ClientId,
        room: &RoomName,
        id: Option<u64>,
        edit: Option<&str>,
        now: u64,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        let Some(session) = self.session_in(client, room)? else {
            return Ok(());
        };
        let who = session.identity.as_deref();
        let target = self
            .rooms
            .get(room)
            .zip(id)
            .and_then(|(r, id)| r.message(id))
            .ok_or(ErrorCode::NotFound)?;
        let Some(who) = who.filter(|w| w.owner.is_some() && w.owner == target.owner) else {
            return Err(ErrorCode::NotYours);
        };
        let (kind, fields) = if let Some(text) = edit {
            if self.moderation.room(room).is_some_and(|s| s.read_only) {
                return Err(ErrorCode::ReadOnly);
            }
            let text = self.checked_text(text)?;
            let sent = message_time(&target.json).unwrap_or(0);
            let window = self.limits.edit_window_ms;
            if window == 0 || now.saturating_sub(sent) > window {
                return Err(ErrorCode::EditWindow);
            }
            (
                Kind::Edit,
                protocol::edit_fields(now, &who.username, target.id, text),
            )
        } else {
            (
                Kind::Delete,
                protocol::delete_fields(now, Some(&who.username), target.id),
            )
        };
        out.push(Command::Append(Draft {
            room: room.clone(),
            sender: Some(client),
            time: now,
            kind,
            fields,
            owner: None,
            file: None,
        }));
        Ok(())
    }
}
