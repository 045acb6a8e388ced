//! The network shell: one mio loop ([`server`]) and its connections
//! ([`conn`]), HTTP ([`http`], with the compiled-in page in [`assets`]),
//! WebSocket framing ([`ws`]) and session rules ([`ws_session`]), per-client
//! output ([`write_queue`]), deadlines ([`timer`]) and per-address limits
//! ([`per_address`]), the admin API ([`admin`]), and the byte stream under
//! a connection ([`stream`]: plain TCP, or TLS from `tls`). It moves bytes, events
//! and time; the chat's rules are in `crate::chat`, storage in `crate::log`.

pub mod admin;
pub mod assets;
pub mod conn;
pub mod deflate;
pub mod http;
pub mod http_session;
pub mod per_address;
pub mod samples;
pub mod server;
pub mod stream;
pub mod timer;
#[cfg(feature = "tls")]
pub mod tls;
pub mod write_queue;
pub mod ws;
pub mod ws_session;
