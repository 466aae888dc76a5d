//! Flags and value parsers that several commands share (below both `cli` and the commands).

use std::time::Duration;

use clap::Args;

/// Flags shared by `send` and `recv`.
#[derive(Debug, Args)]
pub struct EndpointFlags {
    /// Bound each wait (e.g. 500ms, 5s); on expiry exit with status 3.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Byte streams (fifo, unix, tcp): copy bytes verbatim, no framing.
    #[arg(long)]
    pub raw: bool,
    /// POSIX mq: send priority.
    #[arg(long, default_value_t = 0)]
    pub priority: u32,
    /// System V mq: message type (send), or msgrcv selector (recv: 0 any, >0 that type, <0
    /// lowest type up to |N|).
    #[arg(long = "type", allow_hyphen_values = true)]
    pub mtype: Option<i64>,
    /// Mode for objects this command creates (octal).
    #[arg(long, value_parser = parse_mode, default_value = "600")]
    pub mode: u32,
    /// send: create the queue or FIFO when it is missing.
    #[arg(long)]
    pub create: bool,
    /// Largest framed message accepted (bytes).
    #[arg(long, default_value_t = ipcx::framing::DEFAULT_MAX_FRAME_LEN)]
    pub max_frame: usize,
    /// Whose objects and peers are trusted.
    #[command(flatten)]
    pub trust: TrustFlags,
    /// recv on unix, unix-seqpacket, tcp: the most bytes of partial messages buffered across
    /// all senders together (e.g. 64m); the sender whose message would pass it is dropped.
    #[arg(long, value_parser = parse_size, default_value = "64m", value_name = "SIZE")]
    pub max_buffered: u64,
    /// recv on unix, unix-seqpacket, tcp: the most senders served at once; past it, new
    /// senders wait (in the listen backlog) until one leaves.
    #[arg(long, default_value_t = ipcx::channel::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    pub max_connections: usize,
    /// recv on unix, tcp: drop a sender that stops in the middle of a message for this long
    /// (e.g. 30s; 0 never). A sender quiet between messages is never dropped.
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DUR")]
    pub idle_timeout: Duration,
}

impl EndpointFlags {
    /// The library options these flags describe.
    pub fn options(&self) -> ipcx::channel::Options {
        let mut o = ipcx::channel::Options::new()
            .mode(self.mode)
            .create(self.create)
            .priority(self.priority)
            .max_frame_len(self.max_frame)
            .max_buffered(usize::try_from(self.max_buffered).unwrap_or(usize::MAX))
            .max_connections(self.max_connections)
            .idle_timeout((!self.idle_timeout.is_zero()).then_some(self.idle_timeout));
        if let Some(t) = self.mtype {
            o = o.mtype(t);
        }
        if let Some(t) = self.timeout {
            o = o.connect_timeout(t);
        }
        o.trust(self.trust.trust())
    }
}

/// The same-user rule's flags, shared by every command that opens existing objects.
#[derive(Debug, Args)]
pub struct TrustFlags {
    /// Also trust objects and peers of this user id (repeatable). By default only our own
    /// user's are: an object another user created, or an abstract-socket peer of another
    /// user, is refused.
    #[arg(long = "allow-uid", value_name = "UID")]
    pub allow_uid: Vec<u32>,
    /// Trust objects and peers of every user.
    #[arg(long)]
    pub allow_any_uid: bool,
}

impl TrustFlags {
    /// The policy these flags describe.
    pub fn trust(&self) -> ipcx::trust::Trust {
        let mut trust = if self.allow_any_uid {
            ipcx::trust::Trust::any_user()
        } else {
            ipcx::trust::Trust::own_user()
        };
        for &uid in &self.allow_uid {
            trust = trust.allow_uid(uid);
        }
        trust
    }
}

/// The longest duration a flag takes: 100 years. Longer ones (which a deadline could not even
/// represent) are a usage error; to wait forever, leave the flag out.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parses `500ms`, `5s`, `2.5s`, `1m`, `1h`, `250us`; a bare number is seconds. At most
/// [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 500ms, 5s, 1m"))?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit {unit:?}: use ns, us, ms, s, m or h"
            ));
        }
    };
    let secs = value * scale;
    if secs > MAX_DURATION.as_secs_f64() {
        return Err(format!(
            "duration {s:?} is too long: at most 100 years (leave the flag out to wait forever)"
        ));
    }
    let d =
        Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {s:?}: {e}"))?;
    if d > MAX_DURATION {
        return Err(format!(
            "duration {s:?} is too long: at most 100 years (leave the flag out to wait forever)"
        ));
    }
    Ok(d)
}

/// Parses a size: bytes, or with a k, m or g suffix (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t.as_str(), 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("invalid size {s:?}: expected bytes, e.g. 4096, 64k or 1m"))
}

/// Parses an octal mode such as `600` or `0o644`.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.trim_start_matches("0o");
    let mode = u32::from_str_radix(digits, 8)
        .map_err(|_| format!("invalid mode {s:?}: expected octal, e.g. 600 or 0644"))?;
    if mode > 0o7777 {
        return Err(format!("invalid mode {s:?}: at most 7777"));
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("9223372036854775807s").is_err());
        assert!(parse_duration("1e400").is_err());
        assert!(parse_duration("101y").is_err());
        assert_eq!(parse_duration("36500d").ok(), None);
        assert_eq!(parse_duration("876000h").unwrap(), MAX_DURATION);
        assert!(parse_duration("876001h").is_err());
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("600").unwrap(), 0o600);
        assert_eq!(parse_mode("0644").unwrap(), 0o644);
        assert_eq!(parse_mode("0o640").unwrap(), 0o640);
        assert!(parse_mode("999").is_err());
        assert!(parse_mode("77777").is_err());
    }
}
