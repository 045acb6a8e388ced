//! What only a shared log (Redis) needs: a join waiting for its room to be
//! loaded, the room arriving (or not), and presence on other processes.

use super::*;

impl Core {
    /// A join to a room a shared log has not loaded yet: it waits (counted
    /// against the client's and the server's room limits), and the room is watched.
    pub(super) fn wait_for_room(
        &mut self,
        client: ClientId,
        room: &RoomName,
        join: Join,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        let max_per_client = self.limits.max_rooms_per_client;
        let lobby = self.limits.default_room.clone();
        let Some(session) = self.session_mut(client) else {
            return Ok(());
        };
        let joined = if session.joined {
            session.rooms.len()
        } else {
            0
        };
        let in_room = session.in_room(room, &lobby);
        if !in_room && joined + usize::from(session.loading) >= max_per_client {
            return Err(ErrorCode::RoomLimit);
        }
        let exists = self.rooms.contains_key(room);
        if !exists && self.rooms.len() - self.fixed_count >= self.limits.max_rooms {
            return Err(ErrorCode::RoomLimit);
        }
        let now = self.now;
        let r = self.room_entry(room, now);
        let known = r.waiting.iter().position(|w| w.client == client);
        let wait = WaitingJoin {
            client,
            join: Join {
                // What `--auth` checked is not needed again.
                password: None,
                token: None,
                ..join
            }
            .into_owned(),
        };
        match known {
            Some(i) => r.waiting[i] = wait,
            None => {
                r.waiting.push(wait);
                if let Some(s) = self.session_mut(client) {
                    s.loading += 1;
                }
            }
        }
        if !exists {
            out.push(Command::Watch(room.clone()));
        }
        Ok(())
    }

    /// A shared log loaded `room` (first read, or started over): its history
    /// is replaced, members already in it get a fresh welcome, and the joins
    /// that waited are answered.
    pub(super) fn loaded(
        &mut self,
        room: RoomName,
        epoch: u64,
        last_id: u64,
        history: Vec<Record>,
        presence: Vec<RemotePresence>,
        out: &mut Out,
    ) {
        let keep = self.limits.history;
        let Some(r) = self.rooms.get_mut(&room) else {
            return; // forgotten meanwhile
        };
        r.clear_remote();
        for p in &presence {
            r.remote(p, true);
        }
        let was_ready = r.ready;
        let mut freed = r.clear_history();
        let mut added = 0;
        r.epoch = epoch;
        r.base = 0;
        r.last_id = last_id;
        r.ready = true;
        let skip = history.len().saturating_sub(keep);
        for record in history.into_iter().skip(skip) {
            let stored = Stored {
                id: record.id,
                json: record.json,
                owner: record.owner,
            };
            let (a, f) = r.remember(stored, keep, Some(record.time));
            added += a;
            freed += f;
        }
        while r.history.len() > keep {
            freed += r.forget_oldest();
        }
        r.last_id = r.last_id.max(last_id);
        let waiting = std::mem::take(&mut r.waiting);
        let members = if was_ready {
            r.members.clone()
        } else {
            Vec::new()
        };
        self.high_water = self.high_water.max(last_id);
        self.history_bytes = self.history_bytes + added - freed;
        for client in members {
            // A new epoch (the log lost its data): pages start this room over.
            if let Some(who) = self.session(client).and_then(|s| s.identity.as_deref()) {
                let json = self.welcome(&room, who, None);
                reply(out, client, json);
            }
        }
        for w in waiting {
            let Some(s) = self.session_mut(w.client) else {
                continue;
            };
            s.loading = s.loading.saturating_sub(1);
            let now = self.now;
            if let Err(code) = self.join(w.client, &room, w.join, now, out) {
                reply(out, w.client, protocol::error_json(code, Some(&room)));
            }
        }
        self.release_if_unused(&room, out);
        self.trim_history(out);
    }

    /// A shared log cannot read `room`: the joins waiting for it get
    /// `unavailable`, and the room is dropped (a later join tries again).
    pub(super) fn unreadable(&mut self, room: &RoomName, out: &mut Out) {
        let Some(r) = self.rooms.get_mut(room).filter(|r| !r.ready) else {
            return;
        };
        for w in std::mem::take(&mut r.waiting) {
            if let Some(s) = self.session_mut(w.client) {
                s.loading = s.loading.saturating_sub(1);
                reply(
                    out,
                    w.client,
                    protocol::error_json(ErrorCode::Unavailable, Some(room)),
                );
            }
        }
        self.release_if_unused(room, out);
    }

    /// A user online (or gone) on another process: announced here when that
    /// brought them online (or offline) in the room as a whole.
    pub(super) fn remote_presence(&mut self, p: RemotePresence, out: &mut Out) {
        let now = self.now;
        let Some(r) = self.rooms.get_mut(&p.room).filter(|r| r.ready) else {
            return; // the room's snapshot, when it is loaded, has it
        };
        if !r.remote(&p, p.online) {
            return;
        }
        let who = protocol::UserView {
            username: &p.username,
            avatar: p.avatar.as_deref(),
            verified: p.verified,
        };
        let kind = if p.online { "join" } else { "leave" };
        let json = protocol::presence_json(kind, &p.room, &who, now, r.online.len());
        send_room(out, &p.room, None, json);
    }
}
