//! A client's connection: plain TCP (`ws://`) or TLS over it (`wss://`,
//! feature `tls`), as bytes to `gen.rs`, which never asks which. The TLS
//! client is rustls driven by the generator's readiness like the server's
//! side (`read_tls`, `process_new_packets`, `write_tls`), each connection a
//! full handshake (no resumption), so connecting measures handshakes. What
//! the bytes mean (the upgrade, frames) is in `gen.rs`.

use mio::net::TcpStream;
use std::io::{self, Read, Write};

pub enum Conn {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tls::TlsConn>),
}

impl Conn {
    /// The socket, for the poll's registry and the connect checks.
    pub fn tcp(&mut self) -> &mut TcpStream {
        match self {
            Conn::Plain(s) => s,
            #[cfg(feature = "tls")]
            Conn::Tls(s) => &mut s.tcp,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.write(buf),
        }
    }

    /// TLS: sends the encrypted bytes rustls holds (`WouldBlock` while some
    /// remain); plain: nothing to do.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(_) => Ok(()),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.send_tls(),
        }
    }
}

#[cfg(feature = "tls")]
pub mod tls {
    use mio::net::TcpStream;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore};
    use std::io::{self, Read, Write};
    use std::path::Path;
    use std::sync::Arc;

    /// Trusts the certificates of `ca` (PEM) only; TLS 1.2 and 1.3, ALPN
    /// `http/1.1`, no session resumption.
    pub fn client_config(ca: &Path) -> Result<Arc<ClientConfig>, String> {
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("--tls-ca {}: {e}", ca.display()))?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("--tls-ca {}: {e}", ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("--tls-ca {}: no certificate", ca.display()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    pub struct TlsConn {
        pub(super) tcp: TcpStream,
        tls: ClientConnection,
    }

    impl TlsConn {
        pub fn new(
            tcp: TcpStream,
            config: &Arc<ClientConfig>,
            server_name: &str,
        ) -> io::Result<TlsConn> {
            let name = ServerName::try_from(server_name.to_string())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tls = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
            Ok(TlsConn { tcp, tls })
        }

        /// Everything rustls holds onto the socket, or `WouldBlock` (or
        /// `NotConnected` while the TCP connect is under way).
        pub(super) fn send_tls(&mut self) -> io::Result<()> {
            while self.tls.wants_write() {
                match self.tls.write_tls(&mut self.tcp) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }

        /// What the socket cannot take now waits in rustls for `flush`.
        fn send_some(&mut self) -> io::Result<()> {
            match self.send_tls() {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected
                    ) =>
                {
                    Ok(())
                }
                other => other,
            }
        }
    }

    impl Read for TlsConn {
        /// Plaintext; reads records and answers the handshake as needed.
        /// `Ok(0)`: the server closed. A TLS error (a certificate not
        /// trusted, a bad record) is `InvalidData`.
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
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
                // The handshake's next flight, or the request written before
                // the handshake finished.
                self.send_some()?;
            }
        }
    }

    impl Write for TlsConn {
        /// Takes the plaintext into rustls (buffered until the handshake is
        /// done) and sends what it can.
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = self.tls.writer().write(buf)?;
            self.send_some()?;
            if n == 0 && !buf.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            self.send_tls()
        }
    }
}
