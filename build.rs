//! Compiles `assets/` into the binary: for every file a table entry with its
//! content type, a strong ETag (FNV-1a of the bytes) and its bytes, stored
//! gzipped (made here at build time) when that is smaller, else as they are:
//! one copy of each file. Nothing is read from disk at run time.
//!
//! From the `emojis` crate's data (a build dependency only): the server's
//! table of known emoji (`emoji_table.rs`, for reactions) and the page's
//! shortcode table (`/emoji.js`, served like the files of `assets/`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        other => panic!("assets/: no content type known for .{other}; add it to build.rs"),
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read assets/")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out);
        } else if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            out.push(path);
        }
    }
}

/// Every emoji the `emojis` crate knows (skin tones included) as it is
/// shown, one per line, in the order of their forms without U+FE0F: what
/// reactions are checked against (`chat/reactions.rs` inflates it the first
/// time a reaction comes). Stored raw-deflated: 11 KB instead of 49 KB of
/// text (a table of `&str` pairs cost 330 KB more).
fn emoji_table(out_dir: &Path) {
    let mut all: Vec<(String, &str)> = emojis::iter()
        .flat_map(|e| std::iter::once(e).chain(e.skin_tones().into_iter().flatten()))
        .map(|e| (e.as_str().replace('\u{fe0f}', ""), e.as_str()))
        .collect();
    all.sort();
    all.dedup_by(|a, b| a.0 == b.0);
    let lines: String = all.iter().map(|(_, shown)| format!("{shown}\n")).collect();
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(lines.as_bytes()).unwrap();
    std::fs::write(out_dir.join("emoji_table.deflate"), z.finish().unwrap()).unwrap();
}

/// The page's shortcode table: one `shortcode emoji` per line (every
/// shortcode of every emoji without a skin tone, in the Unicode order, so
/// the common faces come first), as `self.PICOCHAT_EMOJI`.
fn emoji_page_table() -> Vec<u8> {
    let mut lines = String::new();
    for e in emojis::iter() {
        for code in e.shortcodes() {
            let _ = writeln!(lines, "{code} {}", e.as_str());
        }
    }
    let mut js = String::from(
        "// Generated at build time from the emojis crate's data (gemoji shortcodes).\n",
    );
    let _ = writeln!(js, "self.PICOCHAT_EMOJI = {:?};", lines);
    js.into_bytes()
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("assets");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=assets");
    emoji_table(&out_dir);
    let mut files = Vec::new();
    collect(&root, &mut files);
    let emoji_js = out_dir.join("emoji.js");
    std::fs::write(&emoji_js, emoji_page_table()).unwrap();
    let mut assets: Vec<(String, PathBuf)> = files
        .iter()
        .map(|path| {
            let url = format!(
                "/{}",
                path.strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/")
            );
            (url, path.clone())
        })
        .collect();
    assets.push(("/emoji.js".into(), emoji_js));
    let mut table = String::from("&[\n");
    for (i, (url, path)) in assets.iter().enumerate() {
        // Only sources are watched: emoji.js is written above on every run, and
        // watching it would make every `cargo build` run this script and
        // rebuild the crate.
        if path.starts_with(&root) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
        let body = std::fs::read(path).expect("read asset");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&body).unwrap();
        let gz = gz.finish().unwrap();
        let stored = if gz.len() + 64 < body.len() {
            let gz_path = out_dir.join(format!("asset{i}.gz"));
            std::fs::write(&gz_path, &gz).unwrap();
            format!(
                "Body::Gzip {{ gz: include_bytes!({:?}), len: {} }}",
                gz_path.display().to_string(),
                body.len()
            )
        } else {
            format!(
                "Body::Plain(include_bytes!({:?}))",
                path.display().to_string()
            )
        };
        let _ = writeln!(
            table,
            "    Asset {{ path: {url:?}, content_type: {:?}, etag: \"{:016x}\", body: {stored} }},",
            content_type(path),
            fnv1a64(&body),
        );
    }
    table.push(']');
    std::fs::write(out_dir.join("assets_table.rs"), table).unwrap();
}
