//! The option table, parsing and the checks.

use super::*;

fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match Config::from_args_and_env(args.iter().map(|s| s.to_string()), |k| {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })? {
        Command::Run(c) => Ok(*c),
        _ => Err("not run".into()),
    }
}

#[test]
fn flags_win_over_environment_and_defaults_hold() {
    let c = parse(
        &["--max-output", "9MiB"],
        &[("PICOCHAT_MAX_OUTPUT", "12MiB"), ("PICOCHAT_HISTORY", "7")],
    )
    .unwrap();
    assert_eq!(c.max_output, 9 << 20);
    assert_eq!(c.history, 7);
    assert_eq!(c.max_message, 16 * 1024);
    let c = parse(&["--listen=127.0.0.1:9", "--header-timeout", "250ms"], &[]).unwrap();
    assert_eq!(c.listen, "127.0.0.1:9");
    assert_eq!(c.header_timeout, Duration::from_millis(250));
}

#[test]
fn bad_values_and_unknown_flags_are_refused() {
    assert!(parse(&["--nope"], &[]).is_err());
    assert!(parse(&["--max-output"], &[]).is_err());
    assert!(parse(&["--fsync", "sometimes"], &[]).is_err());
    assert!(
        parse(&["--max-text", "16KiB"], &[]).is_err(),
        "text must fit in a message"
    );
}

#[test]
fn every_option_has_env_help_and_a_default_that_parses_back() {
    for spec in OPTIONS {
        assert!(spec.env.starts_with("PICOCHAT_") && !spec.help.is_empty());
        assert!(help_text().contains(spec.flag));
    }
    let readme = include_str!("../../docs/operations.md");
    for spec in OPTIONS {
        assert!(
            readme.contains(&format!("`{} ", spec.flag)) && readme.contains(spec.env),
            "docs/operations.md lacks {}",
            spec.flag
        );
    }
    // Every default, as --help shows it, parses back to itself. The only
    // exceptions are the documented "(none)"-style placeholders of options
    // that are off by default.
    let mut placeholders = Vec::new();
    for spec in OPTIONS {
        let shown = spec.default_text();
        if shown.starts_with('(') {
            placeholders.push(spec.flag);
            continue;
        }
        let mut c = Config::default();
        (spec.apply)(&mut c, &shown).unwrap_or_else(|e| panic!("{} {shown}: {e}", spec.flag));
        assert_eq!((spec.show)(&c), shown, "{}", spec.flag);
    }
    assert_eq!(
        placeholders,
        [
            "--config",
            "--admin-listen",
            "--tls-cert",
            "--tls-key",
            "--http-redirect",
            "--acme-webroot",
            "--upload-quota",
            "--password-file",
            "--jwt-secret-file",
            "--name-hold",
            "--admin-token-file",
            "--rooms",
            "--data-dir",
            "--redis",
            "--redis-password-file",
            "--allow-origin",
            "--echo-path"
        ]
    );
    assert_eq!(parse_size("16KiB"), Ok(16384));
    assert_eq!(show_size(16384), "16KiB");
    assert_eq!(
        parse_duration(&show_duration(Duration::from_millis(1500))),
        Ok(Duration::from_millis(1500))
    );
}

/// A duration whose unit would overflow (the config fuzzer's find), or one
/// so long a deadline could overflow, is an error, not a wrapped value.
#[test]
fn durations_too_long_are_errors() {
    assert_eq!(
        parse_duration("87600h"),
        Ok(Duration::from_secs(87_600 * 3600))
    );
    for v in [
        "87601h",
        "18446744073709551446m",
        "307445734561825861h",
        "18446744073709551615ms",
    ] {
        let e = parse_duration(v).unwrap_err();
        assert!(e.contains("too long"), "{v}: {e}");
    }
    let mut c = Config::default();
    let e = file::apply(
        &mut c,
        "edit-window = \"18446744073709551446m\"\n",
        "f.toml",
    )
    .unwrap_err();
    assert!(
        e.starts_with("f.toml:1: edit-window") && e.contains("too long"),
        "{e}"
    );
}

/// A value other than the default for every option (`--config` is the file itself).
const SAMPLES: &[(&str, &str)] = &[
    ("--listen", "127.0.0.1:9000"),
    ("--admin-listen", "127.0.0.1:9001"),
    (
        "--tls-cert",
        "/etc/letsencrypt/live/chat.example/fullchain.pem",
    ),
    (
        "--tls-key",
        "/etc/letsencrypt/live/chat.example/privkey.pem",
    ),
    ("--http-redirect", "0.0.0.0:80"),
    ("--acme-webroot", "/var/lib/picochat/acme"),
    ("--ops-endpoints", "off"),
    ("--max-message", "128KiB"),
    ("--max-upload", "2MiB"),
    ("--upload-memory", "8MiB"),
    ("--upload-quota", "64MiB"),
    ("--upload-timeout", "90s"),
    ("--compression", "off"),
    ("--compress-min", "512"),
    ("--max-text", "2KiB"),
    ("--max-output", "8MiB"),
    ("--output-soft-limit", "2MiB"),
    ("--output-soft-seconds", "20s"),
    ("--max-header", "4KiB"),
    ("--header-timeout", "7s"),
    ("--keepalive-timeout", "9s"),
    ("--ping-interval", "45s"),
    ("--pong-timeout", "25s"),
    ("--message-timeout", "11s"),
    ("--max-connections", "500"),
    ("--auth", "password"),
    ("--password-file", "/etc/picochat/password"),
    ("--jwt-secret-file", "/etc/picochat/jwt \"secret\""),
    ("--name-hold", "2h"),
    ("--edit-window", "5m"),
    ("--admin-token-file", "/etc/picochat/admin"),
    ("--max-connections-per-address", "33"),
    ("--upgrades-per-address", "7"),
    ("--overflow-connections", "12"),
    ("--read-budget", "32KiB"),
    ("--write-budget", "128KiB"),
    ("--linger", "3s"),
    ("--msg-rate", "4"),
    ("--history", "77"),
    ("--page-max", "50"),
    ("--history-bytes", "16MiB"),
    ("--default-room", "hall"),
    ("--rooms", "lobby,kitchen"),
    ("--max-rooms-per-client", "3"),
    ("--max-rooms", "40"),
    ("--data-dir", "/var/lib/picochat"),
    ("--fsync", "always"),
    ("--retain", "64MiB"),
    ("--retain-days", "30"),
    ("--redis-retain", "5000"),
    ("--redis", "redis://127.0.0.1:6379/2"),
    ("--redis-password-file", "/etc/picochat/redis"),
    ("--redis-prefix", "chat:"),
    ("--redis-max-pending", "99"),
    ("--redis-retry-max", "3s"),
    ("--redis-check-interval", "4s"),
    ("--redis-presence-ttl", "2m"),
    ("--reuse-port", "on"),
    ("--allow-origin", "https://a.example,https://b.example"),
    ("--frame-ancestors", "https://example.org"),
    ("--echo-path", "/echo"),
    ("--echo-max-message", "32KiB"),
    ("--shutdown-timeout", "8s"),
    ("--trust-proxy", "on"),
    ("--log-level", "debug"),
    ("--log-format", "json"),
];

fn from_file(text: &str) -> Result<Config, String> {
    let mut c = Config::default();
    file::apply(&mut c, text, "picochat.toml").map(|()| c)
}

#[test]
fn print_config_read_back_prints_the_same_for_every_option() {
    let flags: Vec<&str> = OPTIONS.iter().map(|s| s.flag).collect();
    for flag in &flags {
        assert!(
            *flag == "--config" || SAMPLES.iter().any(|(f, _)| f == flag),
            "SAMPLES lacks {flag}"
        );
    }
    // The defaults, then each option set to something else.
    let defaults = file::print(&Config::default());
    assert_eq!(file::print(&from_file(&defaults).unwrap()), defaults);
    for (flag, value) in SAMPLES {
        let spec = OPTIONS.iter().find(|s| s.flag == *flag).unwrap();
        let mut c = Config::default();
        (spec.apply)(&mut c, value).unwrap_or_else(|e| panic!("{flag} {value}: {e}"));
        let text = file::print(&c);
        assert_ne!(text, defaults, "{flag} {value} changed nothing");
        let key = &flag[2..];
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{key} = "))),
            "{key} is a setting in:\n{text}"
        );
        let back = from_file(&text).unwrap_or_else(|e| panic!("{text}\n{e}"));
        assert_eq!(file::print(&back), text, "{flag}");
    }
    // Unset options are comments; the packaged file comments everything.
    assert!(defaults.contains("\n# data-dir: not set (none: memory only)\n"));
    assert!(file::commented_defaults()
        .lines()
        .all(|l| l.starts_with('#')));
    assert_eq!(
        from_file(&file::commented_defaults()).map(|c| file::print(&c)),
        Ok(defaults)
    );
}

#[test]
fn a_value_is_written_as_on_the_command_line_or_as_the_toml_it_means() {
    let c = from_file(
        "listen = \"0.0.0.0:8000\"\nmax-text = \"8KiB\"\nmsg-rate = 3\ncompression = false\n\
         trust-proxy = true\nrooms = [\"general\", \"random\"]\n\
         allow-origin = [\"https://a.example\", \"https://b.example\"]\n\
         history = \"40\"\n",
    )
    .unwrap();
    assert_eq!(c.listen, "0.0.0.0:8000");
    assert_eq!((c.max_text, c.msg_rate, c.history), (8192, 3, 40));
    assert!(!c.compression && c.trust_proxy);
    assert_eq!(c.rooms, ["general", "random"]);
    assert_eq!(c.allow_origin, ["https://a.example", "https://b.example"]);
}

#[test]
fn every_error_names_the_file_the_line_and_the_key() {
    let cases = [
        (
            "listen = \"x:1\"\n\nnope = 1\n",
            "picochat.toml:3: nope: not an option",
        ),
        (
            "msg-rate = 2\nmax-text = \"eight\"\n",
            "picochat.toml:2: max-text = \"eight\": bad size",
        ),
        (
            "msg-rate = 2\nhistory = 3\nmsg-rate = 4\n",
            "picochat.toml:3: duplicate key: `msg-rate`",
        ),
        (
            "\nmsg-rate = 1.5\n",
            "picochat.toml:2: msg-rate: expected a string, a whole number",
        ),
        (
            "[redis]\nurl = \"x\"\n",
            "picochat.toml:1: redis: expected a string",
        ),
        (
            "rooms = [[\"a\"]]\n",
            "picochat.toml:1: rooms: an array holds strings",
        ),
        (
            "config = \"other.toml\"\n",
            "picochat.toml:1: config: not an option",
        ),
        (
            "print-config = true\n",
            "picochat.toml:1: print-config: not an option",
        ),
        (
            "password = \"hunter2\"\n",
            "picochat.toml:1: password: not an option",
        ),
        ("listen = \"x:1\n", "picochat.toml:1: "),
        ("compression = maybe\n", "picochat.toml:1: "),
    ];
    for (text, want) in cases {
        let got = from_file(text).err().unwrap_or_default();
        assert!(got.starts_with(want), "{text:?}: {got:?}, wanted {want:?}");
    }
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_file() {
    let dir = std::env::temp_dir().join(format!("picochat-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("picochat.toml");
    std::fs::write(
        &path,
        "msg-rate = 5\nhistory = 11\npage-max = 12\nallow-origin = [\"https://file.example\"]\n",
    )
    .unwrap();
    let file = path.to_str().unwrap().to_string();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match Config::from_args_and_env(args.iter().map(|s| s.to_string()), lookup) {
            Ok(Command::Run(c)) | Ok(Command::PrintConfig(c)) => *c,
            Ok(_) => panic!("not a run"),
            Err(e) => panic!("{e}"),
        }
    };
    let c = run(
        &["--config", &file, "--msg-rate", "9"],
        &[("PICOCHAT_MSG_RATE", "7"), ("PICOCHAT_HISTORY", "21")],
    );
    assert_eq!((c.msg_rate, c.history, c.page_max), (9, 21, 12));
    assert_eq!(c.allow_origin, ["https://file.example"]);
    // The file named by the environment; the environment's list replaces the file's.
    let c = run(
        &[],
        &[
            ("PICOCHAT_CONFIG", &file),
            ("PICOCHAT_ALLOW_ORIGIN", "https://env.example"),
        ],
    );
    assert_eq!((c.msg_rate, c.history), (5, 11));
    assert_eq!(c.allow_origin, ["https://env.example"]);
    let c = run(&[&format!("--config={file}"), "--print-config"], &[]);
    assert_eq!(c.msg_rate, 5);
    let missing = Config::from_args_and_env(
        [
            "--config".to_string(),
            dir.join("none.toml").display().to_string(),
        ],
        |_| None,
    );
    assert!(matches!(missing, Err(e) if e.contains("cannot read")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_packaged_config_file_is_the_defaults_commented() {
    assert_eq!(
        include_str!("../../contrib/picochat.toml"),
        file::commented_defaults(),
        "regenerate contrib/picochat.toml: picochat --print-config, every line commented"
    );
}

#[test]
fn the_packaged_man_page_is_the_generated_one() {
    assert_eq!(
        include_str!("../../contrib/picochat.1"),
        super::man_page(env!("CARGO_PKG_VERSION")),
        "regenerate contrib/picochat.1: picochat --man > contrib/picochat.1"
    );
}
