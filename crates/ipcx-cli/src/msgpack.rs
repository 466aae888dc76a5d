//! JSON to MessagePack and back, for `ipcx call`.
//!
//! JSON values map one to one: null, booleans, numbers (integers in their shortest MessagePack
//! form, other numbers as float 64), strings, arrays, objects (maps with string keys, in the
//! order they arrived). What JSON cannot hold is written as an object of one key starting with
//! `$` (a *tag*), in both directions:
//!
//! | MessagePack | JSON |
//! |---|---|
//! | bin (and a str that is not UTF-8) | `{"$bin": "BASE64"}` |
//! | ext of type T | `{"$ext": [T, "BASE64"]}` |
//! | float NaN, +inf, -inf | `{"$float": "NaN"}`, `{"$float": "inf"}`, `{"$float": "-inf"}` |
//! | a map with a key that is not a str | `{"$map": [[KEY, VALUE], ...]}` |
//! | a map of one str key starting with `$` | `{"$map": [[KEY, VALUE]]}` (so that it is not read as a tag) |
//!
//! BASE64 is the standard alphabet with padding. An object of one `$` key that is not a tag
//! is refused on input (write it as `$map`). A float 32 prints with the digits that identify
//! it as a float 32 (`0.1`, not `0.10000000149011612`).
//!
//! Bytes from a server are hostile: every length is checked against the bytes present before
//! anything is reserved (an array claiming four billion elements in ten bytes is an error, not
//! an allocation), nesting is limited to [`MAX_DEPTH`], and what is printed grows with the
//! bytes received (at most a few times their number). Printed text is escaped for a terminal
//! inside JSON strings (`\u001b`, `\u202e`...), so the output is one line of valid JSON.

use std::io::Write as _;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// The deepest nesting of arrays and maps read or written.
pub const MAX_DEPTH: usize = 128;

/// The tags, as JSON spells them.
const TAGS: [&str; 4] = ["$bin", "$ext", "$float", "$map"];

// ---------------------------------------------------------------------------------------
// JSON to MessagePack.

/// `v` as MessagePack (tags as the module says); `Err` says what in `v` is wrong.
pub fn from_json(v: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    encode(v, &mut out, 0)?;
    Ok(out)
}

fn encode(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    match v {
        Value::Null => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                put_uint(out, u);
            } else if let Some(i) = n.as_i64() {
                put_int(out, i);
            } else {
                put_f64(out, n.as_f64().unwrap_or(f64::NAN));
            }
        }
        Value::String(s) => put_str(out, s),
        Value::Array(a) => {
            put_len(out, a.len(), [0x90, 0xdc, 0xdd], 15);
            for x in a {
                encode(x, out, depth + 1)?;
            }
        }
        Value::Object(m) => {
            if m.len() == 1
                && let Some((k, x)) = m.iter().next()
                && k.starts_with('$')
            {
                return encode_tag(k, x, out, depth);
            }
            put_len(out, m.len(), [0x80, 0xde, 0xdf], 15);
            for (k, x) in m {
                put_str(out, k);
                encode(x, out, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// The value of the tag `{tag: x}`.
fn encode_tag(tag: &str, x: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    let b64 = |v: &Value| -> Result<Vec<u8>, String> {
        let s = v
            .as_str()
            .ok_or_else(|| format!("{tag}: expected a base64 string"))?;
        STANDARD
            .decode(s)
            .map_err(|e| format!("{tag}: invalid base64: {e}"))
    };
    match tag {
        "$bin" => {
            let b = b64(x)?;
            put_len(out, b.len(), [0xc4, 0xc5, 0xc6], usize::MAX);
            out.extend_from_slice(&b);
        }
        "$ext" => {
            let (t, data) = match x.as_array().map(Vec::as_slice) {
                Some([t, d]) => (t, d),
                _ => return Err("$ext: expected [TYPE, \"BASE64\"]".into()),
            };
            let t = t
                .as_i64()
                .and_then(|t| i8::try_from(t).ok())
                .ok_or("$ext: the type is an integer from -128 to 127")?;
            let b = b64(data)?;
            put_ext(out, t, &b);
        }
        "$float" => {
            let f = match x.as_str() {
                Some("NaN") => f64::NAN,
                Some("inf") => f64::INFINITY,
                Some("-inf") => f64::NEG_INFINITY,
                _ => return Err("$float: expected \"NaN\", \"inf\" or \"-inf\"".into()),
            };
            put_f64(out, f);
        }
        "$map" => {
            let pairs = x
                .as_array()
                .ok_or("$map: expected an array of [KEY, VALUE] pairs")?;
            put_len(out, pairs.len(), [0x80, 0xde, 0xdf], 15);
            for p in pairs {
                let Some([k, v]) = p.as_array().map(Vec::as_slice) else {
                    return Err("$map: expected an array of [KEY, VALUE] pairs".into());
                };
                encode(k, out, depth + 1)?;
                encode(v, out, depth + 1)?;
            }
        }
        other => {
            return Err(format!(
                "unknown tag {other:?} (the tags are {}); write a map of one key starting \
                 with $ as {{\"$map\": [[KEY, VALUE]]}}",
                TAGS.join(", ")
            ));
        }
    }
    Ok(())
}

fn put_uint(out: &mut Vec<u8>, u: u64) {
    match u {
        0..=0x7f => out.push(u as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, u as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        }
        _ => {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    }
}

/// A negative integer (or any `i`; non-negative ones go to `put_uint`).
fn put_int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        return put_uint(out, i as u64);
    }
    if i >= -32 {
        out.push(i as u8);
    } else if i >= i64::from(i8::MIN) {
        out.extend_from_slice(&[0xd0, i as u8]);
    } else if i >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

fn put_f64(out: &mut Vec<u8>, f: f64) {
    out.push(0xcb);
    out.extend_from_slice(&f.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else {
        put_len(out, n, [0xd9, 0xda, 0xdb], 0);
    }
    out.extend_from_slice(s.as_bytes());
}

/// A length header: `codes` are the fix form (`fix_max` or fewer items, the count in its low
/// bits; `0` when there is none), then the 16 and 32-bit forms (or 8, 16 and 32 when
/// `fix_max` is `usize::MAX`, for bin, or `0`, for str).
fn put_len(out: &mut Vec<u8>, n: usize, codes: [u8; 3], fix_max: usize) {
    match fix_max {
        // bin 8/16/32
        usize::MAX | 0 => {
            if let Ok(n) = u8::try_from(n) {
                out.extend_from_slice(&[codes[0], n]);
            } else if let Ok(n) = u16::try_from(n) {
                out.push(codes[1]);
                out.extend_from_slice(&n.to_be_bytes());
            } else {
                out.push(codes[2]);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
        }
        _ if n <= fix_max => out.push(codes[0] | n as u8),
        _ => {
            if let Ok(n) = u16::try_from(n) {
                out.push(codes[1]);
                out.extend_from_slice(&n.to_be_bytes());
            } else {
                out.push(codes[2]);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
        }
    }
}

fn put_ext(out: &mut Vec<u8>, t: i8, data: &[u8]) {
    let fixed = match data.len() {
        1 => Some(0xd4),
        2 => Some(0xd5),
        4 => Some(0xd6),
        8 => Some(0xd7),
        16 => Some(0xd8),
        _ => None,
    };
    match fixed {
        Some(code) => out.push(code),
        None => put_len(out, data.len(), [0xc7, 0xc8, 0xc9], usize::MAX),
    }
    out.push(t as u8);
    out.extend_from_slice(data);
}

// ---------------------------------------------------------------------------------------
// MessagePack to JSON text.

/// One value's header, with the bytes of a str, bin or ext.
enum Head<'a> {
    Nil,
    Bool(bool),
    Uint(u64),
    Int(i64),
    F32(f32),
    F64(f64),
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Ext(i8, &'a [u8]),
    Array(usize),
    Map(usize),
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let left = self.left();
        if n > left as u64 {
            return Err(format!(
                "a length of {n} at byte {} but only {left} bytes follow",
                self.pos
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    /// A big-endian unsigned integer of `n` bytes (1, 2, 4 or 8).
    fn be(&mut self, n: u64) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn head(&mut self) -> Result<Head<'a>, String> {
        let at = self.pos;
        let b = self.take(1)?[0];
        Ok(match b {
            0x00..=0x7f => Head::Uint(u64::from(b)),
            0x80..=0x8f => self.items(u64::from(b & 0x0f), true)?,
            0x90..=0x9f => self.items(u64::from(b & 0x0f), false)?,
            0xa0..=0xbf => Head::Str(self.take(u64::from(b & 0x1f))?),
            0xc0 => Head::Nil,
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4..=0xc6 => {
                let n = self.be(1 << (b - 0xc4))?;
                Head::Bin(self.take(n)?)
            }
            0xc7..=0xc9 => {
                let n = self.be(1 << (b - 0xc7))?;
                let t = self.take(1)?[0] as i8;
                Head::Ext(t, self.take(n)?)
            }
            0xca => Head::F32(f32::from_bits(self.be(4)? as u32)),
            0xcb => Head::F64(f64::from_bits(self.be(8)?)),
            0xcc..=0xcf => Head::Uint(self.be(1 << (b - 0xcc))?),
            0xd0..=0xd3 => {
                let n = 1u32 << (b - 0xd0);
                let raw = self.be(u64::from(n))?;
                // Sign-extend from n bytes.
                let shift = 64 - 8 * n;
                Head::Int(((raw << shift) as i64) >> shift)
            }
            0xd4..=0xd8 => {
                let t = self.take(1)?[0] as i8;
                Head::Ext(t, self.take(1 << (b - 0xd4))?)
            }
            0xd9..=0xdb => {
                let n = self.be(1 << (b - 0xd9))?;
                Head::Str(self.take(n)?)
            }
            0xdc | 0xdd => {
                let n = self.be(if b == 0xdc { 2 } else { 4 })?;
                self.items(n, false)?
            }
            0xde | 0xdf => {
                let n = self.be(if b == 0xde { 2 } else { 4 })?;
                self.items(n, true)?
            }
            0xe0..=0xff => Head::Int(i64::from(b as i8)),
            0xc1 => return Err(format!("byte 0xc1 (never used) at byte {at}")),
        })
    }

    /// An array of `n` values or a map of `n` pairs, if that many could follow (each value
    /// takes at least one byte).
    fn items(&self, n: u64, map: bool) -> Result<Head<'a>, String> {
        let need = if map { n * 2 } else { n };
        if need > self.left() as u64 {
            return Err(format!(
                "{} of {n} {} at byte {} but only {} bytes follow",
                if map { "a map" } else { "an array" },
                if map { "entries" } else { "elements" },
                self.pos,
                self.left()
            ));
        }
        Ok(if map {
            Head::Map(n as usize)
        } else {
            Head::Array(n as usize)
        })
    }
}

/// `bytes` (one MessagePack value) as one line of JSON, escaped for a terminal; `Err` says
/// why the bytes are not one valid value.
pub fn to_json(bytes: &[u8]) -> Result<String, String> {
    // First pass: check everything and decide, for each map in order, whether it prints as
    // an object (all keys str, and not a lone `$` key) or as a `$map`.
    let mut objects = Vec::new();
    let mut r = Reader { bytes, pos: 0 };
    scan(&mut r, 0, &mut objects)?;
    if r.left() > 0 {
        return Err(format!(
            "{} bytes follow the value (at byte {})",
            r.left(),
            r.pos
        ));
    }
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let mut r = Reader { bytes, pos: 0 };
    write(&mut r, &mut objects.into_iter(), &mut out)?;
    // Only whole strings and ASCII were written.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn scan(r: &mut Reader<'_>, depth: usize, objects: &mut Vec<bool>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    match r.head()? {
        Head::Array(n) => {
            for _ in 0..n {
                scan(r, depth + 1, objects)?;
            }
        }
        Head::Map(n) => {
            let i = objects.len();
            objects.push(true);
            for _ in 0..n {
                let key_at = r.pos;
                match r.head()? {
                    Head::Str(k) if std::str::from_utf8(k).is_ok() => {
                        if n == 1 && k.starts_with(b"$") {
                            objects[i] = false;
                        }
                    }
                    _ => {
                        objects[i] = false;
                        r.pos = key_at;
                        scan(r, depth + 1, objects)?;
                    }
                }
                scan(r, depth + 1, objects)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn write(
    r: &mut Reader<'_>,
    objects: &mut impl Iterator<Item = bool>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match r.head()? {
        Head::Nil => out.extend_from_slice(b"null"),
        Head::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Head::Uint(u) => {
            let _ = write!(out, "{u}");
        }
        Head::Int(i) => {
            let _ = write!(out, "{i}");
        }
        // The shortest digits that give back this float 32.
        Head::F32(f) => put_float(out, f.to_string().parse().unwrap_or(f64::from(f))),
        Head::F64(f) => put_float(out, f),
        Head::Str(s) => match std::str::from_utf8(s) {
            Ok(s) => crate::json::string(out, s),
            Err(_) => put_b64_tag(out, "$bin", s),
        },
        Head::Bin(b) => put_b64_tag(out, "$bin", b),
        Head::Ext(t, b) => {
            let _ = write!(out, "{{\"$ext\":[{t},\"{}\"]}}", STANDARD.encode(b));
        }
        Head::Array(n) => {
            out.push(b'[');
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                write(r, objects, out)?;
            }
            out.push(b']');
        }
        Head::Map(n) => {
            let object = objects.next().unwrap_or(false);
            out.extend_from_slice(if object { b"{" } else { b"{\"$map\":[" });
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                if object {
                    write(r, objects, out)?;
                    out.push(b':');
                    write(r, objects, out)?;
                } else {
                    out.push(b'[');
                    write(r, objects, out)?;
                    out.push(b',');
                    write(r, objects, out)?;
                    out.push(b']');
                }
            }
            out.extend_from_slice(if object { b"}" } else { b"]}" });
        }
    }
    Ok(())
}

fn put_float(out: &mut Vec<u8>, f: f64) {
    match serde_json::Number::from_f64(f) {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => {
            let name = if f.is_nan() {
                "NaN"
            } else if f > 0.0 {
                "inf"
            } else {
                "-inf"
            };
            let _ = write!(out, "{{\"$float\":\"{name}\"}}");
        }
    }
}

fn put_b64_tag(out: &mut Vec<u8>, tag: &str, b: &[u8]) {
    let _ = write!(out, "{{\"{tag}\":\"{}\"}}", STANDARD.encode(b));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round(v: Value) -> String {
        to_json(&from_json(&v).unwrap()).unwrap()
    }

    #[test]
    fn json_values_go_there_and_back() {
        for v in [
            json!(null),
            json!(true),
            json!(0),
            json!(127),
            json!(128),
            json!(65536),
            json!(u64::MAX),
            json!(-1),
            json!(-33),
            json!(-129),
            json!(-40000),
            json!(i64::MIN),
            json!(1.5),
            json!("x".repeat(40)),
            json!("é".repeat(40000)),
            json!([1, [2, [3, []]], {}]),
            json!({"a": 1, "b": [true, null]}),
        ] {
            let text = round(v.clone());
            assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v, "{text}");
        }
        // Shortest integer forms, as a tuple argument travels.
        assert_eq!(from_json(&json!([2, 3])).unwrap(), [0x92, 0x02, 0x03]);
        assert_eq!(from_json(&json!(-1)).unwrap(), [0xff]);
        assert_eq!(from_json(&json!({"x": 1})).unwrap(), b"\x81\xa1x\x01");
    }

    #[test]
    fn what_json_cannot_hold_is_tagged() {
        for v in [
            json!({"$bin": "AAEC/w=="}),
            json!({"$ext": [-1, "AAAAAA=="]}),
            json!({"$ext": [5, "AAEC"]}),
            json!({"$float": "NaN"}),
            json!({"$float": "inf"}),
            json!({"$float": "-inf"}),
            json!({"$map": [[1, "one"], [[2], null]]}),
            json!({"$map": [["$bin", 1]]}),
        ] {
            let text = round(v.clone());
            assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v, "{text}");
        }
        // A map of str keys, one of which starts with $, among others: an object.
        assert_eq!(round(json!({"$a": 1, "b": 2})), r#"{"$a":1,"b":2}"#);
        // Map keys keep their order on the way out.
        assert_eq!(
            to_json(b"\x82\xa1b\x01\xa1a\x02").unwrap(),
            r#"{"b":1,"a":2}"#
        );
        // float 32 prints as it was written.
        assert_eq!(to_json(&[0xca, 0x3d, 0xcc, 0xcc, 0xcd]).unwrap(), "0.1");
        // A str that is not UTF-8 is bytes.
        assert_eq!(to_json(&[0xa2, 0xff, 0xfe]).unwrap(), r#"{"$bin":"//4="}"#);
        for bad in [
            json!({"$nope": 1}),
            json!({"$bin": 1}),
            json!({"$bin": "!!"}),
            json!({"$ext": [300, ""]}),
            json!({"$float": "nan"}),
            json!({"$map": [[1]]}),
        ] {
            assert!(from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_is_escaped_for_a_terminal() {
        let text = round(json!({"k\u{1b}": "a\u{1b}[2J\u{7}\u{9b}\u{202e}\"\\\n"}));
        assert_eq!(text, r#"{"k\u001b":"a\u001b[2J\u0007\u009b\u202e\"\\\n"}"#);
        assert!(!text.chars().any(|c| c.is_control()));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["k\u{1b}"], "a\u{1b}[2J\u{7}\u{9b}\u{202e}\"\\\n");
    }

    #[test]
    fn hostile_bytes_are_errors() {
        let deep: Vec<u8> = std::iter::repeat_n(0x91, 10_000).chain([0xc0]).collect();
        for (bytes, says) in [
            (&b""[..], "only 0 bytes follow"),
            (&[0xc1][..], "0xc1"),
            (
                &[0xdd, 0xff, 0xff, 0xff, 0xff, 0x00][..],
                "an array of 4294967295",
            ),
            (&[0xdf, 0xff, 0xff, 0xff, 0xff][..], "a map of 4294967295"),
            (
                &[0xdb, 0xff, 0xff, 0xff, 0xff, b'x'][..],
                "a length of 4294967295",
            ),
            (&[0xc6, 0x7f, 0xff, 0xff, 0xff][..], "a length of"),
            (&[0xc9, 0x00, 0x00, 0x01, 0x00, 0x01][..], "a length of 256"),
            (&[0x92, 0x01][..], "an array of 2 elements"),
            (&[0x92, 0x01, 0x92][..], "only 0 bytes follow"),
            (&[0xcf, 0x01][..], "a length of 8"),
            (&[0x01, 0x02][..], "1 bytes follow the value"),
            (&deep[..], "nested deeper than 128"),
        ] {
            let e = to_json(bytes).unwrap_err();
            assert!(e.contains(says), "{bytes:02x?}: {e}");
        }
        let deep: Value = (0..200).fold(json!(0), |v, _| json!([v]));
        assert!(from_json(&deep).unwrap_err().contains("deeper"));
    }

    /// Random bytes, and valid values with bytes changed, cut or appended: never a panic;
    /// what is printed is one line of valid JSON without a raw control character.
    #[test]
    fn any_bytes_are_an_error_or_one_line_of_json() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let valid = from_json(&json!({
            "a": [1, -2, 3.5, "x\u{1b}", null, true, {"$bin": "AAE="}],
            "b": {"$map": [[1, {"$ext": [3, "AQID"]}]]},
            "c": {"$float": "NaN"},
        }))
        .unwrap();
        for round in 0..20_000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                let len = (next() % 24) as usize;
                (0..len).map(|_| next() as u8).collect()
            } else {
                let mut b = valid.clone();
                for _ in 0..1 + next() % 3 {
                    let i = (next() as usize) % b.len();
                    match next() % 3 {
                        0 => b[i] = next() as u8,
                        1 => b.truncate(i),
                        _ => b.insert(i, next() as u8),
                    }
                    if b.is_empty() {
                        break;
                    }
                }
                b
            };
            if let Ok(text) = to_json(&bytes) {
                assert!(
                    !text.chars().any(|c| c.is_control()),
                    "{bytes:02x?}: {text:?}"
                );
                serde_json::from_str::<Value>(&text)
                    .unwrap_or_else(|e| panic!("{bytes:02x?}: {text:?}: {e}"));
            }
        }
    }

    #[test]
    fn signed_and_unsigned_forms() {
        assert_eq!(to_json(&[0xd0, 0x80]).unwrap(), "-128");
        assert_eq!(to_json(&[0xd1, 0xff, 0xfe]).unwrap(), "-2");
        assert_eq!(
            to_json(&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
            i64::MIN.to_string()
        );
        assert_eq!(
            to_json(&[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap(),
            u64::MAX.to_string()
        );
        assert_eq!(to_json(&[0xe0]).unwrap(), "-32");
        assert_eq!(
            to_json(&[0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0]).unwrap(),
            r#"{"$float":"inf"}"#
        );
        assert_eq!(
            to_json(&[0xd4, 0x05, 0x2a]).unwrap(),
            r#"{"$ext":[5,"Kg=="]}"#
        );
    }
}
