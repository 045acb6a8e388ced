//! Requests mixed into a run besides chat messages: history pages at
//! `--history-rate` (each the page before a random id of the asking client's
//! room, so it reaches past the server's memory), `--searchers` clients that
//! each keep one search running, and one client pinging every
//! `--ping-interval`. Only clients that do not send ask, so the deliveries
//! measured are the same with and without them. Their answer times are
//! recorded like deliveries. Besides, traffic that is not answered but
//! fanned out: every joined client typing every `--typing-interval`, and
//! `--reactions-rate` reactions a second on each room's hot message; the
//! notices and reactions that arrive are counted. `--images-rate` uploads
//! are scheduled here too, among the same clients (`images.rs`).

use super::*;

/// What an answer answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Page,
    Search,
    Ping,
    /// An error frame while a page or search was asked (counted, not timed).
    Refused,
}

/// Answer times and counts of one kind of request.
#[derive(Default)]
pub struct Timed {
    pub sent: u64,
    pub answered: u64,
    pub hist: Histogram,
}

#[derive(Default)]
pub struct Mix {
    pub pages: Timed,
    pub searches: Timed,
    pub pings: Timed,
    /// Error frames answering a page or a search.
    pub refused: u64,
    /// Typing notices sent and received.
    pub typing_sent: u64,
    pub typing_received: u64,
    /// Reactions sent, and reaction records received.
    pub reactions_sent: u64,
    pub reactions_received: u64,
}

/// Who asks and when the next page and ping are due.
pub struct Mixer {
    askers: Vec<usize>,
    next_asker: usize,
    next_page: Option<Instant>,
    page_every: Duration,
    pinger: Option<usize>,
    next_ping: Option<Instant>,
    /// Every joined client, and the next of them to say it is typing.
    typists: Vec<usize>,
    next_typist: usize,
    next_typing: Option<Instant>,
    typing_every: Duration,
    next_reactor: usize,
    next_reaction: Option<Instant>,
    reaction_every: Duration,
    next_uploader: usize,
    next_image: Option<Instant>,
    image_every: Duration,
}

impl Mixer {
    /// The soonest a page or a ping is due (far away when none is).
    pub fn next_due(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(1);
        [
            self.next_page,
            self.next_ping,
            self.next_typing,
            self.next_reaction,
            self.next_image,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(far)
    }
}

/// `"last_id":N` in a welcome.
pub fn last_id(payload: &[u8]) -> u64 {
    const KEY: &[u8] = b"\"last_id\":";
    let Some(at) = payload.windows(KEY.len()).position(|w| w == KEY) else {
        return 0;
    };
    let digits: Vec<u8> = payload[at + KEY.len()..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

impl Gen {
    /// Picks the askers (open clients that do not send), starts the searches.
    pub(super) fn start_mix(&mut self, start: Instant) -> Mixer {
        let askers: Vec<usize> = self
            .clients
            .iter()
            .filter(|(_, c)| {
                matches!(c.state, State::Open) && c.sender.is_none() && c.room.is_some()
            })
            .map(|(k, _)| k)
            .collect();
        let searchers: Vec<usize> = askers.iter().copied().take(self.args.searchers).collect();
        for &k in &searchers {
            if let Some(c) = self.clients.get_mut(k) {
                c.searcher = true;
            }
            self.ask_search(k);
        }
        let pinger = self.args.ping_interval.and_then(|_| {
            askers
                .iter()
                .copied()
                .rev()
                .find(|k| !searchers.contains(k))
        });
        let page_every = if self.args.history_rate > 0.0 {
            Duration::from_secs_f64(1.0 / self.args.history_rate)
        } else {
            Duration::ZERO
        };
        let typists: Vec<usize> = self
            .clients
            .iter()
            .filter(|(_, c)| matches!(c.state, State::Open) && c.room.is_some())
            .map(|(k, _)| k)
            .collect();
        // One client's turn every interval / clients: each types once per interval.
        let typing_every = self
            .args
            .typing_interval
            .map_or(Duration::ZERO, |i| i / typists.len().max(1) as u32);
        let reaction_every = if self.args.reactions_rate > 0.0 {
            Duration::from_secs_f64(1.0 / self.args.reactions_rate)
        } else {
            Duration::ZERO
        };
        let image_every = if self.args.images_rate > 0.0 {
            Duration::from_secs_f64(1.0 / self.args.images_rate)
        } else {
            Duration::ZERO
        };
        self.prepare_images();
        Mixer {
            next_page: (self.args.history_rate > 0.0).then_some(start),
            next_typing: (self.args.typing_interval.is_some() && !typists.is_empty())
                .then_some(start),
            next_reaction: (self.args.reactions_rate > 0.0 && !askers.is_empty()).then_some(start),
            next_image: (self.args.images_rate > 0.0 && !askers.is_empty()).then_some(start),
            askers,
            next_asker: 0,
            page_every,
            pinger,
            next_ping: pinger.map(|_| start),
            typists,
            next_typist: 0,
            typing_every,
            next_reactor: 0,
            reaction_every,
            next_uploader: 0,
            image_every,
        }
    }

    /// Asks what is due at `now`.
    pub(super) fn mix_turn(&mut self, m: &mut Mixer, now: Instant) {
        while let Some(due) = m.next_page.filter(|&d| d <= now) {
            m.next_page = Some(due + m.page_every);
            // The next asker with no page of its own waiting.
            for _ in 0..m.askers.len() {
                let k = m.askers[m.next_asker % m.askers.len()];
                m.next_asker += 1;
                if self
                    .clients
                    .get(k)
                    .is_some_and(|c| c.asked_page.is_none() && !c.searcher && c.uploading.is_none())
                {
                    self.ask_page(k);
                    break;
                }
            }
        }
        // Many may be due in one turn (one every few µs with 1,000 typists).
        while let Some(due) = m.next_typing.filter(|&d| d <= now) {
            m.next_typing = Some(due + m.typing_every);
            let k = m.typists[m.next_typist % m.typists.len()];
            m.next_typist += 1;
            self.say_typing(k);
        }
        while let Some(due) = m.next_reaction.filter(|&d| d <= now) {
            m.next_reaction = Some(due + m.reaction_every);
            let k = m.askers[m.next_reactor % m.askers.len()];
            m.next_reactor += 1;
            self.react(k);
        }
        while let Some(due) = m.next_image.filter(|&d| d <= now) {
            m.next_image = Some(due + m.image_every);
            // The next asker with no upload, page or search of its own
            // waiting; none free: this image is not sent.
            for _ in 0..m.askers.len() {
                let k = m.askers[m.next_uploader % m.askers.len()];
                m.next_uploader += 1;
                if self.can_upload(k) {
                    self.upload(k);
                    break;
                }
            }
        }
        if let (Some(k), Some(due)) = (m.pinger, m.next_ping) {
            if due <= now {
                m.next_ping = self.args.ping_interval.map(|i| due + i);
                self.ping(k);
            }
        }
    }

    fn send_text(&mut self, key: usize, opcode: OpCode, text: &[u8]) {
        let mask = self.mask();
        if let Some(c) = self.clients.get_mut(key) {
            c.out
                .extend_from_slice(&ws::encode_masked(opcode, text, mask));
        }
        self.flush(key);
    }

    fn ask_page(&mut self, key: usize) {
        let now_us = self.now_us();
        let r = self.rng_next();
        let Some(c) = self.clients.get_mut(key) else {
            return;
        };
        let (Some(room), State::Open) = (c.room, &c.state) else {
            return;
        };
        let before = 1 + r % c.last_id.max(1);
        c.asked_page = Some(now_us);
        let json =
            format!(r#"{{"type":"history","room":"load-{room}","before":{before},"limit":50}}"#);
        self.mix.pages.sent += 1;
        self.send_text(key, OpCode::Data(Data::Text), json.as_bytes());
    }

    fn ask_search(&mut self, key: usize) {
        let now_us = self.now_us();
        let Some(c) = self.clients.get_mut(key) else {
            return;
        };
        let (Some(room), State::Open) = (c.room, &c.state) else {
            return;
        };
        c.asked_search = Some(now_us);
        let json = format!(
            r#"{{"type":"search","room":"load-{room}","q":"{}"}}"#,
            self.args.search_q
        );
        self.mix.searches.sent += 1;
        self.send_text(key, OpCode::Data(Data::Text), json.as_bytes());
    }

    fn say_typing(&mut self, key: usize) {
        let Some(c) = self.clients.get(key) else {
            return;
        };
        let (Some(room), State::Open) = (c.room, &c.state) else {
            return;
        };
        let json = format!(r#"{{"type":"typing","room":"load-{room}"}}"#);
        self.mix.typing_sent += 1;
        self.send_text(key, OpCode::Data(Data::Text), json.as_bytes());
    }

    /// Toggles 👍 on the room's newest message when the client joined.
    fn react(&mut self, key: usize) {
        let Some(c) = self.clients.get(key) else {
            return;
        };
        let (Some(room), State::Open, hot) = (c.room, &c.state, c.last_id) else {
            return;
        };
        if hot == 0 {
            return; // the room had no message yet when it joined
        }
        let json = format!(r#"{{"type":"react","room":"load-{room}","id":{hot},"emoji":"👍"}}"#);
        self.mix.reactions_sent += 1;
        self.send_text(key, OpCode::Data(Data::Text), json.as_bytes());
    }

    fn ping(&mut self, key: usize) {
        let now_us = self.now_us();
        let Some(c) = self.clients.get_mut(key) else {
            return;
        };
        if c.pinged.is_some() || !matches!(c.state, State::Open) {
            return;
        }
        c.pinged = Some(now_us);
        self.mix.pings.sent += 1;
        self.send_text(key, OpCode::Control(Control::Ping), b"picochat-load");
    }

    /// An answer came: its time is recorded; a searcher asks again while sending lasts.
    pub(super) fn answered(&mut self, key: usize, kind: Kind, now_us: u64) {
        let Some(c) = self.clients.get_mut(key) else {
            return;
        };
        let (slot, timed) = match kind {
            Kind::Page => (c.asked_page.take(), &mut self.mix.pages),
            Kind::Search => (c.asked_search.take(), &mut self.mix.searches),
            Kind::Ping => (c.pinged.take(), &mut self.mix.pings),
            Kind::Refused => {
                if c.asked_page.take().is_some() || c.asked_search.take().is_some() {
                    self.mix.refused += 1;
                }
                return;
            }
        };
        let Some(sent) = slot else {
            return;
        };
        timed.answered += 1;
        timed.hist.record(now_us.saturating_sub(sent));
        if kind == Kind::Search && c.searcher && self.sending {
            self.ask_search(key);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_welcome_s_last_id_is_read() {
        assert_eq!(
            super::last_id(br#"{"type":"welcome","last_id":1234,"epoch":5}"#),
            1234
        );
        assert_eq!(super::last_id(br#"{"type":"welcome"}"#), 0);
    }
}
