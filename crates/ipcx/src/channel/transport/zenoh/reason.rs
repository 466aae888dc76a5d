//! Zenoh's error texts, as ipcx prints them.

/// A Zenoh error's text without the source location Zenoh appends (` at FILE.rs:LINE.`).
pub(super) fn reason(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    match text.rfind(" at ") {
        Some(i) if text[i..].contains(".rs:") => text[..i].trim_end_matches('.').to_owned(),
        _ => text,
    }
}
