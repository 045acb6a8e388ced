//! Starting the server: the listeners bound, the TLS certificate loaded, the
//! message log opened (memory, journal or Redis), the secrets read and the chat core built with the
//! limits from `Config`. What fails here stops the start with a message and
//! an exit status.

use super::{
    Server, ADMIN, LISTENER, REDIRECT, REDIS_COMMANDS, REDIS_SUBSCRIPTIONS, SCRATCH_BYTES,
};
use crate::chat::access::Secret;
use crate::chat::token::TokenKey;
use crate::chat::Core;
use crate::clock;
use crate::config::{self, Config, Secrets, FD_RESERVE};
use crate::log::journal::{Journal, Retention};
use crate::log::memory::MemoryLog;
use crate::log::redis::{RedisConfig, RedisLog};
use crate::log::{Backend, Restored};
use crate::metrics::Stats;
use crate::net::admin::Admin;
use crate::net::deflate;
use crate::net::per_address::PerAddress;
use crate::net::timer::TimerWheel;
use mio::net::TcpListener;
use mio::{Interest, Poll};
use slab::Slab;
use std::fs::File;
use std::rc::Rc;
use std::time::Instant;

/// Why the server could not start, and the exit status that says so: 2 for
/// what the operator must fix in the configuration (a password Redis refuses,
/// an unreadable password file), 1 for the rest.
#[derive(Debug)]
pub struct StartError {
    pub message: String,
    pub status: u8,
}

impl From<String> for StartError {
    fn from(message: String) -> StartError {
        StartError { message, status: 1 }
    }
}

impl Server {
    /// Binds the listeners, opens the message log and builds the chat core.
    pub fn bind(mut config: Config) -> Result<Server, StartError> {
        let fd_limit = crate::os::raise_fd_limit();
        let max_connections = if config.max_connections == 0 {
            (fd_limit as usize).saturating_sub(FD_RESERVE).max(16)
        } else {
            config.max_connections
        };
        let poll = Poll::new().map_err(|e| format!("cannot create the event loop: {e}"))?;
        let listen_at = |s: &str, reuse_port: bool| -> Result<TcpListener, String> {
            let addr = config::resolve_addr(s)?;
            let listener = if reuse_port {
                crate::os::listen_reuse_port(addr).map(TcpListener::from_std)
            } else {
                TcpListener::bind(addr)
            };
            listener.map_err(|e| format!("cannot listen on {s}: {e}"))
        };
        let mut listener = listen_at(&config.listen, config.reuse_port)?;
        if let Ok(bound) = listener.local_addr() {
            // The address really bound (port 0 resolved): what redirects name.
            config.listen = bound.to_string();
        }
        let mut admin = config
            .admin_listen
            .as_deref()
            .map(|a| listen_at(a, false))
            .transpose()?;
        let mut redirect = config
            .http_redirect
            .as_deref()
            .map(|a| listen_at(a, config.reuse_port))
            .transpose()?;
        let reg = poll.registry();
        reg.register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        for (l, token) in [(admin.as_mut(), ADMIN), (redirect.as_mut(), REDIRECT)] {
            if let Some(l) = l {
                reg.register(l, token, Interest::READABLE)
                    .map_err(|e| e.to_string())?;
            }
        }
        #[cfg(feature = "tls")]
        let tls = match (&config.tls_cert, &config.tls_key) {
            // The first certificate does not exist yet, and this process
            // serves the ACME challenge that gets it: start, answer the
            // challenge and the redirect, and refuse TLS until SIGHUP
            // (certbot's deploy hook) loads the pair. Anything else that
            // keeps the pair from loading stops the start.
            (Some(cert), Some(_))
                if !cert.exists() && config.acme_webroot.is_some() && redirect.is_some() =>
            {
                crate::diag_warn!(
                    "TLS: {} does not exist yet; serving ACME challenges and redirects on \
                     --http-redirect, and refusing TLS on --listen until SIGHUP loads it \
                     (certbot's deploy hook: systemctl reload picochat)",
                    cert.display()
                );
                None
            }
            (Some(cert), Some(key)) => {
                let loaded =
                    crate::net::tls::Certificate::load(cert, key).map_err(|e| StartError {
                        message: format!("--tls-cert: {e}"),
                        status: 2,
                    })?;
                crate::diag_info!(
                    "TLS: certificate serial {}, expires {}",
                    loaded.serial,
                    clock::rfc3339(loaded.not_after.max(0) as u64 * 1000)
                );
                Some(loaded)
            }
            _ => None,
        };
        let wall = clock::unix_millis();
        let (log, restored): (Backend, Restored) = match &config.data_dir {
            None if config.redis.is_some() => {
                let redis =
                    redis_config(&config).map_err(|message| StartError { message, status: 2 })?;
                let (log, restored) = RedisLog::open(
                    redis,
                    poll.registry(),
                    (REDIS_COMMANDS, REDIS_SUBSCRIPTIONS),
                )
                .map_err(|message| StartError { message, status: 2 })?;
                (Backend::Shared(Box::new(log)), restored)
            }
            Some(dir) => {
                let (mut j, restored) = Journal::open(
                    dir,
                    Retention {
                        bytes: config.retain,
                        days: config.retain_days,
                    },
                    config.fsync,
                    config.history,
                    &config.default_room,
                    wall,
                )
                .map_err(|e| format!("cannot open the message log in {}: {e}", dir.display()))?;
                j.limit_uploads(config.upload_quota() as u64);
                (Backend::Local(Box::new(j)), restored)
            }
            None => (
                Backend::Local(Box::new(MemoryLog::new(config.upload_quota()))),
                Restored {
                    epoch: wall,
                    files: true,
                    ..Restored::default()
                },
            ),
        };
        let fail = |message| StartError { message, status: 2 };
        let secrets = Secrets {
            password: config
                .password_file
                .as_deref()
                .map(|f| read_secret(f, 1, "--password-file").map(|s| Secret::new(&s)))
                .transpose()
                .map_err(fail)?,
            token_key: config
                .jwt_secret_file
                .as_deref()
                .map(|f| {
                    read_secret(f, 16, "--jwt-secret-file").map(|s| Rc::new(TokenKey::new(&s)))
                })
                .transpose()
                .map_err(fail)?,
        };
        let limits = config.chat_limits(secrets);
        let admin_api = config
            .admin_token_file
            .as_deref()
            .map(|f| read_secret(f, 16, "--admin-token-file").map(|s| Admin::new(Secret::new(&s))))
            .transpose()
            .map_err(|message| StartError { message, status: 2 })?;
        let mut core = Core::new(limits, restored, wall);
        let mut commands = Vec::new();
        core.start(&mut commands);
        Ok(Server {
            poll,
            listener: Some(listener),
            admin,
            redirect,
            #[cfg(feature = "tls")]
            tls: tls.clone(),
            signals: None,
            conns: Slab::new(),
            core,
            log,
            wheel: TimerWheel::new(0),
            scratch: vec![0; SCRATCH_BYTES].into_boxed_slice(),
            commands,
            log_events: Vec::new(),
            fetches: Default::default(),
            tick_secs: 0,
            work_at: Instant::now(),
            due: Vec::new(),
            flush_list: Vec::new(),
            read_list: Vec::new(),
            reap_list: Vec::new(),
            stats: Stats {
                #[cfg(feature = "tls")]
                tls_not_after: tls.as_ref().map(|c| c.not_after),
                ..Stats::default()
            },
            started: Instant::now(),
            next_gen: 0,
            date: String::new(),
            date_secs: u64::MAX,
            spare_fd: File::open("/dev/null").ok(),
            fd_limit,
            max_connections,
            admin_api,
            deflate: deflate::Shared::default(),
            per_address: PerAddress::new(
                config.max_connections_per_address,
                config.upgrades_per_address,
            ),
            shutdown_deadline: None,
            config,
        })
    }
}

/// `--redis` and its companions as the Redis log needs them: the URL parsed
/// and resolved, the password file read.
fn redis_config(config: &Config) -> Result<RedisConfig, String> {
    let url = config.redis.as_deref().unwrap_or_default();
    let (target, db, mut password) = RedisConfig::parse_url(url)?;
    if let Some(file) = &config.redis_password_file {
        let secret = read_secret(file, 1, "--redis-password-file")?;
        password = Some(
            String::from_utf8(secret)
                .map_err(|_| format!("the Redis password in {} is not UTF-8", file.display()))?,
        );
    }
    Ok(RedisConfig {
        target,
        db,
        password,
        prefix: config.redis_prefix.clone(),
        max_pending: config.redis_max_pending,
        retry_max_ms: config.redis_retry_max.as_millis() as u64,
        check_interval_ms: config.redis_check_interval.as_millis() as u64,
        history: config.history,
        retain: config.redis_retain,
        presence_ttl_ms: config.redis_presence_ttl.as_millis() as u64,
        upload_quota: config.upload_quota(),
    })
}

/// A secret from a file: its text with one trailing newline ignored, at
/// least `min` bytes. What went wrong is said without the secret.
fn read_secret(file: &std::path::Path, min: usize, flag: &str) -> Result<Vec<u8>, String> {
    let mut bytes =
        std::fs::read(file).map_err(|e| format!("{flag}: cannot read {}: {e}", file.display()))?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(format!("{flag}: {} is empty", file.display()));
    }
    if bytes.len() < min {
        return Err(format!(
            "{flag}: {} is shorter than {min} bytes",
            file.display()
        ));
    }
    Ok(bytes)
}
