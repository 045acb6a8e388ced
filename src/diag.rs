//! Diagnostics: the operator's lines on stderr, with a level filter, UTC
//! timestamps, text or JSON lines (`--log-level`, `--log-format`). Not the
//! message log (`crate::log`), which stores chat records.
//!
//! Deliberately tiny (no `log`/`tracing` facade): the server reports starts,
//! connection opens/closes with reasons, and errors. Nothing is written per
//! chat message at `info`, so an SD card does not fill up.

use crate::config::{LogFormat, LogLevel};
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);
static JSON: AtomicU8 = AtomicU8::new(0);

pub fn init(level: LogLevel, format: LogFormat) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    JSON.store((format == LogFormat::Json) as u8, Ordering::Relaxed);
}

pub fn enabled(level: LogLevel) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one line. Use the `diag_*!` macros, which skip formatting when filtered.
pub fn write(level: LogLevel, args: std::fmt::Arguments) {
    let stamp = crate::clock::rfc3339(crate::clock::unix_millis());
    let name = match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
    };
    let line = if JSON.load(Ordering::Relaxed) == 1 {
        let msg = args.to_string();
        format!(
            "{{\"ts\":\"{stamp}\",\"level\":\"{name}\",\"msg\":{}}}\n",
            serde_json::Value::String(msg)
        )
    } else {
        format!("{stamp} {name:<5} {args}\n")
    };
    // One write per line so lines from a supervisor's pipe never interleave.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[macro_export]
macro_rules! diag_at {
    ($lvl:expr, $($arg:tt)*) => {
        if $crate::diag::enabled($lvl) {
            $crate::diag::write($lvl, format_args!($($arg)*));
        }
    };
}
#[macro_export]
macro_rules! diag_error { ($($arg:tt)*) => { $crate::diag_at!($crate::config::LogLevel::Error, $($arg)*) }; }
#[macro_export]
macro_rules! diag_warn { ($($arg:tt)*) => { $crate::diag_at!($crate::config::LogLevel::Warn, $($arg)*) }; }
#[macro_export]
macro_rules! diag_info { ($($arg:tt)*) => { $crate::diag_at!($crate::config::LogLevel::Info, $($arg)*) }; }
#[macro_export]
macro_rules! diag_debug { ($($arg:tt)*) => { $crate::diag_at!($crate::config::LogLevel::Debug, $($arg)*) }; }
