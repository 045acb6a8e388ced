//! WebSocket framing (RFC 6455) without sockets: parse and unmask frames found
//! in a byte buffer, reassemble fragmented messages, validate UTF-8 and close
//! frames, and encode outgoing frames.
//!
//! The frame header codec, opcodes and close codes are tungstenite's
//! (`FrameHeader::parse/format`); what tungstenite's `WebSocket` would add on
//! top (a 128 KiB read buffer per connection, blocking-style I/O) is exactly
//! what picochat avoids, so the message rules live here instead. Used by the
//! server (client frames must be masked) and by `picochat-load` (server frames
//! must not be). Chat rules are not here; neither is any I/O.

use std::io::Cursor;
use std::ops::Range;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Close codes picochat sends (RFC 6455 section 7.4.1).
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const UNSUPPORTED: u16 = 1003;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// Why this end is failing the connection: the code and a short reason for the close frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: &'static str,
}

impl CloseReason {
    pub const fn new(code: u16, reason: &'static str) -> Self {
        CloseReason { code, reason }
    }
}

fn protocol(reason: &'static str) -> CloseReason {
    CloseReason::new(close::PROTOCOL_ERROR, reason)
}

/// Which side of the connection this end is: it decides which masking is legal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Frames from the peer must be masked (we are the server).
    Server,
    /// Frames from the peer must not be masked (we are a client, e.g. the load generator).
    Client,
}

/// One frame located in a buffer; its payload has already been unmasked in place.
#[derive(Debug)]
pub struct RawFrame {
    pub is_final: bool,
    pub opcode: OpCode,
    /// RSV1 on the first frame of a data message: the message is deflated
    /// (permessage-deflate, only when negotiated).
    pub compressed: bool,
    /// Payload position, relative to the slice passed to [`parse_frame`].
    pub payload: Range<usize>,
}

impl RawFrame {
    /// Bytes of the buffer this frame used up.
    pub fn consumed(&self) -> usize {
        self.payload.end
    }
}

/// Outcome of looking for a frame at the start of a buffer.
#[derive(Debug)]
pub enum Parse {
    Frame(RawFrame),
    /// Not all of the frame is here yet; `total` is its full size when known, so
    /// the caller can reserve once instead of growing its buffer read by read.
    /// `arriving` describes a frame whose header is complete, so the part of
    /// its payload already here can be checked early ([`Assembler::check_arrived`]).
    Incomplete {
        total: Option<usize>,
        arriving: Option<ArrivingFrame>,
    },
}

/// A frame whose header has arrived but whose payload has not, all of it.
#[derive(Clone, Copy, Debug)]
pub struct ArrivingFrame {
    pub opcode: OpCode,
    pub compressed: bool,
    pub mask: Option<[u8; 4]>,
    /// Where the payload starts in the buffer.
    pub payload_start: usize,
}

/// The most bytes a deflater may turn `n` bytes into: data that does not
/// compress (a JPEG, a PNG) comes out longer than it went in, by 5 bytes per
/// stored block (8 KiB blocks from Python's websockets, whose zlib runs at
/// memLevel 5) or up to 1/8 in fixed-Huffman blocks. zlib's bound for any
/// settings (`deflateBound` when they are not its defaults), so a sender's
/// deflate of a message within a limit is never refused for its size on
/// the wire; the limit itself holds the inflated message.
pub fn deflate_bound(n: usize) -> usize {
    n.saturating_add((n >> 3) + (n >> 6) + 16)
}

/// Whether the data frame starting `buf` carries deflate data: the first
/// frame of a message with RSV1 set, or a continuation of such a message.
pub fn deflate_data(buf: &[u8], assembler: &Assembler) -> bool {
    match buf.first() {
        Some(b) if b & 0x0F == 0x0 => assembler.compressed_pending(),
        Some(b) => b & 0x40 != 0,
        None => false,
    }
}

/// Finds one frame at the start of `buf` and unmasks it in place.
///
/// `max_message` bounds a data message: `so_far` bytes of the current
/// fragmented message are already held, and a frame that would take the total
/// past the limit is refused with 1009 as soon as its header is seen, before
/// any of its payload is buffered. With `deflate` (permessage-deflate was
/// negotiated) RSV1 may mark the first frame of a data message as compressed;
/// on any other frame, or without the extension, it is a protocol error.
pub fn parse_frame(
    buf: &mut [u8],
    role: Role,
    max_message: usize,
    so_far: usize,
    deflate: bool,
) -> Result<Parse, CloseReason> {
    let mut cursor = Cursor::new(&*buf);
    let (header, len) = match FrameHeader::parse(&mut cursor) {
        Ok(Some(h)) => h,
        Ok(None) => {
            return Ok(Parse::Incomplete {
                total: None,
                arriving: None,
            })
        }
        Err(_) => return Err(protocol("reserved opcode")),
    };
    let start = cursor.position() as usize;
    if header.rsv2 || header.rsv3 || (header.rsv1 && !deflate) {
        return Err(protocol("reserved bits set without an extension"));
    }
    let compressed = header.rsv1;
    if compressed && !matches!(header.opcode, OpCode::Data(Data::Text | Data::Binary)) {
        return Err(protocol("RSV1 on a control or continuation frame"));
    }
    match (role, header.mask.is_some()) {
        (Role::Server, false) => return Err(protocol("client frames must be masked")),
        (Role::Client, true) => return Err(protocol("server frames must not be masked")),
        _ => {}
    }
    match header.opcode {
        OpCode::Control(_) => {
            if len > 125 {
                return Err(protocol("control frame payload over 125 bytes"));
            }
            if !header.is_final {
                return Err(protocol("fragmented control frame"));
            }
        }
        OpCode::Data(_) => {
            if len > (max_message.saturating_sub(so_far)) as u64 {
                return Err(CloseReason::new(close::TOO_BIG, "message too big"));
            }
        }
    }
    let end = start + len as usize; // len <= max_message, so it fits
    if buf.len() < end {
        let arriving = ArrivingFrame {
            opcode: header.opcode,
            compressed,
            mask: header.mask,
            payload_start: start,
        };
        return Ok(Parse::Incomplete {
            total: Some(end),
            arriving: Some(arriving),
        });
    }
    if let Some(mask) = header.mask {
        apply_mask(&mut buf[start..end], mask);
    }
    Ok(Parse::Frame(RawFrame {
        is_final: header.is_final,
        opcode: header.opcode,
        compressed,
        payload: start..end,
    }))
}

/// XORs `mask` over `data` (the operation is its own inverse), eight bytes at a time.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    apply_mask_from(data, mask, 0);
}

/// Like [`apply_mask`] for payload bytes that start `offset` bytes into the payload.
pub fn apply_mask_from(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let mask = [
        mask[offset & 3],
        mask[(offset + 1) & 3],
        mask[(offset + 2) & 3],
        mask[(offset + 3) & 3],
    ];
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// A complete message or control frame, ready for the layer above.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Valid UTF-8 text. Borrowed from the read buffer when it came in one frame.
    Text(Payload<'a>),
    Binary(Payload<'a>),
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    /// The peer's close: its code (None when the frame had no body) and reason.
    Close(Option<u16>, &'a str),
    /// A permessage-deflate message, still deflated: the caller inflates it
    /// (with the loop's one inflater) and checks text as UTF-8 then.
    Deflated {
        text: bool,
        payload: Payload<'a>,
    },
}

/// Message bytes: borrowed from the read buffer, or owned after reassembly.
#[derive(Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Payload<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Payload::Borrowed(b) => b,
            Payload::Owned(v) => v,
        }
    }
}

/// Reassembles fragmented data messages. Holds nothing (two `None`s) between
/// messages, so an idle connection pays two pointers for it.
#[derive(Debug, Default)]
pub struct Assembler {
    partial: Option<Box<Partial>>,
    /// UTF-8 checked so far of a text frame still arriving.
    arriving: Option<Box<Progress>>,
}

#[derive(Debug, Default)]
struct Progress {
    /// Payload bytes of the arriving frame already checked.
    checked: usize,
    /// The start of a character cut off at the end of what was checked.
    carry: Vec<u8>,
}

#[derive(Debug)]
struct Partial {
    text: bool,
    /// Deflated: no UTF-8 check until it is inflated.
    compressed: bool,
    buf: Vec<u8>,
    /// Bytes of `buf` known to be valid UTF-8, so each fragment is checked once
    /// and invalid text fails fast instead of at the final fragment.
    valid_to: usize,
}

impl Assembler {
    /// Bytes of the fragmented message in progress, for the size limit.
    pub fn pending_len(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.buf.len())
    }

    /// A fragmented binary message is in progress (its continuations are binary).
    pub fn binary_pending(&self) -> bool {
        self.partial.as_ref().is_some_and(|p| !p.text)
    }

    /// A fragmented deflated message is in progress (its continuations
    /// carry deflate data, not the message itself).
    pub fn compressed_pending(&self) -> bool {
        self.partial.as_ref().is_some_and(|p| p.compressed)
    }

    /// Checks the part of a text frame that has arrived so far, so invalid
    /// UTF-8 closes the connection at once instead of when the frame is
    /// complete (Autobahn 6.4.3/6.4.4). Only bytes new since the last call are
    /// looked at: a large frame arriving in many reads is checked once, in total.
    pub fn check_arrived(&mut self, buf: &[u8], frame: &ArrivingFrame) -> Result<(), CloseReason> {
        let text = match frame.opcode {
            OpCode::Data(Data::Text) => !frame.compressed,
            OpCode::Data(Data::Continue) => self
                .partial
                .as_ref()
                .is_some_and(|p| p.text && !p.compressed),
            _ => false,
        };
        let arrived = buf.get(frame.payload_start..).unwrap_or(&[]);
        if !text || arrived.is_empty() {
            return Ok(());
        }
        let partial = &self.partial;
        let progress = self.arriving.get_or_insert_with(|| {
            // A character cut at the end of the previous fragment continues here.
            let carry = match (frame.opcode, partial) {
                (OpCode::Data(Data::Continue), Some(p)) => p.buf[p.valid_to..].to_vec(),
                _ => Vec::new(),
            };
            Box::new(Progress { checked: 0, carry })
        });
        if arrived.len() <= progress.checked {
            return Ok(());
        }
        // The cut character carried over, then the new bytes, unmasked.
        let mut chunk = std::mem::take(&mut progress.carry);
        let from = chunk.len();
        chunk.extend_from_slice(&arrived[progress.checked..]);
        if let Some(mask) = frame.mask {
            apply_mask_from(&mut chunk[from..], mask, progress.checked);
        }
        progress.checked = arrived.len();
        match std::str::from_utf8(&chunk) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                progress.carry = chunk[e.valid_up_to()..].to_vec();
                Ok(())
            }
            Err(_) => Err(invalid_utf8()),
        }
    }

    /// Feeds one parsed frame; returns a message when one is complete.
    pub fn push<'a>(
        &mut self,
        frame: &RawFrame,
        payload: &'a [u8],
    ) -> Result<Option<Message<'a>>, CloseReason> {
        // The frame is whole now; the full checks below take over.
        self.arriving = None;
        match frame.opcode {
            OpCode::Control(Control::Ping) => Ok(Some(Message::Ping(payload))),
            OpCode::Control(Control::Pong) => Ok(Some(Message::Pong(payload))),
            OpCode::Control(Control::Close) => parse_close(payload).map(Some),
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                Err(protocol("reserved opcode"))
            }
            OpCode::Data(Data::Continue) => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err(protocol("continuation without a message to continue"));
                };
                partial.buf.extend_from_slice(payload);
                if partial.text && !partial.compressed {
                    check_utf8_prefix(partial, frame.is_final)?;
                }
                if !frame.is_final {
                    return Ok(None);
                }
                let done = self.partial.take().map(|p| (p.text, p.compressed, p.buf));
                Ok(
                    done.map(|(text, compressed, buf)| match (compressed, text) {
                        (true, _) => Message::Deflated {
                            text,
                            payload: Payload::Owned(buf),
                        },
                        (false, true) => Message::Text(Payload::Owned(buf)),
                        (false, false) => Message::Binary(Payload::Owned(buf)),
                    }),
                )
            }
            OpCode::Data(kind) => {
                if self.partial.is_some() {
                    return Err(protocol("new message before the fragmented one ended"));
                }
                let text = kind == Data::Text;
                if frame.is_final && frame.compressed {
                    return Ok(Some(Message::Deflated {
                        text,
                        payload: Payload::Borrowed(payload),
                    }));
                }
                if frame.is_final {
                    if text {
                        std::str::from_utf8(payload).map_err(|_| invalid_utf8())?;
                        return Ok(Some(Message::Text(Payload::Borrowed(payload))));
                    }
                    return Ok(Some(Message::Binary(Payload::Borrowed(payload))));
                }
                let mut partial = Box::new(Partial {
                    text,
                    compressed: frame.compressed,
                    buf: payload.to_vec(),
                    valid_to: 0,
                });
                if text && !frame.compressed {
                    check_utf8_prefix(&mut partial, false)?;
                }
                self.partial = Some(partial);
                Ok(None)
            }
        }
    }
}

/// 1007 for text that is not UTF-8 (also once a compressed message is inflated).
pub fn invalid_utf8() -> CloseReason {
    CloseReason::new(close::INVALID_PAYLOAD, "invalid UTF-8 in text")
}

/// Validates the unchecked tail of a partial text message. A sequence cut at
/// the end of a non-final fragment is fine; anything else invalid is not.
fn check_utf8_prefix(p: &mut Partial, is_final: bool) -> Result<(), CloseReason> {
    match std::str::from_utf8(&p.buf[p.valid_to..]) {
        Ok(_) => {
            p.valid_to = p.buf.len();
            Ok(())
        }
        Err(e) if e.error_len().is_none() && !is_final => {
            p.valid_to += e.valid_up_to();
            Ok(())
        }
        Err(_) => Err(invalid_utf8()),
    }
}

fn parse_close(payload: &[u8]) -> Result<Message<'_>, CloseReason> {
    match payload {
        [] => Ok(Message::Close(None, "")),
        [_] => Err(protocol("close frame with a one-byte body")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !CloseCode::from(code).is_allowed() {
                return Err(protocol("close code not allowed on the wire"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| invalid_utf8())?;
            Ok(Message::Close(Some(code), reason))
        }
    }
}

/// Encodes one final, unmasked frame (what a server sends).
pub fn encode(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    encode_frame(opcode, payload, None)
}

/// Encodes one final frame masked with `mask` (what a client sends).
pub fn encode_masked(opcode: OpCode, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    encode_frame(opcode, payload, Some(mask))
}

fn encode_frame(opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let header = FrameHeader {
        opcode,
        mask,
        ..FrameHeader::default()
    };
    let len = payload.len() as u64;
    let mut out = Vec::with_capacity(header.len(len) + payload.len());
    // Writing into a Vec cannot fail.
    let _ = header.format(len, &mut out);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(mask) = mask {
        apply_mask(&mut out[start..], mask);
    }
    out
}

pub fn text(payload: &[u8]) -> Vec<u8> {
    encode(OpCode::Data(Data::Text), payload)
}

/// A text (or binary) message whose payload is already deflated: RSV1 set
/// (permessage-deflate).
pub fn deflated(text: bool, payload: &[u8]) -> Vec<u8> {
    let opcode = OpCode::Data(if text { Data::Text } else { Data::Binary });
    let header = FrameHeader {
        opcode,
        rsv1: true,
        ..FrameHeader::default()
    };
    let len = payload.len() as u64;
    let mut out = Vec::with_capacity(header.len(len) + payload.len());
    let _ = header.format(len, &mut out);
    out.extend_from_slice(payload);
    out
}

pub fn binary(payload: &[u8]) -> Vec<u8> {
    encode(OpCode::Data(Data::Binary), payload)
}

pub fn pong(payload: &[u8]) -> Vec<u8> {
    encode(OpCode::Control(Control::Pong), payload)
}

pub fn ping(payload: &[u8]) -> Vec<u8> {
    encode(OpCode::Control(Control::Ping), payload)
}

/// A close frame with a code and a reason (cut to fit the 125-byte control limit).
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    body.extend_from_slice(&reason.as_bytes()[..cut]);
    encode(OpCode::Control(Control::Close), &body)
}

/// A close frame with no body, the echo of a bodiless close.
pub fn close_empty() -> Vec<u8> {
    encode(OpCode::Control(Control::Close), &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let header = FrameHeader {
            is_final: fin,
            opcode,
            mask: Some([1, 2, 3, 4]),
            ..FrameHeader::default()
        };
        let mut out = Vec::new();
        header.format(payload.len() as u64, &mut out).unwrap();
        let start = out.len();
        out.extend_from_slice(payload);
        apply_mask(&mut out[start..], [1, 2, 3, 4]);
        out
    }

    /// A complete message as (kind, bytes), so tests compare contents.
    fn feed(
        asm: &mut Assembler,
        bytes: &mut [u8],
    ) -> Result<Option<(&'static str, Vec<u8>)>, CloseReason> {
        match parse_frame(bytes, Role::Server, 64, asm.pending_len(), false)? {
            Parse::Incomplete { .. } => Ok(None),
            Parse::Frame(f) => {
                let payload = bytes[f.payload.clone()].to_vec();
                Ok(asm.push(&f, &payload)?.map(|m| match m {
                    Message::Text(p) => ("text", p.to_vec()),
                    Message::Binary(p) => ("binary", p.to_vec()),
                    Message::Ping(p) => ("ping", p.to_vec()),
                    Message::Pong(p) => ("pong", p.to_vec()),
                    Message::Close(_, r) => ("close", r.as_bytes().to_vec()),
                    Message::Deflated { payload, .. } => ("deflated", payload.to_vec()),
                }))
            }
        }
    }

    #[test]
    fn rsv1_marks_a_compressed_message_only_where_the_extension_allows() {
        let text = OpCode::Data(Data::Text);
        let cont = OpCode::Data(Data::Continue);
        let with_rsv1 = |opcode, fin, payload: &[u8]| {
            let mut f = client_frame(opcode, fin, payload);
            f[0] |= 0x40;
            f
        };
        // Without the extension: 1002.
        let mut f = with_rsv1(text, true, b"x");
        assert_eq!(
            parse_frame(&mut f, Role::Server, 64, 0, false)
                .unwrap_err()
                .code,
            close::PROTOCOL_ERROR
        );
        // On a control frame or a continuation: 1002 even with it.
        let mut ping = with_rsv1(OpCode::Control(Control::Ping), true, b"");
        assert!(parse_frame(&mut ping, Role::Server, 64, 0, true).is_err());
        let mut c = with_rsv1(cont, true, b"x");
        assert!(parse_frame(&mut c, Role::Server, 64, 0, true).is_err());
        // A compressed message over two frames: no UTF-8 check on the way
        // (the bytes are deflate, not text), handed over whole to be inflated.
        let mut asm = Assembler::default();
        let mut first = with_rsv1(text, false, b"\xff\xfe");
        let Parse::Frame(f) = parse_frame(&mut first, Role::Server, 64, 0, true).unwrap() else {
            panic!("a whole frame");
        };
        assert!(f.compressed);
        let payload = first[f.payload.clone()].to_vec();
        assert_eq!(asm.push(&f, &payload), Ok(None));
        let mut last = client_frame(cont, true, b"\xfd");
        let Parse::Frame(f) =
            parse_frame(&mut last, Role::Server, 64, asm.pending_len(), true).unwrap()
        else {
            panic!("a whole frame");
        };
        let payload = last[f.payload.clone()].to_vec();
        assert_eq!(
            asm.push(&f, &payload),
            Ok(Some(Message::Deflated {
                text: true,
                payload: Payload::Owned(b"\xff\xfe\xfd".to_vec())
            }))
        );
    }

    #[test]
    fn fragments_reassemble_into_one_text_message() {
        let mut asm = Assembler::default();
        let text = OpCode::Data(Data::Text);
        let cont = OpCode::Data(Data::Continue);
        assert_eq!(
            feed(
                &mut asm,
                &mut client_frame(text, false, "h\u{e9}".as_bytes()[..2].as_ref())
            ),
            Ok(None)
        );
        // The é is split across fragments: still valid.
        let got = feed(
            &mut asm,
            &mut client_frame(cont, true, &"h\u{e9}llo".as_bytes()[2..]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(got, ("text", "h\u{e9}llo".as_bytes().to_vec()));
        assert_eq!(asm.pending_len(), 0);
    }

    #[test]
    fn protocol_violations_map_to_their_close_codes() {
        let mut asm = Assembler::default();
        let mut unmasked = encode(OpCode::Data(Data::Text), b"hi");
        assert_eq!(
            feed(&mut asm, &mut unmasked).unwrap_err().code,
            close::PROTOCOL_ERROR
        );
        let mut bad = client_frame(OpCode::Data(Data::Text), true, &[0xff, 0xfe]);
        assert_eq!(
            feed(&mut asm, &mut bad).unwrap_err().code,
            close::INVALID_PAYLOAD
        );
        let mut big = client_frame(OpCode::Data(Data::Text), true, &[b'a'; 65]);
        assert_eq!(
            feed(&mut asm, &mut big[..6]).unwrap_err().code,
            close::TOO_BIG,
            "refused from the header alone"
        );
        let mut cont = client_frame(OpCode::Data(Data::Continue), true, b"x");
        assert_eq!(
            feed(&mut asm, &mut cont).unwrap_err().code,
            close::PROTOCOL_ERROR
        );
        let mut long_ping = client_frame(OpCode::Control(Control::Ping), true, &[0; 126]);
        assert!(parse_frame(&mut long_ping, Role::Server, 1 << 20, 0, false).is_err());
        let mut bad_code = client_frame(
            OpCode::Control(Control::Close),
            true,
            &1005u16.to_be_bytes(),
        );
        assert_eq!(
            feed(&mut asm, &mut bad_code).unwrap_err().code,
            close::PROTOCOL_ERROR
        );
    }

    #[test]
    fn a_truncated_frame_asks_for_more_and_knows_its_size() {
        let frame = client_frame(OpCode::Data(Data::Text), true, b"hello");
        let mut part = frame[..7].to_vec();
        match parse_frame(&mut part, Role::Server, 64, 0, false).unwrap() {
            Parse::Incomplete { total, .. } => assert_eq!(total, Some(frame.len())),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_utf8_fails_as_soon_as_it_arrives_not_when_the_frame_ends() {
        let mut text = "κόσμε".as_bytes().to_vec();
        text.extend_from_slice(&[0xed, 0xa0, 0x80]); // a UTF-16 surrogate: never valid
        text.extend_from_slice(&[b'x'; 40]);
        let frame = client_frame(OpCode::Data(Data::Text), true, &text);
        let mut asm = Assembler::default();
        let mut cut_in_a_character = frame[..9].to_vec(); // header 6 + "κ" + first byte of "ό"
        let Parse::Incomplete {
            arriving: Some(a), ..
        } = parse_frame(&mut cut_in_a_character, Role::Server, 1024, 0, false).unwrap()
        else {
            panic!("incomplete")
        };
        assert_eq!(
            asm.check_arrived(&cut_in_a_character, &a),
            Ok(()),
            "a cut character is fine"
        );
        let mut more = frame[..20].to_vec();
        assert_eq!(
            asm.check_arrived(&more, &a).unwrap_err().code,
            close::INVALID_PAYLOAD
        );
        // and valid text arriving in pieces passes
        let good = client_frame(OpCode::Data(Data::Text), true, "κόσμε and more".as_bytes());
        let mut asm = Assembler::default();
        for cut in 7..good.len() {
            more = good[..cut].to_vec();
            asm.check_arrived(&more, &a).unwrap();
        }
    }

    #[test]
    fn mask_roundtrips_at_every_alignment() {
        let data: Vec<u8> = (0..37).collect();
        for skip in 0..8 {
            let mut d = data[skip..].to_vec();
            apply_mask(&mut d, [9, 8, 7, 6]);
            for (i, b) in d.iter().enumerate() {
                assert_eq!(*b, data[skip + i] ^ [9, 8, 7, 6][i & 3]);
            }
        }
    }
}
