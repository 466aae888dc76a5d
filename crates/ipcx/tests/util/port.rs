//! A TCP port for a test's server that no other test takes meanwhile (shared with the CLI
//! tests, which include this file).

use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A TCP port on 127.0.0.1 that is free now and that the kernel will not hand out by itself:
/// below the ephemeral range (`ip_local_port_range`), so no other test's outgoing connection
/// or port-0 bind takes it between our checks and a server binding it again and again.
pub fn stable_tcp_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (first, last) = (10_000u16, low.saturating_sub(1).max(10_001));
    let span = u32::from(last - first);
    let mut n = std::process::id().wrapping_mul(2_654_435_761)
        ^ NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(40_503);
    for _ in 0..1000 {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let port = first + ((n >> 8) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free TCP port between {first} and {last}");
}
