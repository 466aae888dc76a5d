//! The CPUs a run may use: how many are online, which ones this thread may run on, and
//! pinning a thread (for a run, a peer, or a one-CPU row).

use std::io;

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

/// The number of CPUs online, when `/sys/devices/system/cpu/online` (e.g. `0-1,4`) says.
pub(crate) fn online_cpus() -> Option<usize> {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
    let mut n = 0;
    for part in s.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => n += b.parse::<usize>().ok()? + 1 - a.parse::<usize>().ok()?,
            None => {
                part.parse::<usize>().ok()?;
                n += 1;
            }
        }
    }
    (n > 0).then_some(n)
}

/// The lowest CPU this thread may run on (why not, when it cannot tell).
pub(crate) fn first_allowed_cpu() -> Result<usize, String> {
    let set = sched_getaffinity(None).map_err(|e| format!("reading the CPU affinity: {e}"))?;
    (0..CpuSet::MAX_CPU)
        .find(|&c| set.is_set(c))
        .ok_or_else(|| "no CPU in this thread's affinity mask".into())
}

/// The calling thread pinned to one CPU; its previous CPU mask is restored on drop.
#[derive(Debug)]
pub struct PinGuard {
    previous: CpuSet,
}

impl PinGuard {
    /// Pins the calling thread to `cpu` (why not, when it cannot).
    pub fn pin(cpu: usize) -> Result<PinGuard, String> {
        let previous =
            sched_getaffinity(None).map_err(|e| format!("reading the CPU affinity: {e}"))?;
        if cpu >= CpuSet::MAX_CPU {
            return Err(format!("CPU {cpu} does not exist"));
        }
        let mut set = CpuSet::new();
        set.set(cpu);
        sched_setaffinity(None, &set)
            .map_err(|e| format!("cannot pin this process to CPU {cpu}: {e}"))?;
        Ok(PinGuard { previous })
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        let _ = sched_setaffinity(None, &self.previous);
    }
}

/// Pins the calling thread (and the threads it starts later) to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_restores_the_previous_mask() {
        let before = sched_getaffinity(None).unwrap();
        let cpu = first_allowed_cpu().unwrap();
        {
            let _pin = PinGuard::pin(cpu).unwrap();
            let now = sched_getaffinity(None).unwrap();
            assert_eq!(now.count(), 1);
            assert!(now.is_set(cpu));
        }
        assert_eq!(sched_getaffinity(None).unwrap(), before);
    }

    #[test]
    fn online_cpus_parses() {
        if let Some(n) = online_cpus() {
            assert!(n >= 1);
        }
    }
}
