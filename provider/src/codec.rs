//! `DynamicValue` encoding: msgpack both ways and JSON (state upgrade) one way,
//! always against a [`Type`], since the wire form alone cannot tell a set from a
//! list or an object from a map.
//!
//! Wire facts: null is msgpack nil; an unknown value is extension type 0
//! (`d4 00 00`); Terraform 1.6+ also sends *refined* unknowns as extension type
//! 12, whose payload (the refinements) is skipped. Objects are maps keyed by
//! attribute name (written in sorted order, like cty does). Numbers arrive as any
//! msgpack integer, a float, or a decimal string for numbers beyond 64 bits.

use std::collections::BTreeMap;

use crate::value::{Number, Type, Value};

/// Why a value could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("msgpack ends early")]
    Truncated,
    #[error("unsupported msgpack marker 0x{0:02x}")]
    Marker(u8),
    #[error("unsupported msgpack extension type {0}")]
    Extension(i8),
    #[error("expected {expected} at {path}")]
    Mismatch { expected: String, path: String },
    #[error("attribute {0:?} is not in the schema")]
    UnknownAttribute(String),
    #[error("invalid UTF-8 in a string")]
    Utf8,
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0} bytes left over after the value")]
    Trailing(usize),
}

const EXT_UNKNOWN: i8 = 0;
const EXT_REFINED_UNKNOWN: i8 = 12;

/// Decodes a msgpack `DynamicValue`. Empty input is null (Terraform sends an empty
/// `DynamicValue` where there is no value at all).
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let mut r = Reader { buf: bytes, pos: 0 };
    let v = r.value(ty, "")?;
    match bytes.len() - r.pos {
        0 => Ok(v),
        n => Err(CodecError::Trailing(n)),
    }
}

/// Encodes `v` as msgpack. Values that do not fit `ty` are a bug in the caller.
pub fn encode(v: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    write(&mut out, v, ty, "")?;
    Ok(out)
}

/// Encodes an object like [`encode`], but writes the unknown top-level attributes
/// named in `not_null` as unknowns refined as "definitely not null" (extension 12
/// with the refinement map `{1: false}`), which Terraform 1.6+ uses to decide
/// `x != null` at plan time. Older Terraform cannot read refinements: callers
/// pass an empty `not_null` there.
pub fn encode_refined(v: &Value, ty: &Type, not_null: &[&str]) -> Result<Vec<u8>, CodecError> {
    let (Value::Object(m), Type::Object(attrs), false) = (v, ty, not_null.is_empty()) else {
        return encode(v, ty);
    };
    let mut out = Vec::with_capacity(64);
    write_len(&mut out, attrs.len(), [0x80, 0xde, 0xdf], 16);
    for (k, t) in attrs {
        write_str(&mut out, k);
        match m.get(k).unwrap_or(&Value::Null) {
            Value::Unknown if not_null.contains(&k.as_str()) => out.extend_from_slice(&UNKNOWN_NOT_NULL),
            item => write(&mut out, item, t, &format!(".{k}"))?,
        }
    }
    Ok(out)
}

/// An unknown value refined as not null: ext 8 (`c7`), 3 bytes, type 12, `{1: false}`.
const UNKNOWN_NOT_NULL: [u8; 6] = [0xc7, 0x03, EXT_REFINED_UNKNOWN as u8, 0x81, 0x01, 0xc2];

/// Decodes the JSON form of a value (as in a state file). Unknown object keys are
/// ignored: state written by an older schema may carry attributes since removed.
pub fn decode_json(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let j: serde_json::Value = serde_json::from_slice(bytes)?;
    from_json(&j, ty, "")
}

fn mismatch(expected: &str, path: &str) -> CodecError {
    CodecError::Mismatch {
        expected: expected.to_string(),
        path: if path.is_empty() { ".".into() } else { path.into() },
    }
}

/// One msgpack item's head: scalars complete, containers as their length.
enum Head {
    Nil,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Array(usize),
    Map(usize),
    Ext(i8),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or(CodecError::Truncated)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, CodecError> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn str(&mut self, len: usize) -> Result<String, CodecError> {
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| CodecError::Utf8)
    }

    fn ext(&mut self, len: usize) -> Result<Head, CodecError> {
        let ty = self.take(1)?[0] as i8;
        self.take(len)?;
        Ok(Head::Ext(ty))
    }

    fn head(&mut self) -> Result<Head, CodecError> {
        let m = self.take(1)?[0];
        Ok(match m {
            0x00..=0x7f => Head::Int(i64::from(m)),
            0x80..=0x8f => Head::Map(usize::from(m & 0x0f)),
            0x90..=0x9f => Head::Array(usize::from(m & 0x0f)),
            0xa0..=0xbf => Head::Str(self.str(usize::from(m & 0x1f))?),
            0xc0 => Head::Nil,
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc7 => {
                let n = self.be(1)? as usize;
                self.ext(n)?
            }
            0xc8 => {
                let n = self.be(2)? as usize;
                self.ext(n)?
            }
            0xc9 => {
                let n = self.be(4)? as usize;
                self.ext(n)?
            }
            0xca => Head::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Head::Float(f64::from_bits(self.be(8)?)),
            0xcc => Head::UInt(self.be(1)?),
            0xcd => Head::UInt(self.be(2)?),
            0xce => Head::UInt(self.be(4)?),
            0xcf => Head::UInt(self.be(8)?),
            0xd0 => Head::Int(i64::from(self.be(1)? as u8 as i8)),
            0xd1 => Head::Int(i64::from(self.be(2)? as u16 as i16)),
            0xd2 => Head::Int(i64::from(self.be(4)? as u32 as i32)),
            0xd3 => Head::Int(self.be(8)? as i64),
            0xd4 => self.ext(1)?,
            0xd5 => self.ext(2)?,
            0xd6 => self.ext(4)?,
            0xd7 => self.ext(8)?,
            0xd8 => self.ext(16)?,
            0xd9 => {
                let n = self.be(1)? as usize;
                Head::Str(self.str(n)?)
            }
            0xda => {
                let n = self.be(2)? as usize;
                Head::Str(self.str(n)?)
            }
            0xdb => {
                let n = self.be(4)? as usize;
                Head::Str(self.str(n)?)
            }
            0xdc => Head::Array(self.be(2)? as usize),
            0xdd => Head::Array(self.be(4)? as usize),
            0xde => Head::Map(self.be(2)? as usize),
            0xdf => Head::Map(self.be(4)? as usize),
            0xe0..=0xff => Head::Int(i64::from(m as i8)),
            other => return Err(CodecError::Marker(other)),
        })
    }

    fn value(&mut self, ty: &Type, path: &str) -> Result<Value, CodecError> {
        let head = self.head()?;
        match head {
            Head::Nil => return Ok(Value::Null),
            Head::Ext(EXT_UNKNOWN | EXT_REFINED_UNKNOWN) => return Ok(Value::Unknown),
            Head::Ext(other) => return Err(CodecError::Extension(other)),
            _ => {}
        }
        match ty {
            Type::Bool => match head {
                Head::Bool(b) => Ok(Value::Bool(b)),
                _ => Err(mismatch("bool", path)),
            },
            Type::Number => number(head).map(Value::Number).ok_or_else(|| mismatch("number", path)),
            Type::String => match head {
                Head::Str(s) => Ok(Value::String(s)),
                _ => Err(mismatch("string", path)),
            },
            Type::List(el) | Type::Set(el) => {
                let Head::Array(n) = head else { return Err(mismatch("array", path)) };
                let items = self.items(n, el, path)?;
                Ok(if matches!(ty, Type::Set(_)) { Value::Set(items) } else { Value::List(items) })
            }
            Type::Map(el) => {
                let Head::Map(n) = head else { return Err(mismatch("map", path)) };
                let mut m = BTreeMap::new();
                for _ in 0..n {
                    let k = self.key(path)?;
                    let v = self.value(el, &format!("{path}[{k:?}]"))?;
                    m.insert(k, v);
                }
                Ok(Value::Map(m))
            }
            Type::Object(attrs) => {
                let Head::Map(n) = head else { return Err(mismatch("object", path)) };
                self.object(n, attrs, path)
            }
        }
    }

    fn items(&mut self, n: usize, el: &Type, path: &str) -> Result<Vec<Value>, CodecError> {
        // Each item takes at least one byte, so a lying length cannot over-allocate.
        let mut items = Vec::with_capacity(n.min(self.buf.len() - self.pos));
        for i in 0..n {
            items.push(self.value(el, &format!("{path}[{i}]"))?);
        }
        Ok(items)
    }

    fn object(&mut self, n: usize, attrs: &BTreeMap<String, Type>, path: &str) -> Result<Value, CodecError> {
        let mut m: BTreeMap<String, Value> = attrs.keys().map(|k| (k.clone(), Value::Null)).collect();
        for _ in 0..n {
            let k = self.key(path)?;
            let t = attrs.get(&k).ok_or_else(|| CodecError::UnknownAttribute(k.clone()))?;
            let v = self.value(t, &format!("{path}.{k}"))?;
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }

    fn key(&mut self, path: &str) -> Result<String, CodecError> {
        match self.head()? {
            Head::Str(s) => Ok(s),
            _ => Err(mismatch("string key", path)),
        }
    }
}

fn number(head: Head) -> Option<Number> {
    match head {
        Head::Int(i) => Some(Number::Int(i)),
        Head::UInt(u) => Some(i64::try_from(u).map_or(Number::Float(u as f64), Number::Int)),
        Head::Float(f) => Some(Number::Float(f)),
        Head::Str(s) => parse_number(&s),
        _ => None,
    }
}

fn parse_number(s: &str) -> Option<Number> {
    s.parse::<i64>().map(Number::Int).ok().or_else(|| s.parse::<f64>().ok().map(Number::Float))
}

fn write(out: &mut Vec<u8>, v: &Value, ty: &Type, path: &str) -> Result<(), CodecError> {
    match (v, ty) {
        (Value::Null, _) => out.push(0xc0),
        (Value::Unknown, _) => out.extend_from_slice(&[0xd4, 0x00, 0x00]),
        (Value::Bool(b), Type::Bool) => out.push(if *b { 0xc3 } else { 0xc2 }),
        (Value::Number(n), Type::Number) => write_number(out, *n),
        (Value::String(s), Type::String) => write_str(out, s),
        (Value::List(items), Type::List(el)) | (Value::Set(items), Type::Set(el)) => {
            write_len(out, items.len(), [0x90, 0xdc, 0xdd], 16);
            for (i, item) in items.iter().enumerate() {
                write(out, item, el, &format!("{path}[{i}]"))?;
            }
        }
        (Value::Map(m), Type::Map(el)) => {
            write_len(out, m.len(), [0x80, 0xde, 0xdf], 16);
            for (k, item) in m {
                write_str(out, k);
                write(out, item, el, &format!("{path}[{k:?}]"))?;
            }
        }
        (Value::Object(m), Type::Object(attrs)) => {
            write_len(out, attrs.len(), [0x80, 0xde, 0xdf], 16);
            for (k, t) in attrs {
                write_str(out, k);
                write(out, m.get(k).unwrap_or(&Value::Null), t, &format!("{path}.{k}"))?;
            }
        }
        _ => return Err(mismatch(&ty.to_json().to_string(), path)),
    }
    Ok(())
}

/// Writes a container or string length with the smallest of the three markers
/// (`fix` holds lengths below `fix_limit`).
fn write_len(out: &mut Vec<u8>, len: usize, [fix, m16, m32]: [u8; 3], fix_limit: usize) {
    if len < fix_limit {
        out.push(fix | len as u8);
    } else if let Ok(n) = u16::try_from(len) {
        out.push(m16);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(m32);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    match s.len() {
        n if n < 32 => out.push(0xa0 | n as u8),
        n if n < 256 => out.extend_from_slice(&[0xd9, n as u8]),
        n => write_len(out, n, [0xa0, 0xda, 0xdb], 0),
    }
    out.extend_from_slice(s.as_bytes());
}

fn write_number(out: &mut Vec<u8>, n: Number) {
    match n.as_i64() {
        Some(i) if (-32..=127).contains(&i) => out.push(i as u8),
        Some(i) => {
            out.push(0xd3);
            out.extend_from_slice(&i.to_be_bytes());
        }
        None => {
            let Number::Float(f) = n else { return };
            out.push(0xcb);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
    }
}

fn from_json(j: &serde_json::Value, ty: &Type, path: &str) -> Result<Value, CodecError> {
    use serde_json::Value as J;
    Ok(match (j, ty) {
        (J::Null, _) => Value::Null,
        (J::Bool(b), Type::Bool) => Value::Bool(*b),
        (J::Number(n), Type::Number) => Value::Number(
            n.as_i64().map(Number::Int).or(n.as_f64().map(Number::Float)).ok_or_else(|| mismatch("number", path))?,
        ),
        (J::String(s), Type::Number) => Value::Number(parse_number(s).ok_or_else(|| mismatch("number", path))?),
        (J::String(s), Type::String) => Value::String(s.clone()),
        (J::Array(a), Type::List(el)) => Value::List(json_items(a, el, path)?),
        (J::Array(a), Type::Set(el)) => Value::Set(json_items(a, el, path)?),
        (J::Object(o), Type::Map(el)) => {
            let m = o.iter().map(|(k, v)| Ok((k.clone(), from_json(v, el, &format!("{path}[{k:?}]"))?)));
            Value::Map(m.collect::<Result<_, CodecError>>()?)
        }
        (J::Object(o), Type::Object(attrs)) => {
            let m = attrs.iter().map(|(k, t)| {
                let v = o.get(k).map_or(Ok(Value::Null), |v| from_json(v, t, &format!("{path}.{k}")))?;
                Ok((k.clone(), v))
            });
            Value::Object(m.collect::<Result<_, CodecError>>()?)
        }
        _ => return Err(mismatch(&ty.to_json().to_string(), path)),
    })
}

fn json_items(a: &[serde_json::Value], el: &Type, path: &str) -> Result<Vec<Value>, CodecError> {
    a.iter().enumerate().map(|(i, v)| from_json(v, el, &format!("{path}[{i}]"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj_type() -> Type {
        Type::Object(
            [
                ("id".to_string(), Type::String),
                ("n".to_string(), Type::Number),
                ("tags".to_string(), Type::Set(Box::new(Type::String))),
                ("ok".to_string(), Type::Bool),
            ]
            .into_iter()
            .collect(),
        )
    }

    #[test]
    fn round_trips_null_unknown_and_known() {
        let ty = obj_type();
        let v = Value::Object(
            [
                ("id".to_string(), Value::Unknown),
                ("n".to_string(), Value::Number(Number::Int(70000))),
                ("tags".to_string(), Value::Set(vec![Value::string("a"), Value::string("x".repeat(40))])),
                ("ok".to_string(), Value::Null),
            ]
            .into_iter()
            .collect(),
        );
        let bytes = encode(&v, &ty).expect("encode");
        assert_eq!(decode(&bytes, &ty).expect("decode"), v);
    }

    #[test]
    fn plain_unknown_is_ext_zero() {
        assert_eq!(encode(&Value::Unknown, &Type::String).expect("encode"), vec![0xd4, 0, 0]);
        assert_eq!(decode(&[0xd4, 0, 0], &Type::String).expect("decode"), Value::Unknown);
    }

    #[test]
    fn refined_unknown_is_accepted() {
        // ext 12 with a 3-byte payload (a refinement map), as Terraform 1.15 sends.
        let bytes = [0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc3];
        assert_eq!(decode(&bytes, &Type::String).expect("decode"), Value::Unknown);
    }

    #[test]
    fn not_null_unknowns_are_refined() {
        let v =
            Value::Object(BTreeMap::from([("id".to_string(), Value::Unknown), ("name".to_string(), Value::Unknown)]));
        let ty = Type::Object(BTreeMap::from([("id".to_string(), Type::String), ("name".to_string(), Type::String)]));
        let bytes = encode_refined(&v, &ty, &["id"]).expect("encode");
        let mut want = vec![0x82, 0xa2, b'i', b'd', 0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc2];
        want.extend_from_slice(&[0xa4, b'n', b'a', b'm', b'e', 0xd4, 0x00, 0x00]);
        assert_eq!(bytes, want);
        assert_eq!(decode(&bytes, &ty).expect("decode"), v, "reads back as unknown");
        assert_eq!(encode_refined(&v, &ty, &[]).expect("plain"), encode(&v, &ty).expect("encode"));
    }

    #[test]
    fn numbers_in_every_width_and_as_strings() {
        assert_eq!(decode(&[0xcd, 0x01, 0x00], &Type::Number).expect("u16"), Value::Number(Number::Int(256)));
        assert_eq!(decode(&[0xd0, 0xff], &Type::Number).expect("i8"), Value::Number(Number::Int(-1)));
        assert_eq!(decode(&[0xa3, b'1', b'.', b'5'], &Type::Number).expect("str"), Value::Number(Number::Float(1.5)));
    }

    #[test]
    fn rejects_truncated_and_mismatched_input() {
        assert!(matches!(decode(&[0xda, 0x00], &Type::String), Err(CodecError::Truncated)));
        assert!(matches!(decode(&[0xc3], &Type::String), Err(CodecError::Mismatch { .. })));
        // An array claiming 2^32-1 items must fail without allocating them.
        assert!(decode(&[0xdd, 0xff, 0xff, 0xff, 0xff], &Type::List(Box::new(Type::String))).is_err());
    }

    #[test]
    fn json_state_decodes_and_ignores_removed_attributes() {
        let v = decode_json(br#"{"id":"x","n":3,"tags":null,"gone":1}"#, &obj_type()).expect("json");
        let Value::Object(m) = v else { panic!("object") };
        assert_eq!(m["id"], Value::string("x"));
        assert_eq!(m["ok"], Value::Null);
        assert_eq!(m["n"], Value::Number(Number::Int(3)));
    }
}
