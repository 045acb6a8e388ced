//! What a load client receives: the frames in its input parsed (many per
//! read), a broadcast's sender, sequence and send time read from its text
//! (inflated once per distinct compressed frame), and each delivery counted
//! in its room and node's cell with its latency; an image's message starts
//! its fetch (`images.rs`).

use super::*;

/// Compressed payloads lately inflated, and what they inflated to.
#[derive(Default)]
pub(super) struct InflateCache {
    recent: std::collections::VecDeque<(Vec<u8>, std::rc::Rc<[u8]>)>,
}

impl InflateCache {
    const SIZE: usize = 64;

    fn get(
        &mut self,
        compressed: &[u8],
        inflater: &mut picochat::net::deflate::Inflater,
    ) -> Result<std::rc::Rc<[u8]>, picochat::net::deflate::InflateError> {
        // Newest first: a broadcast's copies arrive one after another.
        if let Some((_, plain)) = self.recent.iter().rev().find(|(c, _)| c[..] == *compressed) {
            return Ok(plain.clone());
        }
        let plain: std::rc::Rc<[u8]> = inflater.inflate(compressed, 1 << 24)?.into();
        if self.recent.len() == Self::SIZE {
            self.recent.pop_front();
        }
        self.recent.push_back((compressed.to_vec(), plain.clone()));
        Ok(plain)
    }
}

impl Gen {
    pub(super) fn parse(&mut self, key: usize) {
        let now_us = self.now_us();
        let Some(c) = self.clients.get_mut(key) else {
            return;
        };
        let mut buf = std::mem::take(&mut c.inbuf);
        let mut pos = 0;
        let mut echoes = 0u32;
        let mut join_room = None;
        let mut result: Result<(), String> = Ok(());
        if matches!(c.state, State::Handshake) {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                c.inbuf = buf;
                return;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let accept = tungstenite::handshake::derive_accept_key(KEY.as_bytes());
            if !head.starts_with("HTTP/1.1 101") || !head.contains(&accept) {
                let first = head.lines().next().unwrap_or("").to_string();
                return self.fail(Some(key), format!("upgrade refused: {first}"));
            }
            c.state = State::Open;
            c.deflate = head.contains("permessage-deflate");
            self.c.compressing += usize::from(c.deflate);
            self.c.connected += 1;
            self.node_clients[c.node] += 1;
            if let Some(r) = c.room {
                join_room = Some((r, key));
            }
            self.c
                .connect_us
                .push(c.started.elapsed().as_micros() as u64);
            pos = end + 4;
        }
        let mut pongs: Vec<Vec<u8>> = Vec::new();
        let mut answered: Vec<requests::Kind> = Vec::new();
        let mut images: Vec<(String, Option<(usize, u64)>)> = Vec::new();
        let mut upload_refused = None;
        while pos < buf.len() {
            match ws::parse_frame(&mut buf[pos..], Role::Client, 1 << 24, 0, c.deflate) {
                Ok(Parse::Incomplete { .. }) => break,
                Err(e) => {
                    result = Err(format!("bad frame from server: {}", e.reason));
                    break;
                }
                Ok(Parse::Frame(f)) => {
                    let raw = &buf[pos + f.payload.start..pos + f.payload.end];
                    let inflated;
                    let payload = if f.compressed {
                        inflated = match self.inflated.get(raw, &mut self.inflater) {
                            Ok(bytes) => bytes,
                            Err(e) => {
                                result = Err(format!("bad compressed frame from server: {e:?}"));
                                break;
                            }
                        };
                        self.c.compressed_frames += 1;
                        &inflated[..]
                    } else {
                        raw
                    };
                    match f.opcode {
                        OpCode::Data(Data::Text) => {
                            if payload.starts_with(br#"{"type":"typing""#) {
                                self.mix.typing_received += 1;
                            } else if payload.starts_with(br#"{"type":"react""#) {
                                self.mix.reactions_received += 1;
                            } else if payload.starts_with(br#"{"type":"history""#) {
                                answered.push(requests::Kind::Page);
                            } else if payload.starts_with(br#"{"type":"search""#) {
                                answered.push(requests::Kind::Search);
                            } else if payload.starts_with(br#"{"type":"welcome""#) {
                                c.last_id = c.last_id.max(requests::last_id(payload));
                                // Checked first: its history may hold earlier runs' messages.
                                if let Some(r) = room_index(payload) {
                                    if r < self.args.rooms {
                                        self.cells.at(r, c.node).members += 1;
                                        c.welcomes += 1;
                                        if c.welcomes == self.args.rooms_per_client {
                                            self.c.joined += 1;
                                        }
                                    }
                                }
                            } else if payload.starts_with(br#"{"type":"error""#)
                                && (c.asked_page.is_some() || c.asked_search.is_some())
                            {
                                answered.push(requests::Kind::Refused);
                            } else if payload.starts_with(br#"{"type":"error""#)
                                && c.uploading.is_some()
                            {
                                upload_refused =
                                    Some(String::from_utf8_lossy(payload).into_owned());
                            } else if let Some(image) = payload
                                .starts_with(br#"{"type":"message""#)
                                .then(|| images::attachment(payload))
                                .flatten()
                            {
                                images.push(image);
                            } else if payload.starts_with(br#"{"type":"error""#)
                                && self.args.rooms > 0
                                && c.welcomes < self.args.rooms_per_client
                                && !c.refused
                            {
                                // A join refused (room_limit, banned, ...): counted, not waited for.
                                c.refused = true;
                                self.c.join_refused += 1;
                                self.c.first_error.get_or_insert_with(|| {
                                    format!("join refused: {}", String::from_utf8_lossy(payload))
                                });
                            } else if let Some((sender, sent_us)) = token(payload) {
                                self.c.received += 1;
                                let room = room_index(payload).or(c.room).unwrap_or(0);
                                self.cells.at(room, c.node).received += 1;
                                let latency = now_us.saturating_sub(sent_us);
                                self.hist.record(latency);
                                self.sampler.hist.record(latency);
                                self.node_hist[c.node].record(latency);
                                if c.sender == Some(sender) {
                                    echoes += 1;
                                }
                            }
                        }
                        OpCode::Control(Control::Ping) => pongs.push(payload.to_vec()),
                        OpCode::Control(Control::Pong) => answered.push(requests::Kind::Ping),
                        OpCode::Control(Control::Close) => {
                            result = Err("server sent close".into());
                            break;
                        }
                        _ => {}
                    }
                    pos += f.consumed();
                }
            }
        }
        buf.drain(..pos);
        c.inbuf = buf;
        for kind in answered {
            self.answered(key, kind, now_us);
        }
        if let Some(error) = upload_refused {
            self.upload_refused(key, &error);
        }
        for (url, ours) in images {
            if let Some((uploader, sent_us)) = ours.filter(|(k, _)| *k == key) {
                self.uploaded(uploader, sent_us, now_us);
            }
            self.fetch(key, &url, now_us);
        }
        let Some(c) = self.clients.get_mut(key) else {
            return;
        };
        c.inflight = c.inflight.saturating_sub(echoes);
        if let Err(why) = result {
            return self.fail(Some(key), why);
        }
        if let Some((r, key)) = join_room {
            for extra in 0..self.args.rooms_per_client {
                let mask = self.mask();
                let room = (r + extra) % self.args.rooms;
                let join =
                    format!(r#"{{"type":"join","room":"load-{room}","username":"load{key}"}}"#);
                if let Some(c) = self.clients.get_mut(key) {
                    c.out.extend_from_slice(&ws::encode_masked(
                        OpCode::Data(Data::Text),
                        join.as_bytes(),
                        mask,
                    ));
                }
            }
        }
        for p in pongs {
            let mask = self.mask();
            if let Some(c) = self.clients.get_mut(key) {
                c.out.extend_from_slice(&ws::encode_masked(
                    OpCode::Control(Control::Pong),
                    &p,
                    mask,
                ));
            }
        }
        // Closed loop: an echo of our own message lets the next one go.
        if self.sending && self.args.rate == 0.0 {
            for _ in 0..echoes {
                self.send_from(key, self.now_us());
            }
        }
        self.flush(key);
    }
}

/// The N of `"room":"load-N"` in a frame from picochat.
pub(super) fn room_index(payload: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"\"room\":\"load-";
    let at = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = payload[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&payload[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// Extracts (sender, intended send time µs) from a broadcast frame's text.
pub(super) fn token(payload: &[u8]) -> Option<(u32, u64)> {
    const KEY: &[u8] = b"\"message\":\"L";
    let at = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let mut fields = payload[at..].splitn(4, |&b| b == b'.');
    let num = |f: Option<&[u8]>| -> Option<u64> { std::str::from_utf8(f?).ok()?.parse().ok() };
    let sender = num(fields.next())? as u32;
    let _seq = num(fields.next())?;
    let sent = num(fields.next())?;
    Some((sender, sent))
}
