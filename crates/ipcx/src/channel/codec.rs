//! Codecs: how a serde value becomes bytes, in postcard or MessagePack, and the typed-message
//! encoding (one codec tag byte, then the value) that typed channels and patterns carry.
//!
//! MessagePack values are written as other languages expect them: a struct as a map keyed by
//! field name, a tuple as an array; either form of a struct is read. A value is decoded from
//! exactly the bytes given: bytes left over after it are an error, as is a length that runs
//! past the end (a declared length is never allocated as such: collections grow as their
//! elements arrive, after a preallocation that serde caps at 1 MiB).

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How serde values are encoded: the codec a typed message carries in its tag byte, and the
/// one an RPC client names in its hello (the server answers in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Codec {
    /// postcard (tag 0): the default between Rust programs.
    #[default]
    Postcard,
    /// MessagePack (tag 1): for any language. Structs travel as maps keyed by field name,
    /// tuples (several arguments) as arrays.
    MsgPack,
}

impl Codec {
    /// The codec's tag on the wire.
    pub fn tag(self) -> u8 {
        match self {
            Codec::Postcard => 0,
            Codec::MsgPack => 1,
        }
    }

    /// The codec of a wire tag (`None`: a tag this build does not know).
    pub fn from_tag(tag: u8) -> Option<Codec> {
        Some(match tag {
            0 => Codec::Postcard,
            1 => Codec::MsgPack,
            _ => return None,
        })
    }

    /// The codec's name (`postcard`, `msgpack`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::Postcard => "postcard",
            Codec::MsgPack => "msgpack",
        }
    }

    /// Encodes `value` alone, without a tag (an RPC payload).
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, CodecError> {
        self.encode_into(value, Vec::new())
    }

    /// Decodes a `T` from exactly `bytes`, encoded alone in this codec (an RPC payload).
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, CodecError> {
        let failed = |reason: String| CodecError::Decode {
            codec: self,
            reason,
        };
        let (value, left) = match self {
            Codec::Postcard => {
                postcard::take_from_bytes(bytes).map_err(|e| failed(e.to_string()))?
            }
            Codec::MsgPack => {
                // A slice reader: every length is checked against the bytes left (nothing is
                // allocated for more), and what it leaves is what follows the value.
                let mut de = rmp_serde::Deserializer::new(bytes);
                let value = T::deserialize(&mut de).map_err(|e| failed(e.to_string()))?;
                (value, *de.get_ref())
            }
        };
        if !left.is_empty() {
            return Err(failed(format!(
                "{} byte(s) left over after the value",
                left.len()
            )));
        }
        Ok(value)
    }

    /// Encodes `value` as a typed message: the codec's tag, then the value.
    pub fn encode_message<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, CodecError> {
        self.encode_into(value, vec![self.tag()])
    }

    /// Decodes a typed message (a codec tag, then a `T` in that codec): the value and the
    /// codec it came in. An empty message ([`CodecError::Empty`]) and a tag this build does not
    /// know ([`CodecError::UnknownTag`]) are errors of their own.
    pub fn decode_message<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, Codec), CodecError> {
        let (&tag, value) = bytes.split_first().ok_or(CodecError::Empty)?;
        let codec = Codec::from_tag(tag).ok_or(CodecError::UnknownTag(tag))?;
        Ok((codec.decode(value)?, codec))
    }

    /// Appends `value`, encoded in this codec, to `out`.
    pub(crate) fn encode_into<T: Serialize + ?Sized>(
        self,
        value: &T,
        mut out: Vec<u8>,
    ) -> Result<Vec<u8>, CodecError> {
        let failed = |e: &dyn fmt::Display| CodecError::Encode {
            codec: self,
            reason: e.to_string(),
        };
        match self {
            Codec::Postcard => postcard::to_extend(value, out).map_err(|e| failed(&e)),
            Codec::MsgPack => {
                rmp_serde::encode::write_named(&mut out, value).map_err(|e| failed(&e))?;
                Ok(out)
            }
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a value or a typed message could not be encoded or decoded. A receiver that gets one
/// goes on with the next message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The message is empty: a typed message starts with its codec tag.
    #[error(
        "empty typed message: a typed message starts with its codec tag (0 postcard, 1 msgpack)"
    )]
    Empty,
    /// The message's codec tag is not one this build knows.
    #[error(
        "typed message with unknown codec tag {0}: this build speaks 0 (postcard) and 1 (msgpack)"
    )]
    UnknownTag(u8),
    /// The value could not be encoded (a type the codec cannot represent).
    #[error("could not encode the value in {codec}: {reason}")]
    Encode {
        /// The codec.
        codec: Codec,
        /// What the encoder said.
        reason: String,
    },
    /// The bytes are not a valid encoding of the expected type in this codec (malformed,
    /// cut short, another type, or bytes left over).
    #[error("not a valid {codec} encoding of the expected type: {reason}")]
    Decode {
        /// The codec.
        codec: Codec,
        /// What the decoder said.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_names() {
        for c in [Codec::Postcard, Codec::MsgPack] {
            assert_eq!(Codec::from_tag(c.tag()), Some(c));
            assert_eq!(c.to_string(), c.name());
        }
        assert_eq!((Codec::Postcard.tag(), Codec::MsgPack.tag()), (0, 1));
        assert_eq!(Codec::from_tag(2), None);
    }

    #[test]
    fn typed_messages_round_trip_in_either_codec() {
        let v = (7u32, "seven".to_string(), vec![1u8, 2]);
        for c in [Codec::Postcard, Codec::MsgPack] {
            let m = c.encode_message(&v).unwrap();
            assert_eq!(m[0], c.tag());
            assert_eq!(&m[1..], c.encode(&v).unwrap());
            assert_eq!(Codec::decode_message(&m), Ok((v.clone(), c)));
        }
        // [7, "seven", [1, 2]] in MessagePack, tagged 1.
        let m = Codec::MsgPack.encode_message(&v).unwrap();
        assert_eq!(m, b"\x01\x93\x07\xa5seven\x92\x01\x02");
    }

    /// The bytes of `docs/PROTOCOL.md`, section 9.1.
    #[test]
    fn the_documented_job() {
        #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
        struct Job {
            id: u64,
            width: u32,
        }
        let job = Job { id: 7, width: 640 };
        let mp = b"\x01\x82\xa2id\x07\xa5width\xcd\x02\x80";
        assert_eq!(Codec::MsgPack.encode_message(&job).unwrap(), mp);
        assert_eq!(Codec::decode_message(mp), Ok((job, Codec::MsgPack)));
        let pc = Codec::Postcard.encode_message(&Job { id: 7, width: 640 });
        assert_eq!(pc.unwrap(), [0x00, 0x07, 0x80, 0x05]);
    }

    #[test]
    fn bad_messages_are_named_errors() {
        assert_eq!(Codec::decode_message::<u8>(&[]), Err(CodecError::Empty));
        assert_eq!(
            Codec::decode_message::<u8>(&[9, 1]),
            Err(CodecError::UnknownTag(9))
        );
        for c in [Codec::Postcard, Codec::MsgPack] {
            // Cut short, left over, and a length far beyond the bytes (str 32 / varint).
            let whole = c.encode_message(&"hello").unwrap();
            let cut = Codec::decode_message::<String>(&whole[..whole.len() - 1]);
            assert!(matches!(cut, Err(CodecError::Decode { codec, .. }) if codec == c));
            let mut more = whole.clone();
            more.push(0);
            assert!(Codec::decode_message::<String>(&more).is_err());
        }
        let huge = [1, 0xdb, 0xff, 0xff, 0xff, 0xff, b'a'];
        assert!(Codec::decode_message::<String>(&huge).is_err());
        let huge = [1, 0xdd, 0xff, 0xff, 0xff, 0xff, 1];
        assert!(Codec::decode_message::<Vec<u64>>(&huge).is_err());
        let huge = [0, 0xff, 0xff, 0xff, 0xff, 0x0f, 1];
        assert!(Codec::decode_message::<Vec<u64>>(&huge).is_err());
    }
}
