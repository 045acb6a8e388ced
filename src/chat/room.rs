//! One room: its history (the newest committed records, bounded), who is in
//! it (the connections that receive its frames) and who is online in it (one
//! entry per username, however many tabs). No rules about who may join or
//! send live here (`core.rs`), and no ids are made here: they come from the log.

use super::incoming::Join;
use super::protocol::{self, RecordKind, RoomName, UserView};
use super::reactions::Reactions;
use super::record::{RemotePresence, Stored};
use super::session::{ClientId, Identity};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

/// Bytes one stored message is charged against `--history-bytes`: its JSON
/// plus the `Stored` entry and the `Rc` header around it.
pub fn charge(json: &str) -> usize {
    json.len() + std::mem::size_of::<Stored>() + 16
}

/// Who is online: one entry per username, however many tabs it has open,
/// here or (with a shared log) on other processes.
#[derive(Debug)]
pub struct Presence {
    pub avatar: Option<Rc<str>>,
    pub verified: bool,
    /// This process's connections of the user in the room.
    pub connections: u32,
    /// Other processes the user is online on in this room (a shared log), by node id.
    pub nodes: Vec<Rc<str>>,
}

/// What one connection arriving or departing changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// The user's first connection here came, or its last one here went.
    pub here: bool,
    /// The user came online, or went offline, in the room as a whole.
    pub anywhere: bool,
}

#[derive(Debug)]
pub struct Room {
    pub name: RoomName,
    pub history: VecDeque<Stored>,
    /// What `history` is charged, see [`charge`].
    pub history_bytes: usize,
    /// The newest id committed in this room (or, for a room with none yet,
    /// `base`): the log's sequence, as far as this process has seen it.
    pub last_id: u64,
    /// Ids up to this were never in this room in this epoch: a room (re)made
    /// while other rooms had used ids starts above them, so a page holding an
    /// old `since` for a forgotten room can never mistake new ids for old ones.
    pub base: u64,
    /// Names this room's id sequence: a page holding ids of another epoch
    /// gets the whole history, not a `since` slice of a different sequence.
    pub epoch: u64,
    /// Whether history and ids are known. Always, for a local log; with a
    /// shared log, once it has loaded the room (joins wait in `waiting`).
    pub ready: bool,
    pub waiting: Vec<WaitingJoin>,
    /// Connections that receive this room's frames (anonymous ones included).
    /// Kept in join order; removal is a scan of this room's members only.
    pub members: Vec<ClientId>,
    pub online: BTreeMap<Rc<str>, Presence>,
    /// Wall-clock ms of the last message or join: which idle room goes first.
    pub last_activity: u64,
    /// Wall-clock ms of the newest message in history.
    pub last_message_time: Option<u64>,
    /// Slow mode: when each user last posted here (only while it is on).
    pub last_post: HashMap<Rc<str>, u64>,
    /// When each connection's last typing notice here was forwarded (only
    /// those of the last few seconds).
    pub typing: Vec<(ClientId, u64)>,
}

/// A join that waits for its room to be loaded, kept as it came.
#[derive(Debug)]
pub struct WaitingJoin {
    pub client: ClientId,
    /// The join as it was asked (answered once the room is loaded).
    pub join: Join<'static>,
}

impl Room {
    pub fn new(name: RoomName, base: u64, epoch: u64, ready: bool, now_ms: u64) -> Room {
        Room {
            name,
            history: VecDeque::new(),
            history_bytes: 0,
            last_id: base,
            base,
            epoch,
            ready,
            waiting: Vec::new(),
            members: Vec::new(),
            online: BTreeMap::new(),
            last_activity: now_ms,
            last_message_time: None,
            last_post: HashMap::new(),
            typing: Vec::new(),
        }
    }

    /// Whether `client`'s typing notice may be forwarded now: `every_ms`
    /// after its last one here, and fewer than `per_room` connections'
    /// forwarded within `every_ms`. If so, now is its last.
    pub fn typing_allows(
        &mut self,
        client: ClientId,
        now: u64,
        every_ms: u64,
        per_room: usize,
    ) -> bool {
        self.typing
            .retain(|&(_, t)| now.saturating_sub(t) < every_ms);
        if self.typing.len() >= per_room || self.typing.iter().any(|&(c, _)| c == client) {
            return false;
        }
        self.typing.push((client, now));
        true
    }

    /// Slow mode: whether `username` may post now, `wait_ms` after its last
    /// message here; if so, now is its last. Users long quiet are forgotten.
    pub fn slow_mode_allows(&mut self, username: &Rc<str>, now: u64, wait_ms: u64) -> bool {
        if let Some(&last) = self.last_post.get(username) {
            if now.saturating_sub(last) < wait_ms {
                return false;
            }
        }
        if self.last_post.len() >= 64 && self.last_post.len() >= 2 * self.online.len() {
            self.last_post
                .retain(|_, &mut t| now.saturating_sub(t) < wait_ms);
        }
        self.last_post.insert(username.clone(), now);
        true
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Drops all history; returns the bytes freed.
    pub fn clear_history(&mut self) -> usize {
        let freed = self.history_bytes;
        self.history.clear();
        self.history_bytes = 0;
        freed
    }

    pub fn add_member(&mut self, client: ClientId) {
        if !self.members.contains(&client) {
            self.members.push(client);
        }
    }

    pub fn remove_member(&mut self, client: ClientId) {
        if let Some(i) = self.members.iter().position(|&c| c == client) {
            self.members.remove(i);
        }
    }

    /// Counts one more connection of `who`.
    pub fn arrive(&mut self, who: &Identity) -> Change {
        match self.online.get_mut(&who.username) {
            Some(p) => {
                p.connections += 1;
                Change {
                    here: p.connections == 1,
                    anywhere: false,
                }
            }
            None => {
                self.online.insert(
                    who.username.clone(),
                    Presence {
                        avatar: who.avatar.clone(),
                        verified: who.verified,
                        connections: 1,
                        nodes: Vec::new(),
                    },
                );
                Change {
                    here: true,
                    anywhere: true,
                }
            }
        }
    }

    /// Counts one connection of `who` fewer.
    pub fn depart(&mut self, who: &Identity) -> Change {
        let Some(p) = self.online.get_mut(&who.username) else {
            return Change::default();
        };
        if p.connections == 0 {
            return Change::default();
        }
        p.connections -= 1;
        let here = p.connections == 0;
        let anywhere = here && p.nodes.is_empty();
        if anywhere {
            self.online.remove(&who.username);
        }
        Change { here, anywhere }
    }

    /// Another process has `username` online here now (or no more); true
    /// when that brought the user online (or offline) in the room as a whole.
    pub fn remote(&mut self, p: &RemotePresence, on: bool) -> bool {
        let (node, username) = (&*p.node, &*p.username);
        match (self.online.get_mut(username), on) {
            (Some(p), true) => {
                if !p.nodes.iter().any(|n| &**n == node) {
                    p.nodes.push(node.into());
                }
                false
            }
            (None, true) => {
                self.online.insert(
                    username.into(),
                    Presence {
                        avatar: p.avatar.as_deref().map(Into::into),
                        verified: p.verified,
                        connections: 0,
                        nodes: vec![node.into()],
                    },
                );
                true
            }
            (Some(p), false) => {
                p.nodes.retain(|n| &**n != node);
                let gone = p.connections == 0 && p.nodes.is_empty();
                if gone {
                    self.online.remove(username);
                }
                gone
            }
            (None, false) => false,
        }
    }

    /// Forgets every other process's presence (before a snapshot replaces it).
    pub fn clear_remote(&mut self) {
        self.online.retain(|_, p| {
            p.nodes.clear();
            p.connections > 0
        });
    }

    /// The message with this id in history, if it is one (not an edit or a delete).
    pub fn message(&self, id: u64) -> Option<&Stored> {
        self.message_index(id).map(|i| &self.history[i])
    }

    fn message_index(&self, id: u64) -> Option<usize> {
        let i = self.history.binary_search_by_key(&id, |s| s.id).ok()?;
        (protocol::record_kind(&self.history[i].json) == RecordKind::Message).then_some(i)
    }

    /// A record the log committed: an edit or a delete is applied to the
    /// message it names (when still in history) and kept too, so a catch-up
    /// replays it. Returns the bytes added to and freed from history.
    pub fn remember(&mut self, stored: Stored, keep: usize, time: Option<u64>) -> (usize, usize) {
        self.last_id = self.last_id.max(stored.id);
        if let Some(t) = time {
            self.last_message_time = Some(t);
            self.last_activity = self.last_activity.max(t);
        }
        if keep == 0 {
            return (0, 0);
        }
        let (mut added, mut freed) = (0, 0);
        match protocol::record_kind(&stored.json) {
            RecordKind::Message => {}
            RecordKind::Edit { target, message } => {
                if let Some(i) = self.message_index(target) {
                    if let Some(json) = protocol::edited(&self.history[i].json, &message) {
                        freed += charge(&self.history[i].json);
                        added += charge(&json);
                        self.history[i].json = json.into();
                    }
                }
            }
            RecordKind::Delete { target } => {
                if let Some(gone) = self
                    .message_index(target)
                    .and_then(|i| self.history.remove(i))
                {
                    freed += charge(&gone.json);
                }
            }
            RecordKind::React {
                target,
                emoji,
                username,
                on,
            } => {
                if let Some(i) = self.message_index(target) {
                    let mut reactions = Reactions::of(&self.history[i].json);
                    if reactions.set(&emoji, &username, on) {
                        if let Some(json) =
                            protocol::with_reactions(&self.history[i].json, &reactions)
                        {
                            freed += charge(&self.history[i].json);
                            added += charge(&json);
                            self.history[i].json = json.into();
                        }
                    }
                }
            }
        }
        added += charge(&stored.json);
        self.history.push_back(stored);
        self.history_bytes = self.history_bytes + added - freed;
        (added, freed)
    }

    /// Drops the oldest message. Returns the bytes freed.
    pub fn forget_oldest(&mut self) -> usize {
        match self.history.pop_front() {
            Some(s) => {
                let freed = charge(&s.json);
                self.history_bytes -= freed;
                freed
            }
            None => 0,
        }
    }

    /// Users listed in a welcome: alphabetical, as many as fit in `budget`
    /// bytes (about 110 each); the full count travels as `online`.
    pub fn users(&self, budget: usize) -> Vec<UserView<'_>> {
        let mut used = 0;
        self.online
            .iter()
            .map(|(name, p)| UserView {
                username: name,
                avatar: p.avatar.as_deref(),
                verified: p.verified,
            })
            .take_while(|u| {
                used += u.username.len() + u.avatar.map_or(0, str::len) + 32;
                used <= budget
            })
            .collect()
    }

    /// The slice of history a welcome carries. Without `since`: the newest
    /// `count` messages (edits applied, edit and delete records left out).
    /// With it: the records after `since`, in order, at most `count`. Either
    /// way no more than `budget` bytes (the newest first), and whether
    /// messages the client should have had are missing from it.
    pub fn catch_up(
        &self,
        since: Option<u64>,
        count: usize,
        budget: usize,
    ) -> (impl Iterator<Item = &str> + Clone, bool) {
        let wanted = match since {
            // ids are increasing, so binary search finds the first id > since
            Some(s) => self.history.partition_point(|m| m.id <= s),
            None => 0,
        };
        let mut start = self.history.len();
        let (mut bytes, mut taken) = (0, 0);
        while start > wanted && taken < count {
            let m = &self.history[start - 1];
            let shown = since.is_some() || protocol::is_message(&m.json);
            if shown {
                bytes += m.json.len() + 1;
                if bytes > budget {
                    break;
                }
                taken += 1;
            }
            start -= 1;
        }
        let oldest = self.history.get(start).map_or(self.last_id + 1, |m| m.id);
        // What the client has (or, for a newcomer, what never existed here).
        let from = since.unwrap_or(0).max(self.base);
        let truncated = from < self.last_id && oldest > from + 1;
        let all = since.is_some();
        let shown = self
            .history
            .range(start..)
            .filter(move |m| all || protocol::is_message(&m.json))
            .map(|m| &*m.json);
        (shown, truncated)
    }
}
