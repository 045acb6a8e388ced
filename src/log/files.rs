//! Uploaded images kept in memory (the log without `--data-dir`): each
//! file once, shared by every reader, within `--upload-quota`; past it the
//! oldest go first. Where a file's name and bytes come from is the core's
//! (`chat/core/uploads.rs`); serving them is the server's.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

#[derive(Debug, Default)]
pub struct MemoryFiles {
    files: HashMap<String, Rc<[u8]>>,
    /// Names, oldest first (a removed one stays until it reaches the front).
    order: VecDeque<String>,
    bytes: usize,
    quota: usize,
}

impl MemoryFiles {
    pub fn new(quota: usize) -> MemoryFiles {
        MemoryFiles {
            quota,
            ..MemoryFiles::default()
        }
    }

    /// Keeps `bytes` as `name`, after removing the oldest files as long as
    /// the quota would be passed. `false`: it is larger than the quota itself.
    pub fn put(&mut self, name: String, bytes: Vec<u8>) -> bool {
        if bytes.len() > self.quota {
            return false;
        }
        while self.bytes + bytes.len() > self.quota {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.remove(&oldest);
        }
        self.bytes += bytes.len();
        self.order.push_back(name.clone());
        self.files.insert(name, bytes.into());
        true
    }

    pub fn get(&self, name: &str) -> Option<Rc<[u8]>> {
        self.files.get(name).cloned()
    }

    pub fn remove(&mut self, name: &str) {
        if let Some(gone) = self.files.remove(name) {
            self.bytes -= gone.len();
        }
        if self.order.len() > 2 * self.files.len() + 16 {
            let files = &self.files;
            self.order.retain(|n| files.contains_key(n));
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
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
