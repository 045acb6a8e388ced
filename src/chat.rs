//! The chat room, without sockets or clocks: members, presence, history,
//! catch-up, rate limits and the JSON protocol.
//!
//! The server feeds it events (`connect`, `on_text`, `disconnect`) with the
//! current time, and carries out the [`Action`]s it returns: a reply to one
//! client, a message to persist and broadcast, a notice to the others, or a
//! disconnect. Every rule of the chat lives here and is unit tested without a
//! socket. Framing, buffering and when bytes move are the server's business.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::rc::Rc;

/// A connected WebSocket client, as the hub knows it. The caller picks the ids
/// (the server uses its connection slab key), so they are small and dense.
pub type ClientId = usize;

/// The rules the hub enforces; taken from the server's `Config`.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest chat text in bytes.
    pub max_text: usize,
    /// Largest WebSocket message (told to the page so it can check before sending).
    pub max_message: usize,
    /// Messages per second per client; burst is twice this. 0 = unlimited.
    pub msg_rate: u32,
    /// Messages kept for joiners.
    pub history: usize,
    /// Most bytes of history one welcome may carry. The welcome is one frame
    /// on the joiner's output queue, so it must stay well under that queue's
    /// cap (the server passes half of `--max-output`): 200 messages of 8 KiB
    /// would otherwise get every joiner dropped as a slow consumer.
    pub welcome_bytes: usize,
}

pub const MAX_USERNAME_CHARS: usize = 32;
const MAX_EMAIL_BYTES: usize = 254;

/// What the server must do after an event, in order.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Send this JSON to one client only.
    Reply(ClientId, String),
    /// A new chat message: append it to the durable log (if any), then send it
    /// to every client, the sender included.
    Publish(Rc<str>),
    /// Send this JSON to every client except one (presence notices).
    Notify { json: String, except: ClientId },
}

/// The sender must be disconnected: a WebSocket close code and reason.
pub type Kick = crate::ws::CloseReason;

/// A message held in history: its id and the exact JSON that was broadcast.
#[derive(Clone, Debug)]
pub struct Stored {
    pub id: u64,
    pub json: Rc<str>,
}

#[derive(Debug)]
struct Member {
    /// Set by a join; a tutorial-style client that never joins stays anonymous
    /// and names itself in each message.
    identity: Option<Identity>,
    bucket: TokenBucket,
}

#[derive(Clone, Debug)]
struct Identity {
    username: Rc<str>,
    avatar: Option<Rc<str>>,
}

/// Who is online: one entry per username, however many tabs it has open.
#[derive(Debug)]
struct Presence {
    avatar: Option<Rc<str>>,
    connections: u32,
}

/// The chat room.
#[derive(Debug)]
pub struct Hub {
    limits: Limits,
    /// Indexed by `ClientId`; `None` where no client has that id.
    members: Vec<Option<Member>>,
    member_count: usize,
    online: BTreeMap<Rc<str>, Presence>,
    history: VecDeque<Stored>,
    next_id: u64,
    /// Identifies this id sequence. A page holding ids from another epoch (a
    /// memory-only server that restarted) gets the whole history instead of a
    /// `since` slice that would be meaningless.
    epoch: u64,
}

/// What clients send. Unknown fields are ignored; `type` defaults to a chat
/// message so the Go tutorial's `{"email","username","message"}` works.
#[derive(Deserialize, Debug, Default)]
struct Incoming<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    username: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    email: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(default)]
    since: Option<u64>,
    #[serde(default)]
    epoch: Option<u64>,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: u64,
    time: u64,
    username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    avatar: Option<&'a str>,
    message: &'a str,
}

#[derive(Serialize)]
struct UserView<'a> {
    username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    avatar: Option<&'a str>,
}

#[derive(Serialize)]
struct PresenceNotice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    avatar: Option<&'a str>,
    time: u64,
    online: usize,
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'a str,
    message: &'a str,
}

/// An `{"type":"error"}` frame for one client.
pub fn error_json(code: &str, message: &str) -> String {
    serde_json::to_string(&ErrorFrame {
        kind: "error",
        code,
        message,
    })
    .unwrap_or_default()
}

/// Lowercase hex SHA-256 of the trimmed, lower-cased e-mail: Gravatar's hash.
pub fn gravatar_hash(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Trims and checks a username: 1-32 characters, no control characters.
fn valid_username(raw: &str) -> Result<&str, &'static str> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_USERNAME_CHARS {
        return Err("username must be 1 to 32 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("username must not contain control characters");
    }
    Ok(name)
}

fn avatar_for(email: Option<&str>) -> Result<Option<Rc<str>>, (&'static str, &'static str)> {
    match email.map(str::trim) {
        None | Some("") => Ok(None),
        Some(e)
            if e.len() > MAX_EMAIL_BYTES || !e.contains('@') || e.chars().any(char::is_control) =>
        {
            Err((
                "bad_email",
                "email must look like name@host (it is only used for the avatar)",
            ))
        }
        Some(e) => Ok(Some(gravatar_hash(e).into())),
    }
}

impl Hub {
    /// A hub continuing from `restored` history (oldest first), whose ids continue after the last.
    pub fn new(limits: Limits, epoch: u64, restored: Vec<Stored>) -> Hub {
        let mut history: VecDeque<Stored> = restored.into();
        while history.len() > limits.history {
            history.pop_front();
        }
        let next_id = history.back().map_or(1, |s| s.id + 1);
        Hub {
            limits,
            members: Vec::new(),
            member_count: 0,
            online: BTreeMap::new(),
            history,
            next_id,
            epoch,
        }
    }

    /// Continues the id sequence after `last_id` even if history holds less
    /// (the durable log remembers more ids than history keeps).
    pub fn continue_after(&mut self, last_id: u64) {
        self.next_id = self.next_id.max(last_id + 1);
    }

    /// A WebSocket client arrived under `id` (which must not be in use).
    pub fn connect(&mut self, id: ClientId, now_ms: u64) {
        if self.members.len() <= id {
            self.members.resize_with(id + 1, || None);
        }
        if self.members[id].is_none() {
            self.member_count += 1;
        }
        self.members[id] = Some(Member {
            identity: None,
            bucket: TokenBucket::new(self.limits.msg_rate, now_ms),
        });
    }

    fn member(&self, id: ClientId) -> Option<&Member> {
        self.members.get(id).and_then(Option::as_ref)
    }

    fn member_mut(&mut self, id: ClientId) -> Option<&mut Member> {
        self.members.get_mut(id).and_then(Option::as_mut)
    }

    pub fn clients(&self) -> usize {
        self.member_count
    }

    pub fn users_online(&self) -> usize {
        self.online.len()
    }

    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    pub fn last_id(&self) -> u64 {
        self.next_id - 1
    }

    /// A client's connection is gone. Announces the leave when it was the
    /// user's last connection.
    pub fn disconnect(&mut self, id: ClientId, now_ms: u64, out: &mut Vec<Action>) {
        let Some(member) = self.members.get_mut(id).and_then(Option::take) else {
            return;
        };
        self.member_count -= 1;
        let Some(identity) = member.identity else {
            return;
        };
        let gone = match self.online.get_mut(&identity.username) {
            Some(p) if p.connections > 1 => {
                p.connections -= 1;
                false
            }
            Some(_) => true,
            None => false,
        };
        if gone {
            self.online.remove(&identity.username);
            let json = self.presence_json("leave", &identity, now_ms);
            out.push(Action::Notify { json, except: id });
        }
    }

    /// One complete text message from a client. `Err` means the sender must be
    /// disconnected (it kept flooding); everything else is answered with actions.
    pub fn on_text(
        &mut self,
        id: ClientId,
        text: &[u8],
        now_ms: u64,
        out: &mut Vec<Action>,
    ) -> Result<(), Kick> {
        let Some(member) = self.member_mut(id) else {
            return Ok(());
        };
        match member.bucket.take(now_ms) {
            Verdict::Allowed => {}
            Verdict::Limited => {
                out.push(Action::Reply(
                    id,
                    error_json("rate_limited", "slow down: too many messages per second"),
                ));
                return Ok(());
            }
            Verdict::Flooding => {
                return Err(Kick::new(
                    crate::ws::close::POLICY,
                    "message rate limit exceeded",
                ))
            }
        }
        let incoming: Incoming = match serde_json::from_slice(text) {
            Ok(m) => m,
            Err(_) => {
                out.push(Action::Reply(
                    id,
                    error_json("bad_json", "expected one JSON object"),
                ));
                return Ok(());
            }
        };
        match incoming.kind.as_deref() {
            Some("join") => self.join(id, incoming, now_ms, out),
            None | Some("message") => self.message(id, incoming, now_ms, out),
            Some(_) => out.push(Action::Reply(
                id,
                error_json("bad_type", "type must be join or message"),
            )),
        }
        Ok(())
    }

    fn join(&mut self, id: ClientId, msg: Incoming, now_ms: u64, out: &mut Vec<Action>) {
        let reject = |code: &str, text: &str| Action::Reply(id, error_json(code, text));
        let Some(member) = self.member(id) else {
            return;
        };
        if member.identity.is_some() {
            return out.push(reject(
                "already_joined",
                "this connection has joined already",
            ));
        }
        let username = match valid_username(msg.username.as_deref().unwrap_or("")) {
            Ok(u) => u,
            Err(why) => return out.push(reject("bad_username", why)),
        };
        let avatar = match avatar_for(msg.email.as_deref()) {
            Ok(a) => a,
            Err((code, why)) => return out.push(reject(code, why)),
        };
        let username: Rc<str> = match self.online.get_key_value(username) {
            Some((shared, _)) => shared.clone(),
            None => username.into(),
        };
        let identity = Identity {
            username: username.clone(),
            avatar: avatar.clone(),
        };
        let first = match self.online.get_mut(&username) {
            Some(p) => {
                p.connections += 1;
                false
            }
            None => {
                self.online.insert(
                    username.clone(),
                    Presence {
                        avatar,
                        connections: 1,
                    },
                );
                true
            }
        };
        if let Some(member) = self.member_mut(id) {
            member.identity = Some(identity.clone());
        }
        let since = if msg.epoch.is_some_and(|e| e != self.epoch) {
            None
        } else {
            msg.since
        };
        out.push(Action::Reply(id, self.welcome_json(&identity, since)));
        if first {
            let json = self.presence_json("join", &identity, now_ms);
            out.push(Action::Notify { json, except: id });
        }
    }

    fn message(&mut self, id: ClientId, msg: Incoming, now_ms: u64, out: &mut Vec<Action>) {
        let reject = |code: &str, text: &str| Action::Reply(id, error_json(code, text));
        let Some(member) = self.member(id) else {
            return;
        };
        let identity = match &member.identity {
            Some(identity) => identity.clone(),
            None => {
                let username = match valid_username(msg.username.as_deref().unwrap_or("")) {
                    Ok(u) => u,
                    Err(why) => return out.push(reject("bad_username", why)),
                };
                let avatar = match avatar_for(msg.email.as_deref()) {
                    Ok(a) => a,
                    Err((code, why)) => return out.push(reject(code, why)),
                };
                Identity {
                    username: username.into(),
                    avatar,
                }
            }
        };
        let text = msg.message.as_deref().unwrap_or("");
        if text.trim().is_empty() {
            return out.push(reject("bad_message", "message must not be empty"));
        }
        if text.len() > self.limits.max_text {
            return out.push(reject(
                "message_too_long",
                "message is longer than the server's max_text",
            ));
        }
        let stored_id = self.next_id;
        self.next_id += 1;
        let json: Rc<str> = serde_json::to_string(&OutMessage {
            kind: "message",
            id: stored_id,
            time: now_ms,
            username: &identity.username,
            avatar: identity.avatar.as_deref(),
            message: text,
        })
        .unwrap_or_default()
        .into();
        self.remember(Stored {
            id: stored_id,
            json: json.clone(),
        });
        out.push(Action::Publish(json));
    }

    fn remember(&mut self, stored: Stored) {
        if self.limits.history == 0 {
            return;
        }
        if self.history.len() == self.limits.history {
            self.history.pop_front();
        }
        self.history.push_back(stored);
    }

    fn presence_json(&self, kind: &'static str, who: &Identity, now_ms: u64) -> String {
        serde_json::to_string(&PresenceNotice {
            kind,
            username: &who.username,
            avatar: who.avatar.as_deref(),
            time: now_ms,
            online: self.online.len(),
        })
        .unwrap_or_default()
    }

    /// The welcome: who you are, who is online, and the history after `since`
    /// (all of it without `since`). History entries are spliced in as the exact
    /// JSON that was broadcast, so a reconnecting page can dedupe by id.
    fn welcome_json(&self, you: &Identity, since: Option<u64>) -> String {
        let wanted = match since {
            // ids are increasing, so binary search finds the first id > since
            Some(s) => self.history.partition_point(|m| m.id <= s),
            None => 0,
        };
        // The newest messages that fit in the byte budget.
        let mut fits = self.history.len();
        let mut bytes = 0;
        while fits > wanted {
            bytes += self.history[fits - 1].json.len() + 1;
            if bytes > self.limits.welcome_bytes {
                break;
            }
            fits -= 1;
        }
        let start = wanted.max(fits);
        let oldest = self.history.get(start).map_or(self.next_id, |m| m.id);
        // Messages between `since` (or the first id) and the oldest one sent are lost to this client.
        let truncated = match since {
            Some(s) => s + 1 < oldest && s < self.last_id(),
            None => oldest > 1,
        };
        // Users, up to half the byte budget (about 110 bytes each): a very busy
        // room sends the first names alphabetically and the full count in `online`.
        let mut user_bytes = 0;
        let users: Vec<UserView> = self
            .online
            .iter()
            .map(|(name, p)| UserView {
                username: name,
                avatar: p.avatar.as_deref(),
            })
            .take_while(|u| {
                user_bytes += u.username.len() + u.avatar.map_or(0, str::len) + 32;
                user_bytes <= self.limits.welcome_bytes / 2
            })
            .collect();
        let you_json = serde_json::to_string(&UserView {
            username: &you.username,
            avatar: you.avatar.as_deref(),
        });
        let users_json = serde_json::to_string(&users);
        let mut out = String::with_capacity(
            256 + self
                .history
                .iter()
                .skip(start)
                .map(|m| m.json.len() + 1)
                .sum::<usize>(),
        );
        let _ = write!(
            out,
            "{{\"type\":\"welcome\",\"you\":{},\"users\":{},\"online\":{},\"epoch\":{},\"last_id\":{},\"truncated\":{truncated},\
             \"limits\":{{\"max_text\":{},\"max_message\":{},\"msg_rate\":{}}},\"history\":[",
            you_json.unwrap_or_default(),
            users_json.unwrap_or_default(),
            self.online.len(),
            self.epoch,
            self.last_id(),
            self.limits.max_text,
            self.limits.max_message,
            self.limits.msg_rate,
        );
        for (i, m) in self.history.iter().skip(start).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&m.json);
        }
        out.push_str("]}");
        out
    }
}

/// Token bucket in thousandths of a message: `rate` per second, burst `2 * rate`.
#[derive(Debug)]
struct TokenBucket {
    rate: u32,
    milli_tokens: u64,
    last_ms: u64,
    /// Messages refused since the last quiet second; past the burst size the
    /// client is flooding, not typing fast, and is disconnected.
    strikes: u32,
    last_refusal_ms: u64,
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Allowed,
    Limited,
    Flooding,
}

impl TokenBucket {
    fn new(rate: u32, now_ms: u64) -> Self {
        TokenBucket {
            rate,
            milli_tokens: u64::from(rate) * 2000,
            last_ms: now_ms,
            strikes: 0,
            last_refusal_ms: 0,
        }
    }

    fn take(&mut self, now_ms: u64) -> Verdict {
        if self.rate == 0 {
            return Verdict::Allowed;
        }
        let burst = u64::from(self.rate) * 2000;
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = now_ms.max(self.last_ms);
        self.milli_tokens = (self.milli_tokens + elapsed * u64::from(self.rate)).min(burst);
        if now_ms.saturating_sub(self.last_refusal_ms) >= 1000 {
            self.strikes = 0;
        }
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            return Verdict::Allowed;
        }
        self.strikes += 1;
        self.last_refusal_ms = now_ms;
        if self.strikes > self.rate * 2 {
            Verdict::Flooding
        } else {
            Verdict::Limited
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_text: 100,
            max_message: 16384,
            msg_rate: 0,
            history: 3,
            welcome_bytes: 1 << 20,
        }
    }

    fn json(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap()
    }

    fn published(out: &[Action]) -> Vec<serde_json::Value> {
        out.iter()
            .filter_map(|a| {
                if let Action::Publish(j) = a {
                    Some(json(j))
                } else {
                    None
                }
            })
            .collect()
    }

    /// The ids of the messages in a welcome's history, in order.
    fn history_ids(welcome: &serde_json::Value) -> Vec<u64> {
        welcome["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_u64().unwrap())
            .collect()
    }

    fn reply(out: &[Action], to: ClientId) -> serde_json::Value {
        out.iter()
            .find_map(|a| match a {
                Action::Reply(c, j) if *c == to => Some(json(j)),
                _ => None,
            })
            .expect("a reply")
    }

    #[test]
    fn tutorial_message_is_published_with_avatar_and_never_the_email() {
        let mut hub = Hub::new(limits(), 7, Vec::new());
        let a = 0;
        hub.connect(a, 0);
        let mut out = Vec::new();
        hub.on_text(
            a,
            br#"{"email":" Bob@Example.com ","username":"  bob ","message":"hi <b>"}"#,
            1234,
            &mut out,
        )
        .unwrap();
        let m = &published(&out)[0];
        assert_eq!(m["type"], "message");
        assert_eq!(m["id"], 1);
        assert_eq!(m["time"], 1234);
        assert_eq!(m["username"], "bob");
        assert_eq!(m["message"], "hi <b>");
        assert_eq!(m["avatar"], gravatar_hash("bob@example.com"));
        assert_eq!(m["avatar"].as_str().unwrap().len(), 64);
        let Action::Publish(raw) = &out[0] else {
            panic!()
        };
        assert!(!raw.to_lowercase().contains("example.com"));
    }

    #[test]
    fn gravatar_hash_matches_the_documented_sha256() {
        // echo -n "myemailaddress@example.com" | sha256sum
        assert_eq!(
            gravatar_hash(" MyEmailAddress@example.com "),
            "84059b07d4be67b806386c0aad8070a23f18836bbaae342275dc0a83414c32ee"
        );
    }

    #[test]
    fn bad_input_gets_an_error_to_the_sender_only() {
        let mut hub = Hub::new(limits(), 7, Vec::new());
        let a = 0;
        hub.connect(a, 0);
        for (frame, code) in [
            (&b"not json"[..], "bad_json"),
            (br#"{"username":"","message":"x"}"#, "bad_username"),
            (br#"{"username":"a\u0007","message":"x"}"#, "bad_username"),
            (
                br#"{"username":"123456789012345678901234567890123","message":"x"}"#,
                "bad_username",
            ),
            (br#"{"username":"a","message":"   "}"#, "bad_message"),
            (
                br#"{"username":"a","email":"nope","message":"x"}"#,
                "bad_email",
            ),
            (br#"{"type":"dance"}"#, "bad_type"),
        ] {
            let mut out = Vec::new();
            hub.on_text(a, frame, 0, &mut out).unwrap();
            assert_eq!(out.len(), 1, "{frame:?}");
            assert_eq!(reply(&out, a)["code"], code);
        }
        let mut out = Vec::new();
        hub.on_text(
            a,
            format!(r#"{{"username":"a","message":"{}"}}"#, "x".repeat(101)).as_bytes(),
            0,
            &mut out,
        )
        .unwrap();
        assert_eq!(reply(&out, a)["code"], "message_too_long");
        assert_eq!(hub.last_id(), 0, "nothing was published");
    }

    #[test]
    fn join_welcomes_with_history_and_users_and_announces_presence() {
        let mut hub = Hub::new(limits(), 7, Vec::new());
        let (a, b) = (0, 1);
        hub.connect(a, 0);
        hub.connect(b, 0);
        let mut out = Vec::new();
        hub.on_text(
            a,
            br#"{"type":"join","username":"ann","email":"ann@x.org"}"#,
            5,
            &mut out,
        )
        .unwrap();
        let w = reply(&out, a);
        assert_eq!(w["type"], "welcome");
        assert_eq!(w["you"]["username"], "ann");
        assert_eq!(w["users"].as_array().unwrap().len(), 1);
        assert!(!w.to_string().contains("ann@x.org"));
        assert!(matches!(&out[1], Action::Notify { except, .. } if *except == a));
        for i in 0..4 {
            hub.on_text(
                a,
                format!(r#"{{"message":"m{i}"}}"#).as_bytes(),
                6,
                &mut out,
            )
            .unwrap();
        }
        out.clear();
        hub.on_text(b, br#"{"type":"join","username":"bob"}"#, 7, &mut out)
            .unwrap();
        let w = reply(&out, b);
        let ids = history_ids(&w);
        assert_eq!(ids, [2, 3, 4], "history keeps the last 3");
        assert_eq!(w["truncated"], true);
        assert_eq!(w["users"].as_array().unwrap().len(), 2);
        let notice = out.iter().find_map(|a| {
            if let Action::Notify { json: j, .. } = a {
                Some(json(j))
            } else {
                None
            }
        });
        assert_eq!(notice.unwrap()["type"], "join");
        out.clear();
        hub.disconnect(a, 8, &mut out);
        let Action::Notify { json: j, except } = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(*except, a);
        assert_eq!(json(j)["type"], "leave");
        assert_eq!(json(j)["online"], 1);
    }

    #[test]
    fn since_returns_exactly_the_missed_messages_and_a_new_epoch_resets() {
        let mut hub = Hub::new(
            Limits {
                history: 10,
                ..limits()
            },
            7,
            Vec::new(),
        );
        let a = 0;
        hub.connect(a, 0);
        let mut out = Vec::new();
        for i in 0..5 {
            hub.on_text(
                a,
                format!(r#"{{"username":"a","message":"m{i}"}}"#).as_bytes(),
                0,
                &mut out,
            )
            .unwrap();
        }
        let b = 1;
        hub.connect(b, 0);
        out.clear();
        hub.on_text(
            b,
            br#"{"type":"join","username":"b","since":3,"epoch":7}"#,
            0,
            &mut out,
        )
        .unwrap();
        let w = reply(&out, b);
        let ids = history_ids(&w);
        assert_eq!(ids, [4, 5]);
        assert_eq!(w["truncated"], false);
        let c = 2;
        hub.connect(c, 0);
        out.clear();
        hub.on_text(
            c,
            br#"{"type":"join","username":"c","since":3,"epoch":99}"#,
            0,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            reply(&out, c)["history"].as_array().unwrap().len(),
            5,
            "other epoch: full history"
        );
    }

    #[test]
    fn a_welcome_keeps_the_newest_history_that_fits_its_byte_budget() {
        let mut hub = Hub::new(
            Limits {
                history: 10,
                welcome_bytes: 500,
                ..limits()
            },
            7,
            Vec::new(),
        );
        let a = 0;
        hub.connect(a, 0);
        let mut out = Vec::new();
        for i in 0..6 {
            let text = format!(r#"{{"username":"a","message":"{i}{}"}}"#, "x".repeat(90));
            hub.on_text(a, text.as_bytes(), 0, &mut out).unwrap();
        }
        out.clear();
        hub.on_text(a, br#"{"type":"join","username":"a"}"#, 0, &mut out)
            .unwrap();
        let w = reply(&out, a);
        let ids = history_ids(&w);
        assert_eq!(
            ids,
            [4, 5, 6],
            "three ~160-byte messages fit in 500 bytes, newest first"
        );
        assert_eq!(w["truncated"], true);
    }

    #[test]
    fn a_welcome_in_a_crowded_room_lists_what_fits_and_counts_everyone() {
        let mut hub = Hub::new(
            Limits {
                welcome_bytes: 2000,
                ..limits()
            },
            7,
            Vec::new(),
        );
        let mut out = Vec::new();
        for id in 0..100 {
            out.clear();
            hub.connect(id, 0);
            hub.on_text(
                id,
                format!(r#"{{"type":"join","username":"user{id:03}"}}"#).as_bytes(),
                0,
                &mut out,
            )
            .unwrap();
        }
        let w = reply(&out, 99);
        assert_eq!(w["online"], 100);
        let listed = w["users"].as_array().unwrap().len();
        assert!(listed > 10 && listed < 100, "{listed} users listed");
        assert_eq!(w["users"][0]["username"], "user000", "alphabetical");
    }

    #[test]
    fn presence_counts_a_user_once_across_tabs() {
        let mut hub = Hub::new(limits(), 7, Vec::new());
        let (a, b) = (0, 1);
        hub.connect(a, 0);
        hub.connect(b, 0);
        let mut out = Vec::new();
        hub.on_text(a, br#"{"type":"join","username":"ann"}"#, 0, &mut out)
            .unwrap();
        out.clear();
        hub.on_text(b, br#"{"type":"join","username":"ann"}"#, 0, &mut out)
            .unwrap();
        assert_eq!(out.len(), 1, "second tab: welcome only, no join notice");
        assert_eq!(hub.users_online(), 1);
        out.clear();
        hub.disconnect(a, 0, &mut out);
        assert!(out.is_empty(), "still online in the other tab");
        hub.disconnect(b, 0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(hub.users_online(), 0);
    }

    #[test]
    fn rate_limit_refuses_excess_then_disconnects_a_flooder() {
        let mut hub = Hub::new(
            Limits {
                msg_rate: 2,
                ..limits()
            },
            7,
            Vec::new(),
        );
        let a = 0;
        hub.connect(a, 0);
        let mut out = Vec::new();
        for _ in 0..4 {
            hub.on_text(a, br#"{"username":"a","message":"x"}"#, 0, &mut out)
                .unwrap();
        }
        assert_eq!(published(&out).len(), 4, "burst of 2x rate passes");
        out.clear();
        hub.on_text(a, br#"{"username":"a","message":"x"}"#, 0, &mut out)
            .unwrap();
        assert_eq!(reply(&out, a)["code"], "rate_limited");
        out.clear();
        hub.on_text(a, br#"{"username":"a","message":"x"}"#, 500, &mut out)
            .unwrap();
        assert_eq!(published(&out).len(), 1, "tokens refill at the rate");
        let kicked = (0..10).find_map(|_| {
            hub.on_text(a, br#"{"username":"a","message":"x"}"#, 600, &mut out)
                .err()
        });
        assert_eq!(kicked.map(|k| k.code), Some(1008));
    }

    #[test]
    fn restored_history_continues_the_id_sequence() {
        let old = vec![
            Stored {
                id: 41,
                json: r#"{"id":41}"#.into(),
            },
            Stored {
                id: 42,
                json: r#"{"id":42}"#.into(),
            },
        ];
        let mut hub = Hub::new(limits(), 7, old);
        let a = 0;
        hub.connect(a, 0);
        let mut out = Vec::new();
        hub.on_text(a, br#"{"username":"a","message":"next"}"#, 0, &mut out)
            .unwrap();
        assert_eq!(published(&out)[0]["id"], 43);
    }
}
