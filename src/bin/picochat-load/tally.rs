//! Who was expected to receive what, and who did: counts per cell, one cell
//! per room (just one without `--rooms`) and node (`--url`), so the per-room
//! and per-node breakdowns are sums of the same cells as the totals and can
//! never disagree with them. Counting only; the engine decides what to count.

/// The counts of one cell, or of a sum of cells.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub struct Tally {
    /// Clients counted as members (with `--rooms`: welcomed into the room).
    pub members: u64,
    /// Of those, how many the server dropped (closed) while open.
    pub dropped: u64,
    pub expected: u64,
    pub received: u64,
}

impl Tally {
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }

    fn add(mut self, o: &Tally) -> Tally {
        self.members += o.members;
        self.dropped += o.dropped;
        self.expected += o.expected;
        self.received += o.received;
        self
    }
}

pub struct Cells {
    rooms: usize,
    nodes: usize,
    cells: Vec<Tally>,
}

impl Cells {
    /// `rooms` 0 means no rooms: one room.
    pub fn new(rooms: usize, nodes: usize) -> Cells {
        let rooms = rooms.max(1);
        let nodes = nodes.max(1);
        Cells {
            rooms,
            nodes,
            cells: vec![Tally::default(); rooms * nodes],
        }
    }

    /// The cell of room `room` (taken as 0 if out of range) through node `node`.
    pub fn at(&mut self, room: usize, node: usize) -> &mut Tally {
        let room = if room < self.rooms { room } else { 0 };
        let i = room * self.nodes + node.min(self.nodes - 1);
        &mut self.cells[i]
    }

    /// A message sent to `room`: every member there, through every node, expects it.
    /// Returns how many deliveries that is.
    pub fn expect_broadcast(&mut self, room: usize) -> u64 {
        let mut n = 0;
        for node in 0..self.nodes {
            let c = self.at(room, node);
            c.expected += c.members;
            n += c.members;
        }
        n
    }

    /// Sets each node's membership of room 0 (no `--rooms`: everyone open is a member).
    pub fn set_members(&mut self, per_node: &[u64]) {
        for (node, &m) in per_node.iter().enumerate() {
            self.at(0, node).members = m;
        }
    }

    pub fn room(&self, room: usize) -> Tally {
        self.cells[room * self.nodes..(room + 1) * self.nodes]
            .iter()
            .fold(Tally::default(), |a, c| a.add(c))
    }

    pub fn node(&self, node: usize) -> Tally {
        self.cells
            .iter()
            .skip(node)
            .step_by(self.nodes)
            .fold(Tally::default(), |a, c| a.add(c))
    }

    pub fn total(&self) -> Tally {
        self.cells.iter().fold(Tally::default(), |a, c| a.add(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_and_nodes_are_sums_of_the_same_cells_as_the_total() {
        let mut c = Cells::new(3, 2);
        c.at(0, 0).members = 2;
        c.at(0, 1).members = 1;
        c.at(2, 1).members = 4;
        assert_eq!(c.expect_broadcast(0), 3);
        assert_eq!(c.expect_broadcast(2), 4);
        c.at(0, 1).received += 1;
        c.at(2, 1).received += 4;
        c.at(2, 1).dropped += 1;
        assert_eq!(c.room(0).expected, 3);
        assert_eq!(c.room(0).lost(), 2);
        assert_eq!(c.room(1), Tally::default());
        assert_eq!(c.node(1).expected, 5);
        assert_eq!(c.node(1).received, 5);
        assert_eq!(c.node(0).lost(), 2);
        let t = c.total();
        assert_eq!((t.expected, t.received, t.dropped, t.members), (7, 5, 1, 7));
        // Out of range rooms count as room 0 rather than vanish.
        c.at(9, 0).received += 1;
        assert_eq!(c.room(0).received, 2);
    }
}
