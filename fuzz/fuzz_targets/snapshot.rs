#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| shoji_tests::fuzz::snapshot(data));
