//! History pages and searches: what a room keeps in memory answers first
//! (its newest part, edits applied); what is older comes from the log as
//! [`Read`]s answered turns later, so a request that needs the log waits as a
//! job here. A search looks at a bounded slice of memory per loop turn and
//! reads the log in bounded chunks, so no request stalls the loop. What a
//! request means and how answers look is `chat/scrollback.rs`.

use super::*;
use crate::chat::incoming::{Number, PageFields, StrField};
use crate::chat::record::{Found, Range, Read};
use crate::chat::scrollback::{self, Anchor, PageAsk, SearchAsk};

/// Bytes of stored frames a search slice looks at in memory, across every
/// running search (a few tenths of a millisecond of work).
const SEARCH_SLICE_BYTES: usize = 32 * 1024;
/// Messages one log read asks for while searching (about a block of the
/// journal's index), and what asking for them costs the slice (they are
/// matched when the answer comes): one read per slice.
const SEARCH_READ: usize = 200;
const SEARCH_READ_COST: usize = 32 * 1024;
/// Pages one connection may have waiting for the log at once.
const PAGES_PER_CLIENT: usize = 4;

/// The running requests, and what has been served.
#[derive(Debug, Default)]
pub(super) struct Jobs {
    next_ticket: u64,
    pages: Vec<PageJob>,
    searches: Vec<SearchJob>,
    stats: ScrollbackStats,
}

/// Pages and searches answered since start, and the time they took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrollbackStats {
    pub pages: u64,
    pub page_ms: u64,
    pub searches: u64,
    pub search_ms: u64,
}

/// One direction of a page: messages below `cursor` (newest first) or above
/// it (oldest first), `show` of them and one more to tell whether more exist.
#[derive(Debug)]
struct Collect {
    forward: bool,
    cursor: u64,
    show: usize,
    got: Vec<Rc<str>>,
    /// The log read this waits for, and (forward) where memory starts.
    waiting: Option<(u64, u64)>,
    done: bool,
}

#[derive(Debug)]
struct PageJob {
    client: ClientId,
    room: RoomName,
    started: u64,
    back: Collect,
    /// `None`: the newest page, nothing can be newer.
    fwd: Option<Collect>,
}

#[derive(Debug)]
struct SearchJob {
    client: ClientId,
    room: RoomName,
    ask: SearchAsk,
    started: u64,
    /// Messages below this id are still to be looked at.
    cursor: u64,
    found: Vec<Rc<str>>,
    /// The log read this waits for.
    waiting: Option<u64>,
}

/// What one slice of a search came to.
enum Step {
    /// Memory is looked at; the log is read next.
    Read(Read),
    /// Enough found, or nothing left to look at: answer it.
    Done,
    /// This turn's budget is spent: go on next turn.
    Later,
}

/// The id memory starts at: everything from it on is in the room's history.
fn memory_start(r: &Room) -> u64 {
    r.history
        .front()
        .map_or(r.last_id.saturating_add(1), |s| s.id)
}

impl Collect {
    fn new(forward: bool, cursor: u64, show: usize) -> Collect {
        Collect {
            forward,
            cursor,
            show,
            got: Vec::new(),
            waiting: None,
            done: false,
        }
    }

    fn wants(&self) -> usize {
        (self.show + 1).saturating_sub(self.got.len())
    }

    /// Takes what memory holds; returns the log read to make next, if any.
    fn step(&mut self, r: &Room, readable: bool, tickets: &mut u64) -> Option<Read> {
        if self.done || self.waiting.is_some() {
            return None;
        }
        let start = memory_start(r);
        if self.forward {
            if readable && self.cursor.saturating_add(1) < start {
                return Some(self.read(
                    r,
                    Range::After {
                        after: self.cursor,
                        until: start,
                    },
                    start,
                    tickets,
                ));
            }
            let from = r.history.partition_point(|s| s.id <= self.cursor);
            for s in r.history.range(from..) {
                if self.wants() == 0 {
                    break;
                }
                if protocol::is_message(&s.json) {
                    self.got.push(s.json.clone());
                }
            }
            self.done = true;
            return None;
        }
        if self.cursor > start {
            let to = r.history.partition_point(|s| s.id < self.cursor);
            for s in r.history.range(..to).rev() {
                if self.wants() == 0 {
                    self.done = true;
                    return None;
                }
                self.cursor = s.id;
                if protocol::is_message(&s.json) {
                    self.got.push(s.json.clone());
                }
            }
            self.cursor = self.cursor.min(start);
        }
        if self.wants() == 0 || !readable || self.cursor <= 1 {
            self.done = true;
            return None;
        }
        Some(self.read(r, Range::Before(self.cursor), start, tickets))
    }

    fn read(&mut self, r: &Room, range: Range, start: u64, tickets: &mut u64) -> Read {
        *tickets += 1;
        self.waiting = Some((*tickets, start));
        Read {
            ticket: *tickets,
            room: r.name.clone(),
            range,
            want: self.wants(),
        }
    }

    /// The log answered this collect's read.
    fn answered(&mut self, found: &[Found], exhausted: bool) {
        let Some((_, start)) = self.waiting.take() else {
            return;
        };
        for f in found {
            if self.wants() == 0 {
                break;
            }
            self.cursor = f.message.id;
            self.got.push(scrollback::shown(f));
        }
        if self.wants() == 0 {
            self.done = true;
        } else if exhausted {
            if self.forward {
                // Read up to where memory started: memory goes on from there.
                self.cursor = self.cursor.max(start.saturating_sub(1));
            } else {
                self.done = true;
            }
        }
    }

    /// What the page shows of this direction, and whether more exist past it.
    fn shown(&self) -> (&[Rc<str>], bool) {
        let n = self.got.len().min(self.show);
        (&self.got[..n], self.got.len() > self.show)
    }
}

impl PageJob {
    fn finished(&self) -> bool {
        self.back.done && self.fwd.as_ref().is_none_or(|f| f.done)
    }

    fn json(&self) -> String {
        let (older_part, older) = self.back.shown();
        let (newer_part, newer) = self.fwd.as_ref().map_or((&[][..], false), Collect::shown);
        let messages = older_part.iter().rev().chain(newer_part).map(|m| &**m);
        scrollback::page_json(&self.room, messages, older, newer)
    }
}

impl Core {
    /// `{"type":"history",...}`: a page of `room`, from memory when it holds
    /// it, else a job that waits for the log.
    pub(super) fn history(
        &mut self,
        client: ClientId,
        room: &RoomName,
        fields: &PageFields,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        let ask = PageAsk::check(fields, self.limits.page_max)?;
        if self.session_in(client, room)?.is_none() {
            return Ok(());
        }
        let waiting = self
            .jobs
            .pages
            .iter()
            .filter(|p| p.client == client)
            .count();
        if waiting >= PAGES_PER_CLIENT {
            return Err(ErrorCode::RateLimited);
        }
        let limit = ask.limit;
        let (back, fwd) = match ask.anchor {
            Anchor::Newest => (Collect::new(false, u64::MAX, limit), None),
            Anchor::Before(id) => (
                Collect::new(false, id, limit),
                Some(Collect::new(true, id.saturating_sub(1), 0)),
            ),
            Anchor::After(id) => (
                Collect::new(false, id.saturating_add(1), 0),
                Some(Collect::new(true, id, limit)),
            ),
            Anchor::Around(id) => (
                Collect::new(false, id.saturating_add(1), limit.div_ceil(2)),
                Some(Collect::new(true, id, limit / 2)),
            ),
        };
        let job = PageJob {
            client,
            room: room.clone(),
            started: self.now,
            back,
            fwd,
        };
        self.jobs.pages.push(job);
        let last = self.jobs.pages.len() - 1;
        self.step_page(last, out);
        Ok(())
    }

    /// Takes page `i` as far as memory goes; answers it when it is complete.
    fn step_page(&mut self, i: usize, out: &mut Out) {
        let readable = self.readable;
        let job = &mut self.jobs.pages[i];
        let Some(r) = self.rooms.get(&job.room) else {
            self.jobs.pages.swap_remove(i);
            return;
        };
        let tickets = &mut self.jobs.next_ticket;
        let mut reads = Vec::new();
        reads.extend(job.back.step(r, readable, tickets));
        if let Some(fwd) = job.fwd.as_mut() {
            reads.extend(fwd.step(r, readable, tickets));
        }
        out.extend(reads.into_iter().map(Command::Read));
        if job.finished() {
            let job = self.jobs.pages.swap_remove(i);
            self.jobs.stats.pages += 1;
            self.jobs.stats.page_ms += self.now.saturating_sub(job.started);
            let json = self.for_client(job.client, &job.room, job.json());
            reply(out, job.client, json);
        }
    }

    /// `{"type":"search",...}`: replaces the connection's running search.
    pub(super) fn search(
        &mut self,
        client: ClientId,
        room: &RoomName,
        (q, limit, before): (&StrField, Number, Number),
    ) -> Result<(), ErrorCode> {
        let ask = SearchAsk::check(q, limit, before)?;
        if self.session_in(client, room)?.is_none() {
            return Ok(());
        }
        self.jobs.searches.retain(|s| s.client != client);
        self.jobs.searches.push(SearchJob {
            client,
            room: room.clone(),
            cursor: ask.before.unwrap_or(u64::MAX),
            ask,
            started: self.now,
            found: Vec::new(),
            waiting: None,
        });
        // Its slices run in the loop's idle moments (`work`).
        Ok(())
    }

    /// Whether a search has memory to look at or a log read to ask for:
    /// the loop calls [`work`](Self::work) again without sleeping.
    pub fn has_work(&self) -> bool {
        self.jobs.searches.iter().any(|s| s.waiting.is_none())
    }

    /// One slice of search work (a few tenths of a millisecond), shared by
    /// the running searches in turn: each that steps goes to the back of
    /// the line, so the next slice starts with the one after it.
    pub fn work(&mut self, now: u64, out: &mut Out) {
        self.now = self.now.max(now);
        let mut budget = SEARCH_SLICE_BYTES;
        let mut visits = self.jobs.searches.len();
        while visits > 0 && budget > 0 && !self.jobs.searches.is_empty() {
            visits -= 1;
            if self.jobs.searches[0].waiting.is_some() {
                self.jobs.searches.rotate_left(1);
                continue;
            }
            match self.step_search(0, &mut budget) {
                Step::Read(read) => {
                    out.push(Command::Read(read));
                    budget = budget.saturating_sub(SEARCH_READ_COST);
                    self.jobs.searches.rotate_left(1);
                }
                Step::Done => self.finish_search(0, out),
                Step::Later => self.jobs.searches.rotate_left(1),
            }
        }
    }

    /// Looks at memory below search `i`'s cursor, within `budget` bytes.
    fn step_search(&mut self, i: usize, budget: &mut usize) -> Step {
        let readable = self.readable;
        let job = &mut self.jobs.searches[i];
        let Some(r) = self.rooms.get(&job.room) else {
            job.cursor = 0;
            return Step::Done;
        };
        let start = memory_start(r);
        if job.cursor > start {
            let to = r.history.partition_point(|s| s.id < job.cursor);
            for s in r.history.range(..to).rev() {
                if job.found.len() >= job.ask.limit {
                    return Step::Done;
                }
                if *budget == 0 {
                    return Step::Later;
                }
                *budget = budget.saturating_sub(s.json.len());
                job.cursor = s.id;
                if protocol::is_message(&s.json) && job.ask.matches(&s.json) {
                    job.found.push(s.json.clone());
                }
            }
            job.cursor = job.cursor.min(start);
        }
        if job.found.len() >= job.ask.limit {
            return Step::Done;
        }
        if !readable || job.cursor <= 1 {
            job.cursor = 0;
            return Step::Done;
        }
        self.jobs.next_ticket += 1;
        job.waiting = Some(self.jobs.next_ticket);
        Step::Read(Read {
            ticket: self.jobs.next_ticket,
            room: job.room.clone(),
            range: Range::Before(job.cursor),
            want: SEARCH_READ,
        })
    }

    fn finish_search(&mut self, i: usize, out: &mut Out) {
        let job = self.jobs.searches.remove(i);
        // More may exist below the last result unless the search ran out.
        let older = job.cursor > 1
            && self.rooms.get(&job.room).is_some_and(|r| {
                self.readable || r.history.front().is_some_and(|s| s.id < job.cursor)
            });
        self.jobs.stats.searches += 1;
        self.jobs.stats.search_ms += self.now.saturating_sub(job.started);
        let messages = job.found.iter().map(|m| &**m);
        let json = scrollback::search_json(&job.room, &job.ask.q, messages, older);
        let json = self.for_client(job.client, &job.room, json);
        reply(out, job.client, json);
    }

    /// The log answered a read: the page or search that asked goes on.
    pub(super) fn read_done(
        &mut self,
        ticket: u64,
        found: Vec<Found>,
        exhausted: bool,
        out: &mut Out,
    ) {
        if let Some(i) = self.jobs.pages.iter().position(|p| {
            p.back.waiting.is_some_and(|w| w.0 == ticket)
                || p.fwd
                    .as_ref()
                    .is_some_and(|f| f.waiting.is_some_and(|w| w.0 == ticket))
        }) {
            let job = &mut self.jobs.pages[i];
            if job.back.waiting.is_some_and(|w| w.0 == ticket) {
                job.back.answered(&found, exhausted);
            } else if let Some(fwd) = job.fwd.as_mut() {
                fwd.answered(&found, exhausted);
            }
            return self.step_page(i, out);
        }
        let Some(i) = self
            .jobs
            .searches
            .iter()
            .position(|s| s.waiting == Some(ticket))
        else {
            return; // a search replaced by a newer one, or a connection gone
        };
        let job = &mut self.jobs.searches[i];
        job.waiting = None;
        let mut full = false;
        for f in &found {
            job.cursor = f.message.id;
            let shown = scrollback::shown(f);
            if job.ask.matches(&shown) {
                job.found.push(shown);
                if job.found.len() >= job.ask.limit {
                    full = true;
                    break;
                }
            }
        }
        if exhausted && !full {
            job.cursor = 0;
        }
        if full || exhausted {
            self.finish_search(i, out);
        }
    }

    /// The log could not answer a read: the page or search that asked ends
    /// with `unavailable` (an empty answer would claim the history ends there).
    pub(super) fn read_failed(&mut self, ticket: u64, out: &mut Out) {
        let waits = |c: &Collect| c.waiting.is_some_and(|w| w.0 == ticket);
        let asker = if let Some(i) = self
            .jobs
            .pages
            .iter()
            .position(|p| waits(&p.back) || p.fwd.as_ref().is_some_and(waits))
        {
            let job = self.jobs.pages.swap_remove(i);
            (job.client, job.room)
        } else if let Some(i) = self
            .jobs
            .searches
            .iter()
            .position(|s| s.waiting == Some(ticket))
        {
            let job = self.jobs.searches.remove(i);
            (job.client, job.room)
        } else {
            return; // a search replaced by a newer one, or a connection gone
        };
        let json = protocol::error_json(ErrorCode::Unavailable, Some(&asker.1));
        let json = self.for_client(asker.0, &asker.1, json);
        reply(out, asker.0, json);
    }

    /// A connection is gone: so are its requests.
    pub(super) fn drop_jobs(&mut self, client: ClientId) {
        self.jobs.pages.retain(|p| p.client != client);
        self.jobs.searches.retain(|s| s.client != client);
    }

    /// Retention removed `room`'s records below `below` from the log: memory lets them go too.
    pub(super) fn dropped(&mut self, room: &RoomName, below: u64) {
        if let Some(r) = self.rooms.get_mut(room) {
            let mut freed = 0;
            while r.history.front().is_some_and(|s| s.id < below) {
                freed += r.forget_oldest();
            }
            self.history_bytes -= freed;
        }
    }

    /// The time, for what the log answers between slices of work.
    pub fn clock(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    /// Pages and searches served since start.
    pub fn scrollback_stats(&self) -> ScrollbackStats {
        self.jobs.stats
    }
}
