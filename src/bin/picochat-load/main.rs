//! `picochat-load`: a load generator for WebSocket chat servers that relay the
//! Go tutorial's `{"email","username","message"}` frames (picochat, the Go
//! tutorial server, or anything compatible), and `picochat-load compare` for
//! reports of earlier runs.
//!
//! This file runs the phases (connect, send or hold, step up) and writes the
//! outputs; the engine is `gen.rs`, what it counts `tally.rs` and
//! `series.rs`, the report `report.rs`, the HTML page `html.rs` with its
//! charts in `svg.rs`, and `compare.rs` the side-by-side table. The server's
//! event loop is not used here; nothing but framing is shared.

mod args;
mod compare;
mod gen;
mod histogram;
mod html;
mod mixed;
mod procfs;
mod report;
mod series;
mod stream;
mod svg;
mod tally;

use args::{Args, Command};
use gen::Gen;
use mio::Events;
use picochat::os;
use report::{Params, RunTimes, Step, StepReport};
use std::fs::File;
use std::io::{IsTerminal, Seek, Write};
use std::time::{Duration, Instant};

fn main() {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(Command::Run(a)) => *a,
        Ok(Command::Help) => {
            print!("{}", args::HELP);
            return;
        }
        Ok(Command::Compare { files, report }) => std::process::exit(compare::main(&files, report)),
        Err(e) => {
            eprintln!("picochat-load: {e}");
            std::process::exit(2);
        }
    };
    // Before anything connects: a report that cannot be written fails now, not after the run.
    let report_is_new = args.report.as_ref().is_some_and(|p| !p.exists());
    let mut report_file = match &args.report {
        Some(path) => match open_report(path) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("picochat-load: --report {}: {e}", path.display());
                std::process::exit(2);
            }
        },
        None => None,
    };
    let fd_limit = os::raise_fd_limit();
    if (fd_limit as usize) < args.clients + 32 {
        eprintln!(
            "picochat-load: warning: file-descriptor limit {fd_limit} is below --clients {}",
            args.clients
        );
    }
    for t in &args.targets {
        if let Err(e) = std::net::TcpStream::connect_timeout(&t.addr, Duration::from_secs(3)) {
            eprintln!("picochat-load: cannot reach {}: {e}", t.addr);
            // No run, no report: leave no empty file behind.
            if let (true, Some(path)) = (report_is_new, &args.report) {
                let _ = std::fs::remove_file(path);
            }
            std::process::exit(1);
        }
    }
    let params = Params::of(&args, picochat::clock::unix_millis());
    let mut g = match Gen::new(args.clone()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("picochat-load: {e}");
            std::process::exit(1);
        }
    };
    let mut events = Events::with_capacity(4096);
    let (text, json, page) = if args.step > 0 {
        let r = step_mode(&mut g, &mut events, params);
        (
            report::step_text(&r),
            report::to_json(&r),
            report_file.is_some().then(|| html::step_page(&r)),
        )
    } else {
        let times = run_once(&mut g, &mut events);
        let r = report::run_report(&g, params, &times);
        (
            report::run_text(&r),
            report::to_json(&r),
            report_file.is_some().then(|| html::run_page(&r)),
        )
    };
    if !args.quiet && std::io::stderr().is_terminal() {
        eprintln!();
    }
    if let (Some(f), Some(page), Some(path)) = (report_file.as_mut(), page, &args.report) {
        if let Err(e) = write_report(f, &page) {
            eprintln!("picochat-load: --report {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{text}");
        if let Some(path) = &args.report {
            println!("  report       {}", path.display());
        }
    }
}

/// Opens (creating, not yet truncating) the report's file: proves it can be written.
pub fn open_report(path: &std::path::Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

pub fn write_report(f: &mut File, page: &str) -> std::io::Result<()> {
    f.set_len(0)?;
    f.rewind()?;
    f.write_all(page.as_bytes())?;
    f.sync_all()
}

/// Connects everyone, then sends (or holds, `--idle`) for `--duration`.
fn run_once(g: &mut Gen, events: &mut Events) -> RunTimes {
    let args = g.args.clone();
    let t = Instant::now();
    g.connect(args.clients, events);
    let connect_time = t.elapsed();
    g.servers.iter_mut().for_each(|s| s.start_measuring());
    let from = Instant::now();
    let (elapsed, gen_cpu) = if args.idle {
        let gen0 = procfs::cpu_seconds(std::process::id()).unwrap_or(0.0);
        while from.elapsed() < args.duration {
            g.turn(events, Duration::from_millis(100));
        }
        (
            from.elapsed(),
            procfs::cpu_seconds(std::process::id()).unwrap_or(0.0) - gen0,
        )
    } else {
        g.run(args.duration, events)
    };
    g.finish_series();
    RunTimes {
        elapsed,
        gen_cpu,
        connect_time,
        sending_from_s: g.at(from),
        sending_until_s: g.at(from + elapsed),
    }
}

/// Adds `--step` clients at a time under `--rate` broadcasts until p95 passes
/// `--threshold` or deliveries are lost.
fn step_mode(g: &mut Gen, events: &mut Events, params: Params) -> StepReport {
    let args: Args = g.args.clone();
    let mut best = 0;
    let mut steps = Vec::new();
    let mut target = 0;
    loop {
        target = (target + args.step).min(args.clients);
        // Counted from before connecting: a step whose clients cannot all connect fails.
        let before = g.c.clone();
        let t = Instant::now();
        g.connect(target - g.open_count(), events);
        let connect_time = t.elapsed();
        g.hist.clear();
        let from = Instant::now();
        let (elapsed, _) = g.run(args.step_duration, events);
        let sent = g.c.sent - before.sent;
        let received = g.c.received - before.received;
        let lost = (g.c.expected - before.expected).saturating_sub(received);
        let p95 = g.hist.quantile(0.95);
        // Clients that could not connect, or could not join their rooms.
        let failed = (g.c.failed - before.failed) + (g.c.join_refused - before.join_refused);
        let pass = lost == 0 && failed == 0 && p95 <= args.threshold.as_micros() as u64;
        let open = g.open_count();
        let step = Step {
            clients: open,
            target,
            p50_ms: histogram::ms(g.hist.quantile(0.5)),
            p95_ms: histogram::ms(p95),
            p99_ms: histogram::ms(g.hist.quantile(0.99)),
            lost,
            failed,
            pass,
            sent,
            received,
            deliveries_per_s: (received as f64 / elapsed.as_secs_f64().max(1e-9)).round(),
            from_s: g.at(from),
            until_s: g.at(from + elapsed),
        };
        if !args.quiet && std::io::stderr().is_terminal() {
            eprintln!(
                "\rstep {open:>6} clients: p50 {:.1} ms  p95 {:.1} ms  lost {lost}  connect {:.1}s  {}      ",
                step.p50_ms,
                step.p95_ms,
                connect_time.as_secs_f64(),
                if pass { "pass" } else { "FAIL" }
            );
        }
        steps.push(step);
        if !pass {
            break;
        }
        best = open;
        if target >= args.clients {
            break;
        }
    }
    g.finish_series();
    StepReport {
        report_version: report::REPORT_VERSION,
        mode: "step".into(),
        max_clients_passing: best,
        threshold_ms: args.threshold.as_secs_f64() * 1000.0,
        steps,
        first_error: g.c.first_error.clone(),
        params,
        series: g.sampler.rows.clone(),
    }
}
