//! [`ZenohConfig`]: how this process's Zenoh session reaches other peers (in
//! [`Options::zenoh`](crate::channel::Options::zenoh)).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::reason::reason;
use crate::channel::Error;

/// The link protocols this build carries (Zenoh's `transport_tcp` only).
const PROTOCOLS: &[&str] = &["tcp"];

/// Which role the session plays in a Zenoh network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZenohMode {
    /// Talks to other peers directly (Zenoh's default).
    Peer,
    /// Talks through one router (`--zenoh-connect` names it).
    Client,
}

/// How the process's Zenoh session is opened: every `zenoh:` endpoint of a process shares one
/// session, opened by the first endpoint with its configuration.
///
/// The default is Zenoh's own: peer mode, peers found by multicast scouting. Giving
/// [`connect`](ZenohConfig::connect) or [`listen`](ZenohConfig::listen) locators turns
/// multicast scouting off: the session then talks only to the peers named, which is what a
/// test or a fixed deployment wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZenohConfig {
    /// The role (`None`: the configuration file's, else peer).
    pub mode: Option<ZenohMode>,
    /// Locators to connect to, as in `tcp/192.168.1.7:7447`. Opening the session fails when
    /// one cannot be reached within the endpoint's connect timeout
    /// ([`Options::connect_timeout`](crate::channel::Options::connect_timeout), default 5 s).
    pub connect: Vec<String>,
    /// Locators to listen on, as in `tcp/0.0.0.0:7447`.
    pub listen: Vec<String>,
    /// A Zenoh configuration file (JSON5), applied first; the locators and mode above are
    /// applied on top of it.
    pub config_file: Option<PathBuf>,
}

impl ZenohConfig {
    /// Zenoh's defaults.
    pub fn new() -> ZenohConfig {
        ZenohConfig::default()
    }
    /// Sets the mode.
    pub fn mode(mut self, mode: ZenohMode) -> Self {
        self.mode = Some(mode);
        self
    }
    /// Adds a locator to connect to.
    pub fn connect(mut self, locator: impl Into<String>) -> Self {
        self.connect.push(locator.into());
        self
    }
    /// Adds a locator to listen on.
    pub fn listen(mut self, locator: impl Into<String>) -> Self {
        self.listen.push(locator.into());
        self
    }
    /// Sets the Zenoh configuration file (JSON5).
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Checks every locator: [`Error::InvalidAddress`] naming the first malformed one, or one
    /// whose protocol this build does not carry.
    pub fn check(&self) -> Result<(), Error> {
        for locator in self.connect.iter().chain(&self.listen) {
            check_locator(locator)?;
        }
        Ok(())
    }

    /// Zenoh's configuration for this one; `connect_timeout` bounds reaching the
    /// [`connect`](ZenohConfig::connect) locators.
    pub(super) fn to_zenoh(&self, connect_timeout: Duration) -> Result<::zenoh::Config, Error> {
        self.check()?;
        let mut config = match &self.config_file {
            Some(path) => ::zenoh::Config::from_file(path).map_err(|e| Error::InvalidAddress {
                addr: path.display().to_string(),
                reason: format!("not a usable Zenoh configuration file: {}", reason(&e)),
            })?,
            None => ::zenoh::Config::default(),
        };
        let mut set = |key: &str, value: String| {
            config
                .insert_json5(key, &value)
                .map_err(|e| Error::InvalidAddress {
                    addr: format!("{key}: {value}"),
                    reason: format!("Zenoh refused this setting: {}", reason(&e)),
                })
        };
        if let Some(mode) = self.mode {
            let mode = match mode {
                ZenohMode::Peer => "peer",
                ZenohMode::Client => "client",
            };
            set("mode", json_string(mode))?;
        }
        if !self.connect.is_empty() {
            set("connect/endpoints", json_array(&self.connect))?;
            let ms = u64::try_from(connect_timeout.as_millis())
                .unwrap_or(u64::MAX)
                .clamp(1, i64::MAX as u64);
            set("connect/timeout_ms", ms.to_string())?;
            set("connect/exit_on_failure", "true".into())?;
        }
        if !self.listen.is_empty() {
            set("listen/endpoints", json_array(&self.listen))?;
        }
        if !self.connect.is_empty() || !self.listen.is_empty() {
            set("scouting/multicast/enabled", "false".into())?;
        }
        Ok(config)
    }
}

/// A locator such as `tcp/127.0.0.1:7447`: Zenoh's syntax, and a protocol this build carries.
fn check_locator(locator: &str) -> Result<(), Error> {
    let bad = |reason: String| Error::InvalidAddress {
        addr: locator.to_owned(),
        reason,
    };
    let endpoint = ::zenoh::config::EndPoint::from_str(locator).map_err(|e| {
        bad(format!(
            "not a Zenoh locator ({}); expected PROTOCOL/ADDRESS, as in tcp/127.0.0.1:7447",
            reason(&e)
        ))
    })?;
    let protocol = endpoint.protocol();
    if !PROTOCOLS.contains(&protocol.as_str()) {
        return Err(bad(format!(
            "this build of ipcx carries Zenoh over {} only, not {}",
            PROTOCOLS.join(", "),
            protocol.as_str()
        )));
    }
    if endpoint.address().as_str().is_empty() {
        return Err(bad(
            "no address after the protocol, as in tcp/127.0.0.1:7447".into(),
        ));
    }
    Ok(())
}

/// `s` as a JSON string.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `items` as a JSON array of strings.
fn json_array(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| json_string(s)).collect();
    format!("[{}]", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_are_checked() {
        assert!(
            ZenohConfig::new()
                .connect("tcp/127.0.0.1:7447")
                .listen("tcp/[::1]:0")
                .check()
                .is_ok()
        );
        for bad in ["127.0.0.1:7447", "udp/127.0.0.1:7447", "tcp/", "", "tcp"] {
            let e = ZenohConfig::new().connect(bad).check().unwrap_err();
            assert!(matches!(e, Error::InvalidAddress { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn locators_turn_scouting_off() {
        let c = ZenohConfig::new()
            .listen("tcp/127.0.0.1:7447")
            .mode(ZenohMode::Peer)
            .to_zenoh(Duration::from_secs(2))
            .unwrap();
        assert_eq!(c.get_json("scouting/multicast/enabled").unwrap(), "false");
        assert!(c.get_json("listen/endpoints").unwrap().contains("7447"));
        let c = ZenohConfig::new().to_zenoh(Duration::from_secs(2)).unwrap();
        assert_ne!(c.get_json("scouting/multicast/enabled").unwrap(), "false");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
