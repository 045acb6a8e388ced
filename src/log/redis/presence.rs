//! Presence across processes (`presence.lua`): this process's users sent
//! on and off, refreshed before their entries expire; and the rooms
//! directory (`rooms.lua`) read for `GET /api/rooms`.

use super::*;

impl RedisLog {
    /// Runs `presence.lua` in `mode` for `room` with `args` (pairs or names).
    pub(super) fn send_presence(&mut self, room: &str, mode: &str, args: &[&str], now_wall: u64) {
        if !self.cmd.is_up() || self.pending.len() >= self.cfg.max_pending {
            // Down, or stalled with a backlog: the refresh after it puts this
            // node's entries back, and entries not refreshed expire.
            return;
        }
        let hash = self.key("presence", room);
        let expiry = self.key("presence-expiry", room);
        let index = format!("{}rooms", self.cfg.prefix);
        let channel = self.key("room", room);
        let now = now_wall.to_string();
        let ttl = self.cfg.presence_ttl_ms.to_string();
        let mut cmd: Vec<&str> = vec![
            "EVALSHA",
            &self.presence_sha,
            "3",
            &hash,
            &expiry,
            &index,
            mode,
            &channel,
            &now,
            &ttl,
            &self.node,
            room,
        ];
        cmd.extend_from_slice(args);
        self.cmd.send(&cmd);
        self.expect(Pending::Presence);
    }

    /// Every refresh interval: this node's entries get a new expiry (and
    /// come back if Redis lost them), and expired entries of any node go.
    pub(super) fn refresh_presence(&mut self) {
        let wall = crate::clock::unix_millis();
        let local: Vec<(RoomName, Vec<String>)> = self
            .local
            .iter()
            .filter(|(_, users)| !users.is_empty())
            .map(|(room, users)| {
                let pairs = users
                    .iter()
                    .flat_map(|(u, a)| [u.clone(), a.clone()])
                    .collect();
                (room.clone(), pairs)
            })
            .collect();
        for (room, pairs) in local {
            let args: Vec<&str> = pairs.iter().map(String::as_str).collect();
            self.send_presence(&room, "on", &args, wall);
        }
        let watched: Vec<RoomName> = self.rooms.keys().cloned().collect();
        for room in watched {
            self.send_presence(&room, "sweep", &[], wall);
        }
    }

    /// Reads the rooms directory, unless a read of it still waits (a stalled Redis).
    pub(super) fn read_directory(&mut self) {
        if self.pending.iter().any(|p| matches!(p, Pending::Directory)) {
            return;
        }
        let index = format!("{}rooms", self.cfg.prefix);
        self.cmd.send(&[
            "EVALSHA",
            &self.rooms_sha,
            "1",
            &index,
            &DIRECTORY_ROOMS.to_string(),
            &self.cfg.prefix,
        ]);
        self.expect(Pending::Directory);
    }
}
