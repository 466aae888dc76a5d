//! How arguments and results travel: postcard-encoded serde values, and what a handler's
//! outcome becomes ([`Outcome`]).

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::RpcError;

/// What a handler produced: the encoded result, an application error, or arguments that did
/// not decode.
pub(crate) enum Outcome {
    Ok(Vec<u8>),
    App(String),
    BadArgs(String),
}

/// Decodes a call's arguments; `Err` is the outcome of arguments that do not decode.
pub(super) fn decode_args<A: DeserializeOwned>(bytes: &[u8]) -> Result<A, Outcome> {
    postcard::from_bytes(bytes).map_err(|e| Outcome::BadArgs(e.to_string()))
}

/// The outcome of a handler that returned `r`, its result encoded.
pub(super) fn outcome<R: Serialize, E: fmt::Display>(r: Result<R, E>) -> Outcome {
    match r {
        Ok(r) => match postcard::to_allocvec(&r) {
            Ok(b) => Outcome::Ok(b),
            Err(e) => encode_failed(e),
        },
        Err(e) => Outcome::App(e.to_string()),
    }
}

/// The outcome of a result the server could not encode.
pub(super) fn encode_failed(e: postcard::Error) -> Outcome {
    Outcome::App(format!("the server could not encode the result: {e}"))
}

/// A call's encoded arguments: on the stack when they are small.
pub(super) struct Args {
    small: [u8; 256],
    len: usize,
    heap: Option<Vec<u8>>,
}

impl Args {
    /// Encodes the arguments `args` of `method`.
    pub(super) fn encode<A: Serialize>(method: &str, args: &A) -> Result<Args, RpcError> {
        let err = |e: postcard::Error| RpcError::decode(method, "arguments", false, e.to_string());
        let mut a = Args {
            small: [0u8; 256],
            len: 0,
            heap: None,
        };
        match postcard::to_slice(args, &mut a.small) {
            Ok(b) => a.len = b.len(),
            Err(postcard::Error::SerializeBufferFull) => {
                a.heap = Some(postcard::to_allocvec(args).map_err(err)?);
            }
            Err(e) => return Err(err(e)),
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
