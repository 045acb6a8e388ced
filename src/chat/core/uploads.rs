//! An upload: `{"type":"upload","room":R,"bytes":N,"message":caption}`
//! announces an image, checked like a message (in the room, bans,
//! read-only, slow mode, the caption's size) and against `--max-upload`
//! and `--upload-memory`; the shell then lets the client's next binary
//! message through, or drops it as it arrives when the announcement was
//! refused. The image that comes is checked and cleaned (`crate::image`),
//! named with the shell's random bits, and appended as a message carrying
//! an `attachment`: the log stores the file before the record, so nothing
//! is delivered that was not stored.

use super::*;
use crate::chat::incoming::Number;
use crate::chat::record::File;
use crate::chat::record_frames::{upload_fields, Attachment};
use crate::image;

/// Uploads accepted (appended with their image) and refused, by error code.
#[derive(Debug, Default)]
pub struct UploadStats {
    pub accepted: u64,
    /// By error code, in the order first seen (a handful of codes).
    pub refused: Vec<(&'static str, u64)>,
}

impl UploadStats {
    fn refused(&mut self, code: ErrorCode) {
        let code = code.code();
        match self.refused.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => self.refused.push((code, 1)),
        }
    }
}

/// An announced upload waiting for its bytes.
#[derive(Debug)]
pub struct PendingUpload {
    room: RoomName,
    bytes: usize,
    /// What it counts against `--upload-memory`: the most its bytes may
    /// take while they arrive (deflated, a little more than `bytes`).
    held: usize,
    caption: String,
}

impl Core {
    /// `{"type":"upload"}`: reserves the bytes and lets them through, or
    /// refuses (and has them dropped as they arrive).
    pub(super) fn announce_upload(
        &mut self,
        client: ClientId,
        room: &RoomName,
        bytes: Number,
        caption: Option<&str>,
        now: u64,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        self.release_upload(client);
        let announced = match bytes {
            Number::Int(n) => usize::try_from(n).unwrap_or(usize::MAX),
            _ => self.limits.max_upload,
        };
        match self.upload_allowed(client, room, bytes, caption.unwrap_or(""), now) {
            Ok(pending) => {
                self.upload_reserved += pending.held;
                out.push(Command::ExpectUpload {
                    client,
                    bytes: pending.bytes,
                    keep: true,
                });
                self.uploads.push((client, pending));
                Ok(())
            }
            Err(code) => {
                self.upload_stats.refused(code);
                out.push(Command::ExpectUpload {
                    client,
                    bytes: announced,
                    keep: false,
                });
                Err(code)
            }
        }
    }

    /// Every refusal of an announcement, in order.
    fn upload_allowed(
        &mut self,
        client: ClientId,
        room: &RoomName,
        bytes: Number,
        caption: &str,
        now: u64,
    ) -> Result<PendingUpload, ErrorCode> {
        let Some(session) = self.session_in(client, room)? else {
            return Err(ErrorCode::NotJoined);
        };
        let who = session.identity.as_deref().ok_or(ErrorCode::NotJoined)?;
        let name = who.username.clone();
        let bytes = match bytes {
            Number::Int(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => return Err(ErrorCode::BadUpload),
        };
        if bytes > self.limits.max_upload {
            return Err(ErrorCode::UploadTooLarge);
        }
        if !self.stores_files {
            return Err(ErrorCode::Unavailable);
        }
        if self.moderation.name_banned(&name, now) {
            return Err(ErrorCode::Banned);
        }
        if caption.len() > self.limits.max_text {
            return Err(ErrorCode::MessageTooLong);
        }
        if let Some(s) = self.moderation.room(room) {
            if s.read_only {
                return Err(ErrorCode::ReadOnly);
            }
            if s.slow_mode > 0 {
                let wait = u64::from(s.slow_mode) * 1000;
                if let Some(r) = self.rooms.get_mut(room) {
                    if !r.slow_mode_allows(&name, now, wait) {
                        return Err(ErrorCode::SlowMode);
                    }
                }
            }
        }
        let held = (self.limits.upload_wire)(bytes);
        if self.upload_reserved.saturating_add(held) > self.limits.upload_memory {
            return Err(ErrorCode::Unavailable);
        }
        Ok(PendingUpload {
            room: room.clone(),
            bytes,
            held,
            caption: caption.to_string(),
        })
    }

    /// A binary message: the announced image, checked, cleaned and appended
    /// as a message with its file; without an announcement, refused.
    pub(super) fn received_upload(
        &mut self,
        client: ClientId,
        data: &[u8],
        nonce: u128,
        now: u64,
        out: &mut Out,
    ) {
        let Some(pending) = self.release_upload(client) else {
            let json = protocol::error_json(ErrorCode::BinaryUnsupported, None);
            return reply(out, client, json);
        };
        let room = pending.room.clone();
        if let Err(code) = self.upload_message(client, pending, data, nonce, now, out) {
            self.upload_stats.refused(code);
            let json = protocol::error_json(code, Some(&room));
            let json = self.for_client(client, &room, json);
            reply(out, client, json);
        }
    }

    fn upload_message(
        &mut self,
        client: ClientId,
        pending: PendingUpload,
        data: &[u8],
        nonce: u128,
        now: u64,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        if data.len() != pending.bytes {
            return Err(ErrorCode::BadUpload);
        }
        let checked = image::check(data).map_err(|_| ErrorCode::BadUpload)?;
        let room = &pending.room;
        let Some(session) = self.session_in(client, room)? else {
            return Ok(());
        };
        let who = session.identity.as_deref().ok_or(ErrorCode::NotJoined)?;
        let name = format!("{}.{}", file_id(nonce), checked.format.ext());
        let attachment = Attachment {
            url: format!("/u/{name}"),
            kind: checked.format.mime(),
            bytes: checked.bytes.len(),
            width: checked.width,
            height: checked.height,
        };
        let to = direct::is_direct(room)
            .then(|| self.other_name(room, who.owner))
            .flatten();
        let fields = upload_fields(
            now,
            &who.view(),
            &pending.caption,
            to.as_deref(),
            &attachment,
        );
        out.push(Command::Append(Draft {
            room: room.clone(),
            sender: Some(client),
            time: now,
            kind: Kind::Message,
            fields,
            owner: who.owner,
            file: Some(Box::new(File {
                name,
                bytes: checked.bytes,
            })),
        }));
        self.upload_stats.accepted += 1;
        Ok(())
    }

    /// Ends `client`'s announced upload, if any, freeing its reservation.
    pub(super) fn release_upload(&mut self, client: ClientId) -> Option<PendingUpload> {
        let at = self.uploads.iter().position(|(c, _)| *c == client)?;
        let (_, pending) = self.uploads.swap_remove(at);
        self.upload_reserved -= pending.held;
        Some(pending)
    }

    /// With `--auth`, whether a request for an image proved the page signed
    /// in (the cookie its welcome's `files_key` set).
    pub fn files_allowed(&self, cookie: Option<&str>) -> bool {
        self.access.files_allowed(cookie)
    }

    pub fn upload_stats(&self) -> &UploadStats {
        &self.upload_stats
    }

    /// A text frame came where an announced upload's bytes should have: the
    /// upload is over (the shell let the text through as a message).
    pub(super) fn upload_abandoned(&mut self, client: ClientId, out: &mut Out) {
        if let Some(p) = self.release_upload(client) {
            let json = protocol::error_json(ErrorCode::BadUpload, Some(&p.room));
            let json = self.for_client(client, &p.room, json);
            reply(out, client, json);
        }
    }
}

/// 128 random bits as 22 URL-safe base64 characters: an image's name,
/// never guessable from another's.
pub fn file_id(nonce: u128) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..22)
        .map(|i| ALPHABET[((nonce >> (6 * i)) & 63) as usize] as char)
        .collect()
}

/// The name of the image a message frame carries (`"attachment":{"url":"/u/<name>"}`).
/// The frame is the server's own JSON: in a text, every quote is escaped,
/// so this sequence comes only from an attachment.
pub fn attachment_name(frame: &str) -> Option<String> {
    let (_, rest) = frame.split_once("\"attachment\":{\"url\":\"/u/")?;
    let name = &rest[..rest.find('"')?];
    image::stored_name(name).map(str::to_string)
}
