//! `--json` output: the one place where the commands turn records into JSON.
//!
//! Two shapes, as the CLI contract says: a command that streams (`recv`, `sub`, `signal wait`,
//! `bridge` reports) writes one compact object per line with [`line`], flushed at once so that
//! a reader sees each record as it happens; a command that reports a snapshot (`ls`,
//! `ls --services`, `ls --waiters`, `deadlock`, `clean`, `call --list`) writes one
//! pretty-printed document with [`document`]; `ipcx call` prints a result as one line, its
//! strings written with [`string`].
//!
//! Every string is escaped, so the output is valid JSON whatever a name holds, and safe on a
//! terminal: besides what JSON requires (quotes, backslashes, C0 controls), the characters that
//! [`crate::escape`] keeps off a terminal (DEL, C1 controls such as CSI, invisible direction
//! overrides) are written as `\uXXXX` escapes; a JSON reader gets the same string back. Bytes
//! that may not be UTF-8 (a payload, a topic) go through [`bytes`]: as text when they are UTF-8, otherwise base64 under a key that
//! says so. The same meaning has the same key in every command: `pid`, `uid`, `gid` (a process
//! and its credentials), `priority`, `type`, `text` / `base64` (a payload), `name` (an object or
//! a service, as `ipcx rm` and `ipcx call` take it), `kind`, `alive`.

use std::io::{self, Write};

use base64::Engine;
use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

use crate::escape::needs_escape;

/// A JSON object being built.
pub type Object = serde_json::Map<String, serde_json::Value>;

/// Writes `record` as one line of compact JSON and flushes (a streamed record).
pub fn line(out: &mut impl Write, record: &impl Serialize) -> io::Result<()> {
    write(out, record, CompactFormatter)
}

/// Writes `doc` as one pretty-printed JSON document followed by a newline (a snapshot).
pub fn document(out: &mut impl Write, doc: &impl Serialize) -> io::Result<()> {
    write(out, doc, PrettyFormatter::new())
}

fn write<F: Formatter>(out: &mut impl Write, v: &impl Serialize, f: F) -> io::Result<()> {
    // Into a buffer first: a record that fails half-way prints nothing.
    let mut buf = Vec::with_capacity(128);
    v.serialize(&mut serde_json::Serializer::with_formatter(
        &mut buf,
        TerminalSafe(f),
    ))?;
    buf.push(b'\n');
    out.write_all(&buf)?;
    out.flush()
}

/// Appends `s` to `out` as a JSON string, escaped as every record's strings are: for writers
/// that lay out the JSON themselves (`ipcx call` prints a MessagePack result in its own
/// order).
pub fn string(out: &mut Vec<u8>, s: &str) {
    // Writing into a vector cannot fail.
    let _ = s.serialize(&mut serde_json::Serializer::with_formatter(
        out,
        TerminalSafe(CompactFormatter),
    ));
}

/// A formatter that also escapes what must not reach a terminal raw (see the module docs);
/// the layout is `F`'s.
struct TerminalSafe<F>(F);

impl<F: Formatter> Formatter for TerminalSafe<F> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((i, c)) = rest.char_indices().find(|&(_, c)| needs_escape(c)) {
            w.write_all(&rest.as_bytes()[..i])?;
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                write!(w, "\\u{u:04x}")?;
            }
            rest = &rest[i + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// Adds the bytes `b` to `obj` under `key` when they are UTF-8 text, else base64-encoded under
/// `KEY_base64`. The payload (`key` = `"text"`) is the exception: its base64 form is `base64`,
/// as `recv --json` has always printed it.
pub fn bytes(obj: &mut Object, key: &str, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(text) => {
            obj.insert(key.into(), text.into());
        }
        Err(_) => {
            let k = if key == PAYLOAD {
                "base64".to_owned()
            } else {
                format!("{key}_base64")
            };
            obj.insert(
                k,
                base64::engine::general_purpose::STANDARD.encode(b).into(),
            );
        }
    }
}

/// The key of a message's payload (`text`, or `base64` when it is not UTF-8).
pub const PAYLOAD: &str = "text";

/// Adds a message's payload to `obj`: `text`, or `base64` when it is not UTF-8.
pub fn payload(obj: &mut Object, data: &[u8]) {
    bytes(obj, PAYLOAD, data);
}

/// `value` serialized as a JSON object (an empty one when it is not a map).
pub fn object(value: &impl Serialize) -> Object {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => Object::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_text_or_base64() {
        let mut o = Object::new();
        payload(&mut o, "wörld\n\u{1b}".as_bytes());
        assert_eq!(o["text"], "wörld\n\u{1b}");
        let mut o = Object::new();
        payload(&mut o, b"a\xffb");
        assert_eq!(o["base64"], "Yf9i");
        assert!(!o.contains_key("text"));
        let mut o = Object::new();
        bytes(&mut o, "topic", b"\xfe");
        assert_eq!(o["topic_base64"], "/g==");
    }

    #[test]
    fn lines_are_valid_json_whatever_the_text() {
        let mut o = Object::new();
        o.insert("name".into(), "/a\"b\\c\u{0}\u{7}\n\u{202e}".into());
        let mut out = Vec::new();
        line(&mut out, &o).unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(!text.trim_end().chars().any(needs_escape_raw), "{text}");
        assert!(text.contains("\\u202e"), "{text}");
        let back: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(back["name"], "/a\"b\\c\u{0}\u{7}\n\u{202e}");
        let mut doc = Vec::new();
        document(&mut doc, &serde_json::json!({"objects": [o], "n": [1, 2]})).unwrap();
        let text = std::str::from_utf8(&doc).unwrap();
        assert!(
            !text.chars().any(|c| c != '\n' && needs_escape_raw(c)),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(back["objects"][0]["name"], "/a\"b\\c\u{0}\u{7}\n\u{202e}");
        assert!(text.contains("\n  \"n\": ["), "pretty layout kept: {text}");
    }

    /// A character that must not be in the output raw (the backslash is JSON's own escape).
    fn needs_escape_raw(c: char) -> bool {
        c != '\\' && needs_escape(c)
    }
}
