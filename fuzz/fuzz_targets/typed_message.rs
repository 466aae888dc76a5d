//! Fuzzes the typed-message decoder (`channel::Codec::decode_message`, what every typed
//! `Receiver` runs on bytes from another process): arbitrary bytes decoded as a few shapes of
//! value never panic and never allocate what a hostile length declares; an empty message and an
//! unknown tag are their own errors; and whatever decodes re-encodes in its codec to bytes
//! that decode to the same value.
#![no_main]

use std::collections::BTreeMap;

use ipcx::channel::{Codec, CodecError};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum Shape {
    Unit,
    Pair(i64, String),
    Named { id: u64, tags: Vec<String>, bytes: Vec<u8>, score: Option<f32> },
}

type Nested = BTreeMap<String, Vec<(u16, Option<Box<Shape>>)>>;

fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    match Codec::decode_message::<T>(data) {
        Ok((v, codec)) => {
            assert_eq!(data[0], codec.tag());
            let again = codec.encode_message(&v).expect("a decoded value encodes");
            let (w, c) = Codec::decode_message::<T>(&again).expect("re-encoded decodes");
            // NaN floats are not equal to themselves: compare the encodings.
            assert_eq!(c, codec);
            assert_eq!(codec.encode_message(&w).unwrap(), again);
        }
        Err(CodecError::Empty) => assert!(data.is_empty()),
        Err(CodecError::UnknownTag(t)) => assert!(Codec::from_tag(t).is_none() && data[0] == t),
        Err(_) => assert!(!data.is_empty() && Codec::from_tag(data[0]).is_some()),
    }
}

fuzz_target!(|data: &[u8]| {
    check::<u64>(data);
    check::<String>(data);
    check::<Shape>(data);
    check::<Nested>(data);
});

