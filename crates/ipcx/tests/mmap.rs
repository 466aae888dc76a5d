//! Memory-mapped files shared between processes: writes seen both ways, flush, grow and remap,
//! read-only maps, bounds and errors.
mod util;

use std::fs::File;
use std::path::Path;

use ipcx::mmap::{MmapError, MmapFile};
use ipcx::shm::AccessError;

/// Maps `path` read-write.
#[allow(unsafe_code)]
fn map(path: impl AsRef<Path>) -> Result<MmapFile, MmapError> {
    // SAFETY: every file mapped here lives in a test's private temporary directory, and no
    // process truncates it below the mapping while it is mapped (only `grow` changes sizes).
    unsafe { MmapFile::open(path) }
}

/// Maps `path` read-only.
#[allow(unsafe_code)]
fn map_read_only(path: impl AsRef<Path>) -> Result<MmapFile, MmapError> {
    // SAFETY: as in `map`.
    unsafe { MmapFile::open_read_only(path) }
}

fn file_of(dir: &util::TempDir, len: u64) -> std::path::PathBuf {
    let p = dir.join("data");
    File::create(&p).unwrap().set_len(len).unwrap();
    p
}

#[test]
fn child_role() {
    util::role_main(&[
        // args: path: maps the file and reads until an error: exits 1 on Truncated, 2 else
        ("read_until_truncated", |args| {
            let m = map(&args[0]).unwrap();
            let mut buf = vec![0u8; 8192];
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let read = loop {
                match m.read_at(0, &mut buf) {
                    Ok(()) if std::time::Instant::now() < deadline => {}
                    r => break r,
                }
            };
            eprintln!("read {read:?}");
            let truncated = matches!(read, Err(MmapError::Truncated)) && m.is_truncated();
            std::process::exit(if truncated { 1 } else { 2 });
        }),
        ("reply", |args| {
            let m = map(&args[0]).unwrap();
            let mut buf = [0u8; 11];
            m.read_at(0, &mut buf).unwrap();
            assert_eq!(&buf, b"from parent");
            m.write_at(100, b"from child").unwrap();
            m.flush_range(100, 10).unwrap();
            m.write::<u32>(200, &0xfeed).unwrap();
            m.flush_async().unwrap();
            m.flush_range_async(200, 4).unwrap();
        }),
        ("grow", |args| {
            let mut m = map(&args[0]).unwrap();
            assert_eq!(m.len(), 16384);
            let mut buf = [0u8; 5];
            m.read_at(16000, &mut buf).unwrap();
            assert_eq!(&buf, b"grown");
            m.grow(32768).unwrap();
            m.write_at(30000, b"again").unwrap();
            m.flush().unwrap();
        }),
    ]);
}

#[test]
fn file_shared_between_processes_with_flush() {
    let dir = util::TempDir::new("mmap");
    let path = file_of(&dir, 4096);
    let m = map(&path).unwrap();
    assert_eq!(m.len(), 4096);
    assert!(m.is_writable());
    m.write_at(0, b"from parent").unwrap();
    m.flush().unwrap();
    util::spawn_role("reply", &[path.to_str().unwrap()]).expect_success();
    let mut buf = [0u8; 10];
    m.read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"from child");
    assert_eq!(m.read::<u32>(200).unwrap(), 0xfeed);
    // The file itself has the bytes (through the page cache, as read(2) sees them).
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(&on_disk[..11], b"from parent");
    assert_eq!(&on_disk[100..110], b"from child");
}

#[test]
fn grow_is_followed_by_the_other_process() {
    let dir = util::TempDir::new("mmap-grow");
    let path = file_of(&dir, 4096);
    let mut m = map(&path).unwrap();
    m.grow(16384).unwrap();
    assert_eq!(m.len(), 16384);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 16384);
    assert_eq!(m.read::<u64>(16376).unwrap(), 0, "new bytes read as zero");
    m.write_at(16000, b"grown").unwrap();
    util::spawn_role("grow", &[path.to_str().unwrap()]).expect_success();
    assert_eq!(m.len(), 16384);
    assert_eq!(m.remap().unwrap(), 32768);
    let mut buf = [0u8; 5];
    m.read_at(30000, &mut buf).unwrap();
    assert_eq!(&buf, b"again");
    m.read_at(16000, &mut buf).unwrap();
    assert_eq!(&buf, b"grown");
    assert!(matches!(
        m.grow(100),
        Err(MmapError::InvalidSize { size: 100, .. })
    ));
}

#[test]
fn read_only_maps_refuse_writes() {
    let dir = util::TempDir::new("mmap-ro");
    let path = file_of(&dir, 64);
    map(&path).unwrap().write_at(0, b"ro").unwrap();
    let mut m = map_read_only(&path).unwrap();
    assert!(!m.is_writable());
    assert_eq!(m.read::<[u8; 2]>(0).unwrap(), *b"ro");
    assert!(matches!(
        m.write_at(0, b"x"),
        Err(MmapError::Access(AccessError::ReadOnly { .. }))
    ));
    assert!(matches!(
        m.grow(128),
        Err(MmapError::Access(AccessError::ReadOnly { .. }))
    ));
    // A file opened read-only cannot be mapped read-write.
    #[allow(unsafe_code)]
    // SAFETY: private temporary file, never truncated while mapped.
    let e = unsafe { MmapFile::map(File::open(&path).unwrap()) }.unwrap_err();
    assert!(matches!(e, MmapError::PermissionDenied { .. }), "{e}");
}

#[test]
fn bounds_sizes_and_missing_files() {
    let dir = util::TempDir::new("mmap-err");
    let path = file_of(&dir, 100);
    let m = map(&path).unwrap();
    util::region::check_bounds(&m, |e| match e {
        MmapError::Access(a) => Some(a),
        _ => None,
    });
    assert!(matches!(
        m.flush_range(50, 51),
        Err(MmapError::Access(AccessError::OutOfBounds { .. }))
    ));
    m.flush_range(99, 1).unwrap();
    m.write_at(0, &[3]).unwrap();
    assert!(matches!(
        m.try_read::<bool>(0),
        Err(MmapError::Access(AccessError::InvalidValue { .. }))
    ));

    let empty = dir.join("empty");
    File::create(&empty).unwrap();
    assert!(matches!(
        map(&empty),
        Err(MmapError::InvalidSize { size: 0, .. })
    ));
    assert!(matches!(
        map(dir.join("missing")),
        Err(MmapError::NotFound { .. })
    ));
}

/// The file is truncated under a reading process (breaking the promise the constructor asks
/// for): reads fail with `Truncated` (the process exits 1) instead of SIGBUS.
#[test]
fn a_file_truncated_under_a_reader_is_an_error_not_sigbus() {
    let dir = util::TempDir::new("mmap-trunc");
    let path = file_of(&dir, 64 << 10);
    let mut child = util::spawn_role("read_until_truncated", &[path.to_str().unwrap()]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let status = child.wait_timeout(std::time::Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{status}");
}
