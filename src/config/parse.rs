//! Reading a [`Config`] from the command line, `PICOCHAT_*` variables and
//! a config file (flags win over the environment, which wins over the file,
//! which wins over defaults), and the value codecs the option table uses:
//! sizes, durations, switches, addresses.

use super::{Config, OPTIONS};
use std::net::SocketAddr;
use std::time::Duration;

/// What the command line asked for.
pub enum Command {
    Run(Box<Config>),
    /// `--print-config`: the settings as a config file, then exit.
    PrintConfig(Box<Config>),
    Help,
    /// `--man`: the manual page (roff), then exit.
    Man,
    Version,
}

impl Config {
    /// Reads the config file (`--config`, or `PICOCHAT_CONFIG`), then
    /// `PICOCHAT_*` from `env`, then the flags in `args` (without argv[0]).
    pub fn from_args_and_env<I, E>(args: I, env: E) -> Result<Command, String>
    where
        I: IntoIterator<Item = String>,
        E: Fn(&str) -> Option<String>,
    {
        let args: Vec<String> = args.into_iter().collect();
        // These answer whatever the file or the environment hold.
        for arg in &args {
            match arg.as_str() {
                "-h" | "--help" => return Ok(Command::Help),
                "-V" | "--version" => return Ok(Command::Version),
                "--man" => return Ok(Command::Man),
                _ => {}
            }
        }
        let mut config = Config::default();
        if let Some(path) = config_path(&args).or_else(|| env("PICOCHAT_CONFIG")) {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("--config: cannot read {path}: {e}"))?;
            super::file::apply(&mut config, &text, &path)?;
        }
        for spec in OPTIONS {
            if let Some(value) = env(spec.env) {
                if spec.flag == "--allow-origin" {
                    config.allow_origin.clear(); // the environment's list replaces the file's
                }
                (spec.apply)(&mut config, &value)
                    .map_err(|e| format!("{}={value}: {e}", spec.env))?;
            }
        }
        let mut from_flags_origins = false;
        let mut print_config = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--print-config" {
                print_config = true;
                continue;
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let spec = OPTIONS
                .iter()
                .find(|s| s.flag == flag)
                .ok_or_else(|| format!("unknown option {arg} (see --help)"))?;
            let value = match inline {
                Some(v) => v,
                None => args
                    .next()
                    .ok_or_else(|| format!("{flag} needs a value ({})", spec.value))?,
            };
            // Flags replace the environment's origin list instead of adding to it.
            if spec.flag == "--allow-origin" && !from_flags_origins {
                config.allow_origin.clear();
                from_flags_origins = true;
            }
            (spec.apply)(&mut config, &value).map_err(|e| format!("{flag} {value}: {e}"))?;
        }
        config.validate()?;
        if print_config {
            return Ok(Command::PrintConfig(Box::new(config)));
        }
        Ok(Command::Run(Box::new(config)))
    }
}

/// The file `--config FILE` (or `--config=FILE`) names, if any.
fn config_path(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--config" {
            return it.next().cloned();
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(path.to_string());
        }
    }
    None
}

pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err("expected on or off".into()),
    }
}

pub(super) fn on_off(b: bool) -> String {
    if b { "on" } else { "off" }.into()
}

pub fn parse_num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| "expected a whole number".to_string())
}

/// `16384`, `16k`, `16KiB`, `1MiB`, `1m`, `2GiB`.
pub fn parse_size(v: &str) -> Result<usize, String> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("bad size {v:?}"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return Err(format!("bad size unit in {v:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {v:?} too large"))
}

pub fn show_size(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (mult, name) in UNITS {
        if n >= mult && n % mult == 0 {
            return format!("{}{name}", n / mult);
        }
    }
    n.to_string()
}

/// `500ms`, `10s`, `2m`, `1h`, or a plain number of seconds.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad duration {v:?}"))?;
    let ms_per_unit = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("bad duration unit in {v:?}")),
    };
    match n.checked_mul(ms_per_unit) {
        Some(ms) if ms <= MAX_DURATION_MS => Ok(Duration::from_millis(ms)),
        _ => Err(format!("duration {v:?} too long (at most 87600h)")),
    }
}

/// Ten years: longer than any timeout or ban needs, and far enough from the
/// clock's limits that a deadline (`now + d`) can never overflow.
const MAX_DURATION_MS: u64 = 87_600 * 3_600_000;

pub fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        format!("{ms}ms")
    } else if ms % 3_600_000 == 0 && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1000)
    }
}

/// Resolves `listen`-style strings ("0.0.0.0:8000", "localhost:0", "[::1]:8000").
pub fn resolve_addr(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .map_err(|e| format!("bad address {s:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("address {s:?} resolves to nothing"))
}
