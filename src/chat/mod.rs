//! The chat, without sockets, clocks or storage: the JSON protocol
//! ([`protocol`]), one client's session ([`session`]), one room ([`room`]),
//! what it exchanges with a message log ([`record`]) and the state machine
//! that ties them together ([`core`]): events in, commands out.
//! The network shell (`server.rs`, `conn.rs`) carries the commands out; the
//! message log (`crate::log`) numbers and stores what the core asks it to.

pub mod access;
pub mod core;
pub mod direct;
pub mod incoming;
pub mod moderation;
pub mod names;
pub mod protocol;
pub mod reactions;
pub mod reads;
pub mod record;
pub mod record_frames;
pub mod room;
pub mod scrollback;
pub mod session;
pub mod token;

pub use self::core::{Audience, Command, Core, Event, Farewell, Kick, Kicked, Limits, Report};
pub use self::session::ClientId;

#[cfg(test)]
mod tests;
