#![no_main]
//! libFuzzer target: see `shequ_fuzz::targets::geoparquet`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shequ_fuzz::targets::geoparquet(data);
});
