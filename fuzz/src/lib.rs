//! Pieces the fuzz targets share.

/// Splits a fuzz input for the record parsers: the first line is the record's file name (read
/// as UTF-8, lossily), the rest its content.
pub fn split_entry(data: &[u8]) -> (String, &[u8]) {
    let (entry, text) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    (String::from_utf8_lossy(entry).into_owned(), text)
}
