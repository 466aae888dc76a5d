//! The publisher's hot window, turned on for request/reply traffic and off for streams.

use ipcx_ring::Writer;

thread_local! {
    /// Whether this thread waited for a message on a ring since its last ring send.
    static RECEIVE_WAITED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Notes that this thread waits for a message (see [`HotGate`]).
#[inline]
pub(crate) fn waiting_for_a_message() {
    RECEIVE_WAITED.set(true);
}

/// Turns the writer's hot window on for sends that follow a wait for a message on the same
/// thread, and off for the others. A request/reply peer sends after waiting for the reply
/// (or the request); a streaming publisher sends again at once. Both find their subscriber
/// at the head when the writer looks, so the writer alone cannot tell them apart; a stream
/// whose thread waits for its input is paced by that input.
#[derive(Debug)]
pub(super) struct HotGate {
    /// The window asked for (0: off for good).
    pub(super) window: u64,
    /// Whether the writer's window is on now.
    on: bool,
}

impl HotGate {
    pub(super) fn new(writer: &Writer<'_>) -> HotGate {
        HotGate {
            window: writer.hot_window(),
            on: true,
        }
    }

    /// After a send: the window for the next one.
    #[inline(always)]
    pub(super) fn sent(&mut self, writer: &mut Writer<'_>) {
        if self.window != 0 {
            let waited = RECEIVE_WAITED.replace(false);
            if waited != self.on {
                self.switch(writer, waited);
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn switch(&mut self, writer: &mut Writer<'_>, on: bool) {
        self.on = on;
        writer.set_hot_window(if on { self.window } else { 0 });
    }
}
