//! Getting to Redis: `--redis` URLs parsed (and host names resolved once,
//! before the loop), the handshake a fresh connection sends (AUTH, SELECT),
//! and the blocking start-up check that turns a refused password into exit
//! status 2. Nothing here runs inside the loop; the links are `link.rs`.

use super::link::Target;
use super::resp::{self, Value};
use std::io::{Read, Write};
use std::time::Duration;

/// How picochat reaches Redis, from the command line.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    pub target: Target,
    pub db: u32,
    pub password: Option<String>,
    pub prefix: String,
    /// Publishes written and not yet answered, at most: past it senders get `unavailable`.
    pub max_pending: usize,
    pub retry_max_ms: u64,
    pub check_interval_ms: u64,
    /// Messages a join reads (`--history`).
    pub history: usize,
    /// Messages kept per room (the stream's `MAXLEN ~`, `--redis-retain`).
    pub retain: usize,
    /// How long a node's presence entries live without a refresh.
    pub presence_ttl_ms: u64,
    /// Bytes of uploaded images kept, at most (`--upload-quota`).
    pub upload_quota: usize,
}

impl RedisConfig {
    /// Parses `redis://[:password@]host:port[/db]` or `unix:///path[?db=N]`.
    /// The host name is resolved here, once, so the loop never looks one up.
    pub fn parse_url(url: &str) -> Result<(Target, u32, Option<String>), String> {
        if url.starts_with("rediss://") {
            return Err("rediss:// (TLS) is not supported: use a Unix socket \
                        (unix:///run/redis/redis.sock) or a local TLS tunnel"
                .into());
        }
        if let Some(rest) = url.strip_prefix("unix://") {
            let (path, db) = match rest.split_once("?db=") {
                Some((p, d)) => (p, d.parse().map_err(|_| format!("bad db in {url}"))?),
                None => (rest, 0),
            };
            if !path.starts_with('/') {
                return Err(format!("{url}: a Unix socket path must be absolute"));
            }
            return Ok((Target::Unix(path.into()), db, None));
        }
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| format!("{url}: expected redis://HOST:PORT[/DB] or unix:///PATH"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
        let password = auth.map(|a| a.split_once(':').map_or(a, |(_, p)| p).to_string());
        let (hostport, db) = match rest.split_once('/') {
            Some((h, "")) => (h, 0),
            Some((h, d)) => (h, d.parse().map_err(|_| format!("bad db in {url}"))?),
            None => (rest, 0),
        };
        let hostport = if hostport.contains(':') {
            hostport.to_string()
        } else {
            format!("{hostport}:6379")
        };
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&hostport)
            .map_err(|e| format!("cannot resolve {hostport}: {e}"))?
            .next()
            .ok_or_else(|| format!("cannot resolve {hostport}"))?;
        Ok((Target::Tcp(addr), db, password.filter(|p| !p.is_empty())))
    }
}

/// The start-up check: connect (1 s timeout), authenticate, `PING`. Only a
/// refusal is an error; Redis being away is not.
pub fn probe(cfg: &RedisConfig) -> Result<(), String> {
    let timeout = Some(Duration::from_secs(1));
    let mut stream: Box<dyn ReadWriteTimeout> = match &cfg.target {
        Target::Tcp(addr) => {
            match std::net::TcpStream::connect_timeout(addr, Duration::from_secs(1)) {
                Ok(s) => Box::new(s),
                Err(_) => return Ok(()),
            }
        }
        Target::Unix(path) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(s) => Box::new(s),
            Err(_) => return Ok(()),
        },
    };
    stream.timeouts(timeout);
    let mut out = Vec::new();
    let mut commands = handshake_commands(cfg);
    commands.push(vec!["PING".into()]);
    for c in &commands {
        resp::encode(&mut out, c);
    }
    let expected = commands.len();
    if stream.write_all(&out).is_err() {
        return Ok(());
    }
    let mut buf = Vec::new();
    let mut got = 0;
    let mut chunk = [0u8; 4096];
    while got < expected {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return Ok(()),
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Ok(Some((v, used))) = resp::decode(&buf) {
            buf.drain(..used);
            got += 1;
            if let Value::Error(e) = v {
                return Err(format!("Redis refused picochat: {e}"));
            }
        }
    }
    Ok(())
}

trait ReadWriteTimeout: Read + Write {
    fn timeouts(&self, t: Option<Duration>);
}

impl ReadWriteTimeout for std::net::TcpStream {
    fn timeouts(&self, t: Option<Duration>) {
        let _ = self.set_read_timeout(t);
        let _ = self.set_write_timeout(t);
    }
}

impl ReadWriteTimeout for std::os::unix::net::UnixStream {
    fn timeouts(&self, t: Option<Duration>) {
        let _ = self.set_read_timeout(t);
        let _ = self.set_write_timeout(t);
    }
}

/// AUTH and SELECT, as a fresh connection needs them.
pub fn handshake_commands(cfg: &RedisConfig) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    if let Some(p) = &cfg.password {
        commands.push(vec!["AUTH".into(), p.clone()]);
    }
    if cfg.db != 0 {
        commands.push(vec!["SELECT".into(), cfg.db.to_string()]);
    }
    commands
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_tls_is_refused() {
        let (t, db, pw) = RedisConfig::parse_url("redis://:s3cret@127.0.0.1:6380/2").unwrap();
        assert_eq!(t, Target::Tcp("127.0.0.1:6380".parse().unwrap()));
        assert_eq!((db, pw.as_deref()), (2, Some("s3cret")));
        let (t, db, _) = RedisConfig::parse_url("unix:///run/redis.sock?db=3").unwrap();
        assert_eq!((t, db), (Target::Unix("/run/redis.sock".into()), 3));
        assert!(RedisConfig::parse_url("rediss://h:1")
            .unwrap_err()
            .contains("TLS"));
        assert!(RedisConfig::parse_url("http://h").is_err());
    }
}
