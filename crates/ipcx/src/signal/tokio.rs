//! [`AsyncSignalReceiver`]: a signalfd registered with tokio's reactor.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::receiver::read_info;
use super::{Signal, SignalError, SignalInfo, SignalReceiver};
use crate::sys::signal as sys;

/// A [`SignalReceiver`] for tokio: waits on the signalfd without blocking a thread.
#[derive(Debug)]
pub struct AsyncSignalReceiver {
    inner: tokio::io::unix::AsyncFd<OwnedFd>,
}

impl AsyncSignalReceiver {
    /// Blocks `signals` in the calling thread and opens a signalfd for them (see the module
    /// docs: with a multi-threaded runtime, block the signals in `main` before building the
    /// runtime, with [`block`](super::block)). Must be called within a tokio runtime.
    pub fn new(signals: &[Signal]) -> Result<AsyncSignalReceiver, SignalError> {
        AsyncSignalReceiver::from_receiver(SignalReceiver::new(signals)?)
    }

    /// Wraps a receiver. Must be called within a tokio runtime.
    pub fn from_receiver(rx: SignalReceiver) -> Result<AsyncSignalReceiver, SignalError> {
        let inner =
            sys::register_async(rx.fd).map_err(|e| SignalError::io("AsyncFd(signalfd)", e))?;
        Ok(AsyncSignalReceiver { inner })
    }

    /// Waits for the next signal.
    pub async fn recv(&self) -> Result<SignalInfo, SignalError> {
        loop {
            let mut guard = self
                .inner
                .readable()
                .await
                .map_err(|e| SignalError::io("poll(signalfd)", e))?;
            match read_info(guard.get_inner()) {
                Err(SignalError::WouldBlock) => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// Unwraps the blocking receiver (deregistering the fd from the reactor).
    pub fn into_inner(self) -> SignalReceiver {
        SignalReceiver {
            fd: self.inner.into_inner(),
        }
    }
}

impl AsFd for AsyncSignalReceiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.get_ref().as_fd()
    }
}

impl AsRawFd for AsyncSignalReceiver {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.get_ref().as_raw_fd()
    }
}
