//! A connection's pending output: a queue of shared byte chunks, drained with
//! `writev` when the socket is writable.
//!
//! A broadcast frame is encoded once into an `Rc<[u8]>` and the same chunk is
//! pushed onto every client's queue: a push is a reference-count bump, not a
//! copy. Static assets are queued as `&'static [u8]` without copying either.
//! When the queue empties its storage is freed, so an idle connection holds no
//! output buffer at all. Knows nothing of sockets beyond `io::Write`, nor of
//! the cap it is checked against (the connection owns that policy).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;

/// One piece of queued output.
#[derive(Clone, Debug)]
pub enum Chunk {
    Shared(Rc<[u8]>),
    Static(&'static [u8]),
}

impl Chunk {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Shared(b) => b,
            Chunk::Static(b) => b,
        }
    }
}

impl From<Vec<u8>> for Chunk {
    fn from(v: Vec<u8>) -> Self {
        Chunk::Shared(v.into())
    }
}

/// How many chunks one `writev` call gathers. Frames of a burst that piled up
/// for a slow socket leave in a few syscalls instead of one each.
const MAX_IOVECS: usize = 64;

#[derive(Debug, Default)]
pub struct WriteQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    head_written: usize,
    /// Unsent bytes in total, checked against the output cap.
    pending: usize,
}

/// What a flush achieved.
#[derive(Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Everything queued is in the kernel.
    All,
    /// The socket would block; wait for writability.
    Blocked,
    /// This turn's budget is spent with more queued: write more next turn.
    Budget,
}

impl WriteQueue {
    pub fn push(&mut self, chunk: Chunk) {
        let len = chunk.bytes().len();
        if len == 0 {
            return;
        }
        self.pending += len;
        self.chunks.push_back(chunk);
    }

    pub fn pending(&self) -> usize {
        self.pending
    }

    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Drops everything queued and frees the storage.
    pub fn clear(&mut self) {
        *self = WriteQueue::default();
    }

    /// Drops every chunk not yet begun. A partly written front chunk is kept so
    /// the byte stream stays well formed (a frame is never cut in half).
    pub fn drop_unstarted(&mut self) {
        let keep = usize::from(self.head_written > 0);
        while self.chunks.len() > keep {
            if let Some(chunk) = self.chunks.pop_back() {
                self.pending -= chunk.bytes().len();
            }
        }
        if self.chunks.is_empty() {
            self.clear();
        }
    }

    /// Writes until the queue is empty, the writer would block, or at least
    /// `budget` bytes are written (a write may take more than is left of it:
    /// a chat client's queue goes out in as few calls as the kernel allows).
    /// Returns the bytes written alongside the outcome.
    pub fn flush_to(&mut self, w: &mut impl Write, budget: usize) -> io::Result<(Flushed, usize)> {
        self.write_out(w, budget, false)
    }

    /// [`flush_to`](Self::flush_to), but no write is offered more than what
    /// is left of `budget`, so it is a cap: for bulk output (files), whose
    /// budget is the turn's share. On loopback the kernel takes a whole
    /// 1 MiB image in one call, which would make the budget a count of
    /// calls, not of bytes.
    pub fn flush_capped(
        &mut self,
        w: &mut impl Write,
        budget: usize,
    ) -> io::Result<(Flushed, usize)> {
        self.write_out(w, budget, true)
    }

    fn write_out(
        &mut self,
        w: &mut impl Write,
        budget: usize,
        capped: bool,
    ) -> io::Result<(Flushed, usize)> {
        let mut total = 0;
        while !self.chunks.is_empty() {
            if total >= budget {
                return Ok((Flushed::Budget, total));
            }
            let mut room = if capped { budget - total } else { usize::MAX };
            let mut slices: [IoSlice; MAX_IOVECS] = [IoSlice::new(&[]); MAX_IOVECS];
            let mut n = 0;
            for (i, chunk) in self.chunks.iter().take(MAX_IOVECS).enumerate() {
                let bytes = chunk.bytes();
                let bytes = if i == 0 {
                    &bytes[self.head_written..]
                } else {
                    bytes
                };
                let offered = &bytes[..bytes.len().min(room)];
                slices[i] = IoSlice::new(offered);
                n += 1;
                room -= offered.len();
                if room == 0 {
                    break;
                }
            }
            match w.write_vectored(&slices[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    total += written;
                    self.consume(written);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((Flushed::Blocked, total))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Give the memory back: an idle connection should own no output storage.
        self.chunks = VecDeque::new();
        Ok((Flushed::All, total))
    }

    fn consume(&mut self, mut written: usize) {
        self.pending -= written;
        while written > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - self.head_written;
            if written >= left {
                written -= left;
                self.head_written = 0;
                self.chunks.pop_front();
            } else {
                self.head_written += written;
                written = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `room` bytes per call, then blocks once full.
    struct Trickle {
        out: Vec<u8>,
        room: usize,
        capacity: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.room).min(self.capacity - self.out.len());
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_resume_mid_chunk_and_keep_order() {
        let shared: Rc<[u8]> = Rc::from(&b"broadcast"[..]);
        let mut q = WriteQueue::default();
        q.push(Chunk::Static(b"head-"));
        q.push(Chunk::Shared(shared.clone()));
        q.push(Chunk::from(b"-tail".to_vec()));
        assert_eq!(q.pending(), 19);
        let mut w = Trickle {
            out: Vec::new(),
            room: 3,
            capacity: 10,
        };
        assert_eq!(
            q.flush_to(&mut w, usize::MAX).unwrap(),
            (Flushed::Blocked, 10)
        );
        assert_eq!(q.pending(), 9);
        w.capacity = 100;
        assert_eq!(q.flush_to(&mut w, usize::MAX).unwrap(), (Flushed::All, 9));
        assert_eq!(w.out, b"head-broadcast-tail");
        assert!(q.is_empty());
        assert_eq!(Rc::strong_count(&shared), 1, "sent chunks are released");
    }

    /// A writer that takes everything offered in one call, as the kernel
    /// does on loopback with a large send buffer; it records each call's size.
    #[derive(Default)]
    struct Greedy {
        out: Vec<u8>,
        calls: Vec<usize>,
    }

    impl Write for Greedy {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let n: usize = bufs.iter().map(|b| b.len()).sum();
            bufs.iter().for_each(|b| self.out.extend_from_slice(b));
            self.calls.push(n);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_capped_flush_writes_no_more_than_its_budget_even_to_a_writer_that_takes_all() {
        let image: Rc<[u8]> = (0..1_000_000u32).map(|i| i as u8).collect();
        let mut q = WriteQueue::default();
        q.push(Chunk::Static(b"HTTP/1.1 200 OK\r\n\r\n"));
        q.push(Chunk::Shared(image.clone()));
        let mut w = Greedy::default();
        let budget = 64 * 1024;
        assert_eq!(
            q.flush_capped(&mut w, budget).unwrap(),
            (Flushed::Budget, budget)
        );
        assert_eq!(w.calls, [budget], "one call, offered exactly the budget");
        while q.flush_capped(&mut w, budget).unwrap().0 == Flushed::Budget {}
        assert!(w.calls.iter().all(|&n| n <= budget), "{:?}", w.calls);
        assert_eq!(w.calls.len(), 1_000_019usize.div_ceil(budget));
        assert_eq!(&w.out[19..], &image[..]);
        assert!(q.is_empty());
        // Uncapped (a chat client's queue), one call takes what the kernel does.
        q.push(Chunk::Shared(image.clone()));
        let mut w = Greedy::default();
        assert_eq!(
            q.flush_to(&mut w, budget).unwrap(),
            (Flushed::All, 1_000_000)
        );
        assert_eq!(w.calls, [1_000_000]);
    }

    #[test]
    fn dropping_unstarted_output_keeps_the_frame_in_flight() {
        let mut q = WriteQueue::default();
        q.push(Chunk::Static(b"0123456789"));
        q.push(Chunk::Static(b"abc"));
        let mut w = Trickle {
            out: Vec::new(),
            room: 4,
            capacity: 4,
        };
        q.flush_to(&mut w, usize::MAX).unwrap();
        q.drop_unstarted();
        assert_eq!(q.pending(), 6, "rest of the first chunk only");
        w.capacity = 100;
        q.flush_to(&mut w, usize::MAX).unwrap();
        assert_eq!(w.out, b"0123456789");
    }
}
