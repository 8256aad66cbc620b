//! Clarity consensus deserialisation: hex bytes → the JSON Chainhook emits for them.
//!
//! Chainhook sends print values and data-map/var values either decoded (`value`) or as
//! consensus-serialised hex (`raw_value`). We decode the hex to exactly the JSON
//! Chainhook's own `serialize_to_json` would have produced, so that a subscriber sees the
//! same `data.value` whichever way the predicate was registered.
//!
//! The bytes come from the network: every length is checked against what is left of the
//! input before anything is allocated, and nesting is bounded, so hostile input can neither
//! exhaust memory nor the stack.

use super::principal::{Principal, HASH160_LEN};
use serde_json::{Map, Number, Value};

/// Deepest nesting of lists, tuples, optionals and responses we decode.
///
/// Clarity itself refuses types deeper than 32, so any value the chain produced fits; the
/// bound exists so a crafted payload cannot recurse until the stack overflows.
pub const MAX_DEPTH: usize = 64;

/// Why bytes are not one Clarity value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClarityError {
    #[error("invalid hex: {0}")]
    InvalidHex(String),
    #[error("unexpected end of input at byte {0}")]
    UnexpectedEnd(usize),
    #[error("unknown type id 0x{type_id:02x} at byte {offset}")]
    UnknownType { type_id: u8, offset: usize },
    #[error("{len} trailing bytes after the value")]
    TrailingBytes { len: usize },
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("invalid string-ascii at byte {0}")]
    InvalidAscii(usize),
    #[error("invalid string-utf8 at byte {0}")]
    InvalidUtf8(usize),
    #[error("invalid tuple field name at byte {0}")]
    InvalidFieldName(usize),
    #[error("duplicate tuple field {0:?}")]
    DuplicateField(String),
    #[error("invalid principal at byte {offset}: {reason}")]
    InvalidPrincipal { offset: usize, reason: String },
}

/// A decoded Clarity value: its JSON and every principal found inside it, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub json: Value,
    /// Principals in the order they occur in the serialisation (duplicates kept).
    pub principals: Vec<String>,
}

/// Decodes `0x`-prefixed (or bare) hex of one consensus-serialised Clarity value.
pub fn decode_hex(hex_str: &str) -> Result<Decoded, ClarityError> {
    let digits = hex_str.strip_prefix("0x").unwrap_or(hex_str);
    let bytes = hex::decode(digits).map_err(|e| ClarityError::InvalidHex(e.to_string()))?;
    decode(&bytes)
}

/// Decodes exactly one consensus-serialised Clarity value; trailing bytes are an error.
pub fn decode(bytes: &[u8]) -> Result<Decoded, ClarityError> {
    let mut reader = Reader {
        bytes,
        pos: 0,
        principals: Vec::new(),
    };
    let json = reader.value(0)?;
    if reader.pos != bytes.len() {
        return Err(ClarityError::TrailingBytes {
            len: bytes.len() - reader.pos,
        });
    }
    Ok(Decoded {
        json,
        principals: reader.principals,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    principals: Vec<String>,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ClarityError> {
        if n > self.remaining() {
            return Err(ClarityError::UnexpectedEnd(self.bytes.len()));
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ClarityError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, ClarityError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, ClarityError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a `u32` length of items that each occupy at least `min_item_len` bytes,
    /// refusing one the rest of the input cannot hold (so no huge pre-allocation).
    fn length(&mut self, min_item_len: usize) -> Result<usize, ClarityError> {
        let at = self.pos;
        let len = usize::try_from(self.u32()?).map_err(|_| ClarityError::UnexpectedEnd(at))?;
        if len.saturating_mul(min_item_len) > self.remaining() {
            return Err(ClarityError::UnexpectedEnd(self.bytes.len()));
        }
        Ok(len)
    }

    fn value(&mut self, depth: usize) -> Result<Value, ClarityError> {
        if depth > MAX_DEPTH {
            return Err(ClarityError::TooDeep);
        }
        let offset = self.pos;
        let type_id = self.u8()?;
        Ok(match type_id {
            0x00 => number(i128::from_be_bytes(self.array()?)),
            0x01 => number(u128::from_be_bytes(self.array()?)),
            0x02 => {
                let len = self.length(1)?;
                Value::String(format!("0x{}", hex::encode(self.take(len)?)))
            }
            0x03 => Value::Bool(true),
            0x04 => Value::Bool(false),
            0x05 => {
                let principal = self.standard_principal(offset)?;
                self.principal(principal)
            }
            0x06 => {
                let principal = self.contract_principal(offset)?;
                self.principal(principal)
            }
            0x07 | 0x08 => {
                let inner = self.value(depth + 1)?;
                let mut result = Map::new();
                result.insert("success".into(), Value::Bool(type_id == 0x07));
                result.insert("value".into(), inner);
                let mut outer = Map::new();
                outer.insert("result".into(), Value::Object(result));
                Value::Object(outer)
            }
            0x09 => Value::Null,
            0x0a => self.value(depth + 1)?,
            0x0b => {
                let count = self.length(1)?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            0x0c => {
                // Each field is at least a 1-byte name length, a 1-byte name, a 1-byte value.
                let count = self.length(3)?;
                let mut fields = Map::new();
                for _ in 0..count {
                    let name = self.field_name()?;
                    let value = self.value(depth + 1)?;
                    if fields.contains_key(&name) {
                        return Err(ClarityError::DuplicateField(name));
                    }
                    fields.insert(name, value);
                }
                Value::Object(fields)
            }
            0x0d => {
                let len = self.length(1)?;
                let at = self.pos;
                let bytes = self.take(len)?;
                // Clarity admits only printable ASCII and whitespace in string-ascii.
                if let Some(i) = bytes.iter().position(|b| {
                    !(b.is_ascii_alphanumeric()
                        || b.is_ascii_punctuation()
                        || b.is_ascii_whitespace())
                }) {
                    return Err(ClarityError::InvalidAscii(at + i));
                }
                Value::String(bytes.iter().map(|&b| b as char).collect())
            }
            0x0e => {
                let len = self.length(1)?;
                let at = self.pos;
                let text = std::str::from_utf8(self.take(len)?)
                    .map_err(|e| ClarityError::InvalidUtf8(at + e.valid_up_to()))?;
                Value::String(text.to_string())
            }
            other => {
                return Err(ClarityError::UnknownType {
                    type_id: other,
                    offset,
                })
            }
        })
    }

    fn principal(&mut self, principal: Principal) -> Value {
        let s = principal.into_string();
        self.principals.push(s.clone());
        Value::String(s)
    }

    fn standard_principal(&mut self, offset: usize) -> Result<Principal, ClarityError> {
        let version = self.u8()?;
        let hash: [u8; HASH160_LEN] = self.array()?;
        Principal::standard(version, &hash).map_err(|e| ClarityError::InvalidPrincipal {
            offset,
            reason: e.to_string(),
        })
    }

    fn contract_principal(&mut self, offset: usize) -> Result<Principal, ClarityError> {
        let version = self.u8()?;
        let hash: [u8; HASH160_LEN] = self.array()?;
        let len = usize::from(self.u8()?);
        let name =
            std::str::from_utf8(self.take(len)?).map_err(|_| ClarityError::InvalidPrincipal {
                offset,
                reason: "contract name is not UTF-8".into(),
            })?;
        Principal::contract(version, &hash, name).map_err(|e| ClarityError::InvalidPrincipal {
            offset,
            reason: e.to_string(),
        })
    }

    fn field_name(&mut self) -> Result<String, ClarityError> {
        let at = self.pos;
        let len = usize::from(self.u8()?);
        let name =
            std::str::from_utf8(self.take(len)?).map_err(|_| ClarityError::InvalidFieldName(at))?;
        if !is_clarity_name(name) {
            return Err(ClarityError::InvalidFieldName(at));
        }
        Ok(name.to_string())
    }
}

/// A Clarity integer as a JSON number, exact at any magnitude (serde_json keeps the digits
/// because the crate enables `arbitrary_precision`).
fn number<N: ToString>(n: N) -> Value {
    // A decimal integer string always parses as a JSON number; the fallback to a string
    // only guards against a serde_json built without `arbitrary_precision`.
    let digits = n.to_string();
    match digits.parse::<Number>() {
        Ok(num) => Value::Number(num),
        Err(_) => Value::String(digits),
    }
}

/// Clarity's `ClarityName` rule: `^[a-zA-Z]([a-zA-Z0-9]|[-_!?+<>=/*])*$|^[-+=/*]$|^[<>]=?$`.
fn is_clarity_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes {
        [b'-' | b'+' | b'=' | b'/' | b'*'] | [b'<' | b'>'] | [b'<' | b'>', b'='] => true,
        [first, rest @ ..] => {
            first.is_ascii_alphabetic()
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_!?+<>=/*".contains(b))
        }
        [] => false,
    }
}

#[cfg(test)]
#[path = "clarity_tests.rs"]
mod tests;
