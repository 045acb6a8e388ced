//! Who is where: a connection arriving (and, with `--auth`, being admitted),
//! joining and leaving rooms under its identity (a held name, a token's
//! user), and going away, with the presence notices that follow.

use super::*;

impl Core {
    pub(super) fn connect(&mut self, client: ClientId, now: u64) {
        let key = client.key as usize;
        if self.sessions.len() <= key {
            self.sessions.resize_with(key + 1, || None);
        }
        if self.sessions[key].is_none() {
            self.session_count += 1;
        }
        let lobby = self.limits.default_room.clone();
        self.sessions[key] = Some(Session {
            gen: client.gen,
            joined: false,
            authed: false,
            holder: false,
            loading: 0,
            identity: None,
            bucket: TokenBucket::new(self.limits.msg_rate, now),
            rooms: Vec::new(),
        });
        self.add_member(&lobby, client, now);
    }

    pub(super) fn gone(&mut self, client: ClientId, now: u64, out: &mut Out) {
        let Some(session) = self
            .sessions
            .get_mut(client.key as usize)
            .and_then(|s| s.take_if(|s| s.gen == client.gen))
        else {
            return;
        };
        self.session_count -= 1;
        self.drop_jobs(client);
        self.release_upload(client);
        self.addresses.remove(&client);
        self.tokens.remove(&client);
        if let Some(who) = session.identity.as_deref().filter(|_| session.holder) {
            if let Some((key, value)) = self.names.depart(&who.username, now) {
                out.push(Command::Set { key, value });
            }
        }
        if let Some(who) = &session.identity {
            self.identity_gone(client, who, out);
            if let Some(n) = self.users.get_mut(&who.username) {
                *n -= 1;
                if *n == 0 {
                    self.users.remove(&who.username);
                }
            }
        }
        let lobby = self.limits.default_room.clone();
        for room in session.rooms(&lobby) {
            self.depart(room, client, session.identity.as_deref(), now, out);
        }
        if session.loading > 0 {
            let waited: Vec<RoomName> = self
                .rooms
                .values_mut()
                .filter_map(|r| {
                    let before = r.waiting.len();
                    r.waiting.retain(|w| w.client != client);
                    (r.waiting.len() != before).then(|| r.name.clone())
                })
                .collect();
            for room in waited {
                self.release_if_unused(&room, out);
            }
        }
        self.bound_idle_rooms(out);
    }

    /// With a shared log, a room nobody here is in (or waits for) is dropped
    /// and no longer watched: without the subscription its history would go stale.
    pub(super) fn release_if_unused(&mut self, room: &RoomName, out: &mut Out) {
        if !self.on_demand || self.is_fixed(room) {
            return;
        }
        if let Some(r) = self.rooms.get(room) {
            if r.is_empty() && r.waiting.is_empty() {
                self.history_bytes -= r.history_bytes;
                self.rooms.remove(room);
                out.push(Command::Forget(room.clone()));
            }
        }
    }

    /// Takes `client` out of `room`, announcing the leave if it was the
    /// user's last connection there, and drops the room if nothing is left of it.
    pub(super) fn depart(
        &mut self,
        room: &RoomName,
        client: ClientId,
        who: Option<&Identity>,
        now: u64,
        out: &mut Out,
    ) {
        self.remove_member(room, client);
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if let Some(who) = who {
            let change = r.depart(who);
            let direct = direct::is_direct(room);
            if change.here && self.on_demand && !direct {
                out.push(presence_command(room, who, false));
            }
            if change.anywhere && !direct {
                let json = protocol::presence_json("leave", room, &who.view(), now, r.online.len());
                send_room(out, room, Some(client), json);
            }
        }
        if r.is_empty() && r.history.is_empty() && !self.is_fixed(room) {
            self.rooms.remove(room);
            out.push(Command::Forget(room.clone()));
        } else {
            self.release_if_unused(room, out);
        }
    }

    /// `--auth password|token`: nothing from a connection counts until it
    /// joined with the password or a valid token; a wrong one is counted
    /// against its address. A token's user waits in `tokens` for its join.
    pub(super) fn admit(
        &mut self,
        client: ClientId,
        what: &Incoming,
        now: u64,
        out: &mut Vec<Command>,
    ) -> Result<(), ErrorCode> {
        if !self.access.required() || self.session(client).is_none_or(|s| s.authed) {
            return Ok(());
        }
        let token = self.access.token_required();
        let wrong = if token {
            ErrorCode::BadToken
        } else {
            ErrorCode::BadPassword
        };
        let Incoming::Join(join) = what else {
            return Err(wrong);
        };
        let addr = self.addresses.get(&client).copied();
        let checked = if token {
            match self.access.check_token(join.token.as_deref(), addr, now) {
                Ok(user) => {
                    self.tokens.insert(client, Box::new(token_identity(user)));
                    Check::Ok
                }
                Err((check, refused)) => {
                    if let Some((addr, why)) = refused {
                        out.push(Command::Report(Report::TokenRefused { addr, why }));
                    }
                    check
                }
            }
        } else {
            self.access.check(join.password.as_deref(), addr, now)
        };
        match checked {
            Check::Ok => {
                if let Some(s) = self.session_mut(client) {
                    s.authed = true;
                }
                Ok(())
            }
            Check::Wrong => Err(wrong),
            Check::Blocked => Err(ErrorCode::RateLimited),
        }
    }

    /// The room a frame names (the default room when it names none), shared
    /// with the existing room's name when there is one.
    pub(super) fn room_of(&self, field: &RoomField) -> Result<RoomName, ErrorCode> {
        let name = match field {
            RoomField::Absent => return Ok(self.limits.default_room.clone()),
            RoomField::NotAString => return Err(ErrorCode::BadRoom),
            RoomField::Name(raw) => protocol::room_name(raw).ok_or(ErrorCode::BadRoom)?,
        };
        Ok(match self.rooms.get_key_value(name.as_str()) {
            Some((shared, _)) => shared.clone(),
            None => name.into(),
        })
    }

    /// A join: resolve who the client is, check every refusal, then apply
    /// it (nothing changes unless every check passed).
    pub(super) fn join(
        &mut self,
        client: ClientId,
        room: &RoomName,
        join: Join,
        now: u64,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        let direct = direct::is_direct(room);
        if !direct && !self.is_fixed(room) && self.limits.fixed_rooms.is_some() {
            return Err(ErrorCode::BadRoom);
        }
        if self.on_demand && !self.rooms.get(room).is_some_and(|r| r.ready) {
            return self.wait_for_room(client, room, join, out);
        }
        let Some(plan) = self.check_join(client, room, &join, now)? else {
            return Ok(()); // the client is gone
        };
        let room_epoch = self.rooms.get(room).map_or(self.epoch, |r| r.epoch);
        let since = join
            .since
            .filter(|_| join.epoch.is_none_or(|e| e == room_epoch));
        self.apply_join(client, room, plan, since, now, out);
        Ok(())
    }

    /// Who the joining client is and whether it may join `room`: every
    /// refusal, with the one look at its session. `None`: it is gone.
    fn check_join(
        &self,
        client: ClientId,
        room: &RoomName,
        join: &Join,
        now: u64,
    ) -> Result<Option<JoinPlan>, ErrorCode> {
        let Some(session) = self.session(client) else {
            return Ok(None);
        };
        let token_mode = self.access.token_required();
        let identity = self.resolve_identity(client, session, join, token_mode)?;
        if self.moderation.name_banned(&identity.username, now) {
            return Err(ErrorCode::Banned);
        }
        if !direct::is_direct(room)
            && identity
                .rooms
                .as_ref()
                .is_some_and(|r| !r.iter().any(|x| **x == **room))
        {
            return Err(ErrorCode::ForbiddenRoom);
        }
        let newly_identified = session.identity.is_none();
        // Names are held by page secrets; a token's name is the operator's to
        // give, held for its subject only so that it can be written to.
        let secret = match (token_mode, identity.owner) {
            (true, Some(owner)) => Some(names::hash_secret(&format!("token {owner:016x}"))),
            (true, None) => None,
            (false, _) => join.secret.as_deref().map(names::hash_secret),
        };
        if newly_identified
            && !token_mode
            && !self.names.may_use(&identity.username, secret.as_ref(), now)
        {
            return Err(ErrorCode::NameTaken);
        }
        let limits = &self.limits;
        let already_in = session.in_room(room, &limits.default_room);
        if !already_in {
            let joined_rooms = if session.joined {
                session.rooms.len()
            } else {
                0
            };
            if joined_rooms >= limits.max_rooms_per_client {
                return Err(ErrorCode::RoomLimit);
            }
            let has_members = self.rooms.get(room).is_some_and(|r| !r.is_empty());
            if !has_members
                && !self.is_fixed(room)
                && self.made_rooms_with_members >= limits.max_rooms
            {
                return Err(ErrorCode::RoomLimit);
            }
        }
        Ok(Some(JoinPlan {
            identity,
            secret: secret.filter(|_| newly_identified),
            newly_identified,
            already_in,
            first_join: !session.joined,
        }))
    }

    /// The identity a join gives: the token's (`--auth token`), the one the
    /// client already has (a later join may repeat it, not change it), or
    /// the name and e-mail it brings.
    fn resolve_identity(
        &self,
        client: ClientId,
        session: &Session,
        join: &Join,
        token_mode: bool,
    ) -> Result<Identity, ErrorCode> {
        let shared_name = |name: &str| match self.users.get_key_value(name) {
            Some((shared, _)) => shared.clone(),
            None => name.into(),
        };
        Ok(match (&session.identity, join.username.as_deref()) {
            // `--auth token`: the name is the token's, whatever the join says.
            (Some(known), _) if token_mode => (**known).clone(),
            (None, _) if token_mode => {
                let mut user = (**self.tokens.get(&client).ok_or(ErrorCode::BadToken)?).clone();
                user.avatar = protocol::avatar(join.email.as_deref())?;
                user.username = shared_name(&user.username);
                user
            }
            (None, None) => return Err(ErrorCode::BadUsername),
            (Some(known), None) => (**known).clone(),
            (known, Some(raw)) => {
                let username = protocol::username(raw)?;
                let avatar = protocol::avatar(join.email.as_deref())?;
                match known {
                    Some(k)
                        if &*k.username != username
                            || (join.email.is_some() && k.avatar != avatar) =>
                    {
                        return Err(ErrorCode::AlreadyJoined)
                    }
                    Some(k) => (**k).clone(),
                    None => Identity {
                        username: shared_name(username),
                        avatar,
                        owner: join.secret.as_deref().map(protocol::owner_of),
                        verified: false,
                        rooms: None,
                    },
                }
            }
        })
    }

    /// Carries out a join that passed every check: the session, the name's
    /// hold, the room's members and presence, the welcome and the notice.
    fn apply_join(
        &mut self,
        client: ClientId,
        room: &RoomName,
        plan: JoinPlan,
        since: Option<u64>,
        now: u64,
        out: &mut Out,
    ) {
        let JoinPlan {
            identity,
            secret,
            newly_identified,
            already_in,
            first_join,
        } = plan;
        if newly_identified {
            *self.users.entry(identity.username.clone()).or_insert(0) += 1;
            self.identity_arrived(client, &identity, out);
        }
        let holder = secret.map(|secret| {
            let (holder, stored) =
                self.names
                    .arrive(&identity.username, &secret, identity.owner, now);
            if let Some((key, value)) = stored {
                out.push(Command::Set { key, value });
            }
            holder
        });
        let lobby = self.limits.default_room.clone();
        if let Some(session) = self.session_mut(client) {
            session.identity = Some(Box::new(identity.clone()));
            if let Some(holder) = holder {
                session.holder = holder;
            }
            session.joined = true;
            // The implicit place in the default room ends with the first
            // join, unless that join is to the default room.
            if first_join && room == &lobby {
                session.rooms.push(lobby.clone());
            }
            if !already_in {
                session.rooms.push(room.clone());
            }
        }
        if first_join && room != &lobby {
            self.remove_member(&lobby, client);
        }
        if !already_in {
            self.add_member(room, client, now);
        }
        let r = self.room_entry(room, now);
        r.last_activity = r.last_activity.max(now);
        let change = if !already_in || newly_identified {
            r.arrive(&identity)
        } else {
            Default::default()
        };
        let direct = direct::is_direct(room);
        if change.here && self.on_demand && !direct {
            out.push(presence_command(room, &identity, true));
        }
        reply(out, client, self.welcome(room, &identity, since));
        if change.anywhere && !direct {
            if let Some(r) = self.rooms.get(room) {
                let json =
                    protocol::presence_json("join", room, &identity.view(), now, r.online.len());
                send_room(out, room, Some(client), json);
            }
        }
        if first_join && room != &lobby {
            // The default room may now be empty of members: drop it if it is.
            self.bound_idle_rooms(out);
        }
    }

    pub(super) fn leave(
        &mut self,
        client: ClientId,
        room: &RoomName,
        now: u64,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        let lobby = self.limits.default_room.clone();
        let Some(session) = self.session_mut(client) else {
            return Ok(());
        };
        if !session.in_room(room, &lobby) {
            return Err(ErrorCode::NotJoined);
        }
        // Leaving the implicit default room (never joined) leaves it in none.
        session.rooms.retain(|r| r != room);
        session.joined = true;
        let who = session.identity.as_deref().cloned();
        let left = self.for_client(client, room, protocol::left_json(room));
        reply(out, client, left);
        self.depart(room, client, who.as_ref(), now, out);
        Ok(())
    }
}

/// The identity a valid token gives: its name, verified; its subject owns
/// its messages; its rooms, if it lists them.
pub(super) fn token_identity(user: TokenUser) -> Identity {
    Identity {
        username: user.name.as_str().into(),
        avatar: None,
        owner: Some(protocol::owner_of(&format!("sub:{}", user.subject))),
        verified: true,
        rooms: user.rooms.map(Into::into),
    }
}

pub(super) fn presence_command(room: &RoomName, who: &Identity, online: bool) -> Command {
    Command::Presence {
        room: room.clone(),
        username: who.username.clone(),
        avatar: who.avatar.clone(),
        verified: who.verified,
        online,
    }
}

/// A join that passed every check, and what applying it must do.
struct JoinPlan {
    identity: Identity,
    /// The page secret's hash, when this join first names the client.
    secret: Option<names::SecretHash>,
    newly_identified: bool,
    already_in: bool,
    first_join: bool,
}
