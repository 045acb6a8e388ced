//! `picochat --man`: the manual page (roff, section 1), generated from the
//! same option table as `--help` (`options.rs`), so the two never disagree.
//! The package build writes it to `picochat.1`.

use super::OPTIONS;
use std::fmt::Write as _;

/// The man page for `version`.
pub fn man_page(version: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        ".TH PICOCHAT 1 \"\" \"picochat {}\" \"User Commands\"",
        roff(version)
    );
    out.push_str(
        ".SH NAME\npicochat \\- a live browser chat server in one small binary\n\
         .SH SYNOPSIS\n.B picochat\n[\\fIOPTIONS\\fR]\n\
         .SH DESCRIPTION\n\
         picochat serves a chat page and its WebSocket (\\fB/ws\\fR) from one process: \
         rooms, history, direct messages, reactions and pictures, with Gravatar avatars. \
         Open http://HOST:PORT/ in a browser.\n.PP\n\
         Every option is a flag, an environment variable and a key of the config file \
         (\\fB\\-\\-config\\fR): a flag wins over the environment, which wins over the file. \
         SIZE is bytes, or with KiB/MiB/GiB; DURATION is 500ms, 10s, 2m or 1h.\n\
         .SH OPTIONS\n",
    );
    for spec in OPTIONS {
        let _ = writeln!(
            out,
            ".TP\n\\fB{}\\fR \\fI{}\\fR\n{} (environment \\fB{}\\fR; default: {})",
            roff(spec.flag),
            roff(spec.value),
            roff(spec.help),
            roff(spec.env),
            roff(&spec.default_text())
        );
    }
    out.push_str(
        ".TP\n\\fB\\-\\-print\\-config\\fR\nprint the settings in effect as a config file\n\
         .TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\nprint the options\n\
         .TP\n\\fB\\-V\\fR, \\fB\\-\\-version\\fR\nprint the version\n\
         .SH FILES\n.TP\n.I /etc/picochat/picochat.toml\n\
         the packaged service's config file (every line a commented default)\n\
         .TP\n.I /var/lib/picochat\nthe packaged service's data directory\n\
         .SH SIGNALS\nSIGINT and SIGTERM close every WebSocket with 1001, store what is \
         pending and exit within \\fB\\-\\-shutdown\\-timeout\\fR.\n\
         .SH SEE ALSO\n\\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1)\n",
    );
    out
}

/// Text safe in roff: backslashes doubled, hyphens as minus signs, no line
/// starting with a control character.
fn roff(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}
