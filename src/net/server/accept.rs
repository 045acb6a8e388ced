//! New connections: accepting on the three listeners (the chat's, the
//! admin one, the plain-HTTP redirect) until WouldBlock, the connection and
//! file-descriptor limits at the door, TLS on the chat listener when a
//! certificate is loaded, and reloading that certificate on `SIGHUP`.

use super::Server;
use crate::net::conn::Conn;
use crate::net::http_session::Listener;
use crate::net::stream::Stream;
use crate::{diag_debug, diag_error, diag_info, diag_warn};
use mio::net::TcpStream;
use mio::{Interest, Token};
use std::fs::File;
use std::io;
use std::net::SocketAddr;

impl Server {
    pub(super) fn accept(&mut self, which: Listener) {
        loop {
            let listener = match which {
                Listener::Main => self.listener.as_ref(),
                Listener::Admin => self.admin.as_ref(),
                Listener::Redirect => self.redirect.as_ref(),
            };
            let Some(listener) = listener else { return };
            match listener.accept() {
                Ok((stream, peer)) => self.add_conn(stream, peer, which),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        || e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                    self.stats.accept_fd_exhausted += 1;
                    if self.stats.accept_fd_exhausted.is_power_of_two() {
                        diag_warn!(
                            "out of file descriptors ({e}); refusing connections (seen {} times)",
                            self.stats.accept_fd_exhausted
                        );
                    }
                    // Free the spare descriptor, accept the waiting connection and
                    // close it at once, then take the spare back. With the table
                    // full, accept() says EMFILE even when nothing is waiting, so
                    // stop as soon as this accept finds the backlog empty.
                    self.spare_fd = None;
                    let drained = match listener.accept() {
                        Ok(_) => {
                            self.stats.connections_rejected += 1;
                            false
                        }
                        Err(_) => true,
                    };
                    self.spare_fd = File::open("/dev/null").ok();
                    if drained || self.spare_fd.is_none() {
                        return;
                    }
                }
                Err(e) => {
                    diag_error!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn add_conn(&mut self, tcp: TcpStream, peer: SocketAddr, which: Listener) {
        let open = self.conns.len();
        if open >= self.max_connections + self.config.overflow_connections {
            self.stats.connections_rejected += 1;
            return; // dropped: closed at once
        }
        let over_limit = open >= self.max_connections;
        if over_limit {
            self.stats.connections_rejected += 1;
        }
        // Chat frames are small and latency matters more than packet count.
        let _ = tcp.set_nodelay(true);
        let Some(mut stream) = self.wrap(tcp, which) else {
            return;
        };
        let now = self.now_ms();
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) = self.poll.registry().register(
            stream.tcp_mut(),
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            diag_error!("cannot watch a new connection: {e}");
            return;
        }
        self.next_gen = self.next_gen.wrapping_add(1);
        let conn = entry.insert(Conn::new(
            stream,
            peer,
            key,
            self.next_gen,
            which,
            over_limit,
            now,
        ));
        if !self.config.trust_proxy && !over_limit && which != Listener::Admin {
            // The peer is the client: count it now (behind a proxy: at its first request).
            conn.count_address(&mut self.per_address);
        }
        self.stats.connections_total += 1;
        self.stats.connections_open = self.conns.len();
        diag_debug!("{peer}: connected");
        self.schedule(key);
    }

    /// The chat listener speaks TLS with `--tls-cert`; the others are
    /// plain. Before the first certificate exists (see `start.rs`), a TLS
    /// client on the chat listener is turned away: closed, counted as a
    /// failed handshake, never answered in plain text.
    #[cfg(feature = "tls")]
    fn wrap(&mut self, tcp: TcpStream, which: Listener) -> Option<Stream> {
        match (&self.tls, which) {
            (Some(cert), Listener::Main) => match crate::net::tls::TlsStream::new(tcp, cert) {
                Ok(tls) => Some(Stream::Tls(Box::new(tls))),
                Err(e) => {
                    diag_error!("cannot start TLS on a new connection: {e}");
                    None
                }
            },
            (None, Listener::Main) if self.config.tls_cert.is_some() => {
                self.stats.tls_handshake_failures += 1;
                diag_debug!("TLS connection refused: no certificate loaded yet");
                None
            }
            _ => Some(Stream::Plain(tcp)),
        }
    }

    #[cfg(not(feature = "tls"))]
    fn wrap(&mut self, tcp: TcpStream, _: Listener) -> Option<Stream> {
        Some(Stream::Plain(tcp))
    }

    /// `SIGHUP`: the certificate and key are read again. New connections get
    /// the new pair, open ones keep theirs; a pair that does not load or
    /// does not match is logged and the old one stays.
    pub(super) fn reload_certificate(&mut self) {
        #[cfg(feature = "tls")]
        if let (Some(cert), Some(key)) = (&self.config.tls_cert, &self.config.tls_key) {
            match crate::net::tls::Certificate::load(cert, key) {
                Ok(new) => {
                    diag_info!(
                        "SIGHUP: TLS certificate reloaded (serial {}, expires {})",
                        new.serial,
                        crate::clock::rfc3339(new.not_after.max(0) as u64 * 1000)
                    );
                    self.stats.tls_not_after = Some(new.not_after);
                    self.tls = Some(new);
                }
                Err(e) if self.tls.is_some() => {
                    diag_error!("SIGHUP: TLS certificate not reloaded, keeping the old one: {e}")
                }
                Err(e) => diag_error!("SIGHUP: TLS certificate not loaded, still none: {e}"),
            }
            return;
        }
        diag_info!("SIGHUP: nothing to reload (no --tls-cert)");
    }
}
