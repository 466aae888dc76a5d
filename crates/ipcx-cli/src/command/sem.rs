//! `ipcx sem create|post|wait|get|rm OBJ`: POSIX named (`/NAME`, `posix-sem:/NAME`) and System
//! V (`sysv-sem:KEY`, one semaphore of the set with `--index N`) semaphores.

use std::time::Duration;

use anyhow::Context;
use ipcx::inventory::{self, SysvRef};
use ipcx::sem::Semaphore;
use ipcx::sysv::sem::SemaphoreSet;
use ipcx::wait::Wait;

use crate::args::{Actions, TrustFlags};
use crate::parse::{parse_duration, parse_mode};
use crate::target::{Family, Target};

const FAMILY: Family = Family::Sem;

/// Arguments of `ipcx sem`.
pub type SemArgs = Actions<Action>;

/// The actions of `ipcx sem`.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Create a semaphore that outlives the command (until `ipcx sem rm`).
    Create {
        /// `/NAME`, `posix-sem:/NAME` or `sysv-sem:KEY`.
        obj: String,
        /// Initial value.
        #[arg(long, default_value_t = 0)]
        value: u32,
        /// System V: semaphores in the set.
        #[arg(long, default_value_t = 1)]
        nsems: usize,
        /// Mode (octal).
        #[arg(long, value_parser = parse_mode, default_value = "600")]
        mode: u32,
    },
    /// V: add one.
    Post {
        /// The semaphore.
        obj: String,
        /// System V: which semaphore of the set.
        #[arg(long, default_value_t = 0)]
        index: u16,
        /// Whose semaphores are trusted.
        #[command(flatten)]
        trust: TrustFlags,
    },
    /// P: wait until positive, then take one (exit 3 on --timeout).
    Wait {
        /// The semaphore.
        obj: String,
        /// System V: which semaphore of the set.
        #[arg(long, default_value_t = 0)]
        index: u16,
        /// Give up after this long.
        #[arg(long, value_parser = parse_duration)]
        timeout: Option<Duration>,
        /// Whose semaphores are trusted.
        #[command(flatten)]
        trust: TrustFlags,
    },
    /// Print the value.
    Get {
        /// The semaphore.
        obj: String,
        /// System V: which semaphore of the set.
        #[arg(long, default_value_t = 0)]
        index: u16,
        /// Whose semaphores are trusted.
        #[command(flatten)]
        trust: TrustFlags,
    },
    /// Remove the semaphore (System V: the whole set).
    Rm {
        /// The semaphore.
        obj: String,
    },
}

/// The existing POSIX semaphore `name`, if its owner is trusted.
fn posix(name: &str, trust: &TrustFlags) -> anyhow::Result<Semaphore> {
    Ok(Semaphore::options().trust(trust.trust()).open(name)?)
}

/// The existing System V set, if its owner and creator are trusted.
fn set(r: SysvRef, trust: &TrustFlags) -> anyhow::Result<SemaphoreSet> {
    Ok(match r {
        SysvRef::Key(k) => SemaphoreSet::options().trust(trust.trust()).open(k, 0)?,
        SysvRef::Id(id) => SemaphoreSet::from_id(id)?,
    })
}

/// Runs `ipcx sem`.
pub fn run(args: SemArgs) -> anyhow::Result<()> {
    match args.action {
        Action::Create {
            obj,
            value,
            nsems,
            mode,
        } => match Target::parse(&obj, FAMILY)? {
            Target::Posix(n) => {
                ipcx::name::PosixName::semaphore(&n).map_err(crate::exit::usage)?;
                Semaphore::options()
                    .mode(mode)
                    .value(value)
                    .create_new(true)
                    .open(&n)?
                    .persist();
            }
            Target::Sysv(SysvRef::Key(k)) => {
                let v = u16::try_from(value).context("a System V semaphore holds at most 32767")?;
                SemaphoreSet::options()
                    .mode(mode)
                    .create_new(true)
                    .values(&vec![v; nsems])
                    .open(k, nsems)?
                    .persist();
            }
            Target::Sysv(SysvRef::Id(_)) => {
                anyhow::bail!("a set is created by key (sysv-sem:KEY), not by id")
            }
        },
        Action::Post { obj, index, trust } => match Target::parse(&obj, FAMILY)? {
            Target::Posix(n) => posix(&n, &trust)?.post()?,
            Target::Sysv(r) => set(r, &trust)?.post(index)?,
        },
        Action::Wait {
            obj,
            index,
            timeout,
            trust,
        } => {
            let wait = Wait::from_timeout(timeout);
            let timed_out = match Target::parse(&obj, FAMILY)? {
                Target::Posix(n) => match posix(&n, &trust)?.wait_with(wait) {
                    Err(ipcx::sem::NamedSemError::Timeout) => true,
                    other => {
                        other?;
                        false
                    }
                },
                Target::Sysv(r) => {
                    let s = set(r, &trust)?;
                    match s.op_wait(&[ipcx::sysv::sem::SemOp::wait(index)], wait) {
                        Err(ipcx::sysv::sem::SemSetError::Timeout) => true,
                        other => {
                            other?;
                            false
                        }
                    }
                }
            };
            if timed_out {
                eprintln!(
                    "ipcx: {}: still zero after the timeout",
                    crate::escape::escape(&obj)
                );
                return Err(crate::exit::Exit(crate::exit::EXIT_TIMEOUT).into());
            }
        }
        Action::Get { obj, index, trust } => {
            let v = match Target::parse(&obj, FAMILY)? {
                Target::Posix(n) => u64::from(posix(&n, &trust)?.value()?),
                Target::Sysv(r) => u64::from(set(r, &trust)?.get(usize::from(index))?),
            };
            println!("{v}");
        }
        Action::Rm { obj } => {
            let name = Target::parse(&obj, FAMILY)?.object_name(FAMILY);
            inventory::remove(&name)?;
        }
    }
    Ok(())
}
