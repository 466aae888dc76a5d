//! Progress while a run goes on: the [`Progress`] the runner reports to, [`NoProgress`], and
//! a progress bar on stderr (hidden when stderr is not a terminal).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Reports progress while the run goes on.
pub trait Progress {
    /// The run has `total` steps.
    fn begin(&mut self, total: u64);
    /// One step starts (`unix 4 KiB ping-pong`).
    fn step(&mut self, label: &str);
    /// The run ended.
    fn finish(&mut self);
}

/// No progress display.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&mut self, _total: u64) {}
    fn step(&mut self, _label: &str) {}
    fn finish(&mut self) {}
}

/// An indicatif progress bar on stderr.
#[derive(Debug)]
pub struct TermProgress {
    bar: ProgressBar,
    started: bool,
}

impl TermProgress {
    /// A bar on stderr, hidden when stderr is not a terminal.
    pub fn stderr() -> TermProgress {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        TermProgress {
            bar,
            started: false,
        }
    }

    /// Whether the bar is drawn.
    pub fn is_hidden(&self) -> bool {
        self.bar.is_hidden()
    }
}

impl Progress for TermProgress {
    fn begin(&mut self, total: u64) {
        self.bar.set_length(total);
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn step(&mut self, label: &str) {
        // The previous step is complete when the next one starts.
        if self.started {
            self.bar.inc(1);
        }
        self.started = true;
        self.bar.set_message(label.to_owned());
    }

    fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}
