//! Native TLS (feature `tls`): one connection's rustls session over its TCP
//! socket, driven sans-I/O by the loop's readiness (`read_tls`,
//! `process_new_packets`, `write_tls`): no thread, no runtime. To the
//! connection it is a byte stream like a plain socket (`Read`, `Write`),
//! plus what only TLS has: encrypted bytes still to send, and a handshake
//! in progress (which counts against `--header-timeout`).
//!
//! Loading the certificate is in `certificate.rs`; the choice between plain
//! and TLS streams in `net/stream.rs`.

mod certificate;

pub use certificate::Certificate;

use mio::net::TcpStream;
use rustls::ServerConnection;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;

/// At most this much encrypted output waits in rustls (one record and some):
/// the rest of a connection's output stays in its write queue, where the
/// output limits see it, and an idle connection holds no TLS output.
const BUFFER_LIMIT: usize = 20 * 1024;

/// A TLS server session over a non-blocking TCP socket.
pub struct TlsStream {
    tcp: TcpStream,
    tls: ServerConnection,
    /// Nothing read yet: the first byte says whether this is TLS at all.
    fresh: bool,
}

/// The answer to a plain HTTP request on the TLS port (as nginx does), in
/// plain text, so a mistyped `http://` URL gets a reason, not garbage.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 44\r\nConnection: close\r\n\r\nThis port speaks HTTPS: use an https:// URL\n";

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("handshaking", &self.tls.is_handshaking())
            .finish()
    }
}

impl TlsStream {
    pub fn new(tcp: TcpStream, cert: &Certificate) -> io::Result<TlsStream> {
        let mut tls = ServerConnection::new(cert.config.clone()).map_err(io::Error::other)?;
        tls.set_buffer_limit(Some(BUFFER_LIMIT));
        Ok(TlsStream {
            tcp,
            tls,
            fresh: true,
        })
    }

    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }

    pub fn handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// Encrypted bytes (handshake, records, alerts) not yet on the socket.
    pub fn pending_output(&self) -> bool {
        self.tls.wants_write()
    }

    /// Sends what rustls holds until done (true) or the socket would block (false).
    fn send_tls(&mut self) -> io::Result<bool> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Sends a `close_notify` and shuts the TCP write side.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.tls.send_close_notify();
        let _ = self.send_tls();
        self.tcp.shutdown(Shutdown::Write)
    }
}

impl Read for TlsStream {
    /// Plaintext, as much as is decrypted; reads and processes records (and
    /// answers the handshake) as needed. `Ok(0)`: the peer closed (with or
    /// without `close_notify`). A TLS error (bad record, a plain HTTP
    /// request, a failed handshake) is `InvalidData`, after rustls' alert
    /// has been sent if the socket took it.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fresh {
            let mut first = [0u8; 1];
            if self.tcp.peek(&mut first)? == 0 {
                return Ok(0);
            }
            self.fresh = false;
            // A TLS record starts with its type (22: handshake); a plain
            // request with its method's capital letters.
            if first[0].is_ascii_uppercase() {
                // The request is read first: closing with it unread would
                // reset the connection and could lose the answer.
                let mut skip = [0u8; 4096];
                for _ in 0..4 {
                    if !matches!(self.tcp.read(&mut skip), Ok(n) if n > 0) {
                        break;
                    }
                }
                let _ = self.tcp.write(PLAIN_HTTP_ANSWER);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "plain HTTP on the TLS port",
                ));
            }
        }
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.tls.process_new_packets() {
                let _ = self.send_tls();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // The handshake's next flight, or a key update: best effort now;
            // what the socket does not take goes with the next flush.
            self.send_tls()?;
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Encrypts what rustls takes (up to [`BUFFER_LIMIT`]) and sends it;
    /// `WouldBlock` while earlier records still wait for the socket.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if !self.send_tls()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.tls.writer().write_vectored(bufs)?;
        self.send_tls()?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Sends the encrypted bytes rustls holds; `WouldBlock` if some remain.
    fn flush(&mut self) -> io::Result<()> {
        if self.send_tls()? {
            Ok(())
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }
}
