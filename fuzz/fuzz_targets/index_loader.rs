//! Arbitrary bytes as one segment's index file next to intact stores, then open, read, append,
//! close and reopen (see `girok_fuzz::index_loader`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| girok_fuzz::index_loader(data));
