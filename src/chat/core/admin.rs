//! The core's moderation and admin API side: bans and room settings coming
//! into force (closing whom a ban covers, telling a room its new settings),
//! the admin API's views (rooms with their people and addresses, a room's
//! messages), kicks (here, and on every node with a shared log), and a
//! moderator's post and delete, which are records like any. What a ban or
//! setting is lives in `moderation.rs`; the HTTP side in `net/admin.rs`.

use super::*;

impl Core {
    /// A ban came into force: every connection it covers is closed.
    pub(super) fn enforce_ban(&self, target: &BanTarget, out: &mut Out) {
        let now = self.now;
        for (key, s) in self.sessions.iter().enumerate() {
            let Some(s) = s else { continue };
            let client = ClientId::new(key, s.gen);
            let hit = match target {
                BanTarget::Name(_) => s
                    .identity
                    .as_deref()
                    .is_some_and(|i| self.moderation.name_banned(&i.username, now)),
                BanTarget::Address(_) => self
                    .addresses
                    .get(&client)
                    .is_some_and(|&a| self.moderation.address_banned(a, now)),
            };
            if hit {
                out.push(Command::Close {
                    client,
                    reason: Farewell::Banned,
                });
            }
        }
    }

    /// A room's settings changed: its members get a `room` frame.
    pub(super) fn announce_settings(&self, room: &str, out: &mut Out) {
        let Some(r) = self.rooms.get(room).filter(|r| r.ready && !r.is_empty()) else {
            return;
        };
        let s = self.room_settings(room);
        let json = protocol::room_settings_json(room, &s.topic, s.slow_mode, s.read_only);
        send_room(out, &r.name, None, json);
    }

    /// A room's moderation settings (the defaults when it has none).
    pub fn room_settings(&self, room: &str) -> RoomSettings {
        self.moderation.room(room).cloned().unwrap_or_default()
    }

    /// Bans and room settings in force (for the admin API).
    pub fn moderation(&self) -> &Moderation {
        &self.moderation
    }

    /// The admin API's post: a moderator's message to `room` (read-only
    /// rooms included), stored and delivered like any.
    pub fn admin_post(
        &self,
        room: &str,
        username: &str,
        text: &str,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        let r = self
            .rooms
            .get(room)
            .filter(|r| r.ready)
            .ok_or(ErrorCode::NotFound)?;
        let username = protocol::username(username)?;
        let text = self.checked_text(text)?;
        out.push(Command::Append(Draft {
            room: r.name.clone(),
            sender: None,
            time: self.now,
            kind: Kind::Message,
            fields: protocol::admin_message_fields(self.now, username, text),
            owner: None,
            file: None,
        }));
        Ok(())
    }

    /// `GET /api/admin/rooms`: every room with members, who is online in it
    /// and each of their connections here (id and address).
    pub fn admin_rooms_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Conn {
            id: String,
            address: Option<String>,
        }
        #[derive(serde::Serialize)]
        struct User<'a> {
            username: &'a str,
            connections: Vec<Conn>,
        }
        #[derive(serde::Serialize)]
        struct RoomView<'a> {
            room: &'a str,
            online: usize,
            users: Vec<User<'a>>,
            anonymous_connections: usize,
        }
        let mut rooms: Vec<RoomView> = self
            .rooms
            .values()
            // Conversations are their two people's only: never listed.
            .filter(|r| !r.is_empty() && !direct::is_direct(&r.name))
            .map(|r| {
                let mut users: BTreeMap<&str, Vec<Conn>> = BTreeMap::new();
                let mut anonymous = 0;
                for &c in &r.members {
                    match self.session(c).and_then(|s| s.identity.as_deref()) {
                        Some(who) => users.entry(&who.username).or_default().push(Conn {
                            id: admin_id(c),
                            address: self.addresses.get(&c).map(|a| a.to_string()),
                        }),
                        None => anonymous += 1,
                    }
                }
                RoomView {
                    room: &r.name,
                    online: r.online.len(),
                    users: users
                        .into_iter()
                        .map(|(username, connections)| User {
                            username,
                            connections,
                        })
                        .collect(),
                    anonymous_connections: anonymous,
                }
            })
            .collect();
        rooms.sort_unstable_by(|a, b| a.room.cmp(b.room));
        #[derive(serde::Serialize)]
        struct Body<'a> {
            rooms: Vec<RoomView<'a>>,
        }
        serde_json::to_string(&Body { rooms }).unwrap_or_default()
    }

    /// `GET /api/admin/rooms/{room}/messages`: the chat messages in the
    /// room's history as its pages show them (edited text, deleted ones
    /// gone), oldest first; `None` when this process does not hold the room.
    pub fn admin_messages_json(&self, room: &str) -> Option<String> {
        let r = self.rooms.get(room).filter(|r| r.ready)?;
        let mut out = format!(r#"{{"room":"{}","messages":["#, r.name);
        let messages = r
            .history
            .iter()
            .filter(|s| protocol::record_kind(&s.json) == protocol::RecordKind::Message);
        for (i, s) in messages.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&s.json);
        }
        out.push_str("]}");
        Some(out)
    }

    /// A moderator's change of a room's settings: the current ones with the
    /// change applied, handed to the log (they take effect when it hands
    /// them back). Returns the room and the new settings' JSON.
    pub fn change_room_settings(
        &self,
        room: &str,
        change: SettingsChange,
        out: &mut Out,
    ) -> Result<(String, String), &'static str> {
        let room = protocol::room_name(room).ok_or("not a room name")?;
        let settings = self.room_settings(&room).changed(change)?;
        let value = serde_json::to_string(&settings).unwrap_or_default();
        out.push(Command::Set {
            key: RoomSettings::key(&room),
            value: value.clone(),
        });
        Ok((room, value))
    }

    /// A moderator's ban (or its lifting) at wall-clock `now`, handed to the
    /// log like a setting. Returns its key.
    pub fn change_ban(
        &self,
        request: BanRequest,
        lift: bool,
        now: u64,
        out: &mut Out,
    ) -> Result<String, &'static str> {
        let (target, value) = request.checked(now, lift)?;
        let key = target.key();
        out.push(Command::Set {
            key: key.clone(),
            value,
        });
        Ok(key)
    }

    /// The admin API's kick of a user: every connection of it here, and with
    /// a shared log on every other process too.
    pub fn kick_user(&self, name: &str, out: &mut Out) -> Kicked {
        let here = self.kick(Kick::User(name.to_string()), out).here;
        if !self.on_demand {
            return Kicked {
                here,
                elsewhere: false,
            };
        }
        out.push(Command::Notify {
            key: format!("kick/{name}"),
            value: String::new(),
        });
        let elsewhere = self
            .rooms
            .values()
            .filter_map(|r| r.online.get(name))
            .any(|p| !p.nodes.is_empty());
        Kicked { here, elsewhere }
    }

    /// The admin API's kick: the connection with this id (`"key.gen"`), or
    /// every connection of this username, here.
    pub fn kick(&self, target: Kick, out: &mut Out) -> Kicked {
        let before = out.len();
        for (key, s) in self.sessions.iter().enumerate() {
            let Some(s) = s else { continue };
            let client = ClientId::new(key, s.gen);
            let hit = match &target {
                Kick::Connection(id) => admin_id(client) == *id,
                Kick::User(name) => s.identity.as_deref().is_some_and(|i| &*i.username == name),
            };
            if hit {
                out.push(Command::Close {
                    client,
                    reason: Farewell::Kicked,
                });
            }
        }
        Kicked {
            here: out.len() - before,
            elsewhere: false,
        }
    }

    /// The admin API's delete: message `id` in `room` is deleted for
    /// everyone, by the same record a sender's own delete is.
    pub fn admin_delete(&self, room: &str, id: u64, out: &mut Out) -> Result<(), ErrorCode> {
        let r = self.rooms.get(room).filter(|r| r.ready);
        let target = r.and_then(|r| r.message(id)).ok_or(ErrorCode::NotFound)?;
        out.push(Command::Append(Draft {
            room: r.map(|r| r.name.clone()).unwrap_or_else(|| room.into()),
            sender: None,
            time: self.now,
            kind: Kind::Delete,
            fields: protocol::delete_fields(self.now, None, target.id),
            owner: None,
            file: None,
        }));
        Ok(())
    }
}

/// What a kick did: connections closed here, and whether the user is online
/// on another process (with a shared log, which closes them there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kicked {
    pub here: usize,
    pub elsewhere: bool,
}

impl Kicked {
    /// Nobody was kicked, here or elsewhere.
    pub fn nobody(self) -> bool {
        self.here == 0 && !self.elsewhere
    }
}

/// A connection's id in the admin API: its slab key and generation.
fn admin_id(c: ClientId) -> String {
    format!("{}.{}", c.key, c.gen)
}
