//! Trace and span identifiers: fixed-size byte arrays shown as lower-case hex.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdParseError {
    pub expected_hex_chars: usize,
    pub found: String,
}

impl fmt::Display for IdParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected {} hexadecimal characters, found {:?}",
            self.expected_hex_chars, self.found
        )
    }
}

impl std::error::Error for IdParseError {}

macro_rules! hex_id {
    ($name:ident, $len:expr, $what:literal) => {
        #[doc = concat!("A ", $what, " (", stringify!($len), " bytes).")]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            /// All-zero ids are invalid in OpenTelemetry.
            pub fn is_zero(&self) -> bool {
                self.0.iter().all(|b| *b == 0)
            }

            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(bytes).ok().map(Self)
            }

            pub fn to_hex(&self) -> String {
                let mut out = String::with_capacity($len * 2);
                for byte in self.0 {
                    out.push(HEX[(byte >> 4) as usize] as char);
                    out.push(HEX[(byte & 0xf) as usize] as char);
                }
                out
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            /// Accepts upper- or lower-case hex of exactly the right length.
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let error = || IdParseError {
                    expected_hex_chars: $len * 2,
                    found: text.to_owned(),
                };
                let bytes = text.as_bytes();
                if bytes.len() != $len * 2 {
                    return Err(error());
                }
                let mut out = [0u8; $len];
                for (i, pair) in bytes.chunks_exact(2).enumerate() {
                    let hi = hex_value(pair[0]).ok_or_else(error)?;
                    let lo = hex_value(pair[1]).ok_or_else(error)?;
                    out[i] = (hi << 4) | lo;
                }
                Ok(Self(out))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        /// Hex in human-readable formats (JSON), raw bytes in binary ones (the store).
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.serialize_str(&self.to_hex())
                } else {
                    self.0.serialize(serializer)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let text = String::deserialize(deserializer)?;
                    text.parse().map_err(serde::de::Error::custom)
                } else {
                    <[u8; $len]>::deserialize(deserializer).map(Self)
                }
            }
        }
    };
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

hex_id!(TraceId, 16, "trace id");
hex_id!(SpanId, 8, "span id");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_upper_and_lower_case() {
        let id: TraceId = "5B8EFFF798038103D269B633813FC60C".parse().unwrap();
        assert_eq!(id.to_hex(), "5b8efff798038103d269b633813fc60c");
        assert_eq!("eee19b7ec3c1b174".parse::<SpanId>().unwrap().0[0], 0xee);
    }

    #[test]
    fn rejects_wrong_length_and_non_hex_with_the_expected_length() {
        let err = "abc".parse::<SpanId>().unwrap_err();
        assert_eq!(err.expected_hex_chars, 16);
        assert!("zz19b7ec3c1b1740".parse::<SpanId>().is_err());
        assert!(err.to_string().contains("16 hexadecimal"));
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in any::<[u8; 16]>()) {
            let id = TraceId(bytes);
            prop_assert_eq!(id.to_hex().parse::<TraceId>().unwrap(), id);
        }
    }
}

/// Ids are hex strings in JSON (see the `Serialize` impls above).
#[cfg(feature = "openapi")]
mod schema {
    use super::{SpanId, TraceId};
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

    fn hex(chars: usize, what: &str) -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!("^[0-9a-f]{{{chars}}}$")))
            .description(Some(format!(
                "{what}: {chars} lowercase hexadecimal characters"
            )))
            .into()
    }

    impl utoipa::PartialSchema for TraceId {
        fn schema() -> RefOr<Schema> {
            hex(32, "trace id")
        }
    }
    impl utoipa::ToSchema for TraceId {}

    impl utoipa::PartialSchema for SpanId {
        fn schema() -> RefOr<Schema> {
            hex(16, "span id")
        }
    }
    impl utoipa::ToSchema for SpanId {}
}
