//! Raw byte access to the byte-stream endpoints (fifo, unix stream, tcp): bytes copied verbatim,
//! no framing. This is what `ipcx send --raw` / `ipcx recv --raw` use to talk to programs that do
//! not frame (socat, `cat > fifo`, a line-based TCP service).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::{Endpoint, Error, Options};
use crate::socket::UnixAddr;

impl Endpoint {
    /// A writer of raw bytes to a byte-stream endpoint (connects or opens, like
    /// [`Endpoint::sender`]).
    pub fn raw_writer(&self, opts: &Options) -> Result<Box<dyn Write + Send>, Error> {
        let what = self.to_string();
        match self {
            Endpoint::Fifo(path) => {
                let fifo = fifo_raw_writer(path, opts)?;
                Ok(Box::new(fifo))
            }
            Endpoint::Unix(addr) => {
                let s = match addr {
                    UnixAddr::Path(p) => UnixStream::connect(p),
                    UnixAddr::Abstract(n) => {
                        SocketAddr::from_abstract_name(n).and_then(|a| UnixStream::connect_addr(&a))
                    }
                }
                .map_err(|e| not_listening(&what, e))?;
                Ok(Box::new(s))
            }
            Endpoint::Tcp { host, port } => {
                let s = TcpStream::connect((host.as_str(), *port))
                    .map_err(|e| not_listening(&what, e))?;
                s.set_nodelay(true).ok();
                Ok(Box::new(s))
            }
            _ => Err(not_a_stream(self)),
        }
    }

    /// A reader of raw bytes from a byte-stream endpoint: binds or creates like
    /// [`Endpoint::receiver`], then yields the bytes of one writer or connection after another.
    pub fn raw_reader(&self, opts: &Options) -> Result<Box<dyn Read + Send>, Error> {
        let what = self.to_string();
        match self {
            Endpoint::Fifo(path) => Ok(Box::new(fifo_raw_reader(path, opts)?)),
            Endpoint::Unix(addr) => {
                let (listener, file) = match addr {
                    UnixAddr::Path(p) => {
                        let l = UnixListener::bind(p).map_err(|e| Error::from_io(&what, e))?;
                        (l, Some(RemoveOnDrop(p.clone())))
                    }
                    UnixAddr::Abstract(n) => {
                        let a = SocketAddr::from_abstract_name(n)
                            .map_err(|e| Error::from_io(&what, e))?;
                        let l =
                            UnixListener::bind_addr(&a).map_err(|e| Error::from_io(&what, e))?;
                        (l, None)
                    }
                };
                Ok(Box::new(Sequential {
                    accept: Box::new(move || {
                        let _keep = &file;
                        listener
                            .accept()
                            .map(|(s, _)| Box::new(s) as Box<dyn Read + Send>)
                    }),
                    current: None,
                }))
            }
            Endpoint::Tcp { host, port } => {
                let addr = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| Error::from_io(&what, e))?
                    .next()
                    .ok_or_else(|| Error::NotFound {
                        what: format!("address for {what}"),
                        hint: "check the host name".into(),
                    })?;
                let listener = TcpListener::bind(addr).map_err(|e| Error::from_io(&what, e))?;
                Ok(Box::new(Sequential {
                    accept: Box::new(move || {
                        listener
                            .accept()
                            .map(|(s, _)| Box::new(s) as Box<dyn Read + Send>)
                    }),
                    current: None,
                }))
            }
            _ => Err(not_a_stream(self)),
        }
    }
}

fn not_a_stream(ep: &Endpoint) -> Error {
    Error::Unsupported {
        what: "raw byte access (--raw)".into(),
        mechanism: format!(
            "{ep}, which keeps message boundaries; --raw applies to fifo:, unix: and tcp:"
        ),
    }
}

fn not_listening(what: &str, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ECONNREFUSED) => Error::NotFound {
            what: format!("listener at {what}"),
            hint: "start `ipcx recv` (or the server) first".into(),
        },
        _ => Error::from_io(what, e),
    }
}

type Accept = Box<dyn FnMut() -> io::Result<Box<dyn Read + Send>> + Send>;

/// Reads one accepted connection to its end, then accepts the next.
struct Sequential {
    accept: Accept,
    current: Option<Box<dyn Read + Send>>,
}

impl Read for Sequential {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                self.current = Some((self.accept)()?);
            }
            let Some(cur) = self.current.as_mut() else {
                continue;
            };
            match cur.read(buf) {
                Ok(0) => self.current = None,
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
                Err(_) => self.current = None,
            }
        }
    }
}

/// Removes a socket file on drop.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        remove_socket_file(&self.0);
    }
}

fn remove_socket_file(p: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(p);
    }
}

/// Opens a FIFO for raw writing.
fn fifo_raw_writer(path: &Path, opts: &Options) -> Result<std::fs::File, Error> {
    let _ = opts;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::from_io(format!("fifo:{}", path.display()), e))
}

/// Opens a FIFO for raw reading.
fn fifo_raw_reader(path: &Path, opts: &Options) -> Result<std::fs::File, Error> {
    let _ = opts;
    std::fs::File::open(path).map_err(|e| Error::from_io(format!("fifo:{}", path.display()), e))
}
