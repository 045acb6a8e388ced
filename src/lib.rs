//! picochat: a live browser chat server in one small binary.
//!
//! Read in this order to follow one chat message from a socket to every client:
//! [`server`] (the loop) → [`conn`] (one connection: HTTP, upgrade, frames) →
//! [`chat`] (the room's rules, sans I/O) → back in [`server`], the message is
//! framed once and queued on every [`write_queue`].
//!
//! Supporting pieces: [`config`] (every limit), [`http`] and [`assets`] (the
//! page), [`ws`] (framing, shared with the load generator), [`journal`] (the
//! durable log), [`timer`] (deadlines), [`metrics`], [`os`], [`logging`].

pub mod assets;
pub mod chat;
pub mod config;
pub mod conn;
pub mod http;
pub mod log;
pub mod logging;
pub mod metrics;
pub mod os;
pub mod server;
pub mod timer;
pub mod write_queue;
pub mod ws;
