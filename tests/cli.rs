//! The command line as a user meets it: --help, bad flags, a taken port, the
//! environment, and the raised file-descriptor limit.

mod common;
use common::*;
use std::process::Command;

fn picochat(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_picochat"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_lists_every_flag_with_its_env_and_default() {
    let out = picochat(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for spec in picochat::config::OPTIONS {
        assert!(
            help.contains(spec.flag) && help.contains(spec.env),
            "{}",
            spec.flag
        );
    }
    assert!(
        help.contains("(default: 0.0.0.0:8000)") && help.contains("(default: 32MiB)"),
        "{help}"
    );
    assert!(String::from_utf8(picochat(&["--version"]).stdout)
        .unwrap()
        .starts_with("picochat "));
}

#[test]
fn bad_flags_fail_with_one_clear_line() {
    for args in [
        &["--bogus"][..],
        &["--max-output", "lots"],
        &["--fsync", "sometimes"],
    ] {
        let out = picochat(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("picochat: "), "{err}");
    }
}

#[test]
fn a_taken_port_is_one_line_and_a_non_zero_exit() {
    let s = TestServer::start(&[]);
    let out = picochat(&["--listen", &s.addr.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot listen on") && err.to_lowercase().contains("in use"),
        "{err}"
    );
}

#[test]
fn environment_configures_and_flags_win() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_picochat"))
        .env("PICOCHAT_LISTEN", "127.0.0.1:1") // overridden by the flag below
        .env("PICOCHAT_HISTORY", "7")
        .args(["--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stderr.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains("listening on 127.0.0.1:") && !line.contains("127.0.0.1:1 "),
        "{line}"
    );
    assert!(line.contains("history 7"), "{line}");
}

#[test]
fn the_soft_fd_limit_is_raised_to_the_hard_limit() {
    let hard = String::from_utf8(
        Command::new("sh")
            .args(["-c", "ulimit -H -n"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let hard: f64 = hard.trim().parse().unwrap_or(0.0);
    let (mut child, addr) = start_via_shell("ulimit -S -n 256", "");
    let max_fds = metric_at(addr, "picochat_max_fds");
    let _ = child.kill();
    let _ = child.wait();
    assert!(hard > 256.0, "test needs a hard limit above 256");
    assert_eq!(
        max_fds, hard,
        "soft limit raised from 256 to the hard limit"
    );
}
