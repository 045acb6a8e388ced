//! libFuzzer entry: see `bodies::ws_chat`.
#![no_main]

mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::ws_chat(data));
