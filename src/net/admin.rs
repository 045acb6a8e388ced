//! The admin API (`--admin-token-file`), under `/api/admin/` on the admin
//! listener (or the main one without `--admin-listen`). Every call carries
//! `Authorization: Bearer TOKEN` (no cookies, so no CSRF): none is 401, a
//! wrong one 403, checked in constant time; 10 failures within a minute from
//! one address are answered 429 for a minute without being checked. Answers
//! are JSON, errors `{"error": CODE, "message": TEXT}`, and never echo the
//! token. Sans-I/O: a request in, a reply and the core's commands out.
//!
//! - `GET /api/admin/samples`: the last 10 minutes, one sample a second, for
//!   the admin page's charts (`samples.rs`);
//! - `GET /api/admin/rooms`: rooms with members, their users and each
//!   connection's id and address;
//! - `POST /api/admin/connections/{id}/kick`: close one connection (1008);
//! - `POST /api/admin/users/{name}/kick`: close every connection of a user;
//! - `GET /api/admin/rooms/{room}/messages`: the room's messages in history;
//! - `DELETE /api/admin/rooms/{room}/messages/{id}`: delete a message for
//!   everyone (202: the tombstone is handed to the log, and reaches pages
//!   once it is stored, like any record);
//! - `POST /api/admin/rooms/{room}/messages?text=T[&username=U]`: post as a
//!   moderator (read-only rooms included);
//! - `GET|PUT /api/admin/rooms/{room}/settings[?topic=&slow_mode=&read_only=]`:
//!   a room's settings (a PUT changes only the parameters given);
//! - `GET /api/admin/bans`, `POST /api/admin/bans?name=N|address=A[&for=D][&reason=R]`,
//!   `DELETE /api/admin/bans?name=N|address=A`: bans, for a duration or until lifted.
//!
//! Parameters travel in the query string (percent-encoded); no call has a
//! body. Settings and bans are stored by the log (202), take effect when it
//! hands them back, and survive restarts with `--data-dir` or `--redis`.
//!
//! The admin API acts on what this process holds: with `--redis`, rooms
//! with members here (a delete then travels to every process through the log).

use crate::chat::access::{Attempts, Secret};
use crate::chat::moderation::{BanRequest, SettingsChange};
use crate::chat::protocol::ErrorCode;
use crate::chat::{Command, Core, Kick, Kicked};
use crate::net::http::{self, Reply, Request, Status};
use crate::net::samples::{Reading, Samples};
use std::net::IpAddr;

#[derive(Debug, PartialEq, Eq)]
pub enum AdminRoute {
    Samples,
    Rooms,
    KickConnection(String),
    KickUser(String),
    Messages(String),
    DeleteMessage(String, u64),
    Post(String),
    Settings(String),
    SetSettings(String),
    Bans,
    Ban,
    Unban,
}

/// The admin route for `method` and `path` (under `/api/admin/`), or the
/// status that says why there is none.
pub fn route(method: &str, path: &str) -> Result<AdminRoute, Status> {
    let rest = path.strip_prefix("/api/admin/").ok_or(Status::NotFound)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (want, route) = match parts.as_slice() {
        ["rooms"] => ("GET", AdminRoute::Rooms),
        ["samples"] => ("GET", AdminRoute::Samples),
        ["connections", id, "kick"] => ("POST", AdminRoute::KickConnection(decode(id)?)),
        ["users", name, "kick"] => ("POST", AdminRoute::KickUser(decode(name)?)),
        ["rooms", room, "messages"] if method == "POST" => {
            ("POST", AdminRoute::Post(decode(room)?))
        }
        ["rooms", room, "messages"] => ("GET", AdminRoute::Messages(decode(room)?)),
        ["rooms", room, "settings"] if method == "PUT" => {
            ("PUT", AdminRoute::SetSettings(decode(room)?))
        }
        ["rooms", room, "settings"] => ("GET", AdminRoute::Settings(decode(room)?)),
        ["bans"] => match method {
            "POST" => ("POST", AdminRoute::Ban),
            "DELETE" => ("DELETE", AdminRoute::Unban),
            _ => ("GET", AdminRoute::Bans),
        },
        ["rooms", room, "messages", id] => {
            let id = id.parse().map_err(|_| Status::BadRequest)?;
            ("DELETE", AdminRoute::DeleteMessage(decode(room)?, id))
        }
        _ => return Err(Status::NotFound),
    };
    if method != want {
        return Err(Status::MethodNotAllowed);
    }
    Ok(route)
}

/// Percent-decoding of one path segment (a username may hold any character).
fn decode(segment: &str) -> Result<String, Status> {
    decode_with(segment, false)
}

/// A query parameter's value, percent-decoded (`+` is a space), if given.
fn param(query: &str, name: &str) -> Result<Option<String>, Status> {
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if decode_with(k, true)? == name {
            return decode_with(v, true).map(Some);
        }
    }
    Ok(None)
}

fn decode_with(segment: &str, plus_is_space: bool) -> Result<String, Status> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'+' && plus_is_space {
            out.push(b' ');
            i += 1;
        } else if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3).ok_or(Status::BadRequest)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| Status::BadRequest)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Status::BadRequest)
}

#[derive(Debug)]
pub struct Admin {
    token: Secret,
    attempts: Attempts,
    /// Calls refused for a missing, wrong or blocked token (`/metrics`).
    pub failures_total: u64,
    samples: Samples,
}

impl Admin {
    pub fn new(token: Secret) -> Admin {
        Admin {
            token,
            attempts: Attempts::default(),
            failures_total: 0,
            samples: Samples::default(),
        }
    }

    /// Once a second (wall-clock ms): forgets old failures and records a sample.
    pub fn tick(&mut self, now: u64, reading: Reading) {
        self.attempts.tick(now);
        self.samples.record(now / 1000, reading);
    }

    /// Answers one admin API request from `addr` at wall-clock `now` (ms).
    pub fn handle(
        &mut self,
        req: &Request,
        addr: IpAddr,
        now: u64,
        core: &Core,
        commands: &mut Vec<Command>,
        date: &str,
    ) -> Reply {
        let route = match route(req.method, req.path) {
            Ok(r) => r,
            Err(status) => return error(status, "no_such_call", "no such admin call", date),
        };
        if self.attempts.blocked(addr, now) {
            self.failures_total += 1;
            return error(
                Status::TooManyRequests,
                "rate_limited",
                "too many failed attempts from this address: wait a minute",
                date,
            );
        }
        let given = req
            .authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::trim);
        match given {
            None => {
                self.failures_total += 1;
                self.attempts.failed(addr, now);
                return error(
                    Status::Unauthorized,
                    "unauthorized",
                    "send Authorization: Bearer with the admin token",
                    date,
                );
            }
            Some(t) if !self.token.matches(t.as_bytes()) => {
                self.failures_total += 1;
                self.attempts.failed(addr, now);
                crate::diag_warn!("{addr}: admin API: wrong token");
                return error(Status::Forbidden, "forbidden", "wrong admin token", date);
            }
            Some(_) => {}
        }
        let body = match route {
            AdminRoute::Samples => self.samples.json(),
            AdminRoute::Post(room) => {
                let text = param(req.query, "text").ok().flatten().unwrap_or_default();
                let name = param(req.query, "username").ok().flatten();
                let name = name.as_deref().unwrap_or("moderator");
                return match core.admin_post(&room, name, &text, commands) {
                    Ok(()) => http::json(Status::Accepted, r#"{"posting":true}"#, date),
                    Err(ErrorCode::NotFound) => {
                        error(Status::NotFound, "not_found", "no such room here", date)
                    }
                    Err(code) => {
                        error(Status::BadRequest, code.code(), "not a valid message", date)
                    }
                };
            }
            AdminRoute::Settings(room) => {
                let s = core.room_settings(&room);
                serde_json::to_string(&s).unwrap_or_default()
            }
            AdminRoute::SetSettings(room) => {
                let change = match settings_change(req.query) {
                    Ok(change) => change,
                    Err(why) => return error(Status::BadRequest, "bad_request", why, date),
                };
                return match core.change_room_settings(&room, change, commands) {
                    Ok((room, value)) => {
                        crate::diag_info!("{addr}: admin API: settings of {room}: {value}");
                        http::json(Status::Accepted, &value, date)
                    }
                    Err(why) => error(Status::BadRequest, "bad_request", why, date),
                };
            }
            AdminRoute::Bans => core.moderation().bans_json(now),
            AdminRoute::Ban | AdminRoute::Unban => {
                let lift = route == AdminRoute::Unban;
                let request = match ban_request(req.query) {
                    Ok(request) => request,
                    Err(why) => return error(Status::BadRequest, "bad_request", why, date),
                };
                return match core.change_ban(request, lift, now, commands) {
                    Ok(key) => {
                        crate::diag_info!(
                            "{addr}: admin API: {} {key}",
                            if lift { "lifted" } else { "set" }
                        );
                        let body = serde_json::json!({ "key": key, "ban": !lift }).to_string();
                        http::json(Status::Accepted, &body, date)
                    }
                    Err(why) => error(Status::BadRequest, "bad_request", why, date),
                };
            }
            AdminRoute::Rooms => core.admin_rooms_json(),
            AdminRoute::Messages(room) => match core.admin_messages_json(&room) {
                Some(body) => body,
                None => return error(Status::NotFound, "not_found", "no such room here", date),
            },
            AdminRoute::DeleteMessage(room, id) => {
                return match core.admin_delete(&room, id, commands) {
                    Ok(()) => {
                        crate::diag_info!("{addr}: admin API: deleted message {id} in {room:?}");
                        let body = format!(r#"{{"deleting":{id}}}"#);
                        http::json(Status::Accepted, &body, date)
                    }
                    Err(_) => error(
                        Status::NotFound,
                        "not_found",
                        "no such message in this room's history here",
                        date,
                    ),
                };
            }
            AdminRoute::KickConnection(id) => {
                return kicked(core.kick(Kick::Connection(id), commands), date)
            }
            AdminRoute::KickUser(name) => {
                let k = core.kick_user(&name, commands);
                if !k.nobody() {
                    let n = k.here;
                    crate::diag_info!("{addr}: admin API: kicked {n} connection(s) of {name:?}");
                }
                return kicked(k, date);
            }
        };
        http::json(Status::Ok, &body, date)
    }
}

/// A PUT's settings parameters, as given (the core checks them).
fn settings_change(query: &str) -> Result<SettingsChange, &'static str> {
    let get = |name| param(query, name).map_err(|_| "malformed query string");
    Ok(SettingsChange {
        topic: get("topic")?,
        slow_mode: get("slow_mode")?,
        read_only: get("read_only")?,
    })
}

/// A ban's parameters, as given but for `for`, a duration (the core checks the rest).
fn ban_request(query: &str) -> Result<BanRequest, &'static str> {
    let get = |name| param(query, name).map_err(|_| "malformed query string");
    let for_ms = match get("for")? {
        Some(d) => Some(
            crate::config::parse_duration(&d)
                .map_err(|_| "for is a duration: 30m, 12h")?
                .as_millis() as u64,
        ),
        None => None,
    };
    Ok(BanRequest {
        name: get("name")?,
        address: get("address")?,
        for_ms,
        reason: get("reason")?,
    })
}

/// A kick's answer: 200 with how many were closed here, 202 when the user
/// is only on another process (it closes them there), 404 when nobody was.
fn kicked(k: Kicked, date: &str) -> Reply {
    if k.nobody() {
        return error(
            Status::NotFound,
            "not_found",
            "no such connection or user online",
            date,
        );
    }
    if k.here == 0 {
        return http::json(Status::Accepted, r#"{"kicked":0,"elsewhere":true}"#, date);
    }
    http::json(Status::Ok, &format!(r#"{{"kicked":{}}}"#, k.here), date)
}

fn error(status: Status, code: &str, message: &str, date: &str) -> Reply {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        error: &'a str,
        message: &'a str,
    }
    let body = serde_json::to_string(&Body {
        error: code,
        message,
    })
    .unwrap_or_default();
    http::json(status, &body, date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_their_methods() {
        assert_eq!(route("GET", "/api/admin/rooms"), Ok(AdminRoute::Rooms));
        assert_eq!(
            route("POST", "/api/admin/users/Ada%20L%C3%B6/kick"),
            Ok(AdminRoute::KickUser("Ada Lö".into()))
        );
        assert_eq!(
            route("POST", "/api/admin/connections/3.7/kick"),
            Ok(AdminRoute::KickConnection("3.7".into()))
        );
        assert_eq!(
            route("GET", "/api/admin/users/x/kick"),
            Err(Status::MethodNotAllowed)
        );
        assert_eq!(route("GET", "/api/admin/nope"), Err(Status::NotFound));
        assert_eq!(
            route("DELETE", "/api/admin/rooms/general/messages/12"),
            Ok(AdminRoute::DeleteMessage("general".into(), 12))
        );
        assert_eq!(
            route("GET", "/api/admin/rooms/general/messages"),
            Ok(AdminRoute::Messages("general".into()))
        );
        assert_eq!(
            route("DELETE", "/api/admin/rooms/general/messages/x"),
            Err(Status::BadRequest)
        );
        assert_eq!(
            route("POST", "/api/admin/rooms/general/messages/1"),
            Err(Status::MethodNotAllowed)
        );
        assert_eq!(
            route("POST", "/api/admin/users/%zz/kick"),
            Err(Status::BadRequest)
        );
    }
}
