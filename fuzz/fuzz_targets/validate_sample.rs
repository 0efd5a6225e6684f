#![no_main]
//! libFuzzer target: see `shequ_fuzz::targets::validate_sample`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shequ_fuzz::targets::validate_sample(data);
});
