//! A connection in its WebSocket phase: frames parsed (`ws.rs`), handed to
//! the session rules (`ws_session.rs`), and what follows carried out: a chat
//! message reported to the server, an echo sent back, a control frame
//! answered, a protocol error closed with its code.

use super::{Conn, Env, Phase, Shell, Socket};
use crate::config::Config;
use crate::metrics::EndReason;
use crate::net::deflate;
use crate::net::write_queue::Chunk;
use crate::net::ws::{self, Message, Parse, Role};
use crate::net::ws_session::{Received, WsKind};
use tungstenite::protocol::frame::coding::{Data, OpCode};

/// One data frame for a peer: deflated when it negotiated permessage-deflate
/// and the payload is at least `--compress-min` (and shrinks), else plain.
pub fn frame_for(
    deflates: bool,
    text: bool,
    payload: &[u8],
    config: &Config,
    shared: &mut deflate::Shared,
) -> Vec<u8> {
    if deflates && payload.len() >= config.compress_min {
        if let Some(small) = shared.compress(payload) {
            return ws::deflated(text, &small);
        }
    }
    if text {
        ws::text(payload)
    } else {
        ws::binary(payload)
    }
}

impl<S: Socket> Conn<S> {
    /// One WebSocket frame, if complete. Returns the bytes it used.
    pub(super) fn process_frame(
        &mut self,
        buf: &mut [u8],
        env: &Env,
        shell: &mut dyn Shell,
    ) -> Option<usize> {
        let Phase::Ws(session) = &mut self.phase else {
            return None;
        };
        // A refused upload arriving: its bytes are dropped, never kept.
        let skip = session.skip_left();
        if skip > 0 {
            let n = skip.min(buf.len() as u64);
            session.skipped(n);
            return Some(n as usize);
        }
        let kind = session.kind();
        let deflate = session.deflate();
        let limit = if kind == WsKind::Chat {
            session.limit_for(buf, env.config.max_message)
        } else {
            env.config.echo_max_message
        };
        let pending = session.pending_len();
        // `limit` bounds the message; deflated, it may be a little longer on
        // the wire (receive() holds the inflated message to `limit`).
        let wire_limit = if deflate && ws::deflate_data(buf, session.assembler()) {
            ws::deflate_bound(limit)
        } else {
            limit
        };
        let parsed = ws::parse_frame(buf, Role::Server, wire_limit, pending, deflate);
        match &parsed {
            Ok(Parse::Frame(f))
                if matches!(f.opcode, OpCode::Data(Data::Binary | Data::Continue)) =>
            {
                let binary = f.opcode == OpCode::Data(Data::Binary);
                let len = f.payload.len() as u64;
                if session.discard(binary, f.is_final, len, 0) {
                    return Some(f.consumed());
                }
            }
            Ok(Parse::Incomplete {
                total: Some(total),
                arriving: Some(a),
            }) if matches!(a.opcode, OpCode::Data(Data::Binary | Data::Continue)) => {
                let binary = a.opcode == OpCode::Data(Data::Binary);
                let fin = buf.first().is_some_and(|b| b & 0x80 != 0);
                let len = (*total - a.payload_start) as u64;
                if session.discard(binary, fin, len, (*total - buf.len()) as u64) {
                    return Some(buf.len());
                }
            }
            _ => {}
        }
        let assembler = session.assembler();
        let frame = match parsed {
            Ok(Parse::Frame(f)) => f,
            Ok(Parse::Incomplete { total, arriving }) => {
                let early = arriving.map_or(Ok(()), |a| assembler.check_arrived(buf, &a));
                if let Err(why) = early {
                    self.fail(why, env.now);
                    return Some(buf.len());
                }
                if let Some(total) = total {
                    // Reserve once for a large frame instead of growing read by read.
                    self.inbuf.reserve(total.saturating_sub(self.inbuf.len()));
                }
                return None;
            }
            Err(why) => {
                self.fail(why, env.now);
                return Some(buf.len());
            }
        };
        let used = frame.consumed();
        let payload = &buf[frame.payload.clone()];
        match session.receive(&frame, payload, shell.deflate(), limit) {
            Ok(Received::Nothing) => {}
            Ok(Received::Data(message)) => self.on_message(message, kind, env, shell),
            Ok(Received::Answer(control)) => {
                self.queue(Chunk::from(control), env.config, env.now);
            }
            Ok(Received::Closed(echo)) => {
                if let Some(echo) = echo.filter(|_| self.closing.is_none()) {
                    self.out.push(Chunk::from(echo));
                }
                self.begin_close(EndReason::ClientClosed, env.now);
            }
            Err(why) => {
                self.fail(why, env.now);
                return Some(buf.len());
            }
        }
        Some(used)
    }

    /// A complete text or binary message: reported for chat, or echoed.
    fn on_message(&mut self, message: Message, kind: WsKind, env: &Env, shell: &mut dyn Shell) {
        let (text, payload) = match &message {
            Message::Text(p) => (true, &p[..]),
            Message::Binary(p) => (false, &p[..]),
            // Control frames are the session's business (ws_session.rs),
            // which inflates deflated messages before they come here.
            Message::Ping(_) | Message::Pong(_) | Message::Close(..) | Message::Deflated { .. } => {
                return
            }
        };
        match kind {
            WsKind::Chat => {
                if let Some((bytes, keep)) = shell.chat(text, payload) {
                    self.expect_upload(bytes, keep);
                }
            }
            WsKind::Echo => self.send_data(text, payload, env, shell),
        }
    }

    /// Sends one data message to this peer alone, deflated when it negotiated
    /// permessage-deflate and the message is at least `--compress-min`.
    fn send_data(&mut self, text: bool, payload: &[u8], env: &Env, shell: &mut dyn Shell) {
        let frame = frame_for(self.deflates(), text, payload, env.config, shell.deflate());
        self.queue(Chunk::from(frame), env.config, env.now);
    }
}
