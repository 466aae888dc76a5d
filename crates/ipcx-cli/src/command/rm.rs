//! `ipcx rm OBJ`: remove one object.

use ipcx::inventory::{self, ObjectName};

/// Arguments of `ipcx rm`.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// The objects, named as `ipcx ls` prints them (posix-shm:/NAME, sysv-mq:KEY, ...).
    #[arg(required = true)]
    pub objects: Vec<String>,
}

/// Runs `ipcx rm`.
pub fn run(args: RmArgs) -> anyhow::Result<()> {
    let names = args
        .objects
        .iter()
        .map(|o| ObjectName::parse(o).map_err(crate::exit::usage))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for n in &names {
        inventory::remove(n)?;
        ipcx::registry::unregister(&n.to_string());
    }
    Ok(())
}
