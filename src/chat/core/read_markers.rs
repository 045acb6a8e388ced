//! Read markers: `{"type":"read","room":R,"id":N}` from an identified
//! connection moves its identity's marker in R forward to N; the identity's
//! other connections hear it at once (other processes as a notice), the
//! log stores it at most once a second (`chat/reads.rs`), and every welcome
//! to the identity carries it as `"read"`.

use super::*;

impl Core {
    pub(super) fn read(
        &mut self,
        client: ClientId,
        room: &RoomName,
        id: Option<u64>,
        now: u64,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        let Some(session) = self.session_in(client, room)? else {
            return Ok(());
        };
        let owner = session
            .identity
            .as_deref()
            .and_then(|i| i.owner)
            .ok_or(ErrorCode::NeedsIdentity)?;
        let id = id.ok_or(ErrorCode::NotFound)?;
        // Never past what the room has (a page cannot mark what does not exist yet).
        let id = match self.rooms.get(room).filter(|r| r.ready) {
            Some(r) => id.min(r.last_id),
            None => id,
        };
        let (moved, store) = self.reads.advance(owner, room, id, now);
        if !moved {
            return Ok(());
        }
        self.tell_identity(owner, room, id, Some(client), out);
        if self.on_demand {
            out.push(Command::Notify {
                key: reads::key(owner, room),
                value: id.to_string(),
            });
        }
        if let Some((key, value)) = store {
            out.push(Command::Set { key, value });
        }
        Ok(())
    }

    /// A marker stored, or moved on another process: its identity's
    /// connections here hear of it when it moved forward.
    pub(super) fn read_elsewhere(&mut self, key: &str, value: &str, out: &mut Out) {
        if let Some((owner, room, id)) = self.reads.apply(key, value) {
            self.tell_identity(owner, &room, id, None, out);
        }
    }

    /// `{"type":"read"}` to every connection of `owner` here (but `except`).
    fn tell_identity(
        &self,
        owner: Owner,
        room: &RoomName,
        id: u64,
        except: Option<ClientId>,
        out: &mut Out,
    ) {
        let conns = self.connections_of(owner);
        if conns.iter().all(|&c| Some(c) == except) {
            return;
        }
        let mut json = protocol::read_json(room, id);
        if direct::is_direct(room) {
            if let Some(name) = self.other_name(room, Some(owner)) {
                json = direct::shown(&json, room, &name);
            }
        }
        out.push(Command::Send {
            to: Audience::Identity { owner, except },
            json: json.into(),
        });
    }
}
