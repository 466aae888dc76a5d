//! Fuzzes the service-record parser (`ipcx ls --services` and `discover` read every record of
//! the user's directory, root every user's): arbitrary file names and contents never panic, a
//! record is believed only under a file name that starts with its pid, and what parses writes
//! back to a record that parses to the same service.
#![no_main]

use ipcx::discovery::{parse_record, record_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (entry, text) = ipcx_fuzz::split_entry(data);
    if let Ok((s, ns)) = parse_record(&entry, text, 7) {
        assert!(s.pid > 0 && !s.alive);
        assert_eq!(s.uid, 7);
        assert!(entry.starts_with(&format!("{}-", s.pid)));
        let line = record_line(&s, ns);
        let (again, ns2) =
            parse_record(&entry, line.as_bytes(), 7).expect("a written record parses");
        assert_eq!((again, ns2), (s, ns));
    }
});
