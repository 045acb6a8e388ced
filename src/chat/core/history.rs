//! A room's history: a committed record remembered and delivered, the
//! welcome that shows it to a joiner (or only what it missed, with `since`),
//! and keeping history within `--history-bytes` (idle rooms first).

use super::*;

impl Core {
    /// A record the log committed: remembered in its room's history, sent to its members.
    pub(super) fn committed(&mut self, record: Record, out: &mut Out) {
        let direct = direct::is_direct(&record.room);
        if self.on_demand && !self.rooms.get(&record.room).is_some_and(|r| r.ready) {
            if direct {
                // A conversation this process does not hold: its people here hear it all the same.
                self.deliver_direct(&record.room, &record.json, record.owner, out);
            }
            return; // a shared log's record for a room no longer (or not yet) here
        }
        self.high_water = self.high_water.max(record.id);
        // Memory keeps what `--history-bytes` allows (trimmed below), not a count:
        // pages and searches read it before the log.
        let keep = if self.limits.history_bytes > 0 {
            usize::MAX
        } else {
            0
        };
        let r = self.room_entry(&record.room, record.time);
        if r.base >= record.id {
            r.base = record.id - 1;
        }
        // A deleted message's image goes with it, at once.
        if let protocol::RecordKind::Delete { target } = protocol::record_kind(&record.json) {
            if let Some(name) = r
                .message(target)
                .and_then(|m| uploads::attachment_name(&m.json))
            {
                out.push(Command::RemoveFile(name));
            }
        }
        let (added, freed) = r.remember(
            Stored {
                id: record.id,
                json: record.json.clone(),
                owner: record.owner,
            },
            keep,
            Some(record.time),
        );
        // `freed` came out of history already counted, so this cannot underflow.
        self.history_bytes = self.history_bytes + added - freed;
        if direct {
            self.deliver_direct(&record.room, &record.json, record.owner, out);
        } else {
            out.push(Command::Deliver {
                room: record.room,
                json: record.json,
            });
        }
        self.trim_history(out);
    }

    /// Keeps history within `--history-bytes`: rooms nobody is in lose theirs
    /// first (oldest activity first), then the oldest messages of the biggest rooms go.
    pub(super) fn trim_history(&mut self, out: &mut Out) {
        while self.history_bytes > self.limits.history_bytes {
            let idle = self
                .rooms
                .values()
                .filter(|r| r.is_empty() && !r.history.is_empty())
                .min_by_key(|r| r.last_activity)
                .map(|r| r.name.clone());
            if let Some(name) = idle {
                self.drop_history(&name, out);
                continue;
            }
            let Some(biggest) = self.rooms.values_mut().max_by_key(|r| r.history_bytes) else {
                break;
            };
            let freed = biggest.forget_oldest();
            if freed == 0 {
                break;
            }
            self.history_bytes -= freed;
        }
    }

    /// Drops a room's whole history, and the room itself when nobody is in it.
    pub(super) fn drop_history(&mut self, name: &RoomName, out: &mut Out) {
        let fixed = self.is_fixed(name);
        if let Some(r) = self.rooms.get_mut(name) {
            self.history_bytes -= r.history_bytes;
            r.history.clear();
            r.history_bytes = 0;
            if r.is_empty() && !fixed {
                self.rooms.remove(name);
                out.push(Command::Forget(name.clone()));
            }
        }
    }

    /// Rooms nobody is in are kept for their history, at most `--max-rooms`
    /// of them: past that the one with the oldest activity goes.
    pub(super) fn bound_idle_rooms(&mut self, out: &mut Out) {
        loop {
            let idle = self.rooms.len() - self.fixed_count - self.made_rooms_with_members;
            if idle <= self.limits.max_rooms {
                return;
            }
            let oldest = self
                .rooms
                .values()
                .filter(|r| r.is_empty() && !self.is_fixed(&r.name))
                .min_by_key(|r| r.last_activity)
                .map(|r| r.name.clone());
            match oldest {
                Some(name) => self.drop_history(&name, out),
                None => return,
            }
        }
    }

    /// The welcome: the room, who you are, who is online there, and its
    /// newest `--history` messages as a page shows them, or with `since`
    /// the records after it, in order (at most `--history` of them).
    pub(super) fn welcome(&self, room: &str, you: &Identity, since: Option<u64>) -> String {
        let json = self.welcome_as_stored(room, you, since);
        match self.other_name(room, you.owner) {
            Some(name) if direct::is_direct(room) => direct::shown(&json, room, &name),
            _ => json,
        }
    }

    fn welcome_as_stored(&self, room: &str, you: &Identity, since: Option<u64>) -> String {
        let Some(r) = self.rooms.get(room) else {
            return String::new();
        };
        let budget = self.limits.welcome_bytes;
        let (history, truncated) = r.catch_up(since, self.limits.history, budget);
        let settings = self.moderation.room(room);
        let head = WelcomeHead {
            kind: "welcome",
            room,
            you: you.view(),
            users: r.users(budget / 2),
            online: r.online.len(),
            epoch: r.epoch,
            last_id: r.last_id,
            truncated,
            topic: settings.map_or("", |s| &s.topic),
            slow_mode: settings.map_or(0, |s| s.slow_mode),
            read_only: settings.is_some_and(|s| s.read_only),
            read: you.owner.and_then(|o| self.reads.get(o, room)),
            files_key: self.access.files_key(),
            limits: LimitsView {
                max_text: self.limits.max_text,
                max_message: self.limits.max_message,
                msg_rate: self.limits.msg_rate,
                max_rooms_per_client: self.limits.max_rooms_per_client,
                edit_window_ms: self.limits.edit_window_ms,
                max_upload: if self.stores_files {
                    self.limits.max_upload
                } else {
                    0
                },
            },
        };
        protocol::welcome_json(&head, history)
    }
}

/// The `time` of a stored frame, for rooms restored from the log.
pub(super) fn message_time(json: &str) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Time {
        time: Option<u64>,
    }
    serde_json::from_str::<Time>(json).ok().and_then(|t| t.time)
}
