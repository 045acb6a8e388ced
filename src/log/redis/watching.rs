//! Watching a room: subscribe, then read its stream (`read.lua`); what the
//! subscription delivers meanwhile waits, duplicates are dropped by id, a gap
//! is filled from the stream and a new epoch reloads the room. Publishes in
//! doubt are settled by the tags the read finds.

use super::*;

impl RedisLog {
    pub(super) fn send_read(&mut self, room: &RoomName) {
        let Some(w) = self.rooms.get_mut(room) else {
            return;
        };
        if !self.cmd.is_up() || w.reading {
            return;
        }
        w.reading = true;
        let since = w.epoch.map(|_| w.last.to_string()).unwrap_or_default();
        let epoch = w.epoch.map(|e| e.to_string()).unwrap_or_default();
        let gen = w.gen;
        let meta = format!("{}meta:{room}", self.cfg.prefix);
        let stream = format!("{}stream:{room}", self.cfg.prefix);
        let presence = format!("{}presence:{room}", self.cfg.prefix);
        self.cmd.send(&[
            "EVALSHA",
            &self.read_sha,
            "3",
            &meta,
            &stream,
            &presence,
            &since,
            &self.cfg.history.max(1).to_string(),
            &crate::clock::unix_millis().to_string(),
            &epoch,
        ]);
        self.expect(Pending::Read {
            room: room.clone(),
            gen,
        });
    }

    /// `read.lua`'s answer: `{epoch, seq, entries}`.
    pub(super) fn read_reply(&mut self, room: RoomName, gen: u64, reply: Value) {
        let Some(w) = self.rooms.get_mut(&room).filter(|w| w.gen == gen) else {
            return; // unwatched (or watched again) since
        };
        w.reading = false;
        let parsed = match &reply {
            Value::Array(a) if a.len() == 4 => a[0]
                .as_u64()
                .zip(a[1].as_u64())
                .map(|(e, s)| (e, s, &a[2], &a[3])),
            _ => None,
        };
        let Some((epoch, seq, entries, online)) = parsed else {
            self.errors_total += 1;
            self.stats.bad_data += 1;
            diag_warn!("redis: reading {room} failed: {reply:?}");
            if w.epoch.is_none() {
                self.ready.push(LogEvent::Unreadable(room));
            }
            return;
        };
        let mut records = Vec::new();
        let mut tags = HashSet::new();
        if let Value::Array(entries) = entries {
            for e in entries {
                match decode::entry(&room, e) {
                    Some((r, tag)) => {
                        records.push(r);
                        tags.extend(tag);
                    }
                    None => {
                        self.stats.bad_data += 1;
                        diag_warn!("redis: skipped a malformed entry in {room}'s stream: {e:?}");
                    }
                }
            }
        }
        // Publishes in doubt since a lost link: stored (delivered below) or refused now.
        let node = &self.node;
        let ready = &mut self.ready;
        self.in_doubt.retain(|d| {
            if d.room != room {
                return true;
            }
            if !tags.contains(&format!("{node}:{}", d.tag)) {
                ready.push(LogEvent::Refused {
                    room: d.room.clone(),
                    sender: d.sender,
                });
            }
            false
        });
        let fresh = w.epoch != Some(epoch);
        // Entries the node lacks that the stream no longer holds (trimmed
        // while it was away): start the room over rather than leave a hole.
        let hole = !fresh && records.first().is_some_and(|r| r.id > w.last + 1);
        if fresh || hole {
            w.epoch = Some(epoch);
            w.last = seq.max(records.last().map_or(0, |r| r.id));
            let presence = decode::presence_snapshot(&room, online, &self.node);
            self.ready.push(LogEvent::Loaded {
                room: room.clone(),
                epoch,
                last_id: w.last,
                history: records,
                presence,
            });
        } else {
            let mut filled = false;
            for r in records {
                if r.id > w.last {
                    w.last = r.id;
                    filled = true;
                    self.ready.push(LogEvent::Committed(r));
                }
            }
            if filled {
                self.stats.gaps_filled += 1;
            }
            // Ids a failed script took and never stored: nothing to wait for.
            w.last = w.last.max(seq);
        }
        let held = std::mem::take(&mut w.held);
        for p in held {
            self.published(&room, p);
        }
    }

    /// A message from the subscription.
    pub(super) fn published(&mut self, room: &RoomName, p: Published) {
        let Some(w) = self.rooms.get_mut(room) else {
            return;
        };
        // Messages wait while the room is read (or must be): at most
        // `--history` of them, what the stream keeps anyway. Past that they
        // are dropped, and the next one's gap is read from the stream.
        let hold_max = self.cfg.history.max(1);
        if w.reading || w.epoch.is_none() {
            if w.held.len() < hold_max {
                w.held.push(p);
            }
            return;
        }
        if Some(p.epoch) != w.epoch || p.id > w.last + 1 {
            // A new epoch, or a gap: read the stream, hold this meanwhile.
            if w.held.len() < hold_max {
                w.held.push(p);
            }
            self.send_read(room);
            return;
        }
        if p.id <= w.last {
            return; // already delivered (from the stream, or twice)
        }
        w.last = p.id;
        let (json, owner) = format::seal_stored(room, p.id, &p.fields);
        self.ready.push(LogEvent::Committed(Record {
            room: room.clone(),
            id: p.id,
            json: json.into(),
            time: p.time,
            sender: None,
            owner,
        }));
    }

    /// A direct message from an identity's channel (`"<room> "` and what a
    /// room's channel carries): handed over unless this process watches the
    /// conversation, whose own channel brings it in order.
    fn direct_published(&mut self, payload: &[u8]) {
        let parsed = payload.iter().position(|&b| b == b' ').and_then(|at| {
            let room = std::str::from_utf8(&payload[..at]).ok()?;
            let p = decode::parse_published(&payload[at + 1..])?;
            crate::chat::direct::owners(room).map(|_| (room, p))
        });
        let Some((room, p)) = parsed else {
            self.stats.bad_data += 1;
            diag_warn!("redis: skipped a foreign message on an identity's channel");
            return;
        };
        if self.rooms.contains_key(room) {
            return;
        }
        let (json, owner) = format::seal_stored(room, p.id, &p.fields);
        self.ready.push(LogEvent::Committed(Record {
            room: room.into(),
            id: p.id,
            json: json.into(),
            time: p.time,
            sender: None,
            owner,
        }));
    }

    pub(super) fn sub_reply(&mut self, reply: Value) {
        let Value::Array(parts) = reply else {
            if self.sub_handshake > 0 {
                self.sub_handshake -= 1;
                if let Value::Error(e) = reply {
                    if self.refused.is_none() {
                        diag_warn!("redis: subscription link refused: {e}");
                    }
                    self.refused = Some(e);
                    self.drop_links = true;
                    self.errors_total += 1;
                }
            }
            return;
        };
        let kind = parts.first().and_then(Value::as_bytes).unwrap_or_default();
        let channel = parts.get(1).and_then(Value::as_bytes).unwrap_or_default();
        if channel == &self.settings_channel[..] {
            match kind {
                b"subscribe" => {
                    self.settings_subscribed = true;
                    self.read_settings();
                }
                b"message" => {
                    let payload = parts.get(2).and_then(Value::as_bytes).unwrap_or_default();
                    if let Some(notice) = payload.strip_prefix(b"!") {
                        // "!<node>\n<key>\n<value>": a notice, not a stored setting.
                        let text = String::from_utf8_lossy(notice);
                        let mut parts = text.splitn(3, '\n');
                        if let (Some(node), Some(key), Some(value)) =
                            (parts.next(), parts.next(), parts.next())
                        {
                            if node != self.node {
                                self.ready.push(LogEvent::Notice {
                                    key: key.to_string(),
                                    value: value.to_string(),
                                });
                            }
                        }
                        return;
                    }
                    match decode::setting(payload) {
                        Some((key, value)) => self.ready.push(LogEvent::Setting { key, value }),
                        None => {
                            self.stats.bad_data += 1;
                            diag_warn!("redis: skipped a foreign notice on the settings channel");
                        }
                    }
                }
                _ => {}
            }
            return;
        }
        if self.identities.contains(channel) {
            if kind == b"message" {
                let payload = parts.get(2).and_then(Value::as_bytes).unwrap_or_default();
                self.direct_published(payload);
            }
            return;
        }
        let Some(room) = self.channels.get(channel).cloned() else {
            return;
        };
        match kind {
            b"subscribe" => {
                if let Some(w) = self.rooms.get_mut(&room) {
                    w.subscribed = true;
                }
                self.send_read(&room);
            }
            b"message" => {
                let payload = parts.get(2).and_then(Value::as_bytes).unwrap_or_default();
                if let Some(json) = payload.strip_prefix(b"p") {
                    match decode::parse_presence(&room, json) {
                        Some(p) if p.node == self.node => {}
                        Some(p) => self.ready.push(LogEvent::Presence(p)),
                        None => {
                            self.stats.bad_data += 1;
                            diag_warn!(
                                "redis: skipped a foreign presence notice on {room}'s channel"
                            );
                        }
                    }
                    return;
                }
                match decode::parse_published(payload) {
                    Some(p) => self.published(&room, p),
                    None => {
                        self.stats.bad_data += 1;
                        diag_warn!(
                            "redis: skipped a foreign message on {room}'s channel: {:?}",
                            String::from_utf8_lossy(&payload[..payload.len().min(80)])
                        );
                    }
                }
            }
            _ => {}
        }
    }
}
