//! The admin API (`--admin-token-file`), under `/api/admin/` on the admin
//! listener (or the main one without `--admin-listen`). Every call carries
//! `Authorization: Bearer TOKEN` (no cookies, so no CSRF): none is 401, a
//! wrong one 403, checked in constant time; 10 failures within a minute from
//! one address are answered 429 for a minute without being checked. Answers
//! are JSON, errors `{"error": CODE, "message": TEXT}`, and never echo the
//! token. Sans-I/O: a request in, a reply and the core's commands out.
//!
//! - `GET /api/admin/rooms`: rooms with members, their users and each
//!   connection's id and address;
//! - `POST /api/admin/connections/{id}/kick`: close one connection (1008);
//! - `POST /api/admin/users/{name}/kick`: close every connection of a user;
//! - `GET /api/admin/rooms/{room}/messages`: the room's messages in history;
//! - `DELETE /api/admin/rooms/{room}/messages/{id}`: delete a message for
//!   everyone (202: the tombstone is handed to the log, and reaches pages
//!   once it is stored, like any record).
//!
//! The admin API acts on what this process holds: with `--redis`, rooms
//! with members here (a delete then travels to every process through the log).

use crate::chat::access::{Attempts, Secret};
use crate::chat::{Command, Core, Kick};
use crate::net::http::{self, Reply, Request, Status};
use std::net::IpAddr;

#[derive(Debug, PartialEq, Eq)]
pub enum AdminRoute {
    Rooms,
    KickConnection(String),
    KickUser(String),
    Messages(String),
    DeleteMessage(String, u64),
}

/// The admin route for `method` and `path` (under `/api/admin/`), or the
/// status that says why there is none.
pub fn route(method: &str, path: &str) -> Result<AdminRoute, Status> {
    let rest = path.strip_prefix("/api/admin/").ok_or(Status::NotFound)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (want, route) = match parts.as_slice() {
        ["rooms"] => ("GET", AdminRoute::Rooms),
        ["connections", id, "kick"] => ("POST", AdminRoute::KickConnection(decode(id)?)),
        ["users", name, "kick"] => ("POST", AdminRoute::KickUser(decode(name)?)),
        ["rooms", room, "messages"] => ("GET", AdminRoute::Messages(decode(room)?)),
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
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
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
}

impl Admin {
    pub fn new(token: Secret) -> Admin {
        Admin {
            token,
            attempts: Attempts::default(),
            failures_total: 0,
        }
    }

    pub fn tick(&mut self, now: u64) {
        self.attempts.tick(now);
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
                crate::log_warn!("{addr}: admin API: wrong token");
                return error(Status::Forbidden, "forbidden", "wrong admin token", date);
            }
            Some(_) => {}
        }
        let body = match route {
            AdminRoute::Rooms => core.admin_rooms_json(),
            AdminRoute::Messages(room) => match core.admin_messages_json(&room) {
                Some(body) => body,
                None => return error(Status::NotFound, "not_found", "no such room here", date),
            },
            AdminRoute::DeleteMessage(room, id) => {
                return match core.admin_delete(&room, id, commands) {
                    Ok(()) => {
                        crate::log_info!("{addr}: admin API: deleted message {id} in {room:?}");
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
            AdminRoute::KickConnection(id) => kicked(core.kick(Kick::Connection(id), commands)),
            AdminRoute::KickUser(name) => {
                let n = core.kick(Kick::User(name.clone()), commands);
                if n > 0 {
                    crate::log_info!("{addr}: admin API: kicked {n} connection(s) of {name:?}");
                }
                kicked(n)
            }
        };
        if body.starts_with(r#"{"kicked":0"#) {
            return error(
                Status::NotFound,
                "not_found",
                "no such connection or user online",
                date,
            );
        }
        http::json(Status::Ok, &body, date)
    }
}

fn kicked(n: usize) -> String {
    format!(r#"{{"kicked":{n}}}"#)
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
