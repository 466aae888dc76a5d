//! Value parsers for flags and arguments: durations, sizes, modes and endpoints. A bad value
//! is a usage error (exit 2).

use std::time::Duration;

use ipcx::channel::Endpoint;

use crate::exit::usage;

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

/// [`parse_duration`] of a duration that must be more than zero.
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("invalid duration {s:?}: must be more than zero"));
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

/// Parses an endpoint; a bad address is a usage error (exit 2).
pub fn parse_endpoint(s: &str) -> anyhow::Result<Endpoint> {
    Endpoint::parse(s).map_err(usage)
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
