//! Text from other processes (object names, paths, error messages that quote them), made safe to
//! print on a terminal.
//!
//! Anyone can create a file in `/dev/shm` whose name holds ESC, BEL, CR or a newline; printed raw,
//! such a name could forge a row of `ipcx ls` or retitle the terminal. Every human-readable line
//! the CLI prints goes through [`escape`] (or [`escape_bytes`]): control characters, invisible
//! direction and width overrides, the backslash itself and invalid UTF-8 are written as escapes
//! (`\n`, `\e`, `\x07`, `\u{202e}`, `\\`), so the printed text is one line of visible characters
//! and tells every name apart. JSON output (`crate::json`) escapes the same characters as
//! `\uXXXX`.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach a terminal raw: C0 and C1 controls, DEL, the backslash (the escape
/// character itself), and the invisible format characters that reorder or hide text.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(c,
            '\u{061c}'                  // Arabic letter mark
            | '\u{200b}'..='\u{200f}'   // zero-width characters, LRM, RLM
            | '\u{2028}'..='\u{202e}'   // line/paragraph separators, bidi embeddings and overrides
            | '\u{2060}'..='\u{206f}'   // word joiner, invisible operators, bidi isolates
            | '\u{feff}'                // zero-width no-break space (BOM)
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{1b}' => out.push_str("\\e"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `text` with every character that is unsafe on a terminal escaped (borrowed when there is none).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Like [`escape`], for bytes that may not be UTF-8 (a payload, say): each invalid byte is
/// written as `\xNN`.
#[allow(dead_code)] // for commands that print peer bytes; `escape` covers every name today
pub fn escape_bytes(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => escape(s),
        Err(_) => {
            let mut out = String::with_capacity(bytes.len() + 8);
            for chunk in bytes.utf8_chunks() {
                out.push_str(&escape(chunk.valid()));
                for b in chunk.invalid() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape("posix-shm:/frames 0600"), Cow::Borrowed(_)));
        assert_eq!(escape("ünïcödé /x"), "ünïcödé /x");
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(escape("/a\u{1b}[2Jb\u{7}\r\n"), "/a\\e[2Jb\\x07\\r\\n");
        assert_eq!(escape("a\\b"), "a\\\\b");
        assert_eq!(escape("\u{7f}\u{9b}\u{202e}"), "\\x7f\\u{9b}\\u{202e}");
        assert_eq!(escape_bytes(b"a\xffb\n"), "a\\xffb\\n");
        for s in ["\u{1b}]0;title\u{7}", "x\u{85}y", "\u{2028}"] {
            assert!(
                !escape(s)
                    .chars()
                    .any(|c| c.is_control() || needs_escape(c) && c != '\\')
            );
        }
    }
}
