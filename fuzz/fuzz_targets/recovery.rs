//! A few-segment data directory damaged by fuzzer-chosen operations, then verify, open, read,
//! append, close and reopen (see `girok_fuzz::recovery`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| girok_fuzz::recovery(data));
