//! The report's `requests` part: what was mixed into a run besides chat
//! messages (history pages, searches, pings, typing, reactions, images), as
//! data for `--json` and as lines of the text table. The rest of the report
//! is `report.rs`; what is sent and counted, `gen/requests.rs` and
//! `gen/images.rs`.

use crate::gen::Gen;
use crate::histogram::Latency;
use std::fmt::Write as _;

/// One kind of request mixed into a run: how many went, were answered, and their answer times.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct Requests {
    pub sent: u64,
    pub answered: u64,
    pub latency_ms: Latency,
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct RequestsReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Requests>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<Requests>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping: Option<Requests>,
    /// Pages and searches answered with an error frame.
    pub refused: u64,
    /// `--typing-interval`: notices sent, and received by all clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typing: Option<Counted>,
    /// `--reactions-rate`: reactions sent, and reaction records received by all clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reactions: Option<Counted>,
    /// `--images-rate`: uploads and the fetches of what was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImagesReport>,
}

/// Images uploaded and fetched during a run.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct ImagesReport {
    /// Each image's size (`--image-size`).
    pub bytes: u64,
    /// Announced and sent; answered: stored (the uploader's own copy of the
    /// message came back), timed from the announcement.
    pub uploads: Requests,
    /// Announcements answered with an error.
    pub refused: u64,
    /// Started by every client that received an image's message; answered:
    /// read to the end with 200, timed from the message's arrival.
    pub fetches: Requests,
    pub fetch_failed: u64,
    pub fetched_bytes: u64,
}

/// Traffic that is fanned out, not answered: how much went and arrived.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct Counted {
    pub sent: u64,
    pub received: u64,
}

/// The `requests` part of a run's report, if anything was mixed in.
pub fn report(g: &Gen) -> Option<RequestsReport> {
    let one = |t: &crate::gen::requests::Timed| {
        (t.sent > 0).then(|| Requests {
            sent: t.sent,
            answered: t.answered,
            latency_ms: t.hist.latency(),
        })
    };
    let m = &g.mix;
    let i = &g.images;
    let images = i.size().map(|size| ImagesReport {
        bytes: size as u64,
        uploads: Requests {
            sent: i.uploads.sent,
            answered: i.uploads.answered,
            latency_ms: i.uploads.hist.latency(),
        },
        refused: i.refused,
        fetches: Requests {
            sent: i.fetches.sent,
            answered: i.fetches.answered,
            latency_ms: i.fetches.hist.latency(),
        },
        fetch_failed: i.fetch_failed,
        fetched_bytes: i.fetched_bytes,
    });
    let r = RequestsReport {
        history: one(&m.pages),
        search: one(&m.searches),
        ping: one(&m.pings),
        refused: m.refused,
        typing: (m.typing_sent > 0).then_some(Counted {
            sent: m.typing_sent,
            received: m.typing_received,
        }),
        reactions: (m.reactions_sent > 0).then_some(Counted {
            sent: m.reactions_sent,
            received: m.reactions_received,
        }),
        images,
    };
    (r.history.is_some()
        || r.search.is_some()
        || r.ping.is_some()
        || r.typing.is_some()
        || r.reactions.is_some()
        || r.images.is_some())
    .then_some(r)
}

/// The text table's lines for them.
pub fn write_text(t: &mut String, q: &RequestsReport) {
    for (name, one) in [
        ("history", &q.history),
        ("search", &q.search),
        ("ping", &q.ping),
    ] {
        if let Some(x) = one {
            let l = &x.latency_ms;
            let _ = writeln!(
                t,
                "  {name:<12} {} asked, {} answered: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                x.sent, x.answered, l.p50, l.p99, l.max
            );
        }
    }
    if q.refused > 0 {
        let _ = writeln!(
            t,
            "  refused      {} pages or searches answered with an error",
            q.refused
        );
    }
    for (name, one) in [("typing", &q.typing), ("reactions", &q.reactions)] {
        if let Some(x) = one {
            let _ = writeln!(t, "  {name:<12} {} sent, {} received", x.sent, x.received);
        }
    }
    if let Some(i) = &q.images {
        let (u, f) = (&i.uploads, &i.fetches);
        let _ = writeln!(
            t,
            "  uploads      {} of {:.0} KiB sent, {} stored, {} refused: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            u.sent,
            i.bytes as f64 / 1024.0,
            u.answered,
            i.refused,
            u.latency_ms.p50,
            u.latency_ms.p99,
            u.latency_ms.max
        );
        let _ = writeln!(
            t,
            "  fetches      {} started, {} complete ({:.1} MiB), {} failed: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            f.sent,
            f.answered,
            i.fetched_bytes as f64 / 1048576.0,
            i.fetch_failed,
            f.latency_ms.p50,
            f.latency_ms.p99,
            f.latency_ms.max
        );
    }
}
