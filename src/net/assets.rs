//! The chat page's files, compiled into the binary by `build.rs` from `assets/`.
//!
//! Each entry has its content type, a strong ETag and, where it pays, a gzip
//! copy made at build time. Lookup is by URL path only; nothing here can touch
//! the filesystem at run time, so no request path can reach a file on disk.
//! HTTP semantics (conditional requests, encoding choice) live in `http.rs`.

/// One compiled-in file.
#[derive(Debug)]
pub struct Asset {
    /// URL path, e.g. `/app.js`. `/` serves `/index.html`.
    pub path: &'static str,
    pub content_type: &'static str,
    /// Hex FNV-1a-64 of the body; the gzip variant's ETag appends `-gz`.
    pub etag: &'static str,
    pub body: &'static [u8],
    pub gzip: Option<&'static [u8]>,
}

static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets_table.rs"));

/// The asset served at `path`, if any.
pub fn lookup(path: &str) -> Option<&'static Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

pub fn all() -> &'static [Asset] {
    ASSETS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_files_are_compiled_in() {
        let index = lookup("/").expect("index.html");
        assert!(index.content_type.starts_with("text/html"));
        assert!(index.gzip.is_some_and(|g| g.len() < index.body.len()));
        assert!(lookup("/app.js").is_some() && lookup("/style.css").is_some());
        assert!(lookup("/../Cargo.toml").is_none() && lookup("/nope").is_none());
    }
}
