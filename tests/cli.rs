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

#[test]
fn a_config_file_starts_the_server_and_its_errors_exit_2_with_the_line() {
    let dir = std::env::temp_dir().join(format!("picochat-cli-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "# a room of our own\ndefault-room = \"hall\"\nmsg-rate = 0\n",
    )
    .unwrap();
    // --print-config shows the file's settings, and reads back to the same text.
    let out = picochat(&["--config", good.to_str().unwrap(), "--print-config"]);
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("\ndefault-room = \"hall\"\n"), "{printed}");
    let again = dir.join("again.toml");
    std::fs::write(&again, &printed).unwrap();
    let out = picochat(&["--config", again.to_str().unwrap(), "--print-config"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), printed);
    // A server started from it uses it (the default room of a Go-tutorial client).
    let s = TestServer::start(&["--config", good.to_str().unwrap()]);
    let mut ws = s.ws();
    send_json(
        &mut ws,
        serde_json::json!({"username": "go", "email": "go@x", "message": "hi"}),
    );
    let m = recv_type(&mut ws, "message");
    assert_eq!(m["room"], "hall", "{m}");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:0\"\n\nmax-text = \"lots\"\n").unwrap();
    let out = picochat(&["--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with(&format!("picochat: {}:3: max-text", bad.display())),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_man_page_lists_every_option_and_groff_reads_it_without_a_warning() {
    let out = picochat(&["--man"]);
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with(".TH PICOCHAT 1 "), "{page}");
    let mut groff = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-rLL=200n", "-P-cbou"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("groff (tests/run-all.sh installs groff-base)");
    use std::io::Write as _;
    groff
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let shown = groff.wait_with_output().unwrap();
    assert!(shown.status.success());
    assert_eq!(String::from_utf8_lossy(&shown.stderr), "", "groff warnings");
    // groff may hyphenate or use Unicode dashes: compare letters only.
    let letters = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
    };
    let text = letters(&String::from_utf8_lossy(&shown.stdout));
    for spec in picochat::config::OPTIONS {
        assert!(text.contains(&letters(spec.flag)), "{} missing", spec.flag);
        assert!(text.contains(&letters(spec.env)), "{} missing", spec.env);
    }
    // A broken config file does not stop --man, --help or --version.
    let broken = std::env::temp_dir().join(format!("picochat-broken-{}.toml", std::process::id()));
    std::fs::write(&broken, "nope = 1\n").unwrap();
    for flag in ["--man", "--help", "--version"] {
        let out = picochat(&["--config", broken.to_str().unwrap(), flag]);
        assert!(out.status.success(), "{flag}");
    }
    let _ = std::fs::remove_file(&broken);
}
