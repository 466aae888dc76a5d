//! [`Signal`]: a signal number, named as `kill -l` names it.

use std::fmt;
use std::str::FromStr;

use super::SignalError;
use crate::sys::signal as sys;

/// A signal: a standard one (1..=31) or a real-time one (`SIGRTMIN..=SIGRTMAX`).
///
/// Displayed as `kill -l` names it, without the prefix (`USR1`, `RTMIN+2`, `RTMAX-1`); the
/// alternate form (`{:#}`) adds `SIG`. Parsed from those forms, with or without `SIG`, in any
/// case, or from a number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(pub(super) i32);

/// Standard signal names, indexed by number.
const NAMES: [&str; 32] = [
    "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

impl Signal {
    /// `SIGHUP`.
    pub const HUP: Signal = Signal(libc::SIGHUP);
    /// `SIGINT`.
    pub const INT: Signal = Signal(libc::SIGINT);
    /// `SIGQUIT`.
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    /// `SIGILL`.
    pub const ILL: Signal = Signal(libc::SIGILL);
    /// `SIGTRAP`.
    pub const TRAP: Signal = Signal(libc::SIGTRAP);
    /// `SIGABRT`.
    pub const ABRT: Signal = Signal(libc::SIGABRT);
    /// `SIGBUS`.
    pub const BUS: Signal = Signal(libc::SIGBUS);
    /// `SIGFPE`.
    pub const FPE: Signal = Signal(libc::SIGFPE);
    /// `SIGKILL` (cannot be blocked or received).
    pub const KILL: Signal = Signal(libc::SIGKILL);
    /// `SIGUSR1`.
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    /// `SIGSEGV`.
    pub const SEGV: Signal = Signal(libc::SIGSEGV);
    /// `SIGUSR2`.
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    /// `SIGPIPE`.
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    /// `SIGALRM`.
    pub const ALRM: Signal = Signal(libc::SIGALRM);
    /// `SIGTERM`.
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// `SIGCHLD`.
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
    /// `SIGCONT`.
    pub const CONT: Signal = Signal(libc::SIGCONT);
    /// `SIGSTOP` (cannot be blocked or received).
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    /// `SIGTSTP`.
    pub const TSTP: Signal = Signal(libc::SIGTSTP);
    /// `SIGTTIN`.
    pub const TTIN: Signal = Signal(libc::SIGTTIN);
    /// `SIGTTOU`.
    pub const TTOU: Signal = Signal(libc::SIGTTOU);
    /// `SIGURG`.
    pub const URG: Signal = Signal(libc::SIGURG);
    /// `SIGXCPU`.
    pub const XCPU: Signal = Signal(libc::SIGXCPU);
    /// `SIGXFSZ`.
    pub const XFSZ: Signal = Signal(libc::SIGXFSZ);
    /// `SIGVTALRM`.
    pub const VTALRM: Signal = Signal(libc::SIGVTALRM);
    /// `SIGPROF`.
    pub const PROF: Signal = Signal(libc::SIGPROF);
    /// `SIGWINCH`.
    pub const WINCH: Signal = Signal(libc::SIGWINCH);
    /// `SIGIO` (`SIGPOLL`).
    pub const IO: Signal = Signal(libc::SIGIO);
    /// `SIGPWR`.
    pub const PWR: Signal = Signal(libc::SIGPWR);
    /// `SIGSYS`.
    pub const SYS: Signal = Signal(libc::SIGSYS);

    /// The signal with number `raw`: 1..=31 or `SIGRTMIN..=SIGRTMAX` (the numbers between,
    /// reserved by the C library, are rejected).
    pub fn from_raw(raw: i32) -> Result<Signal, SignalError> {
        let bad = |reason| SignalError::InvalidSignal {
            input: raw.to_string(),
            reason,
        };
        if (1..=31).contains(&raw) || (sys::sigrtmin()..=sys::sigrtmax()).contains(&raw) {
            Ok(Signal(raw))
        } else if raw > 31 && raw < sys::sigrtmin() {
            Err(bad("reserved by the C library (below SIGRTMIN)"))
        } else {
            Err(bad("not a signal number (1..=31 or SIGRTMIN..=SIGRTMAX)"))
        }
    }

    /// `SIGRTMIN+n` (`n` up to `SIGRTMAX - SIGRTMIN`).
    pub fn rtmin(n: u32) -> Result<Signal, SignalError> {
        let (lo, hi) = (sys::sigrtmin(), sys::sigrtmax());
        match i32::try_from(n).ok().and_then(|n| lo.checked_add(n)) {
            Some(s) if s <= hi => Ok(Signal(s)),
            _ => Err(SignalError::InvalidSignal {
                input: format!("RTMIN+{n}"),
                reason: "beyond SIGRTMAX",
            }),
        }
    }

    /// `SIGRTMAX-n` (`n` up to `SIGRTMAX - SIGRTMIN`).
    pub fn rtmax(n: u32) -> Result<Signal, SignalError> {
        let (lo, hi) = (sys::sigrtmin(), sys::sigrtmax());
        match i32::try_from(n).ok().and_then(|n| hi.checked_sub(n)) {
            Some(s) if s >= lo => Ok(Signal(s)),
            _ => Err(SignalError::InvalidSignal {
                input: format!("RTMAX-{n}"),
                reason: "below SIGRTMIN",
            }),
        }
    }

    /// The signal number.
    pub fn raw(self) -> i32 {
        self.0
    }

    /// Whether this is a real-time signal (queued, delivered in order).
    pub fn is_realtime(self) -> bool {
        self.0 >= sys::sigrtmin()
    }

    fn name(self) -> String {
        if let Some(n) = usize::try_from(self.0).ok().and_then(|i| NAMES.get(i))
            && !n.is_empty()
        {
            return (*n).to_owned();
        }
        let (lo, hi) = (sys::sigrtmin(), sys::sigrtmax());
        if (lo..=hi).contains(&self.0) {
            // Like bash's `kill -l`: the lower half counts up from RTMIN, the upper half down
            // from RTMAX.
            let off = self.0 - lo;
            if off == 0 {
                "RTMIN".to_owned()
            } else if self.0 == hi {
                "RTMAX".to_owned()
            } else if off <= (hi - lo) / 2 {
                format!("RTMIN+{off}")
            } else {
                format!("RTMAX-{}", hi - self.0)
            }
        } else {
            self.0.to_string()
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.write_str("SIG")?;
        }
        f.write_str(&self.name())
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signal({:#} = {})", self, self.0)
    }
}

impl FromStr for Signal {
    type Err = SignalError;

    fn from_str(s: &str) -> Result<Signal, SignalError> {
        let bad = |reason| SignalError::InvalidSignal {
            input: s.to_owned(),
            reason,
        };
        let t = s.trim();
        if let Ok(n) = t.parse::<i32>() {
            return Signal::from_raw(n).map_err(|e| match e {
                SignalError::InvalidSignal { reason, .. } => bad(reason),
                other => other,
            });
        }
        let up = t.to_ascii_uppercase();
        let name = up.strip_prefix("SIG").unwrap_or(&up);
        let num = |digits: &str| -> Result<u32, SignalError> {
            digits
                .parse::<u32>()
                .map_err(|_| bad("expected a number after RTMIN+ or RTMAX-, as in RTMIN+2"))
        };
        let out_of_range = |_| bad("outside SIGRTMIN..=SIGRTMAX");
        match name {
            "RTMIN" => return Signal::rtmin(0).map_err(out_of_range),
            "RTMAX" => return Signal::rtmax(0).map_err(out_of_range),
            "IOT" => return Ok(Signal::ABRT),
            "POLL" => return Ok(Signal::IO),
            "CLD" => return Ok(Signal::CHLD),
            _ => {}
        }
        if let Some(n) = name.strip_prefix("RTMIN+") {
            return Signal::rtmin(num(n)?).map_err(out_of_range);
        }
        if let Some(n) = name.strip_prefix("RTMAX-") {
            return Signal::rtmax(num(n)?).map_err(out_of_range);
        }
        match NAMES.iter().position(|n| !n.is_empty() && *n == name) {
            Some(i) => Ok(Signal(i as i32)),
            None => Err(bad(
                "unknown signal name; use a name from `kill -l` (USR1, SIGTERM, RTMIN+2) or a number",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Signal {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_names_with_and_without_prefix() {
        assert_eq!(parse("USR1"), Signal::USR1);
        assert_eq!(parse("SIGUSR1"), Signal::USR1);
        assert_eq!(parse("sigterm"), Signal::TERM);
        assert_eq!(parse("term"), Signal::TERM);
        assert_eq!(parse("9"), Signal::KILL);
        assert_eq!(parse("IOT"), Signal::ABRT);
        assert_eq!(parse("SIGPOLL"), Signal::IO);
        assert_eq!(parse("CLD"), Signal::CHLD);
    }

    #[test]
    fn parses_realtime_signals_relative_to_runtime_rtmin() {
        let lo = libc::SIGRTMIN();
        let hi = libc::SIGRTMAX();
        assert_eq!(parse("RTMIN").raw(), lo);
        assert_eq!(parse("SIGRTMIN+2").raw(), lo + 2);
        assert_eq!(parse("rtmin+2").raw(), lo + 2);
        assert_eq!(parse("RTMAX").raw(), hi);
        assert_eq!(parse("RTMAX-3").raw(), hi - 3);
        assert_eq!(parse(&(lo + 1).to_string()).raw(), lo + 1);
        assert!(parse("RTMIN+1").is_realtime());
        assert!(!Signal::USR1.is_realtime());
    }

    #[test]
    fn rejects_bad_signals() {
        let lo = libc::SIGRTMIN();
        let hi = libc::SIGRTMAX();
        for bad in [
            "",
            "0",
            "-1",
            "FOO",
            "SIG",
            "RTMIN+",
            "RTMIN+x",
            "RTMIN-1",
            "1000",
            "SIGRTMAX+1",
        ] {
            assert!(
                matches!(
                    bad.parse::<Signal>(),
                    Err(SignalError::InvalidSignal { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(format!("RTMIN+{}", hi - lo + 1).parse::<Signal>().is_err());
        assert!(format!("RTMAX-{}", hi - lo + 1).parse::<Signal>().is_err());
        if lo > 32 {
            assert!(Signal::from_raw(32).is_err());
        }
        assert!(Signal::from_raw(hi + 1).is_err());
    }

    #[test]
    fn displays_like_kill_dash_l() {
        let lo = libc::SIGRTMIN();
        let hi = libc::SIGRTMAX();
        assert_eq!(Signal::USR1.to_string(), "USR1");
        assert_eq!(format!("{:#}", Signal::TERM), "SIGTERM");
        assert_eq!(Signal::rtmin(0).unwrap().to_string(), "RTMIN");
        assert_eq!(Signal::rtmin(2).unwrap().to_string(), "RTMIN+2");
        assert_eq!(Signal::rtmax(0).unwrap().to_string(), "RTMAX");
        assert_eq!(Signal::rtmax(1).unwrap().to_string(), "RTMAX-1");
        assert_eq!(format!("{:#}", Signal::rtmin(2).unwrap()), "SIGRTMIN+2");
        // Every valid signal round-trips through its name.
        for raw in (1..=31).chain(lo..=hi) {
            let s = Signal::from_raw(raw).unwrap();
            assert_eq!(parse(&s.to_string()), s, "{s}");
            assert_eq!(parse(&format!("{s:#}")), s, "{s:#}");
        }
        if (lo, hi) == (34, 64) {
            // The numbering bash prints with `kill -l`.
            assert_eq!(Signal::from_raw(49).unwrap().to_string(), "RTMIN+15");
            assert_eq!(Signal::from_raw(50).unwrap().to_string(), "RTMAX-14");
        }
    }
}
