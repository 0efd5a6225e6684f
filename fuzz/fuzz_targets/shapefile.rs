#![no_main]
//! libFuzzer target: see `shequ_fuzz::targets::shapefile`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shequ_fuzz::targets::shapefile(data);
});
