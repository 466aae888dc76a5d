//! The wait-for graph across processes and its cycles: what `ipcx deadlock` prints.
//!
//! A node is a thread. A thread that waits on an object ([`WaitOp::waits_for_holder`](super::WaitOp::waits_for_holder)) has an
//! edge to the holder of that object: the owning thread of a mutex; for a System V semaphore,
//! whose holder is only inferred (the last process that operated on it, see
//! [`Holder::inferred`](super::Holder::inferred)), every thread of that process that waits
//! itself (a process with a thread still running may yet release it). A process is never taken
//! to wait for a System V semaphore it holds by inference: it operated on it last, most often
//! by taking the last unit of a counting semaphore it now waits on again.
//!
//! Every elementary cycle of the graph is a deadlock (each thread waits for the next, none
//! can go on), up to [`MAX_CYCLES`]; a cycle with an inferred step is a strong suspicion, not
//! a proof, and says so ([`Step::inferred`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::locks::Locks;

/// The most cycles reported (the graph of a large deadlock can hold very many).
pub const MAX_CYCLES: usize = 100;

/// One deadlock: each step's thread holds what the previous one waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Cycle {
    /// The threads around the cycle, starting from the lowest pid.
    pub steps: Vec<Step>,
}

/// One thread of a [`Cycle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Step {
    /// Its process.
    pub pid: i32,
    /// The thread.
    pub tid: i32,
    /// The object it holds that the previous step waits for.
    pub holds: String,
    /// Whether that holding is inferred (a System V semaphore), not recorded by the kernel.
    pub inferred: bool,
    /// The object it waits for, which the next step holds.
    pub waits_for: String,
}

impl fmt::Display for Cycle {
    /// `pid 41 holds mutex:/a and waits for sysv-sem:0x00000099[1]; pid 57 holds ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "pid {}", s.pid)?;
            if s.tid != s.pid {
                write!(f, " (thread {})", s.tid)?;
            }
            write!(f, " holds {}", s.holds)?;
            if s.inferred {
                f.write_str(" (inferred: last operator)")?;
            }
            write!(f, " and waits for {}", s.waits_for)?;
        }
        Ok(())
    }
}

/// An edge: the waiting thread waits for `object`, held by thread `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    to: i32,
    object: String,
    inferred: bool,
}

/// The deadlocks among the objects `locks` found: every cycle of the wait-for graph (at most
/// [`MAX_CYCLES`]), each listed once.
pub fn deadlocks(locks: &Locks) -> Vec<Cycle> {
    let mut pid_of: BTreeMap<i32, i32> = BTreeMap::new();
    // The waiting threads of each process.
    let mut waiting: BTreeMap<i32, BTreeSet<i32>> = BTreeMap::new();
    for l in &locks.objects {
        for w in &l.waiters {
            if w.op.waits_for_holder() {
                pid_of.insert(w.tid, w.pid);
                waiting.entry(w.pid).or_default().insert(w.tid);
            }
        }
    }
    let mut edges: BTreeMap<i32, BTreeSet<Edge>> = BTreeMap::new();
    for l in &locks.objects {
        let Some(h) = l.holder else { continue };
        for w in l.waiters.iter().filter(|w| w.op.waits_for_holder()) {
            let targets: Vec<i32> = match h.tid {
                Some(t) => vec![t],
                None if h.pid == w.pid => continue,
                None => waiting
                    .get(&h.pid)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default(),
            };
            for to in targets {
                pid_of.entry(to).or_insert(h.pid);
                edges.entry(w.tid).or_default().insert(Edge {
                    to,
                    object: l.name.clone(),
                    inferred: h.inferred,
                });
            }
        }
    }
    let mut cycles = Vec::new();
    // Elementary cycles, each found once from its smallest thread id: a depth-first search
    // from `start` through threads above it only.
    for &start in edges.keys() {
        let mut path: Vec<(i32, &Edge)> = Vec::new();
        search(start, start, &edges, &mut path, &mut cycles);
        if cycles.len() >= MAX_CYCLES {
            break;
        }
    }
    cycles.truncate(MAX_CYCLES);
    cycles
        .into_iter()
        .map(|path| cycle(&path, &pid_of))
        .collect()
}

fn search<'e>(
    start: i32,
    at: i32,
    edges: &'e BTreeMap<i32, BTreeSet<Edge>>,
    path: &mut Vec<(i32, &'e Edge)>,
    out: &mut Vec<Vec<(i32, Edge)>>,
) {
    let Some(next) = edges.get(&at) else { return };
    for e in next {
        if out.len() >= MAX_CYCLES {
            return;
        }
        if e.to == start {
            let mut c: Vec<(i32, Edge)> = path.iter().map(|(n, e)| (*n, (*e).clone())).collect();
            c.push((at, e.clone()));
            out.push(c);
        } else if e.to > start && e.to != at && !path.iter().any(|(n, _)| *n == e.to) {
            path.push((at, e));
            search(start, e.to, edges, path, out);
            path.pop();
        }
    }
}

/// A cycle as steps: step i waits for edge i's object and holds the previous edge's.
fn cycle(path: &[(i32, Edge)], pid_of: &BTreeMap<i32, i32>) -> Cycle {
    let n = path.len();
    let mut steps: Vec<Step> = (0..n)
        .map(|i| {
            let (tid, out) = &path[i];
            let (_, inn) = &path[(i + n - 1) % n];
            Step {
                pid: pid_of.get(tid).copied().unwrap_or(0),
                tid: *tid,
                holds: inn.object.clone(),
                inferred: inn.inferred,
                waits_for: out.object.clone(),
            }
        })
        .collect();
    // Start from the lowest pid, keeping the order.
    if let Some(first) = (0..n).min_by_key(|&i| (steps[i].pid, steps[i].tid)) {
        steps.rotate_left(first);
    }
    Cycle { steps }
}

#[cfg(test)]
mod tests {
    use super::super::locks::{Holder, Lock, LockState, WaitOp, Waiter};
    use super::*;

    fn obj(name: &str, holder: Option<Holder>, waiters: &[(i32, i32)]) -> Lock {
        let mut l = Lock {
            kind: "mutex",
            name: name.into(),
            state: LockState::Held,
            holder,
            value: None,
            waiters: Vec::new(),
            kernel_waiters: None,
            idle_secs: None,
        };
        l.waiters = waiters
            .iter()
            .map(|&(pid, tid)| Waiter {
                pid,
                tid,
                op: WaitOp::Lock,
            })
            .collect();
        l
    }

    fn held(pid: i32, tid: Option<i32>) -> Option<Holder> {
        Some(Holder {
            pid,
            tid,
            alive: true,
            inferred: tid.is_none(),
        })
    }

    #[test]
    fn two_party_cycle_through_a_mutex_and_an_inferred_semaphore() {
        let locks = Locks {
            objects: vec![
                obj("mutex:/a", held(41, Some(41)), &[(57, 57)]),
                obj("sysv-sem:0x00000099[1]", held(57, None), &[(41, 41)]),
            ],
            notes: Vec::new(),
        };
        let c = deadlocks(&locks);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            c[0].to_string(),
            "pid 41 holds mutex:/a and waits for sysv-sem:0x00000099[1]; pid 57 holds \
             sysv-sem:0x00000099[1] (inferred: last operator) and waits for mutex:/a"
        );
    }

    #[test]
    fn chains_and_self_inference_are_not_cycles() {
        let locks = Locks {
            objects: vec![
                obj("mutex:/a", held(1, Some(1)), &[(2, 2)]),
                obj("mutex:/b", held(2, Some(2)), &[(3, 3)]),
                // A process waiting on a semaphore it operated on last.
                obj("sysv-sem:0x1[0]", held(3, None), &[(3, 3)]),
                // Two threads of one process: one holds, one waits.
                obj("mutex:/c", held(9, Some(9)), &[(9, 10)]),
            ],
            notes: Vec::new(),
        };
        assert!(deadlocks(&locks).is_empty());
    }

    #[test]
    fn three_party_cycle_and_threads() {
        let locks = Locks {
            objects: vec![
                obj("mutex:/x", held(7, Some(8)), &[(5, 5)]),
                obj("mutex:/y", held(5, Some(5)), &[(6, 6)]),
                obj("mutex:/z", held(6, Some(6)), &[(7, 8)]),
            ],
            notes: Vec::new(),
        };
        let c = deadlocks(&locks);
        assert_eq!(c.len(), 1);
        let pids: Vec<i32> = c[0].steps.iter().map(|s| s.pid).collect();
        assert_eq!(pids, [5, 7, 6]);
        assert!(c[0].to_string().contains("pid 7 (thread 8) holds mutex:/x"));
    }
}
