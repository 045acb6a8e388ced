//! Replies on the command link, in the order the commands went: a publish
//! answered (its round trip timed, the draft now only waiting for its
//! delivery) or refused, reads, presence, settings and the directory.

use super::*;

impl RedisLog {
    pub(super) fn cmd_reply(&mut self, reply: Value) {
        let Some(p) = self.pending.pop_front() else {
            self.errors_total += 1;
            diag_warn!("redis: a reply nothing asked for: {reply:?}");
            return;
        };
        // A reply is progress: the wait starts again for the next one, if any.
        self.waiting_since = (!self.pending.is_empty()).then(Instant::now);
        match p {
            Pending::Handshake(what) => match reply {
                Value::Error(e) => {
                    if self.refused.is_none() {
                        diag_warn!("redis: {what} refused: {e}");
                    }
                    self.refused = Some(e);
                    self.drop_links = true;
                    self.errors_total += 1;
                }
                _ => {
                    // The last step of the handshake: all of it passed.
                    if what == "SCRIPT LOAD" && !self.drop_links {
                        self.refused = None;
                    }
                }
            },
            Pending::Publish {
                room, sender, sent, ..
            } => {
                self.publishes_pending -= 1;
                match reply {
                    Value::Array(parts) => {
                        self.stats.rtt_sum += sent.elapsed();
                        self.stats.rtt_count += 1;
                        if let Some(Value::Int(bytes)) = parts.get(2) {
                            self.file_bytes = usize::try_from(*bytes).unwrap_or(0);
                        }
                    }
                    other => {
                        self.errors_total += 1;
                        self.stats.bad_data += 1;
                        diag_warn!("redis: publish to {room} failed: {other:?}");
                        if matches!(&other, Value::Error(e) if e.starts_with("NOSCRIPT")) {
                            self.cmd.send(&["SCRIPT", "LOAD", PUBLISH_LUA]);
                            self.expect(Pending::Handshake("SCRIPT LOAD"));
                        }
                        self.ready.push(LogEvent::Refused { room, sender });
                    }
                }
            }
            Pending::Read { room, gen } => self.read_reply(room, gen, reply),
            Pending::Page { ticket, room } => match decode::page(&room, &reply) {
                Some((found, exhausted)) => self.ready.push(LogEvent::Read {
                    ticket,
                    found,
                    exhausted,
                }),
                None => {
                    self.errors_total += 1;
                    self.stats.bad_data += 1;
                    diag_warn!("redis: reading older messages of {room} failed: {reply:?}");
                    self.ready.push(LogEvent::ReadFailed { ticket });
                }
            },
            Pending::Presence => {
                if let Value::Error(e) = reply {
                    self.errors_total += 1;
                    self.stats.bad_data += 1;
                    diag_warn!("redis: a presence update failed: {e}");
                }
            }
            Pending::Setting => {
                if let Value::Error(e) = reply {
                    self.errors_total += 1;
                    diag_warn!("redis: storing a moderation setting failed: {e}");
                }
            }
            Pending::Settings => match decode::settings(&reply) {
                Some(all) => self.ready.push(LogEvent::Settings(all)),
                None => {
                    self.stats.bad_data += 1;
                    diag_warn!("redis: reading the moderation settings failed: {reply:?}");
                }
            },
            Pending::File(name) => {
                let fetched = match reply {
                    Value::Bulk(bytes) => crate::log::Fetched::Bytes(bytes.into()),
                    Value::Nil => crate::log::Fetched::Missing,
                    other => {
                        self.errors_total += 1;
                        diag_warn!("redis: reading the image {name} failed: {other:?}");
                        crate::log::Fetched::Failed
                    }
                };
                self.ready.push(LogEvent::File { name, fetched });
            }
            Pending::Unfile => match reply {
                Value::Int(bytes) => self.file_bytes = usize::try_from(bytes).unwrap_or(0),
                other => {
                    self.errors_total += 1;
                    diag_warn!("redis: removing a deleted message's image failed: {other:?}");
                }
            },
            Pending::Directory => match decode::directory(&reply) {
                Some(list) => self.ready.push(LogEvent::Directory(list)),
                None => {
                    self.stats.bad_data += 1;
                    diag_warn!("redis: reading the rooms directory failed: {reply:?}");
                }
            },
        }
    }
}
