//! picochat: a live browser chat server in one small binary.
//!
//! Three parts, one folder each:
//! - [`net`]: the network shell, one mio loop that moves bytes, events and time;
//! - [`chat`]: the chat core, a state machine without I/O (events in, commands out);
//! - [`log`]: the message log, which numbers and stores messages (memory or file journal).
//!
//! Read in this order to follow one chat message from a socket to every client:
//! [`net::server`] (the loop) → [`net::conn`] (one connection: HTTP, upgrade,
//! frames) → [`net::ws_session`] (WebSocket rules) → [`chat::core`] (the
//! message becomes an `Append`) → [`log`] (committed, with its id) →
//! [`chat::core`] again (`Deliver` to the room) → back in [`net::server`], the
//! frame is built once and queued on each member's [`net::write_queue`].
//!
//! Beside them: [`config`] (every limit), [`metrics`], [`os`], [`logging`].

pub mod chat;
pub mod config;
pub mod log;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod os;
