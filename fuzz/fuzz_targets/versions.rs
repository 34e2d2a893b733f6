#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smf_fuzz::versions(data));
