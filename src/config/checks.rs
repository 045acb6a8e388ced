//! Cross-field checks of a [`Config`]: what no single option can express.

use super::{AuthMode, Config};
use std::time::Duration;

impl Config {
    /// Cross-field checks that a single option cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_message < 256 {
            return Err("--max-message must be at least 256 bytes".into());
        }
        if self.max_text == 0 || self.max_text + 256 > self.max_message {
            return Err("--max-text must be at least 1 and leave 256 bytes of --max-message for the JSON envelope".into());
        }
        if self.max_output < self.max_message {
            return Err("--max-output must be at least --max-message".into());
        }
        if self.output_soft_limit > self.max_output {
            return Err("--output-soft-limit must not exceed --max-output".into());
        }
        if self.max_rooms_per_client > 255 {
            return Err("--max-rooms-per-client must be at most 255".into());
        }
        if self.max_rooms_per_client == 0 || self.max_rooms == 0 {
            return Err("--max-rooms-per-client and --max-rooms must be at least 1".into());
        }
        if self.read_budget < 4096 {
            return Err("--read-budget must be at least 4KiB".into());
        }
        if self.write_budget < 4096 {
            return Err("--write-budget must be at least 4KiB".into());
        }
        if self.max_header < 256 {
            return Err("--max-header must be at least 256 bytes".into());
        }
        if self.ping_interval.is_zero()
            || self.pong_timeout.is_zero()
            || self.message_timeout.is_zero()
        {
            return Err(
                "--ping-interval, --pong-timeout and --message-timeout must be positive".into(),
            );
        }
        if let Some(p) = &self.echo_path {
            if !p.starts_with('/') || p == "/ws" {
                return Err("--echo-path must start with / and differ from /ws".into());
            }
        }
        if self.retain < 1 << 20 {
            return Err("--retain must be at least 1MiB".into());
        }
        if self.page_max == 0 {
            return Err("--page-max must be at least 1".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("--tls-cert and --tls-key go together".into());
        }
        if self.tls_cert.is_some() && !cfg!(feature = "tls") {
            return Err(
                "--tls-cert: this picochat was built without TLS (cargo feature tls)".into(),
            );
        }
        if self.http_redirect.is_some() && self.tls_cert.is_none() {
            return Err("--http-redirect needs --tls-cert (it redirects to https)".into());
        }
        if self.acme_webroot.is_some() && self.http_redirect.is_none() {
            return Err(
                "--acme-webroot needs --http-redirect (challenges come over plain HTTP)".into(),
            );
        }
        if (self.auth == AuthMode::Password) != self.password_file.is_some() {
            return Err("--auth password and --password-file go together".into());
        }
        if (self.auth == AuthMode::Token) != self.jwt_secret_file.is_some() {
            return Err("--auth token and --jwt-secret-file go together".into());
        }
        if let Some(url) = &self.redis {
            if self.data_dir.is_some() {
                return Err(
                    "--redis and --data-dir cannot be used together: with Redis the \
                            messages are kept by Redis (set appendonly yes there, see the README)"
                        .into(),
                );
            }
            if url.starts_with("rediss://") {
                return Err(
                    "--redis rediss:// (TLS) is not supported: use a Unix socket \
                            (unix:///run/redis/redis-server.sock) or a local TLS tunnel"
                        .into(),
                );
            }
            if !url.starts_with("redis://") && !url.starts_with("unix://") {
                return Err("--redis expects redis://HOST:PORT[/DB] or unix:///PATH".into());
            }
            if self.redis_max_pending == 0 || self.redis_prefix.is_empty() {
                return Err("--redis-max-pending and --redis-prefix must not be empty or 0".into());
            }
            if self.redis_retry_max < Duration::from_millis(10)
                || self.redis_check_interval < Duration::from_millis(100)
                || self.redis_presence_ttl < Duration::from_millis(500)
            {
                return Err("--redis-retry-max must be at least 10ms, --redis-check-interval at least 100ms and --redis-presence-ttl at least 500ms".into());
            }
        }
        Ok(())
    }
}
