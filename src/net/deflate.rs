//! permessage-deflate (RFC 7692), the way uWebSockets' shared compressor does
//! it: no context takeover in either direction, so nothing is kept per
//! connection. One [`Compressor`] for the whole loop deflates a broadcast
//! once and every client that negotiated the extension gets the same bytes;
//! one [`Inflater`] for the whole loop inflates a client's compressed message,
//! reset per message, stopping at `--max-message` of output (a zip bomb costs
//! no memory). Also here: reading a client's offers and choosing one
//! ([`negotiate`]). Framing (RSV1) is `ws.rs`; which client gets which bytes
//! is `server.rs` and `conn.rs`. No sockets here.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// What the 101 answers when an offer was accepted.
pub const ACCEPTED: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// The end of every sync-flushed deflate block, removed from a message's
/// payload on the wire (RFC 7692 7.2.1) and put back to inflate it.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Whether any `Sec-WebSocket-Extensions` offer (all the header's lines, in
/// order) is a permessage-deflate offer this server can honour. An offer with
/// an unknown, duplicated or invalid parameter is declined (RFC 7692 7), and
/// so is one asking for a server window under 15 bits (the compressor's).
pub fn negotiate<'a>(lines: impl IntoIterator<Item = &'a str>) -> bool {
    lines
        .into_iter()
        .flat_map(|line| line.split(','))
        .any(acceptable)
}

/// One offer: `permessage-deflate; param[=value]; ...`.
fn acceptable(offer: &str) -> bool {
    let mut parts = offer.split(';').map(str::trim);
    if parts.next() != Some("permessage-deflate") {
        return false;
    }
    let mut seen = [false; 4];
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim()))),
            None => (param, None),
        };
        let (slot, ok) = match name {
            "server_no_context_takeover" => (0, value.is_none()),
            "client_no_context_takeover" => (1, value.is_none()),
            // We compress with a 15-bit window: a smaller one cannot be honoured.
            "server_max_window_bits" => (2, value.and_then(window_bits) == Some(15)),
            // Any window the client uses can be inflated; a bare name is allowed.
            "client_max_window_bits" => (3, value.is_none_or(|v| window_bits(v).is_some())),
            _ => return false,
        };
        if !ok || std::mem::replace(&mut seen[slot], true) {
            return false;
        }
    }
    true
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// 8 to 15, written without a leading zero (RFC 7692 7.1.2).
fn window_bits(v: &str) -> Option<u8> {
    if v.is_empty() || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|n| (8..=15).contains(n))
}

/// What the loop shares for permessage-deflate. Each half is made when
/// first needed: a server nobody compresses with keeps no zlib tables
/// (about 300 KiB of RSS).
#[derive(Debug, Default)]
pub struct Shared {
    compressor: Option<Box<Compressor>>,
    inflater: Option<Box<Inflater>>,
}

impl Shared {
    /// See [`Compressor::compress`].
    pub fn compress(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        self.compressor.get_or_insert_default().compress(payload)
    }

    /// See [`Inflater::inflate`].
    pub fn inflate(&mut self, compressed: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
        self.inflater
            .get_or_insert_default()
            .inflate(compressed, limit)
    }

    /// Messages compressed, bytes before and after (`/metrics`).
    pub fn counts(&self) -> (u64, u64, u64) {
        self.compressor
            .as_ref()
            .map_or((0, 0, 0), |c| (c.messages, c.bytes_in, c.bytes_out))
    }
}

/// The loop's one deflater.
pub struct Compressor {
    deflate: Compress,
    /// Messages compressed since start, and the bytes before and after (`/metrics`).
    pub messages: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("messages", &self.messages)
            .finish()
    }
}

impl Default for Compressor {
    fn default() -> Self {
        Compressor {
            deflate: Compress::new(Compression::new(LEVEL), false),
            messages: 0,
            bytes_in: 0,
            bytes_out: 0,
        }
    }
}

/// Level 1: measured (`cargo bench --bench hot_paths`, miniz_oxide) a welcome
/// of 200 messages to 12% of its size in 82 µs, where level 6 made 9% in
/// 830 µs; a 252-byte chat frame to 73% either way (17 µs against 38 µs).
const LEVEL: u32 = 1;

impl Compressor {
    /// `payload` deflated on its own (no context from earlier messages), the
    /// trailing `00 00 ff ff` removed; `None` when that is not smaller.
    pub fn compress(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        self.deflate.reset();
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        let mut input = payload;
        // All the input, then a sync flush: done when the output ends with
        // the flush's empty block and the last call did not fill the room it had.
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let before = self.deflate.total_in();
            let flush = if input.is_empty() {
                FlushCompress::Sync
            } else {
                FlushCompress::None
            };
            // Compressing into a Vec with room cannot fail.
            self.deflate.compress_vec(input, &mut out, flush).ok()?;
            input = &input[(self.deflate.total_in() - before) as usize..];
            if input.is_empty()
                && flush == FlushCompress::Sync
                && out.ends_with(&TAIL)
                && out.len() < out.capacity()
            {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        self.messages += 1;
        self.bytes_in += payload.len() as u64;
        self.bytes_out += out.len() as u64;
        (out.len() < payload.len()).then_some(out)
    }
}

/// Why a compressed message was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum InflateError {
    /// It inflates past the limit (1009).
    TooBig,
    /// It is not deflate data (1007).
    Corrupt,
}

/// The loop's one inflater.
pub struct Inflater {
    inflate: Decompress,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("Inflater")
    }
}

impl Default for Inflater {
    fn default() -> Self {
        // Raw deflate with the largest window, so any client window inflates.
        Inflater {
            inflate: Decompress::new(false),
        }
    }
}

impl Inflater {
    /// Inflates one message's payload (its `00 00 ff ff` put back), never
    /// holding more than `limit` bytes of output.
    pub fn inflate(&mut self, compressed: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
        self.inflate.reset(false);
        let mut out = Vec::with_capacity((compressed.len() * 3 + 64).min(limit + 1));
        for part in [compressed, &TAIL[..]] {
            let mut input = part;
            loop {
                if out.len() == out.capacity() {
                    if out.len() > limit {
                        return Err(InflateError::TooBig);
                    }
                    let room = out.len().max(1024).min(limit + 1 - out.len());
                    out.reserve_exact(room);
                }
                let (before_in, before_out) = (self.inflate.total_in(), self.inflate.total_out());
                let status = self
                    .inflate
                    .decompress_vec(input, &mut out, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Corrupt)?;
                if out.len() > limit {
                    return Err(InflateError::TooBig);
                }
                let used = (self.inflate.total_in() - before_in) as usize;
                let made = self.inflate.total_out() - before_out;
                input = &input[used..];
                // All input taken is not all output given: the inflater may
                // still hold some (it hands out at most what fits, a window
                // at a time), so it is asked again until it gives nothing.
                if input.is_empty() && made == 0 {
                    break;
                }
                if used == 0 && made == 0 && out.len() < out.capacity() {
                    // Input left, room to spare, and no progress: broken data.
                    if status == Status::StreamEnd {
                        break;
                    }
                    return Err(InflateError::Corrupt);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_are_read_as_rfc_7692_says() {
        for ok in [
            "permessage-deflate",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; client_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=\"8\"",
            "permessage-deflate; server_max_window_bits=15",
            "x-webkit-deflate-frame, permessage-deflate",
            // A bad offer, then a good one: the good one is taken.
            "permessage-deflate; foo=1, permessage-deflate",
        ] {
            assert!(negotiate([ok]), "{ok}");
        }
        for bad in [
            "",
            "x-webkit-deflate-frame",
            "permessage-deflate; foo",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=ten",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_max_window_bits=10; client_max_window_bits=11",
        ] {
            assert!(!negotiate([bad]), "{bad}");
        }
        // One list over several header lines.
        assert!(negotiate([
            "x-foo",
            "permessage-deflate; client_max_window_bits"
        ]));
    }

    /// Pseudo-random bytes over a small alphabet: deflate saves a little.
    fn seed_bytes(n: u32) -> u8 {
        let x = n.wrapping_mul(2_654_435_761).rotate_left(13) ^ n;
        b'a' + (x % 20) as u8
    }

    #[test]
    fn a_message_compresses_once_and_inflates_back_within_its_limit() {
        let mut c = Compressor::default();
        let mut i = Inflater::default();
        let text =
            r#"{"type":"message","room":"lobby","id":1,"message":"hello hello hello hello"}"#
                .repeat(20);
        let small = c.compress(text.as_bytes()).expect("JSON compresses");
        assert!(
            small.len() * 5 < text.len(),
            "{} of {}",
            small.len(),
            text.len()
        );
        assert!(!small.ends_with(&TAIL));
        assert_eq!(i.inflate(&small, text.len()).unwrap(), text.as_bytes());
        // The same again: no context is carried from one message to the next.
        assert_eq!(c.compress(text.as_bytes()), Some(small.clone()));
        assert_eq!(i.inflate(&small, text.len()).unwrap(), text.as_bytes());
        assert_eq!(i.inflate(&small, text.len() - 1), Err(InflateError::TooBig));
        assert_eq!(c.compress(b"x"), None, "not smaller: sent as it is");
        assert_eq!(
            i.inflate(b"\xff\xff\xff garbage", 1000),
            Err(InflateError::Corrupt)
        );
        // A bomb: 100 MB of zeros stops at the limit.
        let zeros = vec![0u8; 10 << 20];
        let bomb = c.compress(&zeros).unwrap();
        assert!(bomb.len() * 100 < zeros.len(), "{}", bomb.len());
        assert_eq!(i.inflate(&bomb, 64 << 10), Err(InflateError::TooBig));
        // Barely compressible bytes (Autobahn 12.2.9's kind), read back by
        // another inflater than ours: every byte comes back.
        let noisy: Vec<u8> = (0..65_536u32).map(seed_bytes).collect();
        let packed = c.compress(&noisy).expect("a little smaller");
        let mut other = flate2::Decompress::new(false);
        let mut back = Vec::with_capacity(1 << 17);
        let mut framed = packed.clone();
        framed.extend_from_slice(&TAIL);
        other
            .decompress_vec(&framed, &mut back, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(back.len(), noisy.len());
        assert_eq!(back, noisy);
        assert_eq!(i.inflate(&packed, 1 << 17).unwrap(), noisy);
        // Large and varied (not one repeated block): every byte comes back.
        let mut seed = 7u64;
        let words = [
            "chat", "room", "hello", "picochat", "deflate", "window", "message",
        ];
        let big: String = (0..40_000)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                words[(seed >> 33) as usize % words.len()]
            })
            .collect::<Vec<_>>()
            .join(" ");
        let packed = c.compress(big.as_bytes()).unwrap();
        assert_eq!(
            i.inflate(&packed, 1 << 20).unwrap(),
            big.as_bytes(),
            "{} bytes",
            big.len()
        );
        // An empty message is five bytes of deflate.
        let empty = c.compress(b"");
        assert_eq!(empty, None);
        assert_eq!(i.inflate(&[0x00], 10).unwrap(), b"");
    }
}
