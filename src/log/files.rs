//! Uploaded images a local log keeps, within `--upload-quota`, oldest
//! first: the memory log holds their bytes here (each file once, shared by
//! every reader); the journal (`journal/uploads.rs`) notes where each is on
//! disk and removes the file itself. One shelf for both, so the quota's
//! rules are written once. Where a file's name and bytes come from is the
//! core's (`chat/core/uploads.rs`); serving them is the server's.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// One kept file.
#[derive(Clone, Debug, Default)]
pub struct Shelved {
    pub size: u64,
    /// The journal segment its message went to (the journal's).
    pub segment: u32,
    /// Its bytes (the memory log's).
    pub bytes: Option<Rc<[u8]>>,
}

#[derive(Debug, Default)]
pub struct Shelf {
    files: HashMap<String, Shelved>,
    /// Names, oldest first (a removed one stays until it reaches the front).
    order: VecDeque<String>,
    bytes: u64,
    quota: u64,
}

impl Shelf {
    pub fn new(quota: u64) -> Shelf {
        Shelf {
            quota,
            ..Shelf::default()
        }
    }

    /// Sets the quota; the oldest files past it are removed and returned.
    pub fn limit(&mut self, quota: u64) -> Vec<(String, Shelved)> {
        self.quota = quota;
        self.make_room(0).unwrap_or_default()
    }

    /// Removes the oldest files as long as `size` more would pass the
    /// quota, returning them; `None` (nothing removed) when `size` is
    /// larger than the quota itself.
    pub fn make_room(&mut self, size: u64) -> Option<Vec<(String, Shelved)>> {
        if size > self.quota {
            return None;
        }
        let mut gone = Vec::new();
        while self.bytes + size > self.quota {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(f) = self.remove(&oldest) {
                gone.push((oldest, f));
            }
        }
        Some(gone)
    }

    /// Keeps `name` (room made for it first, see [`make_room`](Self::make_room)).
    pub fn add(&mut self, name: String, file: Shelved) {
        self.bytes += file.size;
        self.order.push_back(name.clone());
        self.files.insert(name, file);
    }

    pub fn get(&self, name: &str) -> Option<&Shelved> {
        self.files.get(name)
    }

    pub fn remove(&mut self, name: &str) -> Option<Shelved> {
        let gone = self.files.remove(name)?;
        self.bytes -= gone.size;
        if self.order.len() > 2 * self.files.len() + 16 {
            let files = &self.files;
            self.order.retain(|n| files.contains_key(n));
        }
        Some(gone)
    }

    /// The names of the files `gone` picks.
    pub fn names_where(&self, gone: impl Fn(&Shelved) -> bool) -> Vec<String> {
        self.files
            .iter()
            .filter(|(_, f)| gone(f))
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// The memory log's images: their bytes on the shelf.
#[derive(Debug, Default)]
pub struct MemoryFiles(Shelf);

impl MemoryFiles {
    pub fn new(quota: usize) -> MemoryFiles {
        MemoryFiles(Shelf::new(quota as u64))
    }

    /// Keeps `bytes` as `name`, after removing the oldest files as long as
    /// the quota would be passed. `false`: it is larger than the quota itself.
    pub fn put(&mut self, name: String, bytes: Vec<u8>) -> bool {
        let size = bytes.len() as u64;
        if self.0.make_room(size).is_none() {
            return false;
        }
        let file = Shelved {
            size,
            bytes: Some(bytes.into()),
            ..Shelved::default()
        };
        self.0.add(name, file);
        true
    }

    pub fn get(&self, name: &str) -> Option<Rc<[u8]>> {
        self.0.get(name)?.bytes.clone()
    }

    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }

    pub fn bytes(&self) -> usize {
        self.0.bytes() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_go_first_past_the_quota_and_a_removed_one_frees_its_bytes() {
        let mut f = MemoryFiles::new(100);
        assert!(f.put("a".into(), vec![1; 40]));
        assert!(f.put("b".into(), vec![2; 40]));
        assert!(f.put("c".into(), vec![3; 40]), "a goes");
        assert!(f.get("a").is_none() && f.get("b").is_some());
        assert_eq!(f.bytes(), 80);
        f.remove("b");
        assert_eq!(f.bytes(), 40);
        assert!(f.put("d".into(), vec![4; 60]), "fits once b is gone");
        assert_eq!((f.get("c").map(|b| b.len()), f.bytes()), (Some(40), 100));
        assert!(!f.put("huge".into(), vec![0; 101]), "never past the quota");
        assert_eq!(f.bytes(), 100, "nothing removed for it");
    }
}
