//! What a run found, as data: the `--json` report (built once from the
//! engine's counters, then printed as JSON, as the text table, and as the
//! HTML page, so the three cannot disagree), and reading one back for
//! `compare`. No sockets and no drawing here.

use crate::args::Args;
use crate::gen::{pct, Gen};
use crate::histogram::{ms, Latency};
use crate::mixed::{self, RequestsReport};
use crate::series::Second;
use std::fmt::Write as _;
use std::time::Duration;

/// Bumped when a field changes meaning; `compare` refuses other versions.
pub const REPORT_VERSION: u32 = 1;

/// How the run was asked for: the command line, resolved.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Params {
    pub urls: Vec<String>,
    pub clients: usize,
    pub senders: usize,
    pub rate: f64,
    pub inflight: u32,
    pub duration_s: f64,
    pub payload: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<usize>,
    pub rooms_per_client: usize,
    pub connect_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_duration_s: Option<f64>,
    pub compression: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_pids: Vec<u32>,
    /// When the run started (UTC, RFC 3339) and which picochat-load made it.
    pub started: String,
    pub picochat_load: String,
}

impl Params {
    pub fn of(a: &Args, started_unix_ms: u64) -> Params {
        Params {
            urls: a.targets.iter().map(|t| t.url()).collect(),
            clients: a.clients,
            senders: a.senders,
            rate: a.rate,
            inflight: a.inflight,
            duration_s: a.duration.as_secs_f64(),
            payload: a.payload,
            rooms: (a.rooms > 0).then_some(a.rooms),
            rooms_per_client: a.rooms_per_client,
            connect_rate: a.connect_rate,
            step: (a.step > 0).then_some(a.step),
            step_duration_s: (a.step > 0).then_some(a.step_duration.as_secs_f64()),
            compression: a.compression,
            server_pids: a.server_pids.clone(),
            started: picochat::clock::rfc3339(started_unix_ms),
            picochat_load: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// The report of a run: `open` (--rate), `closed` (--rate 0) or `idle`.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Report {
    pub report_version: u32,
    pub mode: String,
    pub clients: usize,
    pub connected: usize,
    /// Clients that negotiated permessage-deflate (`--compression`), and compressed frames read.
    pub compressing: usize,
    pub compressed_frames: u64,
    pub failed: usize,
    pub dropped: usize,
    pub senders: usize,
    pub rate: f64,
    pub payload: usize,
    pub duration_s: f64,
    pub connect_s: f64,
    pub connect_p50_ms: f64,
    pub connect_max_ms: f64,
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub deliveries_per_s: f64,
    pub latency_ms: Latency,
    pub generator_cpu_s: f64,
    pub generator_saturated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries_per_server_cpu_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_peak_rss_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers: Option<Vec<ServerReport>>,
    /// With several `--url`: what went through each node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeReport>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<RoomsReport>,
    /// History pages, searches and pings asked during the run (`--history-rate`,
    /// `--searchers`, `--ping-interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<RequestsReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// When sending started and stopped, on the series' time axis (seconds since the start).
    pub sending_from_s: f64,
    pub sending_until_s: f64,
    pub params: Params,
    /// One row per second of the whole run, connecting included.
    pub series: Vec<Second>,
}

/// With several `--server-pid`: each process.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct ServerReport {
    pub pid: u32,
    pub cpu_s: f64,
    pub peak_rss_bytes: u64,
}

/// One `--url`: clients connected through it, and the deliveries they expected and got.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct NodeReport {
    pub url: String,
    pub clients: u64,
    pub dropped: u64,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub latency_ms: Latency,
}

/// With `--rooms`: deliveries counted per room.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct RoomsReport {
    pub rooms: usize,
    pub joined: usize,
    /// Clients refused a join (the first refusal is `first_error`).
    #[serde(default)]
    pub refused: usize,
    pub rooms_with_losses: usize,
    pub max_lost_in_a_room: u64,
    pub per_room: Vec<RoomReport>,
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct RoomReport {
    pub room: String,
    /// Memberships welcomed (a client in K rooms counts in each).
    pub members: u64,
    pub dropped: u64,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
}

/// One step of `--step`.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Step {
    /// Clients open during the step, and how many it asked for.
    pub clients: usize,
    #[serde(default)]
    pub target: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub lost: u64,
    /// Clients of this step that could not connect (or were refused the upgrade).
    #[serde(default)]
    pub failed: usize,
    pub pass: bool,
    #[serde(default)]
    pub sent: u64,
    #[serde(default)]
    pub received: u64,
    #[serde(default)]
    pub deliveries_per_s: f64,
    /// When it sent, on the series' time axis.
    #[serde(default)]
    pub from_s: f64,
    #[serde(default)]
    pub until_s: f64,
}

/// The report of `--step`.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct StepReport {
    pub report_version: u32,
    pub mode: String,
    pub max_clients_passing: usize,
    pub threshold_ms: f64,
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub params: Params,
    pub series: Vec<Second>,
}

/// Either kind, as `compare` reads them.
pub enum AnyReport {
    Run(Box<Report>),
    Step(Box<StepReport>),
}

impl AnyReport {
    pub fn mode(&self) -> &str {
        match self {
            AnyReport::Run(r) => &r.mode,
            AnyReport::Step(r) => &r.mode,
        }
    }

    /// Reads a `--json` report, saying why when it is not one this version reads.
    pub fn parse(text: &str) -> Result<AnyReport, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Some(obj) = v.as_object() else {
            return Err("not a picochat-load report: not a JSON object".into());
        };
        let version = match obj.get("report_version") {
            Some(n) => n.as_u64(),
            None => {
                return Err(
                    "not a picochat-load report of this version: no \"report_version\" \
                     (made by an older picochat-load, or by something else)"
                        .into(),
                )
            }
        };
        if version != Some(REPORT_VERSION as u64) {
            return Err(format!(
                "report_version is {}, this picochat-load reads {REPORT_VERSION}",
                obj["report_version"]
            ));
        }
        let mode = obj.get("mode").and_then(|m| m.as_str()).unwrap_or("");
        match mode {
            "step" => serde_json::from_value(v)
                .map(|r| AnyReport::Step(Box::new(r)))
                .map_err(|e| format!("not a valid step report: {e}")),
            "open" | "closed" | "idle" => serde_json::from_value(v)
                .map(|r| AnyReport::Run(Box::new(r)))
                .map_err(|e| format!("not a valid run report: {e}")),
            other => Err(format!(
                "not a picochat-load report: \"mode\" is {other:?} (open, closed, idle or step)"
            )),
        }
    }
}

/// How the run went, besides the engine's counters.
pub struct RunTimes {
    pub elapsed: Duration,
    pub gen_cpu: f64,
    pub connect_time: Duration,
    pub sending_from_s: f64,
    pub sending_until_s: f64,
}

pub fn run_report(g: &Gen, params: Params, t: &RunTimes) -> Report {
    let args = &g.args;
    let c = &g.c;
    let total = g.cells.total();
    debug_assert_eq!((total.expected, total.received), (c.expected, c.received));
    let lost = total.lost();
    let secs = t.elapsed.as_secs_f64().max(1e-9);
    let servers = &g.servers;
    // Several servers (nodes): CPU summed, peak RSS of the largest; each is also listed.
    let server_cpu = (!servers.is_empty()).then(|| servers.iter().map(|s| s.cpu()).sum::<f64>());
    let server_rss = servers.iter().map(|s| s.peak()).max();
    let per_server: Vec<ServerReport> = servers
        .iter()
        .map(|s| ServerReport {
            pid: s.pid,
            cpu_s: s.cpu(),
            peak_rss_bytes: s.peak(),
        })
        .collect();
    let nodes: Vec<NodeReport> = args
        .targets
        .iter()
        .enumerate()
        .map(|(i, target)| {
            let n = g.cells.node(i);
            NodeReport {
                url: target.url(),
                clients: g.node_clients[i],
                dropped: n.dropped,
                expected: n.expected,
                received: n.received,
                lost: n.lost(),
                latency_ms: g.node_hist[i].latency(),
            }
        })
        .collect();
    let per_room: Vec<RoomReport> = (0..args.rooms)
        .map(|r| {
            let t = g.cells.room(r);
            RoomReport {
                room: format!("load-{r}"),
                members: t.members,
                dropped: t.dropped,
                expected: t.expected,
                received: t.received,
                lost: t.lost(),
            }
        })
        .collect();
    Report {
        report_version: REPORT_VERSION,
        mode: if args.idle {
            "idle"
        } else if args.rate == 0.0 {
            "closed"
        } else {
            "open"
        }
        .into(),
        clients: args.clients,
        connected: c.connected,
        compressing: c.compressing,
        compressed_frames: c.compressed_frames,
        failed: c.failed,
        dropped: c.dropped,
        senders: args.senders,
        rate: args.rate,
        payload: args.payload,
        duration_s: secs,
        connect_s: t.connect_time.as_secs_f64(),
        connect_p50_ms: ms(pct(&c.connect_us, 0.5)),
        connect_max_ms: ms(pct(&c.connect_us, 1.0)),
        sent: c.sent,
        expected: total.expected,
        received: total.received,
        lost,
        deliveries_per_s: (total.received as f64 / secs).round(),
        latency_ms: g.hist.latency(),
        generator_cpu_s: t.gen_cpu,
        generator_saturated: t.gen_cpu / secs > 0.9,
        server_cpu_s: server_cpu,
        deliveries_per_server_cpu_s: server_cpu.map(|cpu| {
            if cpu > 0.0 {
                (total.received as f64 / cpu).round()
            } else {
                0.0
            }
        }),
        server_peak_rss_bytes: server_rss,
        servers: (servers.len() > 1).then_some(per_server),
        nodes: (args.targets.len() > 1).then_some(nodes),
        rooms: (args.rooms > 0).then(|| RoomsReport {
            rooms: args.rooms,
            joined: c.joined,
            refused: c.join_refused,
            rooms_with_losses: per_room.iter().filter(|r| r.lost > 0).count(),
            max_lost_in_a_room: per_room.iter().map(|r| r.lost).max().unwrap_or(0),
            per_room,
        }),
        requests: mixed::report(g),
        first_error: c.first_error.clone(),
        sending_from_s: t.sending_from_s,
        sending_until_s: t.sending_until_s,
        params,
        series: g.sampler.rows.clone(),
    }
}

pub fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The terminal table of a run.
pub fn run_text(r: &Report) -> String {
    let mut t = String::new();
    let p = &r.params;
    let _ = writeln!(t, "picochat-load → {}", p.urls.join(", "));
    let _ = writeln!(t, "  clients      {} connected, {} failed, {} dropped by the server (connect {:.2}s, p50 {:.1} ms, max {:.1} ms)",
        r.connected, r.failed, r.dropped, r.connect_s, r.connect_p50_ms, r.connect_max_ms);
    if r.mode != "idle" {
        let _ = writeln!(
            t,
            "  messages     {} sent by {} senders ({}), {} B text",
            r.sent,
            r.senders.min(r.connected),
            if r.rate == 0.0 {
                format!("closed loop, {} in flight each", p.inflight)
            } else {
                format!("{} msg/s", r.rate)
            },
            r.payload
        );
        let _ = writeln!(
            t,
            "  deliveries   {} received of {} expected, {} lost, {:.0}/s",
            r.received, r.expected, r.lost, r.deliveries_per_s
        );
        let l = &r.latency_ms;
        let _ = writeln!(
            t,
            "  latency      p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            l.p50, l.p90, l.p99, l.max
        );
    }
    let _ = writeln!(
        t,
        "  generator    {:.2} s CPU in {:.2} s{}",
        r.generator_cpu_s,
        r.duration_s,
        if r.generator_saturated {
            "  (SATURATED: results limited by the generator)"
        } else {
            ""
        }
    );
    if let (Some(cpu), Some(rss)) = (r.server_cpu_s, r.server_peak_rss_bytes) {
        let _ = writeln!(
            t,
            "  server       {:.2} s CPU ({:.0} deliveries per CPU-second), peak RSS {:.1} MiB",
            cpu,
            r.deliveries_per_server_cpu_s.unwrap_or(0.0),
            rss as f64 / 1048576.0
        );
        for s in r.servers.iter().flatten() {
            let _ = writeln!(
                t,
                "    pid {:<8} {:.2} s CPU, peak RSS {:.1} MiB",
                s.pid,
                s.cpu_s,
                s.peak_rss_bytes as f64 / 1048576.0
            );
        }
    }
    if let Some(q) = &r.requests {
        mixed::write_text(&mut t, q);
    }
    for n in r.nodes.iter().flatten() {
        let _ = writeln!(
            t,
            "  node         {}: {} clients, {} deliveries, {} lost, p99 {:.2} ms",
            n.url, n.clients, n.received, n.lost, n.latency_ms.p99
        );
    }
    if let Some(rooms) = &r.rooms {
        let _ = writeln!(
            t,
            "  rooms        {} rooms, {} clients joined, {} refused, {} rooms with losses (at most {} lost in one)",
            rooms.rooms, rooms.joined, rooms.refused, rooms.rooms_with_losses, rooms.max_lost_in_a_room
        );
    }
    if let Some(e) = &r.first_error {
        let _ = writeln!(t, "  first error  {e}");
    }
    t
}

/// The terminal table of a step run.
pub fn step_text(r: &StepReport) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "picochat-load → {} (step mode)",
        r.params.urls.join(", ")
    );
    let _ = writeln!(
        t,
        "  {:>8}  {:>8}  {:>9}  {:>9}  {:>9}  {:>8}  {:>8}  {:>12}",
        "clients", "of", "p50 ms", "p95 ms", "p99 ms", "lost", "failed", "deliveries/s"
    );
    for s in &r.steps {
        let _ = writeln!(
            t,
            "  {:>8}  {:>8}  {:>9.2}  {:>9.2}  {:>9.2}  {:>8}  {:>8}  {:>12.0}  {}",
            s.clients,
            s.target,
            s.p50_ms,
            s.p95_ms,
            s.p99_ms,
            s.lost,
            s.failed,
            s.deliveries_per_s,
            if s.pass { "pass" } else { "FAIL" }
        );
    }
    let _ = writeln!(
        t,
        "  {} clients passed (p95 <= {} ms, no losses, every client connected)",
        r.max_clients_passing, r.threshold_ms
    );
    if let Some(e) = &r.first_error {
        let _ = writeln!(t, "  first error  {e}");
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_back_says_why_a_file_is_not_a_report() {
        let err = |s: &str| match AnyReport::parse(s) {
            Err(e) => e,
            Ok(_) => panic!("{s} was read"),
        };
        assert!(err("{").starts_with("not JSON"));
        assert!(err("[1]").contains("not a JSON object"));
        assert!(err(r#"{"mode":"open"}"#).contains("no \"report_version\""));
        assert!(err(r#"{"report_version":7,"mode":"open"}"#).contains("report_version is 7"));
        assert!(err(r#"{"report_version":1,"mode":"fast"}"#).contains("\"mode\" is \"fast\""));
        assert!(
            err(r#"{"report_version":1,"mode":"open"}"#).contains("missing field"),
            "{}",
            err(r#"{"report_version":1,"mode":"open"}"#)
        );
    }
}
