//! The server's certificate: a PEM chain and key read from their files into
//! a rustls `ServerConfig` (ring provider, TLS 1.2 and 1.3, ALPN
//! `http/1.1`), with what the logs and `/metrics` say about it (serial,
//! expiry). Loaded at start and again on `SIGHUP`; a pair that does not load
//! or does not match is an error, and the caller keeps the pair it had.
//! The connections themselves are in `mod.rs`.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::path::Path;
use std::sync::Arc;

/// A loaded certificate pair and the TLS settings every new connection shares.
#[derive(Clone)]
pub struct Certificate {
    pub config: Arc<ServerConfig>,
    /// The end-entity certificate's serial number, in hex (as `openssl x509 -serial`).
    pub serial: String,
    /// Its `notAfter`, in seconds since the Unix epoch.
    pub not_after: i64,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("serial", &self.serial)
            .field("not_after", &self.not_after)
            .finish()
    }
}

impl Certificate {
    /// Reads the chain (leaf first) and the key (PKCS#8, PKCS#1 RSA or
    /// SEC1 EC) and checks that they belong together.
    pub fn load(cert: &Path, key: &Path) -> Result<Certificate, String> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{}: {e}", cert.display()))?;
        let leaf = chain
            .first()
            .ok_or_else(|| format!("{}: no certificate in the file", cert.display()))?;
        let (serial, not_after) = leaf_facts(leaf)
            .ok_or_else(|| format!("{}: not an X.509 certificate", cert.display()))?;
        let private = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("{}: no private key: {e}", key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| format!("{} and {}: {e}", cert.display(), key.display()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // The server's order (rustls': AES-GCM, then ChaCha20; TLS 1.2 only
        // with ECDHE and AEAD), not a client's that may put a weaker suite
        // first (testssl.sh rates following the client's order HIGH).
        config.ignore_client_order = true;
        Ok(Certificate {
            config: Arc::new(config),
            serial,
            not_after,
        })
    }
}

/// The serial (hex) and `notAfter` (Unix seconds) of a DER certificate:
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
/// OPTIONAL, serialNumber INTEGER, signature, issuer, validity SEQUENCE {
/// notBefore, notAfter }, ... } ... }` (RFC 5280, 4.1).
fn leaf_facts(der: &[u8]) -> Option<(String, i64)> {
    let (_, cert, _) = tlv(der)?;
    let (_, mut tbs, _) = tlv(cert)?;
    let (tag, _, rest) = tlv(tbs)?;
    if tag == 0xa0 {
        tbs = rest; // the explicit version
    }
    let (tag, serial, rest) = tlv(tbs)?;
    if tag != 0x02 {
        return None;
    }
    let (_, _, rest) = tlv(rest)?; // signature algorithm
    let (_, _, rest) = tlv(rest)?; // issuer
    let (tag, validity, _) = tlv(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, after) = tlv(validity)?;
    let (tag, time, _) = tlv(after)?;
    let serial = serial
        .strip_prefix(&[0])
        .filter(|s| !s.is_empty())
        .unwrap_or(serial);
    Some((
        crate::chat::protocol::hex(serial).to_uppercase(),
        der_time(tag, time)?,
    ))
}

/// One DER element: (tag, contents, what follows it).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes.iter().fold(0usize, |acc, &b| acc << 8 | b as usize)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, after) = rest.split_at(len);
    Some((tag, contents, after))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`) as Unix seconds.
fn der_time(tag: u8, text: &[u8]) -> Option<i64> {
    let digits = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + (b - b'0') as i64)
        })
    };
    let (year, rest) = match (tag, text.len()) {
        (0x17, 13) => {
            let yy = digits(&text[..2])?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        (0x18, 15) => (digits(&text[..4])?, &text[4..]),
        _ => return None,
    };
    if rest.last() != Some(&b'Z') {
        return None;
    }
    let part = |i: usize| digits(&rest[i..i + 2]);
    let (month, day) = (part(0)?, part(2)?);
    let (hour, minute, second) = (part(4)?, part(6)?, part(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_times_are_unix_seconds() {
        assert_eq!(der_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(der_time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(der_time(0x18, b"20261203225726Z"), Some(1_796_338_646));
        assert_eq!(der_time(0x18, b"20000229000000Z"), Some(951_782_400));
        assert_eq!(der_time(0x17, b"7001010000Z"), None);
        assert_eq!(der_time(0x17, b"701301000000Z"), None);
        assert_eq!(der_time(0x17, b"70010100000aZ"), None);
    }

    #[test]
    fn truncated_or_foreign_der_is_refused() {
        assert_eq!(leaf_facts(&[]), None);
        assert_eq!(leaf_facts(&[0x30, 0x82, 0xff]), None);
        assert_eq!(leaf_facts(&[0x30, 0x03, 0x02, 0x01, 0x05]), None);
    }
}
