//! Replays every saved fuzz input (crashes the fuzzer once found, and
//! hand-made tricky cases) through the same code as the cargo-fuzz targets,
//! under plain `cargo test`. A new crash from `tests/fuzz-smoke.sh` lands in
//! `tests/fuzz-regressions/<target>/` and is checked here from then on.

#[path = "../fuzz/fuzz_targets/bodies.rs"]
mod bodies;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        eprintln!("replaying {}", path.display());
        run(&data);
        n += 1;
    }
    n
}

#[test]
fn saved_http_inputs_replay_without_panics() {
    assert!(replay("http_request", bodies::http_request) >= 2);
}

#[test]
fn saved_frame_and_chat_inputs_replay_without_panics() {
    assert!(replay("ws_chat", bodies::ws_chat) >= 4);
}

#[test]
fn saved_resp_replies_replay_without_panics() {
    assert!(replay("resp", bodies::resp) >= 4);
}

#[test]
fn saved_images_replay_without_panics() {
    assert!(replay("image", bodies::image) >= 4);
}

#[test]
fn saved_config_files_replay_without_panics() {
    assert!(replay("config", bodies::config) >= 4);
}
