//! A chat message: who sends it (a joined identity, or a client that names
//! itself in each message, as the Go tutorial's does), every refusal
//! (rooms a token allows, bans, read-only and slow mode, the text's size),
//! and the draft appended to the log. It is delivered only once committed
//! (`history.rs`); a direct message's draft names its recipient.

use super::*;

impl Core {
    pub(super) fn message(
        &mut self,
        client: ClientId,
        room: &RoomName,
        said: &Said,
        now: u64,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        let Some(session) = self.session_in(client, room)? else {
            return Ok(());
        };
        let identity = match &session.identity {
            Some(identity) => (**identity).clone(),
            // `--auth token`: a name comes only from a token, at a join.
            None if self.access.token_required() => return Err(ErrorCode::NotJoined),
            None => {
                let username = protocol::username(said.username.as_deref().unwrap_or(""))?;
                // A client that never joined names itself in each message: not a held name.
                if !self.names.may_use(username, None, now) {
                    return Err(ErrorCode::NameTaken);
                }
                if self.moderation.name_banned(username, now) {
                    return Err(ErrorCode::Banned);
                }
                Identity {
                    username: username.into(),
                    avatar: protocol::avatar(said.email.as_deref())?,
                    owner: None,
                    verified: false,
                    rooms: None,
                }
            }
        };
        let direct = direct::is_direct(room);
        if !direct
            && identity
                .rooms
                .as_ref()
                .is_some_and(|r| !r.iter().any(|x| **x == **room))
        {
            return Err(ErrorCode::ForbiddenRoom);
        }
        if direct && self.moderation.name_banned(&identity.username, now) {
            return Err(ErrorCode::Banned);
        }
        let text = self.checked_text(said.message.as_deref().unwrap_or(""))?;
        if let Some(s) = self.moderation.room(room) {
            if s.read_only {
                return Err(ErrorCode::ReadOnly);
            }
            if s.slow_mode > 0 {
                let wait = u64::from(s.slow_mode) * 1000;
                if let Some(r) = self.rooms.get_mut(room) {
                    if !r.slow_mode_allows(&identity.username, now, wait) {
                        return Err(ErrorCode::SlowMode);
                    }
                }
            }
        }
        out.push(Command::Append(Draft {
            room: room.clone(),
            sender: Some(client),
            time: now,
            kind: Kind::Message,
            fields: match direct
                .then(|| self.other_name(room, identity.owner))
                .flatten()
            {
                Some(to) => protocol::direct_message_fields(now, &identity.view(), text, &to),
                None => protocol::message_fields(now, &identity.view(), text),
            },
            owner: identity.owner,
            file: None,
        }));
        Ok(())
    }

    /// A message's or an edit's text: not blank, at most `--max-text` bytes.
    pub(super) fn checked_text<'t>(&self, text: &'t str) -> Result<&'t str, ErrorCode> {
        if text.trim().is_empty() {
            return Err(ErrorCode::BadMessage);
        }
        if text.len() > self.limits.max_text {
            return Err(ErrorCode::MessageTooLong);
        }
        Ok(text)
    }
}
