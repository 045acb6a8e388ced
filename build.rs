//! Compiles `assets/` into the binary: for every file a table entry with its
//! content type, a strong ETag (FNV-1a of the bytes) and its bytes, stored
//! gzipped (made here at build time) when that is smaller, else as they are:
//! one copy of each file. Nothing is read from disk at run time.

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

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("assets");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=assets");
    let mut files = Vec::new();
    collect(&root, &mut files);
    let mut table = String::from("&[\n");
    for (i, path) in files.iter().enumerate() {
        println!("cargo:rerun-if-changed={}", path.display());
        let body = std::fs::read(path).expect("read asset");
        let url = format!(
            "/{}",
            path.strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        );
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
