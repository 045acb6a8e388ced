//! The small files beside the segments: `settings.json` (moderation
//! settings, rewritten whole and renamed into place) and `epoch` (fixed
//! when the directory is first used).

use crate::config::FsyncPolicy;
use crate::diag_warn;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

const EPOCH: &str = "epoch";
const HIGH_WATER: &str = "high-water";
const SETTINGS: &str = "settings.json";

/// The moderation settings file, or none yet.
pub fn load_settings(dir: &Path) -> io::Result<std::collections::BTreeMap<String, String>> {
    match fs::read(dir.join(SETTINGS)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", dir.join(SETTINGS).display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(e),
    }
}

/// Replaces the settings file: a temporary file written and (unless
/// `--fsync never`) synced, renamed over the old one, the directory synced.
pub fn write_settings(
    dir: &Path,
    settings: &std::collections::BTreeMap<String, String>,
    policy: FsyncPolicy,
) -> io::Result<()> {
    let tmp = dir.join(format!("{SETTINGS}.tmp"));
    let bytes = serde_json::to_vec_pretty(settings).map_err(io::Error::other)?;
    let mut file = File::create(&tmp)?;
    file.write_all(&bytes)?;
    if policy != FsyncPolicy::Never {
        file.sync_all()?;
    }
    fs::rename(&tmp, dir.join(SETTINGS))?;
    if policy != FsyncPolicy::Never {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

pub fn load_or_create_epoch(dir: &Path, wall_ms: u64) -> io::Result<u64> {
    let path = dir.join(EPOCH);
    if let Ok(text) = fs::read_to_string(&path) {
        if let Ok(epoch) = text.trim().parse() {
            return Ok(epoch);
        }
        diag_warn!("{}: unreadable, starting a new epoch", path.display());
    }
    let tmp = dir.join("epoch.tmp");
    fs::write(&tmp, format!("{wall_ms}\n"))?;
    File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, &path)?;
    Ok(wall_ms)
}

/// The highest id used before retention removed segments (0: none removed yet).
pub fn load_high_water(dir: &Path) -> io::Result<u64> {
    match fs::read_to_string(dir.join(HIGH_WATER)) {
        Ok(text) => Ok(text.trim().parse().unwrap_or_else(|_| {
            diag_warn!("{}: unreadable, ignored", dir.join(HIGH_WATER).display());
            0
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Keeps the highest id used, before segments holding it may be removed: a
/// temporary file synced and renamed over it.
pub fn store_high_water(dir: &Path, high_water: u64) -> io::Result<()> {
    if load_high_water(dir)? >= high_water {
        return Ok(());
    }
    let tmp = dir.join(format!("{HIGH_WATER}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(format!("{high_water}\n").as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(HIGH_WATER))?;
    File::open(dir)?.sync_all()
}
