//! The journal's uploaded images: files in `DIR/uploads/<segment>/<name>`,
//! written (and synced unless `--fsync never`) before the record that
//! carries them, `<segment>` being the journal segment the record goes to,
//! so that retention removing a segment removes its messages' images with
//! it. Past `--upload-quota` the oldest files go first; a deleted message's
//! file goes at once. Names are checked (`image::stored_name`) both ways:
//! nothing from a URL is a path.

use crate::config::FsyncPolicy;
use crate::image::stored_name;
use crate::{diag_info, diag_warn};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

#[derive(Debug)]
pub struct Uploads {
    dir: PathBuf,
    /// Each file's segment and size.
    files: HashMap<String, (u32, u64)>,
    /// Names, oldest first (a removed one stays until it reaches the front).
    order: VecDeque<String>,
    bytes: u64,
    quota: u64,
    /// The file served last, kept for the next reader (one image to a whole room).
    last: RefCell<Option<(String, Rc<[u8]>)>>,
}

impl Uploads {
    /// Reads what `DIR/uploads/` holds (creating it), oldest first by
    /// segment then modification time; leftovers of a crash mid-write go.
    pub fn open(dir: &Path) -> io::Result<Uploads> {
        let dir = dir.join("uploads");
        fs::create_dir_all(&dir)?;
        let mut found: Vec<(u32, std::time::SystemTime, String, u64)> = Vec::new();
        for segment in fs::read_dir(&dir)?.flatten() {
            let Some(number) = segment
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            for entry in fs::read_dir(segment.path())?.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(meta) = entry.metadata() else { continue };
                if name.ends_with(".tmp") {
                    let _ = fs::remove_file(entry.path());
                    continue;
                }
                if stored_name(&name).is_some() {
                    let time = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                    found.push((number, time, name, meta.len()));
                }
            }
        }
        found.sort();
        let mut u = Uploads {
            dir,
            files: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            quota: u64::MAX,
            last: RefCell::new(None),
        };
        for (segment, _, name, size) in found {
            u.bytes += size;
            u.files.insert(name.clone(), (segment, size));
            u.order.push_back(name);
        }
        Ok(u)
    }

    /// `--upload-quota`: the oldest files go now if they pass it.
    pub fn limit(&mut self, quota: u64) {
        self.quota = quota;
        self.evict(0);
    }

    fn evict(&mut self, room_for: u64) {
        while self.bytes + room_for > self.quota {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if self.files.contains_key(&oldest) {
                diag_info!("uploads: {oldest} removed, past --upload-quota");
                self.remove(&oldest);
            }
        }
    }

    fn path(&self, segment: u32, name: &str) -> PathBuf {
        self.dir.join(segment.to_string()).join(name)
    }

    /// Writes `bytes` as `name` with the records of `segment`, synced unless
    /// `--fsync never`; the oldest files go first to make room.
    pub fn store(
        &mut self,
        segment: u32,
        name: &str,
        bytes: &[u8],
        policy: FsyncPolicy,
    ) -> io::Result<()> {
        if stored_name(name).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not an upload name",
            ));
        }
        let size = bytes.len() as u64;
        if size > self.quota {
            return Err(io::Error::other("larger than --upload-quota"));
        }
        self.evict(size);
        let folder = self.dir.join(segment.to_string());
        fs::create_dir_all(&folder)?;
        let tmp = folder.join(format!("{name}.tmp"));
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if policy != FsyncPolicy::Never {
            file.sync_all()?;
        }
        fs::rename(&tmp, folder.join(name))?;
        if policy != FsyncPolicy::Never {
            fs::File::open(&folder)?.sync_all()?;
        }
        self.bytes += size;
        self.files.insert(name.to_string(), (segment, size));
        self.order.push_back(name.to_string());
        Ok(())
    }

    /// The bytes of `name`, read from disk (or kept from the last time).
    pub fn get(&self, name: &str) -> Option<Rc<[u8]>> {
        let &(segment, _) = self.files.get(stored_name(name)?)?;
        if let Some((kept, bytes)) = &*self.last.borrow() {
            if kept == name {
                return Some(bytes.clone());
            }
        }
        let bytes: Rc<[u8]> = fs::read(self.path(segment, name)).ok()?.into();
        *self.last.borrow_mut() = Some((name.to_string(), bytes.clone()));
        Some(bytes)
    }

    pub fn remove(&mut self, name: &str) {
        let Some((segment, size)) = self.files.remove(name) else {
            return;
        };
        self.bytes -= size;
        if let Err(e) = fs::remove_file(self.path(segment, name)) {
            diag_warn!("uploads: cannot remove {name}: {e}");
        }
        self.last.borrow_mut().take_if(|(n, _)| n == name);
        if self.order.len() > 2 * self.files.len() + 16 {
            let files = &self.files;
            self.order.retain(|n| files.contains_key(n));
        }
    }

    /// Retention removed segments up to `segment`: their messages' images go too.
    pub fn drop_segment(&mut self, segment: u32) {
        let gone: Vec<String> = self
            .files
            .iter()
            .filter(|(_, &(s, _))| s <= segment)
            .map(|(n, _)| n.clone())
            .collect();
        for name in gone {
            self.remove(&name);
        }
        if let Ok(dirs) = fs::read_dir(&self.dir) {
            for d in dirs.flatten() {
                let old = d
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| n <= segment);
                if old {
                    let _ = fs::remove_dir(d.path());
                }
            }
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "AAAAAAAAAAAAAAAAAAAAAA.png";
    const B: &str = "BBBBBBBBBBBBBBBBBBBBBB.jpg";
    const C: &str = "CCCCCCCCCCCCCCCCCCCCCC.gif";

    #[test]
    fn files_survive_a_reopen_go_oldest_first_past_the_quota_and_with_their_segment() {
        let dir = std::env::temp_dir().join(format!("picochat-uploads-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut u = Uploads::open(&dir).unwrap();
        u.store(1, A, &[1; 40], FsyncPolicy::Always).unwrap();
        u.store(2, B, &[2; 40], FsyncPolicy::Never).unwrap();
        assert_eq!(u.get(A).as_deref(), Some(&[1u8; 40][..]));
        assert!(u
            .store(2, "../../etc/passwd", &[0], FsyncPolicy::Never)
            .is_err());
        assert!(u.get("../A").is_none());
        // A crash mid-write leaves a .tmp: gone at the next open.
        fs::write(dir.join("uploads/2/junk.tmp"), b"x").unwrap();
        let mut u = Uploads::open(&dir).unwrap();
        assert!(!dir.join("uploads/2/junk.tmp").exists());
        assert_eq!((u.bytes(), u.get(B).map(|b| b.len())), (80, Some(40)));
        u.limit(100);
        u.store(3, C, &[3; 40], FsyncPolicy::Never).unwrap();
        assert!(u.get(A).is_none(), "the oldest went for the new one");
        assert!(!dir.join("uploads/1").join(A).exists());
        assert!(
            u.store(3, A, &[0; 101], FsyncPolicy::Never).is_err(),
            "never past the quota"
        );
        u.drop_segment(2);
        assert!(
            u.get(B).is_none() && u.get(C).is_some(),
            "segment 2's went with it"
        );
        assert!(!dir.join("uploads/2").exists());
        u.remove(C);
        assert_eq!(u.bytes(), 0);
        let _ = fs::remove_dir_all(&dir);
    }
}
