//! picochat: a live browser chat server in one small binary.
//!
//! Three parts, one folder each:
//! - [`net`]: the network shell, one mio loop that moves bytes, events and time;
//! - [`chat`]: the chat core, a state machine without I/O (events in, commands out);
//! - [`log`]: the message log, which numbers and stores records (memory, file
//!   journal or Redis).
//!
//! One chat message, in reading order: the socket's bytes reach
//! [`net::conn`] (socket I/O only) → [`net::ws_session`] (frames, inflating,
//! UTF-8, close rules) → [`net::server`]'s dispatch (the one place that hands
//! events to the core) → [`chat::core`] (the message becomes an `Append` of a
//! typed draft) → [`log`] (committed, with its id) → [`chat::core`] again
//! (`Deliver` to the room) → back in [`net::server`], the frame is built once
//! and queued on each member's [`net::write_queue`].
//!
//! Beside them: [`config`] (every limit), [`metrics`], [`os`], [`clock`] (the
//! wall clock and date formats), [`diag`] (the operator's diagnostics on
//! stderr, not to be confused with the message log).

pub mod chat;
pub mod clock;
pub mod config;
pub mod diag;
pub mod image;
pub mod log;
pub mod metrics;
pub mod net;
pub mod os;
