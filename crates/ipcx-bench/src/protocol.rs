//! The control protocol between the parent and the peer: one JSON object per line over a Unix
//! stream socket in the run's private directory. It is separate from the mechanism being
//! measured, and its end (EOF) tells the peer that the parent is gone.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

use crate::checksum::Digest;

/// Parent to peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Command {
    /// Create the receiving half of `mechanism` from `spec`. Reply: `Opened` or `Failed`.
    Open {
        /// The row name.
        mechanism: String,
        /// What the parent's `prepare` returned.
        spec: String,
        /// Bytes per message.
        payload: usize,
    },
    /// Open the sending half. Reply: `Connected` or `Failed`.
    Connect {
        /// How long to wait for the parent's half, in milliseconds.
        timeout_ms: u64,
    },
    /// Echo every message until the end marker. Reply: `Done` or `Failed`.
    Echo,
    /// Read and checksum every message until the end marker, returning a credit every
    /// `credit_every` messages when not zero. Reply: `Done` or `Failed`.
    Sink {
        /// Messages between two credits (0: no flow control).
        credit_every: u64,
    },
    /// Stop the current echo or sink. (Not forwarded as a command: it sets a flag.)
    Abort,
    /// Drop the link. Reply: `Closed`.
    Close,
    /// Exit.
    Exit,
}

/// Peer to parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case")]
pub enum Reply {
    /// Sent once at start.
    Hello {
        /// The peer's pid.
        pid: i32,
        /// The CPU the peer pinned itself to.
        cpu: Option<usize>,
    },
    /// The receiving half exists.
    Opened,
    /// The sending half is open.
    Connected,
    /// An echo or sink ended at the end marker.
    Done {
        /// What the peer read, checksummed.
        digest: Digest,
    },
    /// The current echo or sink stopped on `Abort`.
    Aborted,
    /// The link was dropped.
    Closed,
    /// The last command failed.
    Failed {
        /// Why.
        reason: String,
        /// Whether the row should count as skipped (size limit, not available).
        skip: bool,
    },
}

/// Writes one message as a JSON line.
pub fn send_line<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// What a reader thread delivers: a parsed message, or the end of the stream.
#[derive(Debug)]
pub enum Incoming<T> {
    /// One message.
    Msg(T),
    /// The other side closed the stream (or it broke, or sent garbage).
    Closed(String),
}

/// Starts a thread that reads JSON lines from `stream` and delivers them in order; `on_msg`
/// runs on the reader thread first and may swallow a message by returning `false`.
pub fn spawn_reader<T>(
    stream: UnixStream,
    on_msg: impl Fn(&T) -> bool + Send + 'static,
    on_close: impl Fn() + Send + 'static,
) -> io::Result<mpsc::Receiver<Incoming<T>>>
where
    T: for<'de> Deserialize<'de> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("ipcx-bench-control".into())
        .spawn(move || {
            let mut r = BufReader::new(stream);
            let mut line = Vec::new();
            let why = loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) => break "the control connection closed".to_owned(),
                    Ok(_) => match serde_json::from_slice::<T>(&line) {
                        Ok(m) => {
                            if on_msg(&m) && tx.send(Incoming::Msg(m)).is_err() {
                                return;
                            }
                        }
                        Err(e) => break format!("bad control message: {e}"),
                    },
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break format!("control connection: {e}"),
                }
            };
            on_close();
            let _ = tx.send(Incoming::Closed(why));
        })?;
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let (a, b) = UnixStream::pair().unwrap();
        let rx = spawn_reader::<Command>(b, |_| true, || {}).unwrap();
        let mut a2 = a.try_clone().unwrap();
        for c in [
            Command::Open {
                mechanism: "unix".into(),
                spec: "{\"x\":1}\n".into(),
                payload: 64,
            },
            Command::Sink { credit_every: 8 },
            Command::Close,
        ] {
            send_line(&mut a2, &c).unwrap();
            match rx.recv().unwrap() {
                Incoming::Msg(got) => assert_eq!(got, c),
                Incoming::Closed(w) => panic!("{w}"),
            }
        }
        drop((a, a2));
        assert!(matches!(rx.recv().unwrap(), Incoming::Closed(_)));
    }
}
