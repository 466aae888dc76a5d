//! The describe request: every typed server ([`super::Service`], [`super::AsyncService`])
//! answers the reserved method [`DESCRIBE`] (`ipcx.describe`) with its name, version and
//! methods ([`Description`]), in the caller's codec. A caller that knows only an address (a
//! server on another host, or one that is not listed by [`crate::discovery`]) learns from it
//! what it may call; `ipcx call --list` prints it.
//!
//! Method names starting with [`RESERVED_PREFIX`] (`ipcx.`) belong to the protocol: a service
//! cannot register one.
//!
//! On the wire (the repository's `docs/PROTOCOL.md`, section "Describing a service"), the
//! request's argument is ignored (send nil, or nothing) and the result is a map in
//! MessagePack, `{"name": str, "version": int, "methods": [{"name": str, "codecs": [str]}]}`
//! with the methods sorted by name (in postcard: the same fields, in that order).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::codec::{decode, encode_into};
use super::error::RpcError;
use crate::channel::Codec;
use crate::discovery::MethodInfo;
use crate::wait::Wait;

/// The reserved method every typed server answers with its [`Description`].
pub const DESCRIBE: &str = "ipcx.describe";

/// Method names starting with this belong to the protocol ([`DESCRIBE`] and those to come).
pub const RESERVED_PREFIX: &str = "ipcx.";

/// The codecs every method of a typed server accepts today.
pub(super) const CODECS: &[&str] = &["postcard", "msgpack"];

/// What a server says about itself when asked with [`DESCRIBE`]
/// ([`super::RpcClient::describe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Description {
    /// The service's name (what a client names in its hello).
    pub name: String,
    /// The service's version.
    pub version: u32,
    /// Its methods, sorted by name, each with the codecs it accepts (the reserved ones are
    /// not listed).
    pub methods: Vec<MethodInfo>,
}

/// The description as it travels.
#[derive(Serialize, Deserialize)]
struct Wire {
    name: String,
    version: u32,
    methods: Vec<WireMethod>,
}

#[derive(Serialize, Deserialize)]
struct WireMethod {
    name: String,
    codecs: Vec<String>,
}

/// A server's answer to [`DESCRIBE`], encoded once in each codec when it starts serving.
pub(super) struct Described {
    postcard: Vec<u8>,
    msgpack: Vec<u8>,
}

impl Described {
    /// The answer of the service `name` version `version` with these methods.
    pub(super) fn new<'a>(
        name: &str,
        version: u32,
        methods: impl Iterator<Item = &'a String>,
    ) -> Described {
        let mut methods: Vec<WireMethod> = methods
            .map(|m| WireMethod {
                name: m.clone(),
                codecs: CODECS.iter().map(|c| (*c).to_owned()).collect(),
            })
            .collect();
        methods.sort_by(|a, b| a.name.cmp(&b.name));
        let w = Wire {
            name: name.to_owned(),
            version,
            methods,
        };
        // Strings, integers and sequences always encode.
        let enc = |c| encode_into(c, &w, Vec::new()).unwrap_or_default();
        Described {
            postcard: enc(Codec::Postcard),
            msgpack: enc(Codec::MsgPack),
        }
    }

    /// The encoded answer for a caller of `codec`.
    pub(super) fn reply(&self, codec: Codec) -> &[u8] {
        match codec {
            Codec::MsgPack => &self.msgpack,
            _ => &self.postcard,
        }
    }
}

/// Decodes a server's answer to [`DESCRIBE`].
pub(super) fn decode_description(codec: Codec, bytes: &[u8]) -> Result<Description, String> {
    let w: Wire = decode(codec, bytes)?;
    Ok(Description {
        name: w.name,
        version: w.version,
        methods: w
            .methods
            .into_iter()
            .map(|m| MethodInfo {
                name: m.name,
                codecs: m.codecs,
            })
            .collect(),
    })
}

/// Refuses a method name reserved for the protocol.
///
/// # Panics
/// When `name` starts with [`RESERVED_PREFIX`].
pub(super) fn check_method_name(name: &str) {
    assert!(
        !name.starts_with(RESERVED_PREFIX),
        "method name {name:?} is reserved: names starting with {RESERVED_PREFIX:?} belong to \
         the ipcx protocol ({DESCRIBE:?} describes every service); choose another name"
    );
}

impl super::RpcClient {
    /// Asks the server what it serves ([`DESCRIBE`]): its name, version and methods, waiting
    /// at most `timeout`. A server older than the describe request answers
    /// [`RpcError::UnknownMethod`](super::RpcError::UnknownMethod).
    pub fn describe(&self, timeout: Duration) -> Result<Description, RpcError> {
        let codec = self.codec();
        let bytes = self.call_encoded(DESCRIBE, &nil(codec), Wait::timeout(timeout))?;
        decode_description(codec, &bytes)
            .map_err(|e| RpcError::decode(DESCRIBE, "result", false, e))
    }
}

#[cfg(feature = "tokio")]
impl super::AsyncRpcClient {
    /// Asks the server what it serves, as [`RpcClient::describe`](super::RpcClient::describe)
    /// does.
    pub async fn describe(&self, timeout: Duration) -> Result<Description, RpcError> {
        let codec = self.codec();
        let bytes = self.call_encoded(DESCRIBE, &nil(codec), timeout).await?;
        decode_description(codec, &bytes)
            .map_err(|e| RpcError::decode(DESCRIBE, "result", false, e))
    }
}

/// The argument of [`DESCRIBE`] in `codec`: nil in MessagePack, nothing in postcard (`()`).
fn nil(codec: Codec) -> Vec<u8> {
    match codec {
        Codec::MsgPack => vec![0xc0],
        _ => Vec::new(),
    }
}
