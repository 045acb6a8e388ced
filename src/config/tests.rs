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
            "--admin-listen",
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
