//! The tokio side of the transports whose fd is pollable (feature `tokio`): a connected
//! stream split into its halves ([`super::Transport::connect_async`]).

use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::channel::Error;
use crate::socket::UnixAddr;

/// The reading half of a tokio connection.
pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a tokio connection.
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;
/// A connect in progress ([`super::Transport::connect_async`]).
pub type Connecting<'a> =
    Pin<Box<dyn Future<Output = Result<(BoxRead, BoxWrite), Error>> + Send + 'a>>;

/// Connects a tokio Unix stream and splits it.
pub(super) async fn connect_unix(a: &UnixAddr) -> Result<(BoxRead, BoxWrite), Error> {
    let (r, w) = crate::socket::tokio::connect_unix(a).await?.into_split();
    Ok((Box::new(r), Box::new(w)))
}

/// Connects a tokio TCP stream (`TCP_NODELAY` set) and splits it.
pub(super) async fn connect_tcp(a: (&str, u16)) -> Result<(BoxRead, BoxWrite), Error> {
    let (r, w) = crate::socket::tokio::connect_tcp(a).await?.into_split();
    Ok((Box::new(r), Box::new(w)))
}
