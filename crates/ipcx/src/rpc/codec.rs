//! How arguments and results travel: serde values in the codec the caller named in its hello
//! (postcard or MessagePack, see [`Codec`], which encodes and decodes them), and what a
//! handler's outcome becomes ([`Outcome`]).

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::channel::Codec;

/// What a handler produced: the encoded result, an application error, or arguments that did
/// not decode.
pub(crate) enum Outcome {
    Ok(Vec<u8>),
    App(String),
    BadArgs(String),
}

/// Decodes `bytes` in `codec`.
pub(super) fn decode<T: DeserializeOwned>(codec: Codec, bytes: &[u8]) -> Result<T, String> {
    codec.decode(bytes).map_err(|e| e.to_string())
}

/// Appends `v` encoded in `codec` to `out`.
pub(super) fn encode_into<T: Serialize + ?Sized>(
    codec: Codec,
    v: &T,
    out: Vec<u8>,
) -> Result<Vec<u8>, String> {
    codec.encode_into(v, out).map_err(|e| e.to_string())
}

/// Decodes a call's arguments; `Err` is the outcome of arguments that do not decode.
pub(super) fn decode_args<A: DeserializeOwned>(codec: Codec, bytes: &[u8]) -> Result<A, Outcome> {
    decode(codec, bytes).map_err(Outcome::BadArgs)
}

/// The outcome of a handler that returned `r`, its result encoded in `codec`.
pub(super) fn outcome<R: Serialize, E: fmt::Display>(codec: Codec, r: Result<R, E>) -> Outcome {
    match r {
        Ok(r) => match encode_into(codec, &r, Vec::new()) {
            Ok(b) => Outcome::Ok(b),
            Err(e) => encode_failed(e),
        },
        Err(e) => Outcome::App(e.to_string()),
    }
}

/// The outcome of a result the server could not encode.
pub(super) fn encode_failed(e: String) -> Outcome {
    Outcome::App(format!("the server could not encode the result: {e}"))
}

/// A call's encoded arguments: on the stack when they are small.
pub(super) struct Args {
    small: [u8; 256],
    len: usize,
    heap: Option<Vec<u8>>,
}

impl Args {
    /// Encodes the arguments `args` in `codec` (`Err`: the encoder's message).
    pub(super) fn encode<A: Serialize>(codec: Codec, args: &A) -> Result<Args, String> {
        let mut a = Args {
            small: [0u8; 256],
            len: 0,
            heap: None,
        };
        if codec == Codec::MsgPack {
            let mut rest = &mut a.small[..];
            match rmp_serde::encode::write_named(&mut rest, args) {
                Ok(()) => a.len = 256 - rest.len(),
                // Too large for the stack (or not encodable: then the heap says why).
                Err(_) => a.heap = Some(encode_into(codec, args, Vec::new())?),
            }
            return Ok(a);
        }
        match postcard::to_slice(args, &mut a.small) {
            Ok(b) => a.len = b.len(),
            Err(postcard::Error::SerializeBufferFull) => {
                a.heap = Some(postcard::to_allocvec(args).map_err(|e| e.to_string())?);
            }
            Err(e) => return Err(e.to_string()),
        }
        Ok(a)
    }

    /// The encoded bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        match &self.heap {
            Some(v) => v,
            None => &self.small[..self.len],
        }
    }
}
