//! Test doubles for a connection: a pipe for its bytes and a shell that
//! records what it reports. Used by the connection's own tests and by the
//! server's dispatch tests, so neither needs a socket.

use super::{Conn, Env, Shell, Socket};
use crate::config::Config;
use crate::metrics::Stats;
use crate::net::deflate;
use crate::net::http::{self, Reply, Request, Route};
use crate::net::per_address::PerAddress;
use crate::net::ws_session::WsKind;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::IpAddr;

/// Reads hand out one queued chunk each (then WouldBlock, or EOF once
/// `eof` is set); writes are collected.
#[derive(Debug, Default)]
pub struct Pipe {
    pub input: VecDeque<Vec<u8>>,
    pub eof: bool,
    pub output: Vec<u8>,
    pub shut: std::cell::Cell<bool>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.input.pop_front() {
            Some(chunk) => {
                buf[..chunk.len()].copy_from_slice(&chunk);
                Ok(chunk.len())
            }
            None if self.eof => Ok(0),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for Pipe {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shut.set(true);
        Ok(())
    }
}

/// A shell that records what a connection reports.
#[derive(Default)]
pub struct Watch {
    pub stats: Stats,
    pub per_address: PerAddress,
    pub deflate: deflate::Shared,
    pub upgraded: Vec<WsKind>,
    pub chat: Vec<(bool, Vec<u8>)>,
    pub served: Vec<String>,
}

impl Shell for Watch {
    fn stats(&mut self) -> &mut Stats {
        &mut self.stats
    }
    fn per_address(&mut self) -> &mut PerAddress {
        &mut self.per_address
    }
    fn deflate(&mut self) -> &mut deflate::Shared {
        &mut self.deflate
    }
    fn upgraded(&mut self, kind: WsKind, _addr: IpAddr) {
        self.upgraded.push(kind);
    }
    fn chat(&mut self, text: bool, payload: &[u8]) -> Option<(usize, bool)> {
        self.chat.push((text, payload.to_vec()));
        None
    }
    fn serve(&mut self, route: &Route, req: &Request, _addr: IpAddr) -> Option<Reply> {
        self.served.push(format!("{route:?} {}", req.path));
        // Images are answered later, as a shared log does.
        (*route != Route::Upload).then(|| http::rooms("[]", false, true, "now"))
    }
}

impl Pipe {
    /// A pipe whose reads hand out these chunks, one per read.
    pub fn with(input: &[&[u8]]) -> Pipe {
        Pipe {
            input: input.iter().map(|c| c.to_vec()).collect(),
            ..Pipe::default()
        }
    }
}

/// A browser's WebSocket upgrade of `/ws`, offering permessage-deflate or not.
pub fn upgrade_request(deflate: bool) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{}\r\n",
        if deflate {
            "Sec-WebSocket-Extensions: permessage-deflate\r\n"
        } else {
            ""
        }
    )
}

/// A chat WebSocket on a pipe, upgraded, with slab key `key` and generation `gen`.
pub fn chat_conn(key: usize, gen: u32, deflate: bool, config: &Config) -> Conn<Pipe> {
    let request = upgrade_request(deflate);
    let pipe = Pipe::with(&[request.as_bytes()]);
    let mut c = Conn::new(
        pipe,
        "127.0.0.1:9".parse().unwrap(),
        key,
        gen,
        crate::net::http_session::Listener::Main,
        false,
        0,
    );
    let env = Env {
        config,
        now: 0,
        wall_ms: 0,
        date: "Thu, 03 Dec 2026 08:00:00 GMT",
        admin_api: false,
    };
    c.read_ready(&mut [0; 4096], &env, &mut Watch::default());
    assert!(c.is_chat_client(), "upgraded");
    assert_eq!(c.deflates(), deflate);
    c
}
