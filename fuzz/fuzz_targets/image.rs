//! libFuzzer entry: see `bodies::image`.
#![no_main]

mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::image(data));
