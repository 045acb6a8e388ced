//! One WebSocket's session rules, without a socket or a clock of its own:
//! reassembling messages, answering pings, the close handshake (our close is
//! sent once, nothing follows it; a peer's close is echoed once), and
//! liveness (ping a quiet peer, give up when the ping goes unanswered).
//!
//! It takes parsed frames and the time, and returns what to do: a message for
//! the application (a permessage-deflate one inflated, within the message
//! limit, and text checked as UTF-8), a frame to queue, or that the session
//! is over. `conn.rs` does the socket I/O and the output queue; frame parsing
//! is `ws.rs`, deflate itself `deflate.rs`.

use crate::config::Config;
use crate::net::deflate::{self, InflateError};
use crate::net::ws::{self, close, Assembler, CloseReason, Message, Payload, RawFrame};

/// What a WebSocket connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsKind {
    /// A chat client: text goes to the chat core, its frames come back.
    Chat,
    /// The conformance echo endpoint: messages come straight back.
    Echo,
}

#[derive(Debug)]
pub struct WsSession {
    kind: WsKind,
    /// permessage-deflate was negotiated.
    deflate: bool,
    assembler: Assembler,
    /// The chat core announced an upload: the next message, if binary, is
    /// at most this many bytes (inflated), kept or discarded as it arrives.
    /// Boxed: it is rare and short-lived, and every idle WebSocket would
    /// otherwise carry its 24 bytes (docs/performance.md, Footprint).
    upload: Option<Box<Upload>>,
    /// When we pinged a quiet peer; cleared by any byte from it.
    ping_sent: Option<u64>,
    /// Our close frame is queued: no data frame may follow it.
    close_sent: bool,
}

/// An announced upload, as far as the session goes.
#[derive(Debug)]
struct Upload {
    bytes: usize,
    /// Let through (the announcement was accepted), or dropped as it arrives.
    keep: bool,
    /// Payload bytes of the frame being dropped still to come.
    skip: u64,
    /// A dropped message's continuations follow.
    discarding: bool,
}

/// What one received frame means.
#[derive(Debug, PartialEq)]
pub enum Received<'a> {
    /// Nothing for anyone: a fragment of a message, or a pong.
    Nothing,
    /// A complete text (valid UTF-8) or binary message for the application,
    /// inflated if it came deflated: only `Message::Text` or `Message::Binary`.
    Data(Message<'a>),
    /// A control frame to send back (the pong to a ping).
    Answer(Vec<u8>),
    /// The peer closed: send this echo of its close (None if ours was
    /// already sent) and read no more.
    Closed(Option<Vec<u8>>),
}

/// What to do when the peer has been quiet until its deadline.
#[derive(Debug, PartialEq)]
pub enum Quiet {
    /// Send this ping and wait `--pong-timeout` more.
    Ping(Vec<u8>),
    /// The ping went unanswered: send this close (if none was sent) and drop it.
    Dead(Option<Vec<u8>>),
}

impl WsSession {
    pub fn new(kind: WsKind, deflate: bool) -> WsSession {
        WsSession {
            kind,
            deflate,
            assembler: Assembler::default(),
            upload: None,
            ping_sent: None,
            close_sent: false,
        }
    }

    pub fn kind(&self) -> WsKind {
        self.kind
    }

    /// permessage-deflate was negotiated: its messages may come compressed,
    /// and large ones are sent compressed.
    pub fn deflate(&self) -> bool {
        self.deflate
    }

    /// The reassembly state, for the frame parser's size and UTF-8 checks.
    pub fn assembler(&mut self) -> &mut Assembler {
        &mut self.assembler
    }

    /// Bytes of a fragmented message held so far.
    pub fn pending_len(&self) -> usize {
        self.assembler.pending_len()
    }

    /// The next message is an announced upload of at most `bytes`: a binary
    /// one is let through up to that size (inflated, when compressed) when
    /// `keep`, or discarded as it arrives when the announcement was refused.
    /// Any message ends the expectation, whatever it is.
    pub fn expect_upload(&mut self, bytes: usize, keep: bool) {
        self.upload = Some(Box::new(Upload {
            bytes,
            keep,
            skip: 0,
            discarding: false,
        }));
    }

    /// An upload is expected (its bytes may take longer than a message).
    pub fn expects_upload(&self) -> bool {
        self.upload.is_some()
    }

    /// The size limit for the data frame starting `buf` (`limit` for a
    /// text message; an expected upload's size for a binary one).
    pub fn limit_for(&self, buf: &[u8], limit: usize) -> usize {
        let Some(u) = &self.upload else {
            return limit;
        };
        let binary = match buf.first().map(|b| b & 0x0F) {
            Some(0x2) => true,
            Some(0x0) => self.assembler.binary_pending() || u.discarding,
            _ => false,
        };
        if binary {
            u.bytes
        } else {
            limit
        }
    }

    /// A refused upload's bytes still to drop before the next frame header.
    pub fn skip_left(&self) -> u64 {
        self.upload.as_ref().map_or(0, |u| u.skip)
    }

    /// `n` of those bytes dropped; the message ends with them when `last`.
    pub fn skipped(&mut self, n: u64) {
        if let Some(u) = &mut self.upload {
            u.skip -= n.min(u.skip);
            if u.skip == 0 && !u.discarding {
                self.upload = None;
            }
        }
    }

    /// Whether the data frame starting now (`binary`: a binary message's
    /// first frame; else a continuation) is a refused upload's, to drop as
    /// it arrives: `len` payload bytes, `payload_left` of them still to
    /// come after what is here, `fin` whether the message ends with it. The
    /// caller drops what is here.
    pub fn discard(&mut self, binary: bool, fin: bool, len: u64, payload_left: u64) -> bool {
        let Some(u) = &mut self.upload else {
            return false;
        };
        // A refused upload's first frame, or the next of its fragments.
        if u.keep || binary == u.discarding {
            return false;
        }
        u.bytes = u.bytes.saturating_sub(len as usize);
        u.skip = payload_left;
        u.discarding = !fin;
        if payload_left == 0 && fin {
            self.upload = None;
        }
        true
    }

    /// Any byte from the peer shows it is alive.
    pub fn heard(&mut self) {
        self.ping_sent = None;
    }

    /// Whether data frames may still be sent (no close frame was queued).
    pub fn accepts_data(&self) -> bool {
        !self.close_sent
    }

    /// One complete frame from the peer. A deflated message is inflated with
    /// the loop's one inflater, never past `limit` bytes. `Err`: a protocol
    /// violation, to be answered with [`close`](Self::close) and the end of
    /// the connection.
    pub fn receive<'a>(
        &mut self,
        frame: &RawFrame,
        payload: &'a [u8],
        inflater: &mut deflate::Shared,
        limit: usize,
    ) -> Result<Received<'a>, CloseReason> {
        let Some(message) = self.assembler.push(frame, payload)? else {
            return Ok(Received::Nothing);
        };
        let limit = match (&message, self.upload.take()) {
            (Message::Binary(_) | Message::Deflated { text: false, .. }, Some(u)) => u.bytes,
            // A control frame between fragments leaves the expectation be.
            (Message::Ping(_) | Message::Pong(_), kept) => {
                self.upload = kept;
                limit
            }
            _ => limit,
        };
        Ok(match message {
            Message::Text(_) | Message::Binary(_) => Received::Data(message),
            Message::Deflated { text, payload } => {
                let inflated = inflater.inflate(&payload, limit).map_err(|e| match e {
                    InflateError::TooBig => CloseReason::new(close::TOO_BIG, "message too big"),
                    InflateError::Corrupt => {
                        CloseReason::new(close::INVALID_PAYLOAD, "bad deflate data")
                    }
                })?;
                if !text {
                    Received::Data(Message::Binary(Payload::Owned(inflated)))
                } else if std::str::from_utf8(&inflated).is_err() {
                    return Err(ws::invalid_utf8());
                } else {
                    Received::Data(Message::Text(Payload::Owned(inflated)))
                }
            }
            Message::Ping(data) => Received::Answer(ws::pong(data)),
            Message::Pong(_) => Received::Nothing,
            Message::Close(code, _) => {
                let echo = (!self.close_sent).then(|| match code {
                    Some(c) => ws::close_frame(c, ""),
                    None => ws::close_empty(),
                });
                self.close_sent = true;
                Received::Closed(echo)
            }
        })
    }

    /// Our close frame with `why`, the first time only.
    pub fn close(&mut self, why: CloseReason) -> Option<Vec<u8>> {
        if self.close_sent {
            return None;
        }
        self.close_sent = true;
        Some(ws::close_frame(why.code, why.reason))
    }

    /// When the peer must next be heard from: `--ping-interval` after its
    /// last byte, or `--pong-timeout` after our ping.
    pub fn liveness_deadline(&self, last_read: u64, config: &Config) -> u64 {
        match self.ping_sent {
            Some(t) => t + config.pong_timeout.as_millis() as u64,
            None => last_read + config.ping_interval.as_millis() as u64,
        }
    }

    /// The liveness deadline passed.
    pub fn on_quiet(&mut self, now: u64) -> Quiet {
        match self.ping_sent {
            None => {
                self.ping_sent = Some(now);
                Quiet::Ping(ws::ping(b"picochat"))
            }
            Some(_) => Quiet::Dead(self.close(CloseReason::new(close::GOING_AWAY, "ping timeout"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ws::{apply_mask, parse_frame, Parse, Role};
    use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
    use tungstenite::protocol::frame::FrameHeader;

    /// Feeds one client frame (masked, as a browser sends it) to the session.
    fn feed(
        s: &mut WsSession,
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
    ) -> Result<Received<'static>, CloseReason> {
        let mask = [9, 8, 7, 6];
        let header = FrameHeader {
            is_final: fin,
            opcode,
            mask: Some(mask),
            ..FrameHeader::default()
        };
        let mut bytes = Vec::new();
        header.format(payload.len() as u64, &mut bytes).unwrap();
        let start = bytes.len();
        bytes.extend_from_slice(payload);
        apply_mask(&mut bytes[start..], mask);
        let Ok(Parse::Frame(frame)) =
            parse_frame(&mut bytes, Role::Server, 1 << 16, s.pending_len(), false)
        else {
            panic!("not one whole frame");
        };
        let payload: &'static [u8] =
            Box::leak(bytes[frame.payload.clone()].to_vec().into_boxed_slice());
        s.receive(&frame, payload, &mut deflate::Shared::default(), 1 << 16)
    }

    fn text(t: &'static str) -> Received<'static> {
        Received::Data(Message::Text(ws::Payload::Borrowed(t.as_bytes())))
    }

    #[test]
    fn fragments_make_one_message_and_pings_are_answered_in_between() {
        let mut s = WsSession::new(WsKind::Chat, false);
        assert_eq!(
            feed(&mut s, OpCode::Data(Data::Text), false, b"hel"),
            Ok(Received::Nothing)
        );
        assert_eq!(
            feed(&mut s, OpCode::Control(Control::Ping), true, b"p"),
            Ok(Received::Answer(ws::pong(b"p")))
        );
        let Ok(Received::Data(Message::Text(got))) =
            feed(&mut s, OpCode::Data(Data::Continue), true, b"lo")
        else {
            panic!("no message")
        };
        assert_eq!(&*got, b"hello");
        assert_eq!(
            feed(&mut s, OpCode::Data(Data::Text), true, b"x"),
            Ok(text("x"))
        );
        assert_eq!(
            feed(&mut s, OpCode::Control(Control::Pong), true, b""),
            Ok(Received::Nothing)
        );
    }

    #[test]
    fn a_peer_close_is_echoed_once_with_its_code() {
        let mut s = WsSession::new(WsKind::Chat, false);
        let got = feed(
            &mut s,
            OpCode::Control(Control::Close),
            true,
            &1000u16.to_be_bytes(),
        );
        assert_eq!(got, Ok(Received::Closed(Some(ws::close_frame(1000, "")))));
        assert!(!s.accepts_data(), "nothing may follow the echo");
        assert_eq!(
            s.close(CloseReason::new(1001, "bye")),
            None,
            "no second close"
        );
        let mut s = WsSession::new(WsKind::Chat, false);
        let got = feed(&mut s, OpCode::Control(Control::Close), true, b"");
        assert_eq!(
            got,
            Ok(Received::Closed(Some(ws::close_empty()))),
            "an empty close gets an empty echo"
        );
    }

    #[test]
    fn our_close_is_sent_once_and_the_peer_answer_needs_no_echo() {
        let mut s = WsSession::new(WsKind::Chat, false);
        assert_eq!(
            s.close(CloseReason::new(close::TOO_BIG, "too big")),
            Some(ws::close_frame(close::TOO_BIG, "too big"))
        );
        assert_eq!(s.close(CloseReason::new(close::GOING_AWAY, "again")), None);
        let got = feed(
            &mut s,
            OpCode::Control(Control::Close),
            true,
            &1009u16.to_be_bytes(),
        );
        assert_eq!(got, Ok(Received::Closed(None)), "the handshake is complete");
    }

    #[test]
    fn a_quiet_peer_is_pinged_then_dropped_unless_it_answers() {
        let config = Config::default();
        let interval = config.ping_interval.as_millis() as u64;
        let grace = config.pong_timeout.as_millis() as u64;
        let mut s = WsSession::new(WsKind::Chat, false);
        assert_eq!(s.liveness_deadline(100, &config), 100 + interval);
        assert_eq!(
            s.on_quiet(100 + interval),
            Quiet::Ping(ws::ping(b"picochat"))
        );
        assert_eq!(s.liveness_deadline(100, &config), 100 + interval + grace);
        // Any byte (the pong) counts: back to the ping interval.
        s.heard();
        assert_eq!(s.liveness_deadline(500, &config), 500 + interval);
        assert!(matches!(s.on_quiet(500 + interval), Quiet::Ping(_)));
        assert_eq!(
            s.on_quiet(500 + interval + grace),
            Quiet::Dead(Some(ws::close_frame(close::GOING_AWAY, "ping timeout")))
        );
        assert!(!s.accepts_data());
    }

    #[test]
    fn protocol_errors_are_returned_for_the_connection_to_close() {
        let mut s = WsSession::new(WsKind::Chat, false);
        let got = feed(&mut s, OpCode::Data(Data::Continue), true, b"x");
        assert_eq!(
            got.map_err(|e| e.code),
            Err(close::PROTOCOL_ERROR),
            "a continuation with nothing to continue"
        );
    }
}
