//! A real `redis-server` (Debian's) per test: started on a Unix socket in a
//! temporary directory with `--port 0 --save ''` (AOF when asked), stopped
//! by PID. `tests/run-all.sh` installs it when missing.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    pub dir: PathBuf,
    child: Option<Child>,
    aof: bool,
    /// What `command` authenticates with (a test may change it with Redis').
    pub password: Option<String>,
}

impl Redis {
    /// A Redis with no persistence (what a restart without data looks like).
    pub fn start() -> Redis {
        Redis::start_with(false, None)
    }

    /// A Redis with `appendonly yes` and `appendfsync always`.
    pub fn start_aof() -> Redis {
        Redis::start_with(true, None)
    }

    pub fn start_with(aof: bool, password: Option<&str>) -> Redis {
        let mut r = Redis::prepared(aof, password);
        r.spawn();
        r
    }

    /// The directory and socket path, with no Redis started yet.
    pub fn prepared(aof: bool, password: Option<&str>) -> Redis {
        let dir = std::env::temp_dir().join(format!(
            "picochat-redis-{}-{}",
            std::process::id(),
            rand_u64()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Redis {
            dir,
            child: None,
            aof,
            password: password.map(str::to_owned),
        }
    }

    /// The socket path (it exists only while Redis runs).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// `--redis` for picochat.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    pub fn spawn(&mut self) {
        let redis = which("redis-server").unwrap_or_else(|| {
            panic!(
                "redis-server not found: install Debian's redis-server \
                 (tests/run-all.sh does) to run the scale-out tests"
            )
        });
        let mut cmd = Command::new(redis);
        cmd.args(["--port", "0", "--save", "", "--daemonize", "no"])
            .arg("--unixsocket")
            .arg(self.socket())
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "redis.log"]);
        if self.aof {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        }
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if self
                .command(&["PING"])
                .is_some_and(|r| r.contains("PONG") || r.contains("NOAUTH"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start in {}", self.dir.display());
    }

    /// kill -9, and wait for it to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .unwrap();
    }

    /// One command over a fresh connection (authenticated if needed); the raw reply.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut s = UnixStream::connect(self.socket()).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut out = String::new();
        let mut push = |args: &[&str]| {
            out.push_str(&format!("*{}\r\n", args.len()));
            for a in args {
                out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
            }
        };
        if let Some(p) = &self.password {
            push(&["AUTH", p]);
        }
        push(args);
        s.write_all(out.as_bytes()).ok()?;
        // Short replies: the first read waits, then read until it is quiet.
        let mut buf = vec![0u8; 1 << 16];
        let mut got = String::new();
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
            s.set_read_timeout(Some(Duration::from_millis(100))).ok()?;
        }
        Some(got)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(program))
        .chain(["/usr/bin", "/usr/sbin"].map(|d| PathBuf::from(d).join(program)))
        .find(|p| p.exists())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

/// A picochat node on `redis` (no rate limit, Redis checked every 500 ms), with `extra` options.
pub fn node(redis: &Redis, extra: &[&str]) -> super::TestServer {
    let url = redis.url();
    let mut args = vec![
        "--redis",
        url.as_str(),
        "--msg-rate",
        "0",
        "--redis-check-interval",
        "500ms",
    ];
    args.extend_from_slice(extra);
    super::TestServer::start(&args)
}
