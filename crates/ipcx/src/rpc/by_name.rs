//! RPC services and discovery: a served service lists itself ([`Pending`]), a client finds a
//! service by its name ([`RpcClient::connect_by_name`]).

use std::time::{Duration, Instant};

#[cfg(feature = "tokio")]
use super::async_client::AsyncRpcClient;
use super::client::RpcClient;
use super::describe::CODECS;
use super::error::RpcError;
use crate::channel::Codec;
use crate::channel::Endpoint;
use crate::discovery::{self, Filter, Kind, MethodInfo, Registration, ServiceInfo};
use crate::pattern;

/// A service's listing before it is bound: its name, version and methods; [`Pending::at`]
/// lists it at the address it was bound to.
pub(super) struct Pending {
    name: String,
    version: u32,
    methods: Vec<MethodInfo>,
}

impl Pending {
    /// The listing of the service `name` version `version` with these methods.
    pub(super) fn rpc<'a>(
        name: &str,
        version: u32,
        methods: impl Iterator<Item = &'a String>,
    ) -> Pending {
        Pending {
            name: name.to_owned(),
            version,
            methods: methods.map(|m| MethodInfo::new(m, CODECS)).collect(),
        }
    }

    /// Lists the service at `addr` for as long as the returned guard lives.
    pub(super) fn at(self, addr: &Endpoint) -> Registration {
        Registration::new(
            Kind::Rpc,
            &self.name,
            &addr.to_string(),
            self.version,
            self.methods,
        )
    }
}

/// The live RPC services called `name`, most recently started first, each with the time left
/// for connecting to it (none is tried after `timeout` has passed).
fn candidates(
    name: &str,
    timeout: Duration,
) -> Result<impl Iterator<Item = (ServiceInfo, Duration)>, RpcError> {
    let mut found = discovery::discover(&Filter::new().name(name).kind(Kind::Rpc));
    if found.is_empty() {
        return Err(RpcError::Transport(pattern::Error::NotFound {
            what: format!("RPC service {name:?}"),
            hint: "no live service of that name is listed for this user: start it, or see \
                   `ipcx ls --services`"
                .into(),
        }));
    }
    found.sort_by_key(|s| std::cmp::Reverse(s.start_time));
    let deadline = Instant::now() + timeout;
    Ok(found.into_iter().enumerate().map_while(move |(i, s)| {
        let left = deadline.saturating_duration_since(Instant::now());
        (i == 0 || !left.is_zero()).then_some((s, left))
    }))
}

/// The error of a connect by name that found services but reached none of them.
fn unreached(last: Option<RpcError>) -> RpcError {
    last.unwrap_or(RpcError::Timeout {
        method: "(connect)".into(),
    })
}

impl RpcClient {
    /// Connects to the live RPC service called `name`, found by [`discovery`]: its endpoint
    /// and version come from its listing. When several processes serve that name, the most
    /// recently started one that accepts the connection is used. `timeout` bounds the whole
    /// attempt. No such service is [`RpcError::Transport`] with
    /// [`pattern::Error::NotFound`].
    pub fn connect_by_name(name: &str, timeout: Duration) -> Result<RpcClient, RpcError> {
        Self::connect_by_name_with(name, timeout, Codec::Postcard)
    }

    /// Connects to the live RPC service called `name` as [`RpcClient::connect_by_name`]
    /// does, calling in `codec`.
    pub fn connect_by_name_with(
        name: &str,
        timeout: Duration,
        codec: Codec,
    ) -> Result<RpcClient, RpcError> {
        let mut last = None;
        for (s, left) in candidates(name, timeout)? {
            match RpcClient::connect_with(&s.endpoint, &s.name, s.version, left, codec) {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(unreached(last))
    }
}

#[cfg(feature = "tokio")]
impl AsyncRpcClient {
    /// Connects to the live RPC service called `name`, found by [`discovery`], as
    /// [`RpcClient::connect_by_name`] does.
    pub async fn connect_by_name(
        name: &str,
        timeout: Duration,
    ) -> Result<AsyncRpcClient, RpcError> {
        Self::connect_by_name_with(name, timeout, Codec::Postcard).await
    }

    /// Connects to the live RPC service called `name` as [`RpcClient::connect_by_name`]
    /// does, calling in `codec`.
    pub async fn connect_by_name_with(
        name: &str,
        timeout: Duration,
        codec: Codec,
    ) -> Result<AsyncRpcClient, RpcError> {
        let mut last = None;
        for (s, left) in candidates(name, timeout)? {
            let r =
                AsyncRpcClient::connect_with(&s.endpoint, &s.name, s.version, left, codec).await;
            last = Some(match r {
                Ok(c) => return Ok(c),
                Err(e) => e,
            });
        }
        Err(unreached(last))
    }
}
