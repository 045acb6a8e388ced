//! The `--help` text, generated from the option table.

use super::OPTIONS;
use std::fmt::Write as _;

/// The `--help` text, generated from [`OPTIONS`].
pub fn help_text() -> String {
    let mut out = String::from(
        "picochat: a live browser chat server in one small binary.\n\n\
         Usage: picochat [OPTIONS]\n\n\
         Open http://HOST:PORT/ in a browser. Every option can also be set with the\n\
         environment variable shown; a flag wins over the environment.\n\
         SIZE: bytes, or with KiB/MiB/GiB (also k/m/g). DURATION: 500ms, 10s, 2m, 1h (plain number = seconds).\n\nOptions:\n",
    );
    for spec in OPTIONS {
        let _ = writeln!(
            out,
            "  {} {}\n      {} [env {}] (default: {})",
            spec.flag,
            spec.value,
            spec.help,
            spec.env,
            spec.default_text()
        );
    }
    out.push_str(
        "  --print-config  print the settings in effect as a config file (for --config)\n  \
         --man           print the manual page (roff)\n  \
         -h, --help      print this help\n  -V, --version   print the version\n",
    );
    out
}
