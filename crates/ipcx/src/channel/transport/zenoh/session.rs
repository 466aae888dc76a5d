//! The process's one Zenoh session, shared by every `zenoh:` endpoint.
//!
//! The first endpoint opens it with its [`ZenohConfig`]; the others share it, and one that
//! asks for another configuration while it is open is refused. The last endpoint to go closes
//! it, which sends what is still queued before the process moves on (an `ipcx send` that exits
//! right after its last put loses nothing to the exit).

use std::io;
use std::sync::Mutex;
use std::time::Duration;

use ::zenoh::Wait as _;

use super::config::ZenohConfig;
use super::reason::reason;
use crate::channel::Error;
use crate::poison::lock;

/// The open session, its configuration, and how many endpoints use it.
struct Shared {
    config: ZenohConfig,
    session: ::zenoh::Session,
    users: usize,
}

static SHARED: Mutex<Option<Shared>> = Mutex::new(None);

/// One endpoint's use of the shared session; the last one dropped closes it.
pub(super) struct SessionRef {
    session: ::zenoh::Session,
}

impl std::fmt::Debug for SessionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRef")
            .field("zid", &self.session.zid())
            .finish()
    }
}

impl SessionRef {
    /// The shared session, opened with `config` when none is open (reaching its `connect`
    /// locators within `connect_timeout`).
    pub(super) fn open(
        config: &ZenohConfig,
        connect_timeout: Duration,
    ) -> Result<SessionRef, Error> {
        let mut shared = lock(&SHARED);
        if let Some(s) = shared.as_mut() {
            if s.config != *config {
                return Err(Error::AlreadyExists {
                    what: "this process's Zenoh session".into(),
                    hint: format!(
                        "it is open with another configuration ({:?}); every zenoh: endpoint of a process shares one session: open them with the same Options::zenoh",
                        s.config
                    ),
                });
            }
            s.users += 1;
            return Ok(SessionRef {
                session: s.session.clone(),
            });
        }
        let session = ::zenoh::open(config.to_zenoh(connect_timeout)?)
            .wait()
            .map_err(|e| open_error(config, connect_timeout, &reason(&e)))?;
        *shared = Some(Shared {
            config: config.clone(),
            session: session.clone(),
            users: 1,
        });
        Ok(SessionRef { session })
    }

    /// The session.
    pub(super) fn session(&self) -> &::zenoh::Session {
        &self.session
    }
}

impl Drop for SessionRef {
    fn drop(&mut self) {
        let mut shared = lock(&SHARED);
        let last = match shared.as_mut() {
            Some(s) => {
                s.users -= 1;
                s.users == 0
            }
            None => false,
        };
        if last && let Some(s) = shared.take() {
            // Closing flushes what is queued; an error here has no one left to tell.
            let _ = s.session.close().wait();
        }
    }
}

/// Why the session did not open: a `connect` locator nobody answered at, or Zenoh's reason.
fn open_error(config: &ZenohConfig, connect_timeout: Duration, reason: &str) -> Error {
    if !config.connect.is_empty() && reason.contains("Unable to connect") {
        return Error::NotFound {
            what: format!("Zenoh peer at {}", config.connect.join(", ")),
            hint: format!(
                "nothing answered within {connect_timeout:?}: start it, or check --zenoh-connect (and --timeout)"
            ),
        };
    }
    Error::Io {
        context: "opening the Zenoh session".into(),
        source: io::Error::other(reason.to_owned()),
    }
}
