#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rendition::rendition::fuzz::svg(data));
