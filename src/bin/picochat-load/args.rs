//! The command line: `--help`, the options of a run and of `compare`, and
//! every check made before anything connects. No sockets here (`--url` is
//! resolved, but nothing is opened).

use picochat::config::{parse_duration, parse_num, parse_size};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

pub const HELP: &str = "picochat-load: load generator for tutorial-protocol WebSocket chat servers.

Usage: picochat-load [OPTIONS]
       picochat-load compare A.json B.json [MORE.json ...] [--report FILE.html]

  --url URL            server WebSocket URL, ws:// or wss:// (default
                       ws://127.0.0.1:8000/ws); give it
                       several times to spread clients over nodes sharing rooms
                       (client i uses URL i mod count; a message sent through one
                       node is expected, and counted, on all of them; the report
                       breaks deliveries, losses and latency down per node)
  --clients N          WebSocket clients to connect (default 100; the maximum in --step mode)
  --senders K          how many of them send (default 10)
  --rate R             total messages/s across senders; 0 = closed loop (default 100)
  --inflight W         closed loop: messages in flight per sender (default 1)
  --duration D         how long to send, e.g. 10s (default 10s)
  --payload BYTES      message text size (default 100)
  --rooms N            spread clients over N rooms, 1 to --clients (picochat's rooms
                       protocol: each joins room load-(i mod N), senders are spread
                       over the rooms, and deliveries are counted per room); without
                       it, the Go tutorial's frames in one room
  --rooms-per-client K with --rooms: each client also joins the K-1 rooms after its
                       own (memory measurements; it sends to its own room) (default 1)
  --connect-rate C     new connections per second, 0 = no ramp (default 2000)
  --idle               only hold the connections for --duration and report
  --step S             add S clients per step while --rate broadcasts run, until p95
                       latency passes --threshold or deliveries are lost
  --step-duration D    how long each step measures (default 5s)
  --threshold D        p95 latency bound for --step (default 500ms)
  --history-rate R     with --rooms: history pages asked per second, spread over the
                       clients that do not send; each asks the 50 messages before a
                       random id of its room (so most come from the server's disk or
                       Redis, not its memory); their answer time is reported
  --searchers N        with --rooms: N clients that do not send each keep one search
                       running (the next asked when the last is answered)
  --search-q TEXT      what they search for (default \"zq no such words\": every
                       retained message is looked at)
  --ping-interval D    one client that does not send pings the server every D and
                       reports the round trip (the loop's responsiveness)
  --typing-interval D  with --rooms: every client that joined says it is typing in
                       its room every D (staggered; the server forwards one per 3 s
                       per client); typing notices received are counted
  --reactions-rate R   with --rooms: reactions per second, from the clients that do
                       not send in turn, each toggling 👍 on one hot message of its
                       room (the room's newest when it joined); reactions received
                       are counted
  --images-rate R      with --rooms: images per second, uploaded in turn by the clients
                       that do not send (picochat's upload: the announcement, then the
                       bytes); every client that receives an image's message fetches
                       it over HTTP (GET /u/..., its own connection each, as a page
                       shows it); upload and fetch times, bytes and failures reported
  --image-size SIZE    the bytes of each image: a PNG whose data does not compress,
                       as dense as a photo's, e.g. 300KiB (default 256KiB)
  --tls-ca FILE        wss://: trust the CA certificates in this PEM file (a test CA)
                       instead of none; each connection makes a full TLS handshake
                       (no resumption), so connect_s measures handshakes
  --compression        offer permessage-deflate; the server's compressed frames are
                       inflated here (the report counts those that negotiated it)
  --server-pid PID     also report the server's CPU time and RSS, overall and per
                       second (repeatable: each process is reported, their CPU summed)
  --json               print one JSON object instead of the table (with the per-second
                       series and the per-room and per-node breakdowns)
  --report FILE.html   also write the run as one self-contained HTML page: parameters,
                       summary, and SVG charts over time (deliveries/s, p50/p95/p99,
                       open connections, server CPU % and RSS) or, for --step, latency
                       against clients; checked for writing before the run starts
  --quiet              no progress line (there is one only when stderr is a terminal)
  -h, --help           this help

compare: a side-by-side table of --json reports (all runs, or all --step runs), each
number with its ratio to the first file's; --report FILE.html writes it as a page
with the runs' charts overlaid.
";

/// One server (node) the clients connect to.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
    /// `wss://`: TLS, with `host` without its port as the server name.
    pub tls: bool,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("wss://") {
            if !cfg!(feature = "tls") {
                return Err("--url wss://: this build has no TLS (feature `tls`)".into());
            }
            (true, rest)
        } else {
            let rest = url
                .strip_prefix("ws://")
                .ok_or("--url must start with ws:// or wss://")?;
            (false, rest)
        };
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let with_port = if tls && !host.contains(':') {
            format!("{host}:443")
        } else if !host.contains(':') {
            format!("{host}:80")
        } else {
            host.to_string()
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} resolves to nothing"))?;
        Ok(Target {
            addr,
            host: host.to_string(),
            path: path.to_string(),
            tls,
        })
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.host, self.path)
    }

    /// The name the server's certificate must carry: the host without its
    /// port (an IPv6 literal without its brackets).
    #[cfg(feature = "tls")]
    pub fn server_name(&self) -> &str {
        let host = match self.host.rsplit_once(':') {
            Some((h, port)) if !port.contains(']') => h,
            _ => &self.host,
        };
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

#[derive(Clone, Debug)]
pub struct Args {
    pub targets: Vec<Target>,
    pub clients: usize,
    pub senders: usize,
    pub rate: f64,
    pub inflight: u32,
    pub duration: Duration,
    pub payload: usize,
    /// 0: no rooms (the Go tutorial's frames).
    pub rooms: usize,
    pub rooms_per_client: usize,
    pub connect_rate: f64,
    pub idle: bool,
    pub step: usize,
    pub step_duration: Duration,
    pub threshold: Duration,
    pub server_pids: Vec<u32>,
    pub compression: bool,
    /// `--tls-ca`: the CA certificates trusted for `wss://`.
    pub tls_ca: Option<PathBuf>,
    pub json: bool,
    pub report: Option<PathBuf>,
    pub quiet: bool,
    /// History pages per second (0: none).
    pub history_rate: f64,
    pub searchers: usize,
    pub search_q: String,
    pub ping_interval: Option<Duration>,
    /// Every joined client says it is typing this often.
    pub typing_interval: Option<Duration>,
    /// Reactions per second on each room's hot message (0: none).
    pub reactions_rate: f64,
    /// Images uploaded per second (0: none).
    pub images_rate: f64,
    /// Each image's size in bytes.
    pub image_size: usize,
}

/// What the command line asks for.
pub enum Command {
    Run(Box<Args>),
    Compare {
        files: Vec<PathBuf>,
        report: Option<PathBuf>,
    },
    Help,
}

pub fn parse(argv: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut it = argv.into_iter().peekable();
    if it.peek().map(String::as_str) == Some("compare") {
        it.next();
        return parse_compare(it);
    }
    let mut a = Args {
        targets: Vec::new(),
        clients: 100,
        senders: 10,
        rate: 100.0,
        inflight: 1,
        duration: Duration::from_secs(10),
        payload: 100,
        rooms: 0,
        rooms_per_client: 1,
        connect_rate: 2000.0,
        idle: false,
        step: 0,
        step_duration: Duration::from_secs(5),
        threshold: Duration::from_millis(500),
        server_pids: Vec::new(),
        compression: false,
        tls_ca: None,
        json: false,
        report: None,
        quiet: false,
        history_rate: 0.0,
        searchers: 0,
        search_q: "zq no such words".into(),
        ping_interval: None,
        typing_interval: None,
        reactions_rate: 0.0,
        images_rate: 0.0,
        image_size: 256 * 1024,
    };
    let mut urls: Vec<String> = Vec::new();
    let mut rooms_given = false;
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--url" => urls.push(val()?),
            "--clients" => a.clients = parse_num(&val()?)?,
            "--senders" => a.senders = parse_num(&val()?)?,
            "--rate" => a.rate = val()?.parse().map_err(|_| "--rate: expected a number")?,
            "--inflight" => a.inflight = parse_num(&val()?)?,
            "--duration" => a.duration = parse_duration(&val()?)?,
            "--payload" => a.payload = parse_num(&val()?)?,
            "--rooms" => {
                a.rooms = parse_num(&val()?)?;
                rooms_given = true;
            }
            "--rooms-per-client" => a.rooms_per_client = parse_num(&val()?)?,
            "--connect-rate" => {
                a.connect_rate = val()?
                    .parse()
                    .map_err(|_| "--connect-rate: expected a number")?
            }
            "--idle" => a.idle = true,
            "--step" => a.step = parse_num(&val()?)?,
            "--step-duration" => a.step_duration = parse_duration(&val()?)?,
            "--threshold" => a.threshold = parse_duration(&val()?)?,
            "--server-pid" => a.server_pids.push(parse_num(&val()?)?),
            "--json" => a.json = true,
            "--report" => a.report = Some(val()?.into()),
            "--quiet" => a.quiet = true,
            "--compression" => a.compression = true,
            "--tls-ca" => a.tls_ca = Some(val()?.into()),
            "--history-rate" => {
                a.history_rate = val()?
                    .parse()
                    .map_err(|_| "--history-rate: expected a number")?
            }
            "--searchers" => a.searchers = parse_num(&val()?)?,
            "--search-q" => a.search_q = val()?,
            "--ping-interval" => a.ping_interval = Some(parse_duration(&val()?)?),
            "--typing-interval" => a.typing_interval = Some(parse_duration(&val()?)?),
            "--reactions-rate" => {
                a.reactions_rate = val()?
                    .parse()
                    .map_err(|_| "--reactions-rate: expected a number")?
            }
            "--images-rate" => {
                a.images_rate = val()?
                    .parse()
                    .map_err(|_| "--images-rate: expected a number")?
            }
            "--image-size" => a.image_size = parse_size(&val()?)?,
            other => return Err(format!("unknown option {other} (see --help)")),
        }
    }
    if urls.is_empty() {
        urls.push("ws://127.0.0.1:8000/ws".into());
    }
    a.targets = urls
        .iter()
        .map(|u| Target::parse(u))
        .collect::<Result<_, _>>()?;
    if a.targets.iter().any(|t| t.tls) && a.tls_ca.is_none() {
        return Err(
            "wss:// needs --tls-ca FILE (the CA that signed the server's certificate)".into(),
        );
    }
    a.senders = a.senders.min(a.clients.max(1));
    a.payload = a.payload.max(40);
    if a.inflight == 0 {
        return Err("--inflight must be at least 1".into());
    }
    if a.rate < 0.0 || !a.rate.is_finite() {
        return Err("--rate must be 0 (closed loop) or more".into());
    }
    if rooms_given && a.rooms == 0 {
        return Err(
            "--rooms must be at least 1 (leave it out for the Go tutorial's frames in one room)"
                .into(),
        );
    }
    if a.rooms > a.clients {
        return Err("--rooms must not exceed --clients".into());
    }
    if (a.history_rate > 0.0 || a.searchers > 0) && a.rooms == 0 {
        return Err(
            "--history-rate and --searchers need --rooms (picochat's rooms protocol)".into(),
        );
    }
    if a.history_rate < 0.0 || !a.history_rate.is_finite() {
        return Err("--history-rate must be 0 or more".into());
    }
    if !(2..=100).contains(&a.search_q.chars().count()) || a.search_q.contains(['"', '\\']) {
        return Err("--search-q must be 2 to 100 characters, without quotes or backslashes".into());
    }
    if a.ping_interval.is_some_and(|d| d.is_zero()) {
        return Err("--ping-interval must be positive".into());
    }
    if a.typing_interval.is_some_and(|d| d.is_zero()) {
        return Err("--typing-interval must be positive".into());
    }
    if a.reactions_rate < 0.0 || !a.reactions_rate.is_finite() {
        return Err("--reactions-rate must be 0 or more".into());
    }
    if (a.typing_interval.is_some() || a.reactions_rate > 0.0) && a.rooms == 0 {
        return Err(
            "--typing-interval and --reactions-rate need --rooms (picochat's rooms protocol)"
                .into(),
        );
    }
    if a.images_rate < 0.0 || !a.images_rate.is_finite() {
        return Err("--images-rate must be 0 or more".into());
    }
    if a.images_rate > 0.0 && a.rooms == 0 {
        return Err("--images-rate needs --rooms (picochat's rooms protocol)".into());
    }
    if !(1024..=1 << 30).contains(&a.image_size) {
        return Err("--image-size must be from 1KiB to 1GiB".into());
    }
    if a.rooms_per_client == 0 || (a.rooms > 0 && a.rooms_per_client > a.rooms) {
        return Err("--rooms-per-client must be from 1 to --rooms".into());
    }
    Ok(Command::Run(Box::new(a)))
}

fn parse_compare(it: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut files = Vec::new();
    let mut report = None;
    let mut it = it.peekable();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--report" => report = Some(it.next().ok_or("--report needs a value")?.into()),
            flag if flag.starts_with("--") => {
                return Err(format!("compare: unknown option {flag} (see --help)"))
            }
            file => files.push(PathBuf::from(file)),
        }
    }
    if files.len() < 2 {
        return Err("compare needs at least two JSON reports (picochat-load --json)".into());
    }
    Ok(Command::Compare { files, report })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Args, String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(a) => Ok(*a),
            _ => Err("not a run".into()),
        }
    }

    #[test]
    fn rooms_zero_or_beyond_the_clients_is_refused() {
        assert!(run(&["--rooms", "0"]).unwrap_err().contains("at least 1"));
        assert!(run(&["--clients", "3", "--rooms", "4"])
            .unwrap_err()
            .contains("must not exceed --clients"));
        assert_eq!(run(&["--clients", "4", "--rooms", "4"]).unwrap().rooms, 4);
        assert_eq!(run(&[]).unwrap().rooms, 0);
    }

    #[test]
    fn images_need_rooms_and_a_size_in_bounds() {
        let e = run(&["--images-rate", "1"]).unwrap_err();
        assert!(e.contains("--images-rate needs --rooms"), "{e}");
        let a = run(&[
            "--rooms",
            "1",
            "--images-rate",
            "0.5",
            "--image-size",
            "300KiB",
        ])
        .unwrap();
        assert_eq!((a.images_rate, a.image_size), (0.5, 300 * 1024));
        assert_eq!(run(&[]).unwrap().image_size, 256 * 1024);
        let e = run(&["--image-size", "100"]).unwrap_err();
        assert!(e.contains("--image-size must be"), "{e}");
        assert!(run(&["--rooms", "1", "--images-rate", "-1"]).is_err());
    }

    #[test]
    fn compare_takes_two_files_or_more_and_an_optional_report() {
        let c = parse(["compare", "a.json", "b.json", "--report", "r.html"].map(String::from));
        let Ok(Command::Compare { files, report }) = c else {
            panic!("not a compare");
        };
        assert_eq!(files.len(), 2);
        assert_eq!(report, Some(PathBuf::from("r.html")));
        let one = parse(["compare", "a.json"].map(String::from));
        assert!(matches!(one, Err(e) if e.contains("at least two")));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn wss_needs_a_ca_and_names_the_host_without_its_port() {
        let e = run(&["--url", "wss://localhost:8443/ws"]).unwrap_err();
        assert!(e.contains("needs --tls-ca"), "{e}");
        let a = run(&["--url", "wss://localhost:8443/ws", "--tls-ca", "ca.pem"]).unwrap();
        let t = &a.targets[0];
        assert!(t.tls);
        assert_eq!(t.server_name(), "localhost");
        assert_eq!(t.url(), "wss://localhost:8443/ws");
        let v6 = Target::parse("wss://[::1]:8443/ws").unwrap();
        assert_eq!(v6.server_name(), "::1");
        assert!(!Target::parse("ws://127.0.0.1:1/ws").unwrap().tls);
        assert!(Target::parse("http://127.0.0.1:1/ws").is_err());
    }
}
