//! The Redis log as the server sees it: [`MessageLog`] (publishing a
//! draft, committing, settings, shutdown) and [`SharedLog`] (watching rooms,
//! presence, notices, its two sockets, metrics), delegating to the rest of
//! this folder.

use super::*;

impl MessageLog for RedisLog {
    fn append(&mut self, draft: Draft) {
        if !self.up() || self.publishes_pending >= self.cfg.max_pending {
            self.ready.push(LogEvent::Refused {
                room: draft.room,
                sender: draft.sender,
            });
            return;
        }
        let meta = self.key("meta", &draft.room);
        let stream = self.key("stream", &draft.room);
        let index = format!("{}rooms", self.cfg.prefix);
        let amend = self.key("amend", &draft.room);
        let channel = self.key("room", &draft.room);
        let target = format::target(&draft).map_or(String::new(), |t| t.to_string());
        let (emoji, name, on) = format::reaction(&draft).unwrap_or_default();
        let order = format!("{}fileorder", self.cfg.prefix);
        let total = format!("{}filebytes", self.cfg.prefix);
        let room_files = self.key("files", &draft.room);
        let file_prefix = format!("{}file:", self.cfg.prefix);
        let (file_name, file_bytes): (&str, &[u8]) = match &draft.file {
            Some(f) => (&f.name, &f.bytes),
            None => ("", b""),
        };
        self.next_tag += 1;
        let tag = self.next_tag;
        let end = self.cmd.send(&[
            "EVALSHA".as_bytes(),
            self.publish_sha.as_bytes(),
            b"7",
            meta.as_bytes(),
            stream.as_bytes(),
            index.as_bytes(),
            amend.as_bytes(),
            order.as_bytes(),
            total.as_bytes(),
            room_files.as_bytes(),
            format::stored_fields(&draft).as_bytes(),
            draft.time.to_string().as_bytes(),
            self.cfg.retain.max(1).to_string().as_bytes(),
            crate::clock::unix_millis().to_string().as_bytes(),
            channel.as_bytes(),
            format!("{}:{tag}", self.node).as_bytes(),
            draft.room.as_bytes(),
            target.as_bytes(),
            draft.kind.name().as_bytes(),
            emoji.as_bytes(),
            name.as_bytes(),
            if on { b"1" } else { b"0" },
            format!("{}user:", self.cfg.prefix).as_bytes(),
            file_name.as_bytes(),
            file_bytes,
            self.cfg.upload_quota.to_string().as_bytes(),
            file_prefix.as_bytes(),
        ]);
        self.publishes_pending += 1;
        self.expect(Pending::Publish {
            room: draft.room,
            sender: draft.sender,
            tag,
            sent: Instant::now(),
            end,
        });
    }

    fn remove_file(&mut self, name: &str) {
        if !self.up() {
            self.errors_total += 1;
            diag_warn!("redis: unavailable; the image {name} of a deleted message was not removed");
            return;
        }
        let order = format!("{}fileorder", self.cfg.prefix);
        let total = format!("{}filebytes", self.cfg.prefix);
        let prefix = format!("{}file:", self.cfg.prefix);
        self.cmd.send(&[
            "EVALSHA",
            &self.unfile_sha,
            "2",
            &order,
            &total,
            &prefix,
            name,
        ]);
        self.expect(Pending::Unfile);
    }

    fn file_bytes(&self) -> usize {
        self.file_bytes
    }

    fn commit(&mut self, now_ms: u64, out: &mut Vec<LogEvent>) {
        self.pump(now_ms);
        out.append(&mut self.ready);
    }

    fn set(&mut self, key: String, value: String) {
        if !self.up() {
            self.errors_total += 1;
            diag_warn!("redis: unavailable; the moderation setting {key:?} was not stored");
            return;
        }
        let hash = format!("{}settings", self.cfg.prefix);
        let channel = String::from_utf8_lossy(&self.settings_channel).into_owned();
        self.cmd.send(&[
            "EVALSHA",
            &self.setting_sha,
            "1",
            &hash,
            &key,
            &value,
            &channel,
        ]);
        self.expect(Pending::Setting);
    }

    fn read(&mut self, read: Read) {
        if !self.cmd.is_up() {
            self.ready.push(LogEvent::ReadFailed {
                ticket: read.ticket,
            });
            return;
        }
        let stream = self.key("stream", &read.room);
        let amend = self.key("amend", &read.room);
        let (dir, from, until) = match read.range {
            crate::chat::record::Range::Before(below) => ("before", below, 0),
            crate::chat::record::Range::After { after, until } => ("after", after, until),
        };
        self.cmd.send(&[
            "EVALSHA",
            &self.page_sha,
            "2",
            &stream,
            &amend,
            dir,
            &from.to_string(),
            &until.to_string(),
            &read.want.to_string(),
            &PAGE_SCAN.to_string(),
        ]);
        self.expect(Pending::Page {
            ticket: read.ticket,
            room: read.room,
        });
    }

    fn forget(&mut self, room: &str) {
        // Nobody here is in the room any more: nobody to tell about these.
        self.in_doubt.retain(|d| &*d.room != room);
        if let Some(w) = self.rooms.remove(room) {
            self.channels.remove(&w.channel);
            if self.sub.is_up() {
                self.sub.send(&[&b"UNSUBSCRIBE"[..], &w.channel]);
            }
        }
    }

    fn wake_in(&self, now_ms: u64) -> Option<u64> {
        let mut at = self.next_check;
        if self.cmd.is_up() {
            // Presence refresh and the directory wait for the link when it is
            // down (the reconnect below comes first): no wake-ups meanwhile.
            at = at.min(self.next_refresh).min(self.next_directory);
        }
        for link in [&self.cmd, &self.sub] {
            if let Some(t) = link.wake_at() {
                at = at.min(t);
            }
        }
        Some(at.saturating_sub(now_ms))
    }

    fn health(&self) -> LogHealth {
        LogHealth {
            degraded: !self.up() || self.stalled(),
            errors_total: self.errors_total,
        }
    }

    fn close(&mut self, now_ms: u64) {
        // This node's users leave at once rather than when their entries
        // expire: a short, bounded wait, after the loop has stopped.
        let wall = crate::clock::unix_millis();
        let local: Vec<(RoomName, Vec<String>)> = self
            .local
            .drain()
            .map(|(room, users)| (room, users.into_keys().collect()))
            .collect();
        for (room, users) in local {
            let args: Vec<&str> = users.iter().map(String::as_str).collect();
            self.send_presence(&room, "off", &args, wall);
        }
        let until = Instant::now() + Duration::from_millis(300);
        while self.cmd.is_up() && self.pending.iter().any(|p| matches!(p, Pending::Presence)) {
            if Instant::now() >= until {
                break;
            }
            self.cmd.ready(true, true);
            self.pump(now_ms);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl SharedLog for RedisLog {
    fn watch_identity(&mut self, owner: crate::chat::protocol::Owner, on: bool) {
        let channel = format!("{}user:{owner:016x}", self.cfg.prefix).into_bytes();
        if on {
            if self.identities.insert(channel.clone()) && self.sub.is_up() {
                self.sub.send(&[&b"SUBSCRIBE"[..], &channel]);
            }
        } else if self.identities.remove(&channel) && self.sub.is_up() {
            self.sub.send(&[&b"UNSUBSCRIBE"[..], &channel]);
        }
    }

    fn fetch_file(&mut self, name: &str) {
        if !self.cmd.is_up() {
            self.ready.push(LogEvent::File {
                name: name.to_string(),
                fetched: crate::log::Fetched::Failed,
            });
            return;
        }
        let key = format!("{}file:{name}", self.cfg.prefix);
        self.cmd.send(&["GET", &key]);
        self.expect(Pending::File(name.to_string()));
    }

    fn watch(&mut self, room: &RoomName) {
        if self.rooms.contains_key(room) {
            return;
        }
        self.next_gen += 1;
        let channel = self.key("room", room).into_bytes();
        self.channels.insert(channel.clone(), room.clone());
        if self.sub.is_up() {
            self.sub.send(&[&b"SUBSCRIBE"[..], &channel]);
        }
        self.rooms.insert(
            room.clone(),
            Watch {
                channel,
                gen: self.next_gen,
                epoch: None,
                last: 0,
                subscribed: false,
                reading: false,
                held: Vec::new(),
            },
        );
    }

    fn notify(&mut self, key: &str, value: &str) {
        if !self.up() {
            diag_warn!("redis: unavailable; the notice {key:?} was not sent");
            return;
        }
        let channel = String::from_utf8_lossy(&self.settings_channel).into_owned();
        let payload = format!("!{}\n{key}\n{value}", self.node);
        self.cmd.send(&["PUBLISH", &channel, &payload]);
        self.expect(Pending::Setting);
    }

    fn presence(
        &mut self,
        room: &RoomName,
        username: &str,
        avatar: Option<&str>,
        verified: bool,
        online: bool,
    ) {
        let wall = crate::clock::unix_millis();
        // The entry's value: the avatar, after a '!' when the name is verified.
        let avatar = format!(
            "{}{}",
            if verified { "!" } else { "" },
            avatar.unwrap_or_default()
        );
        let avatar = avatar.as_str();
        if online {
            self.local
                .entry(room.clone())
                .or_default()
                .insert(username.to_string(), avatar.to_string());
            self.send_presence(room, "on", &[username, avatar], wall);
        } else {
            if let Some(users) = self.local.get_mut(room) {
                users.remove(username);
                if users.is_empty() {
                    self.local.remove(room);
                }
            }
            self.send_presence(room, "off", &[username], wall);
        }
    }

    fn flush(&mut self) {
        self.cmd.flush();
        self.sub.flush();
    }

    fn wants_commit(&self) -> bool {
        self.cmd.can_write_more() || self.sub.can_write_more() || !self.ready.is_empty()
    }

    fn ready(&mut self, link: Which, readable: bool, writable: bool) {
        let link = match link {
            Which::Commands => &mut self.cmd,
            Which::Subscriptions => &mut self.sub,
        };
        link.ready(readable, writable);
    }

    fn metrics(&self, out: &mut String) {
        let s = &self.stats;
        let rows: [(&str, &str, &str, String); 10] = [
            ("picochat_redis_up", "gauge", "1 when both the command and the subscription links to Redis are up", u8::from(self.up()).to_string()),
            ("picochat_redis_stalled", "gauge", "1 while a command has waited 5 s or more for Redis' reply", u8::from(self.stalled()).to_string()),
            ("picochat_redis_pending_commands", "gauge", "Commands sent to Redis and not yet answered", self.pending.len().to_string()),
            ("picochat_redis_pending_publishes", "gauge", "Chat messages sent to Redis and not yet answered (--redis-max-pending bounds it)", self.publishes_pending.to_string()),
            ("picochat_redis_rtt_seconds_sum", "counter", "Publish round trips to Redis, total seconds", {
                let us = s.rtt_sum.as_micros();
                format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
            }),
            ("picochat_redis_rtt_seconds_count", "counter", "Publish round trips to Redis", s.rtt_count.to_string()),
            ("picochat_redis_reconnects_total", "counter", "Connections made to Redis (the first one included)", s.reconnects.to_string()),
            ("picochat_redis_gaps_filled_total", "counter", "Reads from a room's stream that found messages the subscription had not delivered", s.gaps_filled.to_string()),
            ("picochat_redis_position_checks_total", "counter", "Periodic reads of a room's position in Redis", s.position_checks.to_string()),
            ("picochat_redis_bad_data_total", "counter", "Replies or entries under picochat's keys that were not what picochat writes, skipped", s.bad_data.to_string()),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
}
