//! The `signal` row between two real processes.
//!
//! A signal sent to a process may be delivered to any of its threads that does not block it,
//! and libtest's own threads do not: so this test has its own `main` (`harness = false`) that
//! blocks the row's signal before any thread exists, in the parent and in the peer (this same
//! binary, re-executed with the peer arguments in `IPCX_BENCH_PEER`). Timings are never
//! asserted.

use std::time::Duration;

use ipcx_bench::progress::NoProgress;
use ipcx_bench::report::Pattern;
use ipcx_bench::runner::{self, BenchConfig, Budget, PeerLauncher};
use ipcx_bench::{PeerArgs, Registry, signal_row};

fn main() {
    // First, while this is the only thread.
    signal_row::block_signals().expect("blocking the signal row's signal");
    if let Some(args) = PeerArgs::from_env() {
        let args = args.expect("peer arguments");
        let code = match ipcx_bench::run_peer(&Registry::standard(), &args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("peer: {e}");
                1
            }
        };
        std::process::exit(code);
    }
    println!("\nrunning 1 test");
    the_signal_row_measures_and_verifies_both_patterns();
    println!("test the_signal_row_measures_and_verifies_both_patterns ... ok\n");
    println!("test result: ok. 1 passed; 0 failed\n");
}

fn the_signal_row_measures_and_verifies_both_patterns() {
    let cfg = BenchConfig {
        mechanisms: vec!["signal".into()],
        sizes: vec![64, 4096],
        budget: Budget::Iterations(200),
        stall_timeout: Duration::from_secs(5),
        ..BenchConfig::default()
    };
    let launcher = PeerLauncher::with_env(std::env::current_exe().unwrap(), &[]);
    let r = runner::run(&Registry::standard(), &cfg, &launcher, &mut NoProgress)
        .expect("the run completes");
    let find = |p: Pattern, size: u64| {
        r.results
            .iter()
            .find(|x| x.mechanism == "signal" && x.pattern == p && x.payload_bytes == size)
            .unwrap_or_else(|| panic!("no signal {p} {size}: {:#?}", r.results))
    };
    let pp = find(Pattern::PingPong, 64);
    let rtt = pp.rtt_ns.as_ref().unwrap_or_else(|| panic!("{pp:?}"));
    assert_eq!(rtt.samples, Some(200), "{pp:?}");
    assert_eq!(pp.verified, Some(true));
    assert!(pp.ratio_to_limit.is_some(), "{pp:?}");
    let st = find(Pattern::Stream, 64);
    let t = st.throughput.as_ref().unwrap_or_else(|| panic!("{st:?}"));
    assert_eq!(t.messages, Some(200), "{st:?}");
    assert_eq!(st.verified, Some(true));
    for p in [Pattern::PingPong, Pattern::Stream] {
        let big = find(p, 4096);
        let why = big.skipped.as_deref().unwrap_or_else(|| panic!("{big:?}"));
        assert!(why.contains("sequence number"), "{why}");
    }
    assert_eq!(r.failures().count(), 0, "{:#?}", r.results);
}
