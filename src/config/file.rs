//! `--config FILE`: the options in TOML, each under its flag's name
//! (`listen = "0.0.0.0:8000"`, `max-text = "8KiB"`, `rooms = ["a", "b"]`),
//! a value written as on the command line or as the TOML integer, boolean
//! or array it means; and `--print-config`, the effective settings written
//! back in that form. Read with `toml-span`, which keeps where each key
//! was, so every error names the file, the line and the key.
//!
//! The order of sources (file, then environment, then flags) is
//! `parse.rs`'s; what each value means is the option table's (`options.rs`).

use super::{Config, OPTIONS};
use std::fmt::Write as _;
use toml_span::value::ValueInner;

/// Options that are commands or the file itself, never keys in it.
const NOT_KEYS: [&str; 2] = ["--config", "--print-config"];

/// Applies the TOML `text` (read from `file`, named in errors) to `config`.
pub fn apply(config: &mut Config, text: &str, file: &str) -> Result<(), String> {
    let line = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
    let root = toml_span::parse(text).map_err(|e| format!("{file}:{}: {e}", line(e.span.start)))?;
    let Some(table) = root.as_table() else {
        return Err(format!("{file}: not a table of options"));
    };
    for (key, value) in table {
        let at = line(key.span.start);
        let name = key.name.as_ref();
        let spec = OPTIONS
            .iter()
            .find(|s| s.flag.strip_prefix("--") == Some(name) && !NOT_KEYS.contains(&s.flag))
            .ok_or_else(|| format!("{file}:{at}: {name}: not an option (see --help)"))?;
        let text = match value.as_ref() {
            ValueInner::String(s) => s.to_string(),
            ValueInner::Integer(n) => n.to_string(),
            ValueInner::Boolean(b) => if *b { "on" } else { "off" }.to_string(),
            ValueInner::Array(items) => {
                let mut joined = Vec::with_capacity(items.len());
                for item in items {
                    match item.as_ref() {
                        ValueInner::String(s) => joined.push(s.to_string()),
                        ValueInner::Integer(n) => joined.push(n.to_string()),
                        _ => {
                            return Err(format!(
                                "{file}:{at}: {name}: an array holds strings or whole numbers"
                            ))
                        }
                    }
                }
                joined.join(",")
            }
            other => {
                return Err(format!(
                    "{file}:{at}: {name}: expected a string, a whole number, true or false, \
                     or an array (found {})",
                    other.type_str()
                ))
            }
        };
        (spec.apply)(config, &text).map_err(|e| format!("{file}:{at}: {name} = {text:?}: {e}"))?;
    }
    Ok(())
}

/// The effective settings as a config file: every option under its name,
/// its value as `--help` shows it (a secret's file path, never its
/// contents). An option that is not set is a comment, so the file read
/// back prints the same text.
pub fn print(config: &Config) -> String {
    let mut out = String::from(
        "# picochat configuration (picochat --print-config): every option under its\n\
         # flag's name, written as on the command line. Flags and PICOCHAT_*\n\
         # variables win over this file.\n",
    );
    for spec in OPTIONS.iter().filter(|s| !NOT_KEYS.contains(&s.flag)) {
        let key = &spec.flag[2..];
        let shown = (spec.show)(config);
        // Unset: the default's "(none)"-style text, which is no value.
        if shown.starts_with('(') && shown == spec.default_text() {
            let _ = writeln!(out, "# {key}: not set {shown}");
        } else {
            let _ = writeln!(out, "{key} = {}", quoted(&shown));
        }
    }
    out
}

/// The packaged default (`/etc/picochat/picochat.toml`): the defaults as
/// [`print`] writes them, every line commented.
pub fn commented_defaults() -> String {
    print(&Config::default())
        .lines()
        .map(|l| {
            if l.starts_with('#') {
                format!("{l}\n")
            } else {
                format!("# {l}\n")
            }
        })
        .collect()
}

/// A TOML basic string.
fn quoted(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04X}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}
