//! `ipcx shm create|write|read|rm OBJ`: POSIX (`/NAME`, `posix-shm:/NAME`) and System V
//! (`sysv-shm:KEY`) shared memory.

use std::io::{self, Read, Write};

use anyhow::{Context, bail};
use ipcx::inventory::{self, SysvRef};
use ipcx::shm::Shm;
use ipcx::sysv::shm::Segment;

use crate::args::{Actions, TrustFlags};
use crate::exit::usage;
use crate::parse::{parse_mode, parse_size};
use crate::target::{Family, Target};

const FAMILY: Family = Family::Shm;

/// Arguments of `ipcx shm`.
pub type ShmArgs = Actions<Action>;

/// The actions of `ipcx shm`.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Create a segment that outlives the command (until `ipcx shm rm`).
    Create {
        /// `/NAME`, `posix-shm:/NAME` or `sysv-shm:KEY`.
        obj: String,
        /// Size in bytes (suffixes k, m, g).
        #[arg(long, value_parser = parse_size)]
        size: u64,
        /// Mode (octal).
        #[arg(long, value_parser = parse_mode, default_value = "600")]
        mode: u32,
    },
    /// Write DATA (or stdin) at --offset.
    Write {
        /// The segment.
        obj: String,
        /// The bytes to write; with none, stdin.
        data: Option<String>,
        /// Where to write.
        #[arg(long, value_parser = parse_size, default_value = "0")]
        offset: u64,
        /// Whose segments are trusted.
        #[command(flatten)]
        trust: TrustFlags,
    },
    /// Write --len bytes from --offset to stdout (default: to the end).
    Read {
        /// The segment.
        obj: String,
        /// Where to start.
        #[arg(long, value_parser = parse_size, default_value = "0")]
        offset: u64,
        /// How many bytes.
        #[arg(long, value_parser = parse_size)]
        len: Option<u64>,
        /// Whose segments are trusted.
        #[command(flatten)]
        trust: TrustFlags,
    },
    /// Remove the segment.
    Rm {
        /// The segment.
        obj: String,
    },
}

/// The existing System V segment, if its owner and creator are trusted.
fn segment(r: SysvRef, trust: &TrustFlags) -> anyhow::Result<Segment> {
    Ok(match r {
        SysvRef::Key(k) => Segment::options().trust(trust.trust()).open(k)?,
        SysvRef::Id(id) => Segment::from_id(id)?,
    })
}

/// Runs `ipcx shm`.
pub fn run(args: ShmArgs) -> anyhow::Result<()> {
    match args.action {
        Action::Create { obj, size, mode } => match Target::parse(&obj, FAMILY)? {
            Target::Posix(n) => {
                ipcx::name::PosixName::new(&n).map_err(usage)?;
                let shm = Shm::options().mode(mode).size(size).create_new(&n)?;
                shm.persist();
            }
            Target::Sysv(SysvRef::Key(k)) => {
                let size = usize::try_from(size).context("size too large")?;
                Segment::options()
                    .mode(mode)
                    .size(size)
                    .create_new(k)?
                    .persist();
            }
            Target::Sysv(SysvRef::Id(_)) => {
                bail!("a segment is created by key (sysv-shm:KEY), not by id")
            }
        },
        Action::Write {
            obj,
            data,
            offset,
            trust,
        } => {
            let data = match data {
                Some(d) => d.into_bytes(),
                None => {
                    let mut v = Vec::new();
                    io::stdin()
                        .lock()
                        .read_to_end(&mut v)
                        .context("reading stdin")?;
                    v
                }
            };
            let offset = usize::try_from(offset).context("offset too large")?;
            match Target::parse(&obj, FAMILY)? {
                Target::Posix(n) => Shm::options()
                    .trust(trust.trust())
                    .open(&n)?
                    .map()?
                    .write_at(offset, &data)?,
                Target::Sysv(r) => segment(r, &trust)?.attach()?.write_at(offset, &data)?,
            }
        }
        Action::Read {
            obj,
            offset,
            len,
            trust,
        } => {
            let mut out = io::stdout().lock();
            match Target::parse(&obj, FAMILY)? {
                Target::Posix(n) => {
                    let map = Shm::options()
                        .read_only(true)
                        .trust(trust.trust())
                        .open(&n)?
                        .map_read_only()?;
                    read(&mut out, map.len(), offset, len, |o, b| {
                        map.read_at(o, b).map_err(Into::into)
                    })?
                }
                Target::Sysv(r) => {
                    let att = segment(r, &trust)?.attach_read_only()?;
                    read(&mut out, att.len(), offset, len, |o, b| {
                        att.read_at(o, b).map_err(Into::into)
                    })?
                }
            };
            out.flush()?;
        }
        Action::Rm { obj } => {
            let name = Target::parse(&obj, FAMILY)?.object_name(FAMILY);
            inventory::remove(&name)?;
        }
    }
    Ok(())
}

/// How much `shm read` copies at once: the output is streamed, never buffered whole.
const READ_CHUNK: usize = 64 << 10;

/// Writes `len` bytes (default: to the end) from `offset` of a segment of `size` bytes to
/// `out`, in chunks. The range is checked against the size (a runtime error, exit 1, when it
/// reaches past the end) before anything is allocated.
fn read(
    out: &mut impl Write,
    size: usize,
    offset: u64,
    len: Option<u64>,
    f: impl Fn(usize, &mut [u8]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let size = size as u64;
    if offset > size {
        bail!("--offset {offset} is past the end of the segment ({size} bytes)");
    }
    let len = len.unwrap_or(size - offset);
    let end = offset
        .checked_add(len)
        .filter(|&end| end <= size)
        .with_context(|| {
            format!(
                "--offset {offset} --len {len} reaches past the end of the segment ({size} bytes)"
            )
        })?;
    // Both fit in usize: they are at most `size`, which came from a usize.
    let (mut at, end) = (offset as usize, end as usize);
    let mut buf = vec![0u8; READ_CHUNK.min(end - at)];
    while at < end {
        let n = READ_CHUNK.min(end - at);
        f(at, &mut buf[..n])?;
        out.write_all(&buf[..n])?;
        at += n;
    }
    Ok(())
}
