//! The fuzz targets of shequ, shared by the libFuzzer binaries in `fuzz_targets/` and the
//! stable mutation harness of the test suite (`tests/all/fuzz.rs`).

pub mod targets;
