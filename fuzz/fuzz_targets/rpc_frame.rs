//! Fuzzes the request/reply (RPC) frame decoder: arbitrary bytes never panic, and every frame
//! that decodes re-encodes to bytes that decode to the same frame.
#![no_main]

use ipcx::pattern::reqrep::Frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(data) {
        let again = frame.encode();
        assert_eq!(Frame::decode(&again).as_ref(), Ok(&frame));
    }
    let _ = ipcx::pattern::pubsub::parse_hello(data);
    let _ = ipcx::pattern::pubsub::parse_message(data);
});
