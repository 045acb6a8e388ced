//! The `picochat` binary: command line and environment → `Config`, start the
//! server, map failures to a one-line error and a non-zero exit.

use picochat::config::{help_text, man_page, Command, Config, LogLevel};
use picochat::diag;
use picochat::net::server::Server;
use picochat::os::SignalPipe;
use std::process::ExitCode;

fn main() -> ExitCode {
    let command = Config::from_args_and_env(std::env::args().skip(1), |k| std::env::var(k).ok());
    let config = match command {
        Ok(Command::Run(config)) => *config,
        Ok(Command::PrintConfig(config)) => {
            print!("{}", picochat::config::file::print(&config));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Man) => {
            print!("{}", man_page(env!("CARGO_PKG_VERSION")));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Help) => {
            print!("{}", help_text());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("picochat {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("picochat: {e}");
            return ExitCode::from(2);
        }
    };
    diag::init(config.log_level, config.log_format);
    let mut server = match Server::bind(config.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("picochat: {}", e.message);
            return ExitCode::from(e.status);
        }
    };
    match SignalPipe::install() {
        Ok(pipe) => {
            if let Err(e) = server.handle_signals(pipe) {
                eprintln!("picochat: cannot watch signals: {e}");
                return ExitCode::FAILURE;
            }
        }
        Err(e) => {
            eprintln!("picochat: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    }
    let addr = server
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut admin = server
        .admin_addr()
        .map(|a| format!(", admin on {a}"))
        .unwrap_or_default();
    if config.tls_cert.is_some() {
        admin.insert_str(0, " (TLS)");
    }
    if let Some(a) = server.redirect_addr() {
        admin.push_str(&format!(", redirecting http on {a}"));
    }
    // The start line is written at every log level: supervisors and tests wait for it.
    diag::write(
        LogLevel::Info,
        format_args!(
            "picochat {} listening on {addr}{admin} (max {} connections, history {}, {})",
            env!("CARGO_PKG_VERSION"),
            server.max_connections(),
            config.history,
            match (&config.redis, &config.data_dir) {
                // Never the password a redis:// URL may carry.
                (Some(url), _) => format!("redis {}", url.rsplit('@').next().unwrap_or(url)),
                (None, Some(d)) => format!("data dir {}", d.display()),
                (None, None) => "data dir none".into(),
            },
        ),
    );
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("picochat: event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
