//! The server's connection stream: a plain TCP socket, or TLS over one
//! (`--tls-cert`, feature `tls`). A connection (`conn/`) reads and writes
//! it as bytes and never asks which; the TLS session itself is in `tls/`.

#[cfg(feature = "tls")]
use crate::net::tls::TlsStream;
use mio::net::TcpStream;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;

/// A connection's byte stream (`conn/` reads and writes only this): the TCP
/// socket, [`Stream`], or a test's pipe.
pub trait Socket: Read + Write {
    /// Shuts the write side (a FIN after the last byte).
    fn shutdown_write(&mut self) -> io::Result<()>;
    /// Bytes the stream itself still holds for the socket (TLS records
    /// encrypted after the socket filled up): sent by `Write::flush`.
    fn pending_output(&self) -> bool {
        false
    }
    /// A TLS handshake is in progress (`None`: not a TLS stream).
    fn handshaking(&self) -> Option<bool> {
        None
    }
}

impl Socket for TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    /// Boxed: a TLS session is a few hundred bytes that plain connections
    /// should not carry.
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Stream {
    /// The socket, for the poll's registry.
    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.tcp_mut(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write_vectored(bufs),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Socket for Stream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown_write(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.shutdown_write(),
        }
    }

    fn pending_output(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.pending_output(),
        }
    }

    fn handshaking(&self) -> Option<bool> {
        match self {
            Stream::Plain(_) => None,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Some(s.handshaking()),
        }
    }
}
