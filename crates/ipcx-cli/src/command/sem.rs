//! `ipcx sem create|post|wait|get|rm OBJ`: POSIX named (`/NAME`, `posix-sem:/NAME`) and System
//! V (`sysv-sem:KEY`, one semaphore of the set with `--index N`) semaphores.

use std::time::Duration;

use anyhow::Context;
use ipcx::inventory::{self, SysvRef};
use ipcx::sem::Semaphore;
use ipcx::sysv::sem::SemaphoreSet;
use ipcx::wait::Wait;

use crate::cli::{parse_duration, parse_mode};
use crate::command::{Family, Target};

const FAMILY: Family = Family::Sem;

/// Arguments of `ipcx sem`.
#[derive(Debug, clap::Args)]
pub struct SemArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
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
    },
    /// Print the value.
    Get {
        /// The semaphore.
        obj: String,
        /// System V: which semaphore of the set.
        #[arg(long, default_value_t = 0)]
        index: u16,
    },
    /// Remove the semaphore (System V: the whole set).
    Rm {
        /// The semaphore.
        obj: String,
    },
}

fn set(r: SysvRef) -> anyhow::Result<SemaphoreSet> {
    Ok(match r {
        SysvRef::Key(k) => SemaphoreSet::open(k)?,
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
                ipcx::name::PosixName::semaphore(&n).map_err(crate::command::usage)?;
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
        Action::Post { obj, index } => match Target::parse(&obj, FAMILY)? {
            Target::Posix(n) => Semaphore::open(&n)?.post()?,
            Target::Sysv(r) => set(r)?.post(index)?,
        },
        Action::Wait {
            obj,
            index,
            timeout,
        } => {
            let wait = Wait::from_timeout(timeout);
            let timed_out = match Target::parse(&obj, FAMILY)? {
                Target::Posix(n) => match Semaphore::open(&n)?.wait_with(wait) {
                    Err(ipcx::sem::Error::Timeout) => true,
                    other => {
                        other?;
                        false
                    }
                },
                Target::Sysv(r) => {
                    let s = set(r)?;
                    match s.op_wait(&[ipcx::sysv::sem::SemOp::wait(index)], wait) {
                        Err(ipcx::sysv::sem::Error::Timeout) => true,
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
                return Err(crate::Exit(crate::EXIT_TIMEOUT).into());
            }
        }
        Action::Get { obj, index } => {
            let v = match Target::parse(&obj, FAMILY)? {
                Target::Posix(n) => u64::from(Semaphore::open(&n)?.value()?),
                Target::Sysv(r) => u64::from(set(r)?.get(usize::from(index))?),
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
