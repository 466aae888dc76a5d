//! Parsing and printing sizes, durations and rates.

/// The smallest payload the harness sends: every message carries its 8-byte sequence number.
pub const MIN_PAYLOAD: usize = 8;

/// The largest payload the harness accepts (the default maximum frame length of ipcx).
pub const MAX_PAYLOAD: usize = 16 << 20;

/// The default payload sizes: 64 B, 4 KiB and 1 MiB.
pub const DEFAULT_SIZES: [usize; 3] = [64, 4 << 10, 1 << 20];

/// Parses one size: `64`, `4k`, `4KiB`, `1m`, `1MiB`, `2kb` (binary units: k = 1024).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("invalid size {s:?}: expected a byte count such as 64, 4k or 1m");
    let n: usize = num.parse().map_err(|_| bad())?;
    let scale: usize = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return Err(bad()),
    };
    let v = n.checked_mul(scale).ok_or_else(bad)?;
    if v < MIN_PAYLOAD {
        return Err(format!(
            "size {s:?} is below {MIN_PAYLOAD} bytes: every message carries an 8-byte sequence number"
        ));
    }
    if v > MAX_PAYLOAD {
        return Err(format!("size {s:?} is above the 16 MiB maximum"));
    }
    Ok(v)
}

/// Parses a comma-separated list of sizes (`64,4k,1m`); duplicates are dropped, order kept.
pub fn parse_sizes(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        if part.trim().is_empty() {
            return Err(format!("invalid size list {s:?}: empty entry"));
        }
        let v = parse_size(part)?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

/// Prints a byte count the way it was most likely written: `64 B`, `4 KiB`, `1 MiB`, `1500 B`.
pub fn format_size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// Prints nanoseconds with three significant digits: `120 ns`, `45.2 µs`, `1.58 ms`, `2.00 s`.
pub fn format_ns(ns: f64) -> String {
    let (v, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    format!("{} {unit}", three_digits(v))
}

/// Prints a rate with an SI prefix: `1.23 M/s`, `512 k/s`.
pub fn format_rate(per_s: f64, unit: &str) -> String {
    let (v, prefix) = si(per_s);
    if prefix.is_empty() && unit.is_empty() {
        format!("{}/s", three_digits(v))
    } else {
        format!("{} {prefix}{unit}/s", three_digits(v))
    }
}

/// Prints bytes per second in decimal units: `6.10 GB/s`, `512 MB/s`.
pub fn format_bytes_per_s(bytes_per_s: f64) -> String {
    format_rate(bytes_per_s, "B")
}

fn si(v: f64) -> (f64, &'static str) {
    if v >= 1e12 {
        (v / 1e12, "T")
    } else if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    }
}

fn three_digits(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Prints a ratio: `1.00`, `1.46`, `63.1`, `354` (two decimals below 10, where the goals
/// against the floor lie, such as 1.5).
pub fn format_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 10.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64").unwrap(), 64);
        assert_eq!(parse_size("4k").unwrap(), 4096);
        assert_eq!(parse_size("4KiB").unwrap(), 4096);
        assert_eq!(parse_size("1m").unwrap(), 1 << 20);
        assert_eq!(parse_size("1MB").unwrap(), 1 << 20);
        assert!(parse_size("4").unwrap_err().contains("below 8"));
        assert!(parse_size("32m").unwrap_err().contains("16 MiB"));
        assert!(parse_size("fast").is_err());
        assert!(parse_size("4g").is_err());
        assert_eq!(parse_sizes("64,4k,1m,64").unwrap(), vec![64, 4096, 1 << 20]);
        assert!(parse_sizes("64,,1m").is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(format_size(64), "64 B");
        assert_eq!(format_size(4096), "4 KiB");
        assert_eq!(format_size(1 << 20), "1 MiB");
        assert_eq!(format_size(1500), "1500 B");
        assert_eq!(format_ns(120.0), "120 ns");
        assert_eq!(format_ns(45_200.0), "45.2 µs");
        assert_eq!(format_ns(1_580_000.0), "1.58 ms");
        assert_eq!(format_bytes_per_s(6.1e9), "6.10 GB/s");
        assert_eq!(format_rate(512_000.0, "msg"), "512 kmsg/s");
        assert_eq!(format_rate(105.0, ""), "105/s");
        assert_eq!(format_rate(1.5e6, ""), "1.50 M/s");
        assert_eq!(format_ratio(354.4), "354");
        assert_eq!(format_ratio(63.14), "63.1");
        assert_eq!(format_ratio(6.31), "6.31");
        assert_eq!(format_ratio(1.456), "1.46");
    }
}
