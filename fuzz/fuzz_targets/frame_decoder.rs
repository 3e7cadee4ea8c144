//! `decode_frame` and `FrameHeader::decode` on arbitrary bytes, and the `encode_frame` round trip
//! (see `girok_fuzz::frame_decoder`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| girok_fuzz::frame_decoder(data));
