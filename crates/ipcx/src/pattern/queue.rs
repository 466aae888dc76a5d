//! A bounded in-process queue that a [`WaitSet`](crate::wait_set::WaitSet) can watch: what
//! the patterns' reading threads hand to their owner (a subscriber's deliveries, a server's
//! requests).
//!
//! An `mpsc` channel has no descriptor. Once a wait set asks ([`QueueReceiver::readiness`]),
//! the queue gets an eventfd that every send writes; the receiver, after each receive, drains
//! the eventfd and then takes the next item out ahead of time (`peeked`, delivered first), so
//! that the wait set knows whether one is left ([`Pending`]). An item sent after the drain
//! writes the eventfd again: no wake-up is lost; one sent between the drain and the look-ahead
//! costs at most one wake-up with nothing to receive. Until a wait set asks, a send costs
//! nothing more than the channel's.

use std::cell::RefCell;
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, OnceLock};

use super::{Error, recv_mpsc};
use crate::sync::EventFd;
use crate::wait::Wait;
use crate::wait_set::{Pending, Readiness, WaitSetError};

/// What a wait set watches of a queue (shared by its two sides).
#[derive(Debug, Default)]
pub(crate) struct Wake {
    efd: OnceLock<EventFd>,
    pending: Pending,
}

impl Wake {
    /// How a wait set watches the queue, once [`QueueReceiver::prepare`] has run.
    pub(crate) fn readiness(&self) -> Result<Readiness<'_>, WaitSetError> {
        let e = self.efd.get().ok_or_else(|| {
            WaitSetError::not_pollable("a queue", "prepare it for a wait set first")
        })?;
        Ok(Readiness::fd(std::os::fd::AsFd::as_fd(e)).with_pending(self.pending.clone()))
    }
}

/// The sending side (clone it for each reading thread).
#[derive(Debug)]
pub(crate) struct QueueSender<T> {
    tx: SyncSender<T>,
    wake: Arc<Wake>,
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        QueueSender {
            tx: self.tx.clone(),
            wake: self.wake.clone(),
        }
    }
}

impl<T> QueueSender<T> {
    /// Sends, blocking while the queue is full; fails when the receiver is gone.
    pub(crate) fn send(&self, item: T) -> Result<(), mpsc::SendError<T>> {
        self.tx.send(item)?;
        if let Some(e) = self.wake.efd.get() {
            // A full counter is already "readable": nothing is lost.
            let _ = e.try_write(1);
        }
        Ok(())
    }
}

/// The receiving side.
#[derive(Debug)]
pub(crate) struct QueueReceiver<T> {
    rx: mpsc::Receiver<T>,
    wake: Arc<Wake>,
    /// The item taken out ahead (a cell: [`readiness`](Self::readiness) takes `&self`).
    peeked: RefCell<Option<T>>,
}

/// A queue of at most `bound` items.
pub(crate) fn queue<T>(bound: usize) -> (QueueSender<T>, QueueReceiver<T>) {
    let (tx, rx) = mpsc::sync_channel(bound);
    let wake = Arc::new(Wake::default());
    (
        QueueSender {
            tx,
            wake: wake.clone(),
        },
        QueueReceiver {
            rx,
            wake,
            peeked: RefCell::new(None),
        },
    )
}

impl<T> QueueReceiver<T> {
    /// Receives, waiting as `wait` allows ([`Error::Closed`] naming `what` once every sender
    /// is gone).
    pub(crate) fn recv_wait(&mut self, wait: Wait, what: &str) -> Result<T, Error> {
        let r = match self.peeked.get_mut().take() {
            Some(item) => Ok(item),
            None => recv_mpsc(&self.rx, wait, what),
        };
        self.look_ahead();
        r
    }

    /// Once a wait set watches: drains the eventfd, then takes the next item out ahead.
    fn look_ahead(&mut self) {
        let Some(e) = self.wake.efd.get() else {
            return;
        };
        let _ = e.try_read();
        let peeked = self.peeked.get_mut();
        if peeked.is_none() {
            *peeked = self.rx.try_recv().ok();
        }
        self.wake.pending.set(peeked.is_some());
    }

    /// How a wait set watches the queue: ready while an item waits.
    pub(crate) fn readiness(&self) -> Result<Readiness<'_>, WaitSetError> {
        self.prepare()?;
        self.wake.readiness()
    }

    /// What a wait set watches, for an owner that keeps the receiver behind a lock.
    pub(crate) fn wake(&self) -> Arc<Wake> {
        self.wake.clone()
    }

    /// Gives the queue its eventfd, once: from then on every send writes it.
    pub(crate) fn prepare(&self) -> Result<(), WaitSetError> {
        if self.wake.efd.get().is_none() {
            let e = EventFd::new(0).map_err(|e| WaitSetError::Io {
                context: "creating an eventfd for a wait set",
                source: std::io::Error::other(e),
            })?;
            let _ = self.wake.efd.set(e);
            // Items queued before the eventfd existed were not counted: look ahead now.
            let mut peeked = self.peeked.borrow_mut();
            if peeked.is_none() {
                *peeked = self.rx.try_recv().ok();
            }
            self.wake.pending.set(peeked.is_some());
        }
        Ok(())
    }
}
