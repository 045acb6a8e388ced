//! The chat page's files, compiled into the binary by `build.rs` from `assets/`.
//!
//! Each entry has its content type, a strong ETag and one copy of its bytes:
//! gzipped at build time where that pays (every browser takes it as it is;
//! a client without gzip gets it inflated on request), else as they are.
//! Lookup is by URL path only; nothing here can touch the filesystem at run
//! time, so no request path can reach a file on disk. HTTP semantics
//! (conditional requests, encoding choice) live in `http.rs`.

use std::borrow::Cow;

/// One compiled-in file.
#[derive(Debug)]
pub struct Asset {
    /// URL path, e.g. `/app.js`. `/` serves `/index.html`.
    pub path: &'static str,
    pub content_type: &'static str,
    /// Hex FNV-1a-64 of the body; the gzip variant's ETag appends `-gz`.
    pub etag: &'static str,
    pub body: Body,
}

/// An asset's bytes as compiled in.
#[derive(Debug)]
pub enum Body {
    /// Stored as it is (gzip would not make it smaller).
    Plain(&'static [u8]),
    /// Stored gzipped; `len` is the plain size.
    Gzip { gz: &'static [u8], len: usize },
}

impl Asset {
    /// The gzip copy, where the asset is stored gzipped.
    pub fn gzip(&self) -> Option<&'static [u8]> {
        match self.body {
            Body::Gzip { gz, .. } => Some(gz),
            Body::Plain(_) => None,
        }
    }

    /// The plain bytes (inflated here for a gzipped asset).
    pub fn plain(&self) -> Cow<'static, [u8]> {
        match self.body {
            Body::Plain(bytes) => Cow::Borrowed(bytes),
            Body::Gzip { gz, len } => {
                // build.rs's gzip: a 10-byte header (no name, no extras), raw
                // deflate, an 8-byte trailer. Inflated with the deflate code
                // permessage-deflate links anyway (no gzip reader needed).
                let raw = gz.get(10..gz.len().saturating_sub(8)).unwrap_or_default();
                let mut out = Vec::with_capacity(len);
                let _ = flate2::Decompress::new(false).decompress_vec(
                    raw,
                    &mut out,
                    flate2::FlushDecompress::Finish,
                );
                Cow::Owned(out)
            }
        }
    }
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
        let plain = index.plain();
        assert!(index.gzip().is_some_and(|g| g.len() < plain.len()));
        let source = include_bytes!("../../assets/index.html");
        assert_eq!(&plain[..], &source[..], "inflates back to the file");
        let favicon = lookup("/favicon.svg").expect("favicon");
        assert!(favicon.gzip().is_none(), "too small to pay");
        assert_eq!(
            &favicon.plain()[..],
            include_bytes!("../../assets/favicon.svg")
        );
        assert!(lookup("/app.js").is_some() && lookup("/style.css").is_some());
        // The shortcode table made at build time from the emojis crate's data.
        let emoji = lookup("/emoji.js").expect("emoji.js");
        assert!(emoji.content_type.starts_with("text/javascript"));
        let table = String::from_utf8(emoji.plain().into_owned()).unwrap();
        assert!(table.contains("\\nthumbsup 👍\\n"), "{}", &table[..200]);
        assert!(
            emoji.gzip().is_some_and(|g| g.len() < 20_000),
            "gzipped, small"
        );
        assert!(lookup("/../Cargo.toml").is_none() && lookup("/nope").is_none());
    }
}
