//! Direct messages: `"@NAME"` resolved to the conversation between the
//! sender's identity and NAME's holder (`chat/direct.rs` names it), its
//! records delivered to every connection of both identities whether or not
//! they joined it, each frame shown to each side with the other's name,
//! and which identities have connections here (what a shared log must
//! listen for).

use super::*;

impl Core {
    /// The conversation `raw` (`"@NAME"`) names for `client`: refused
    /// without an identity, for a name nobody holds, and for oneself.
    pub(super) fn direct_room(
        &self,
        client: ClientId,
        raw: &str,
        now: u64,
    ) -> Result<RoomName, ErrorCode> {
        let Some(session) = self.session(client) else {
            return Err(ErrorCode::NeedsIdentity);
        };
        let me = session
            .identity
            .as_deref()
            .and_then(|i| i.owner)
            .ok_or(ErrorCode::NeedsIdentity)?;
        let name = raw.strip_prefix('@').unwrap_or(raw).trim();
        let (them, _) = self.names.holder(name, now).ok_or(ErrorCode::NoSuchUser)?;
        if them == me {
            return Err(ErrorCode::BadRoom);
        }
        let room = direct::room(me, them);
        Ok(match self.rooms.get_key_value(room.as_str()) {
            Some((shared, _)) => shared.clone(),
            None => room.into(),
        })
    }

    /// The other person's name in conversation `room`, as `viewer` sees it.
    pub(super) fn other_name(&self, room: &str, viewer: Option<Owner>) -> Option<Rc<str>> {
        let other = direct::other(room, viewer?)?;
        Some(match self.names.name_of(other, self.now) {
            Some(held) => held.into(),
            None => self
                .seen_names
                .get(&other)
                .cloned()
                .unwrap_or_else(|| "someone".into()),
        })
    }

    /// A frame about `room` for `client`: as its side of a conversation sees it.
    pub(super) fn for_client(&self, client: ClientId, room: &str, json: String) -> String {
        if !direct::is_direct(room) {
            return json;
        }
        let viewer = self
            .session(client)
            .and_then(|s| s.identity.as_deref())
            .and_then(|i| i.owner);
        match self.other_name(room, viewer) {
            Some(name) => direct::shown(&json, room, &name),
            None => json,
        }
    }

    /// A committed record of a conversation: to every connection of both
    /// identities, each side seeing the other's name.
    pub(super) fn deliver_direct(
        &mut self,
        room: &RoomName,
        json: &str,
        owner: Option<Owner>,
        out: &mut Out,
    ) {
        let Some((a, b)) = direct::owners(room) else {
            return;
        };
        self.learn_names(room, json, owner);
        for side in [a, b] {
            if self.identities.contains_key(&side) {
                if let Some(name) = self.other_name(room, Some(side)) {
                    out.push(Command::Send {
                        to: Audience::Identity {
                            owner: side,
                            except: None,
                        },
                        json: direct::shown(json, room, &name).into(),
                    });
                }
            }
        }
    }

    /// Notes the names a conversation's message shows: its sender's (the
    /// record's owner) and its recipient's (`"to"`, the other identity).
    pub(super) fn learn_names(&mut self, room: &str, json: &str, owner: Option<Owner>) {
        #[derive(serde::Deserialize)]
        struct Names<'a> {
            #[serde(borrow)]
            username: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow)]
            to: Option<std::borrow::Cow<'a, str>>,
        }
        let (Some(sender), Some(n)) = (owner, serde_json::from_str::<Names>(json).ok()) else {
            return;
        };
        let Some(recipient) = direct::other(room, sender) else {
            return;
        };
        if self.seen_names.len() >= MAX_SEEN_NAMES {
            self.seen_names.clear();
        }
        if let Some(u) = n.username {
            self.seen_names.insert(sender, u.as_ref().into());
        }
        if let Some(t) = n.to {
            self.seen_names.insert(recipient, t.as_ref().into());
        }
    }

    /// `client` now is `who`: counted among its identity's connections (a
    /// shared log listens for the identity's direct messages from the first).
    pub(super) fn identity_arrived(&mut self, client: ClientId, who: &Identity, out: &mut Out) {
        let Some(owner) = who.owner else {
            return;
        };
        if self.seen_names.len() >= MAX_SEEN_NAMES {
            self.seen_names.clear();
        }
        self.seen_names.insert(owner, who.username.clone());
        let conns = self.identities.entry(owner).or_default();
        if conns.is_empty() && self.on_demand {
            out.push(Command::WatchIdentity { owner, on: true });
        }
        conns.push(client);
    }

    /// `client` of identity `who` is gone.
    pub(super) fn identity_gone(&mut self, client: ClientId, who: &Identity, out: &mut Out) {
        let Some(owner) = who.owner else {
            return;
        };
        let Some(conns) = self.identities.get_mut(&owner) else {
            return;
        };
        conns.retain(|&c| c != client);
        if conns.is_empty() {
            self.identities.remove(&owner);
            self.direct_typing.retain(|(c, _, _)| *c != client);
            if self.on_demand {
                out.push(Command::WatchIdentity { owner, on: false });
            }
        }
    }

    /// Typing in a conversation: to the other identity's connections, at
    /// most once per [`typing::TYPING_EVERY_MS`] per connection.
    pub(super) fn direct_typing(
        &mut self,
        client: ClientId,
        room: &RoomName,
        who: &Identity,
        now: u64,
        out: &mut Out,
    ) {
        let Some(other) = who.owner.and_then(|me| direct::other(room, me)) else {
            return;
        };
        let every = typing::TYPING_EVERY_MS;
        self.direct_typing
            .retain(|(_, _, t)| now.saturating_sub(*t) < every);
        if self
            .direct_typing
            .iter()
            .any(|(c, r, _)| *c == client && r == room)
        {
            return;
        }
        self.direct_typing.push((client, room.clone(), now));
        self.typing_to(other, &who.username, out);
        if self.on_demand {
            out.push(Command::Notify {
                key: format!("dmtyping/{other:016x}"),
                value: who.username.to_string(),
            });
        }
    }

    /// `username` is typing to identity `owner`: to its connections here, in
    /// the conversation named by the typist.
    fn typing_to(&self, owner: Owner, username: &str, out: &mut Out) {
        if self.identities.contains_key(&owner) {
            out.push(Command::Send {
                to: Audience::Identity {
                    owner,
                    except: None,
                },
                json: protocol::typing_json(&format!("@{username}"), username).into(),
            });
        }
    }

    /// Another process forwarded a direct typing notice for identity `owner` (hex).
    pub(super) fn remote_direct_typing(&mut self, owner: &str, username: &str, out: &mut Out) {
        if let Ok(owner) = u64::from_str_radix(owner, 16) {
            self.typing_to(owner, username, out);
        }
    }
}

/// Most names of identities kept for showing conversations (forgotten all
/// at once past it; a conversation then shows a hold's name, or "someone").
const MAX_SEEN_NAMES: usize = 100_000;
