//! The journal's uploaded images: files `DIR/uploads/<segment>.<name>`,
//! written (and synced unless `--fsync never`) before the record that
//! carries them, `<segment>` being the journal segment the record goes to,
//! so that retention removing a segment removes its messages' images with
//! it. Past `--upload-quota` the oldest files go first; a deleted message's
//! file goes at once. Names are checked (`image::stored_name`) both ways:
//! nothing from a URL is a path. A file is read whole when asked for, and
//! its bytes are shared by every reply that sends them: the last one read is
//! kept for the next reader, and any other is found again while a reply
//! still holds it, so a room fetching several new images at once holds one
//! buffer per image, never one per reader.

use crate::config::FsyncPolicy;
use crate::image::stored_name;
use crate::log::files::{Shelf, Shelved};
use crate::{diag_info, diag_warn};
use std::cell::RefCell;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};

/// The folder under the journal's directory.
pub const DIR: &str = "uploads";

#[derive(Debug)]
pub struct Uploads {
    dir: PathBuf,
    /// Each file's segment and size, oldest first.
    shelf: Shelf,
    /// The file served last, kept for the next reader (one image to a whole room).
    last: RefCell<Option<(String, Rc<[u8]>)>>,
    /// Files read before it that replies on their way still hold: a few at
    /// a time, a list. A `Weak` keeps its buffer allocated, so the entries
    /// of files sent go at every commit ([`forget_sent`](Self::forget_sent)).
    sending: RefCell<Vec<(String, Weak<[u8]>)>>,
}

impl Uploads {
    /// Reads what `DIR/uploads/` holds (the journal made the folder),
    /// oldest first by segment then modification time; leftovers of a
    /// crash mid-write go.
    pub fn open(dir: &Path) -> io::Result<Uploads> {
        let dir = dir.join(DIR);
        let mut found: Vec<(u32, std::time::SystemTime, String, u64)> = Vec::new();
        for entry in fs::read_dir(&dir)?.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = entry.metadata() else { continue };
            if file.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let Some((segment, name)) = file.split_once('.') else {
                continue;
            };
            if let (Ok(segment), Some(name)) = (segment.parse::<u32>(), stored_name(name)) {
                let time = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                found.push((segment, time, name.to_string(), meta.len()));
            }
        }
        found.sort_unstable_by_key(|f| (f.0, f.1));
        let mut u = Uploads {
            dir,
            shelf: Shelf::new(u64::MAX),
            last: RefCell::new(None),
            sending: RefCell::new(Vec::new()),
        };
        for (segment, _, name, size) in found {
            let file = Shelved {
                size,
                segment,
                bytes: None,
            };
            u.shelf.add(name, file);
        }
        Ok(u)
    }

    /// `--upload-quota`: the oldest files go now if they pass it.
    pub fn limit(&mut self, quota: u64) {
        let gone = self.shelf.limit(quota);
        self.unlink(gone);
    }

    /// Removes from the disk files the shelf let go.
    fn unlink(&mut self, gone: Vec<(String, Shelved)>) {
        for (name, file) in gone {
            diag_info!("uploads: {name} removed, past --upload-quota");
            self.delete(&name, &file);
        }
    }

    fn delete(&self, name: &str, file: &Shelved) {
        if let Err(e) = fs::remove_file(self.path(file.segment, name)) {
            diag_warn!("uploads: cannot remove {name}: {e}");
        }
        self.last.borrow_mut().take_if(|(n, _)| n == name);
    }

    fn path(&self, segment: u32, name: &str) -> PathBuf {
        self.dir.join(format!("{segment}.{name}"))
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
        let Some(gone) = self.shelf.make_room(size) else {
            return Err(io::Error::other("larger than --upload-quota"));
        };
        self.unlink(gone);
        let path = self.path(segment, name);
        let tmp = path.with_extension("tmp");
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if policy != FsyncPolicy::Never {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if policy != FsyncPolicy::Never {
            fs::File::open(&self.dir)?.sync_all()?;
        }
        let file = Shelved {
            size,
            segment,
            bytes: None,
        };
        self.shelf.add(name.to_string(), file);
        Ok(())
    }

    /// The bytes of `name`, read from disk (or kept from the last time).
    pub fn get(&self, name: &str) -> Option<Rc<[u8]>> {
        let segment = self.shelf.get(stored_name(name)?)?.segment;
        if let Some((kept, bytes)) = &*self.last.borrow() {
            if kept == name {
                return Some(bytes.clone());
            }
        }
        self.forget_sent();
        let mut sending = self.sending.borrow_mut();
        let in_flight = sending.iter().find(|(n, _)| n == name);
        let bytes = match in_flight.and_then(|(_, held)| held.upgrade()) {
            Some(bytes) => bytes,
            None => {
                let bytes: Rc<[u8]> = fs::read(self.path(segment, name)).ok()?.into();
                sending.push((name.to_string(), Rc::downgrade(&bytes)));
                bytes
            }
        };
        *self.last.borrow_mut() = Some((name.to_string(), bytes.clone()));
        Some(bytes)
    }

    /// Lets go of the files no reply holds any more (their memory with them).
    pub fn forget_sent(&self) {
        self.sending
            .borrow_mut()
            .retain(|(_, held)| held.strong_count() > 0);
    }

    pub fn remove(&mut self, name: &str) {
        if let Some(file) = self.shelf.remove(name) {
            self.delete(name, &file);
        }
    }

    /// Retention removed segments up to `segment`: their messages' images go too.
    pub fn drop_segment(&mut self, segment: u32) {
        for name in self.shelf.names_where(|f| f.segment <= segment) {
            self.remove(&name);
        }
    }

    pub fn bytes(&self) -> u64 {
        self.shelf.bytes()
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
        fs::create_dir_all(dir.join(DIR)).unwrap();
        let mut u = Uploads::open(&dir).unwrap();
        u.store(1, A, &[1; 40], FsyncPolicy::Always).unwrap();
        u.store(2, B, &[2; 40], FsyncPolicy::Never).unwrap();
        assert_eq!(u.get(A).as_deref(), Some(&[1u8; 40][..]));
        assert!(u
            .store(2, "../../etc/passwd", &[0], FsyncPolicy::Never)
            .is_err());
        assert!(u.get("../A").is_none());
        // A crash mid-write leaves a .tmp: gone at the next open.
        fs::write(dir.join("uploads/2.junk.tmp"), b"x").unwrap();
        let mut u = Uploads::open(&dir).unwrap();
        assert!(!dir.join("uploads/2.junk.tmp").exists());
        assert_eq!((u.bytes(), u.get(B).map(|b| b.len())), (80, Some(40)));
        u.limit(100);
        u.store(3, C, &[3; 40], FsyncPolicy::Never).unwrap();
        assert!(u.get(A).is_none(), "the oldest went for the new one");
        assert!(!dir.join("uploads").join(format!("1.{A}")).exists());
        assert!(
            u.store(3, A, &[0; 101], FsyncPolicy::Never).is_err(),
            "never past the quota"
        );
        u.drop_segment(2);
        assert!(
            u.get(B).is_none() && u.get(C).is_some(),
            "segment 2's went with it"
        );
        assert!(!dir.join("uploads").join(format!("2.{B}")).exists());
        u.remove(C);
        assert_eq!(u.bytes(), 0);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn readers_of_several_files_at_once_share_one_buffer_per_file() {
        let dir = std::env::temp_dir().join(format!("picochat-sharing-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join(DIR)).unwrap();
        let mut u = Uploads::open(&dir).unwrap();
        u.store(1, A, &[1; 40], FsyncPolicy::Never).unwrap();
        u.store(1, B, &[2; 40], FsyncPolicy::Never).unwrap();
        // Replies to readers asking for A and B in turn, all still sending.
        let replies: Vec<Rc<[u8]>> = (0..6)
            .filter_map(|i| u.get(if i % 2 == 0 { A } else { B }))
            .collect();
        assert_eq!(replies.len(), 6);
        for (i, r) in replies.iter().enumerate() {
            assert!(Rc::ptr_eq(r, &replies[i % 2]), "reply {i}: a second copy");
        }
        // A deleted file is not served from a reply still holding it.
        let b = replies[1].clone();
        drop(replies);
        u.remove(B);
        assert!(u.get(B).is_none());
        // Once sent, nothing is held for them but the last one read.
        drop(b);
        u.forget_sent();
        assert!(u.sending.borrow().is_empty());
        let _ = fs::remove_dir_all(&dir);
    }
}
