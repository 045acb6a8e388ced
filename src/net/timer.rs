//! One structure for every connection deadline: a hashed timer wheel.
//!
//! Scheduling is O(1); advancing costs only the entries that fall due. Entries
//! are hints, not truth: a connection keeps its own deadlines (last read, ping
//! sent, ...) and, when an entry fires, checks them and reschedules if the
//! deadline moved later. So a read never touches the wheel, and a stale entry
//! (the connection is gone, or was rescheduled earlier) is simply skipped.
//! Deadlines beyond one turn of the wheel stay in their slot for another lap.

/// Milliseconds per slot: deadlines fire up to this late.
pub const TICK_MS: u64 = 100;
/// Slots in one turn (about 100 s at 100 ms).
const SLOTS: usize = 1024;

/// A scheduled wake-up for connection `key` of generation `gen`, due at `at` ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: u32,
    pub gen: u32,
    pub at: u64,
}

#[derive(Debug)]
pub struct TimerWheel {
    slots: Vec<Vec<Entry>>,
    /// The next tick to process; every tick before it has fired.
    next_tick: u64,
    len: usize,
}

impl TimerWheel {
    pub fn new(now_ms: u64) -> Self {
        TimerWheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            next_tick: now_ms / TICK_MS,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn schedule(&mut self, entry: Entry) {
        // A deadline already past fires at the next advance.
        let tick = (entry.at / TICK_MS).max(self.next_tick);
        self.slots[(tick % SLOTS as u64) as usize].push(entry);
        self.len += 1;
    }

    /// Moves every entry due by `now_ms` into `due`. A tick's slot is
    /// processed once the tick has fully passed, so entries fire up to one
    /// tick late and never early.
    pub fn advance(&mut self, now_ms: u64, due: &mut Vec<Entry>) {
        let now_tick = now_ms / TICK_MS;
        // After a long stall, one lap visits every slot; no need to go round again.
        if now_tick > self.next_tick + SLOTS as u64 {
            self.next_tick = now_tick - SLOTS as u64;
        }
        while self.next_tick < now_tick {
            let tick = self.next_tick;
            let slot = &mut self.slots[(tick % SLOTS as u64) as usize];
            let before = slot.len();
            let mut i = 0;
            while i < slot.len() {
                if slot[i].at / TICK_MS <= tick {
                    due.push(slot.swap_remove(i));
                } else {
                    i += 1; // a later lap
                }
            }
            self.len -= before - slot.len();
            if slot.is_empty() && slot.capacity() > 64 {
                slot.shrink_to(8);
            }
            self.next_tick += 1;
        }
    }

    /// Milliseconds until the next slot that holds anything, for the poll timeout.
    pub fn next_wake_in(&self, now_ms: u64) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        for step in 0..SLOTS as u64 {
            let tick = self.next_tick + step;
            if !self.slots[(tick % SLOTS as u64) as usize].is_empty() {
                return Some(((tick + 1) * TICK_MS).saturating_sub(now_ms));
            }
        }
        Some(TICK_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: u32, at: u64) -> Entry {
        Entry { key, gen: 0, at }
    }

    #[test]
    fn entries_fire_once_when_due_and_not_before() {
        let mut w = TimerWheel::new(0);
        w.schedule(e(1, 250));
        w.schedule(e(2, 50));
        w.schedule(e(3, 250_000)); // beyond one lap
        let mut due = Vec::new();
        w.advance(99, &mut due);
        assert!(due.is_empty(), "never early");
        w.advance(100, &mut due);
        assert_eq!(due, [e(2, 50)]);
        due.clear();
        w.advance(200, &mut due);
        assert!(due.is_empty());
        w.advance(300, &mut due);
        assert_eq!(due, [e(1, 250)]);
        due.clear();
        w.advance(120_000, &mut due);
        assert!(due.is_empty(), "a far deadline survives a full lap");
        w.advance(250_100, &mut due);
        assert_eq!(due, [e(3, 250_000)]);
        assert!(w.is_empty());
    }

    #[test]
    fn next_wake_points_at_the_first_busy_slot() {
        let mut w = TimerWheel::new(1000);
        assert_eq!(w.next_wake_in(1000), None);
        w.schedule(e(1, 1550));
        let wake = w.next_wake_in(1000).unwrap();
        assert!((500..=600).contains(&wake), "{wake}");
    }
}
