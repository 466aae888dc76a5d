//! Fuzzes the request/reply (RPC) frame decoder: arbitrary bytes never panic, and every frame
//! that decodes re-encodes to bytes that decode to the same frame (a hello's codec tag
//! included: a known tag names its codec, and tag 0 is the hello without one).
#![no_main]

use ipcx::channel::Codec;
use ipcx::pattern::reqrep::Frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(data) {
        let again = frame.encode();
        assert_eq!(Frame::decode(&again).as_ref(), Ok(&frame));
        if let Frame::Hello(h) = &frame {
            if let Some(c) = Codec::from_tag(h.codec) {
                assert_eq!(c.tag(), h.codec);
            }
            // The tag is one byte after the name, left out for postcard.
            let tag_len = usize::from(h.codec != 0);
            assert_eq!(again.len(), 14 + h.service.len() + tag_len);
        }
    }
    let _ = ipcx::pattern::pubsub::parse_hello(data);
    let _ = ipcx::pattern::pubsub::parse_message(data);
});
