//! Fuzzes the owner-record parser (`ipcx clean` reads every user's records, root included):
//! arbitrary file names and contents never panic, a record is believed only under its own file
//! name, and every record ipcx writes parses back to what was written.
#![no_main]

use ipcx::registry::{Identity, entry_name, parse_record, record_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (entry, text) = ipcx_fuzz::split_entry(data);
    if let Some(r) = parse_record(&entry, text, 7) {
        assert!(r.pid > 0);
        assert_eq!(entry_name(&r.object), entry);
        assert_eq!(r.uid, 7);
    }
    // Any object name: its record's file name fits, and the record reads back.
    let object = String::from_utf8_lossy(data);
    let name = entry_name(&object);
    assert!(name.len() <= 200 && !name.contains('/') && !name.contains('\0'));
    assert!(!name.starts_with('.') && !name.is_empty() || object.is_empty());
    let id = Identity::File {
        dev: data.len() as u64,
        ino: 3,
        btime: data.first().map(|&b| u64::from(b)),
    };
    let line = record_line(42, 99, data.len() % 2 == 0, Some(id), &object);
    if !name.is_empty() {
        let r = parse_record(&name, line.as_bytes(), 0).expect("a written record parses");
        assert_eq!(r.object, object);
        assert_eq!((r.pid, r.start_time, r.identity), (42, 99, Some(id)));
    }
});
