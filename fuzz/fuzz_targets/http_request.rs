//! libFuzzer entry: see `bodies::http_request`.
#![no_main]

mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::http_request(data));
