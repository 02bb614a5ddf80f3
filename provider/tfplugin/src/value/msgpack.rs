//! msgpack codec for `DynamicValue.msgpack`, following cty's encoding: nil is null; extension type 0 is an
//! unknown (any extension, including cty's "refined unknown" payloads, decodes as unknown); numbers are
//! msgpack ints, float64, or decimal strings when neither is exact; lists, sets and tuples are arrays; maps
//! and objects are maps with string keys (object attributes sorted); a known value at a dynamic position
//! is the 2-array `[type JSON as bin, value]`.

use rmpv::Value as Mp;

use super::number::is_json_number;
use super::path::{Cursor, PathStep};
use super::{CodecError, Number, Type, Value};

/// The bytes cty writes for an unknown value: fixext1, extension type 0, one zero byte.
const UNKNOWN_EXT_TYPE: i8 = 0;

/// Nesting limit while reading; far beyond any real schema, low enough to keep the stack safe.
const MAX_DEPTH: usize = 256;

/// Decodes msgpack bytes as a value of type `ty`.
pub fn decode_msgpack(b: &[u8], ty: &Type) -> Result<Value, CodecError> {
    if b.is_empty() {
        return Err(CodecError::MalformedMsgpack("empty input".into()));
    }
    let mut rd = b;
    let raw = rmpv::decode::read_value_with_max_depth(&mut rd, MAX_DEPTH)
        .map_err(|e| CodecError::MalformedMsgpack(e.to_string()))?;
    if !rd.is_empty() {
        return Err(CodecError::TrailingBytes(rd.len()));
    }
    decode(raw, ty, &mut Cursor::default())
}

/// Encodes `v` as msgpack for type `ty`.
pub fn encode_msgpack(v: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mp = encode(v, ty, &mut Cursor::default())?;
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &mp)
        .map_err(|e| CodecError::MalformedMsgpack(e.to_string()))?;
    Ok(out)
}

fn kind(mp: &Mp) -> &'static str {
    match mp {
        Mp::Nil => "null",
        Mp::Boolean(_) => "bool",
        Mp::Integer(_) => "integer",
        Mp::F32(_) | Mp::F64(_) => "float",
        Mp::String(_) => "string",
        Mp::Binary(_) => "binary",
        Mp::Array(_) => "array",
        Mp::Map(_) => "map",
        Mp::Ext(..) => "extension",
    }
}

fn mismatch(ty: &Type, found: &'static str, cur: &Cursor) -> CodecError {
    CodecError::Mismatch {
        path: cur.path(),
        expected: ty.to_string(),
        found,
    }
}

fn utf8(bytes: Vec<u8>, cur: &Cursor) -> Result<String, CodecError> {
    String::from_utf8(bytes).map_err(|_| CodecError::InvalidUtf8 { path: cur.path() })
}

fn decode_string(mp: Mp, ty: &Type, cur: &Cursor) -> Result<String, CodecError> {
    match mp {
        Mp::String(s) => utf8(s.into_bytes(), cur),
        Mp::Binary(b) => utf8(b, cur),
        other => Err(mismatch(ty, kind(&other), cur)),
    }
}

fn decode_key(mp: Mp, cur: &Cursor) -> Result<String, CodecError> {
    match mp {
        Mp::String(s) => utf8(s.into_bytes(), cur),
        Mp::Binary(b) => utf8(b, cur),
        _ => Err(CodecError::NonStringKey { path: cur.path() }),
    }
}

fn decode(mp: Mp, ty: &Type, cur: &mut Cursor) -> Result<Value, CodecError> {
    // cty checks for an extension before anything else, at every type.
    if let Mp::Ext(..) = mp {
        return Ok(Value::Unknown);
    }
    if *ty == Type::Dynamic {
        return decode_dynamic(mp, cur);
    }
    if let Mp::Nil = mp {
        return Ok(Value::Null);
    }
    match ty {
        Type::Bool => match mp {
            Mp::Boolean(b) => Ok(Value::Bool(b)),
            other => Err(mismatch(ty, kind(&other), cur)),
        },
        Type::Number => decode_number(mp, ty, cur).map(Value::Number),
        Type::String => decode_string(mp, ty, cur).map(Value::String),
        Type::List(elem) | Type::Set(elem) => {
            let Mp::Array(items) = mp else {
                return Err(mismatch(ty, kind(&mp), cur));
            };
            let items = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| cur.with(PathStep::Index(i as u64), |c| decode(item, elem, c)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if matches!(ty, Type::Set(_)) {
                Value::Set(items)
            } else {
                Value::List(items)
            })
        }
        Type::Tuple(elems) => {
            let Mp::Array(items) = mp else {
                return Err(mismatch(ty, kind(&mp), cur));
            };
            if items.len() != elems.len() {
                return Err(CodecError::TupleLength {
                    path: cur.path(),
                    expected: elems.len(),
                    found: items.len(),
                });
            }
            items
                .into_iter()
                .zip(elems)
                .enumerate()
                .map(|(i, (item, et))| cur.with(PathStep::Index(i as u64), |c| decode(item, et, c)))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Tuple)
        }
        Type::Map(elem) => {
            let Mp::Map(pairs) = mp else {
                return Err(mismatch(ty, kind(&mp), cur));
            };
            let mut out = std::collections::BTreeMap::new();
            for (k, v) in pairs {
                let k = decode_key(k, cur)?;
                let v = cur.with(PathStep::Key(k.clone()), |c| decode(v, elem, c))?;
                out.insert(k, v);
            }
            Ok(Value::Map(out))
        }
        Type::Object(attrs) => {
            let Mp::Map(pairs) = mp else {
                return Err(mismatch(ty, kind(&mp), cur));
            };
            let mut out = std::collections::BTreeMap::new();
            for (k, v) in pairs {
                let k = decode_key(k, cur)?;
                let Some(aty) = attrs.get(&k) else {
                    return Err(CodecError::UnsupportedAttribute {
                        path: cur.path(),
                        name: k,
                    });
                };
                let v = cur.with(PathStep::Attr(k.clone()), |c| decode(v, aty, c))?;
                out.insert(k, v);
            }
            // Like cty: an attribute the sender left out is null.
            for name in attrs.keys() {
                out.entry(name.clone()).or_insert(Value::Null);
            }
            Ok(Value::Object(out))
        }
        Type::Dynamic => decode_dynamic(mp, cur),
    }
}

fn decode_number(mp: Mp, ty: &Type, cur: &Cursor) -> Result<Number, CodecError> {
    let invalid = || CodecError::InvalidNumber { path: cur.path() };
    match mp {
        Mp::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(i), _) => Ok(Number::Int(i)),
            (None, Some(u)) => Ok(Number::Big(u.to_string())),
            (None, None) => Err(invalid()),
        },
        Mp::F64(f) => Number::from_f64(f).ok_or_else(invalid),
        Mp::F32(f) => Number::from_f64(f64::from(f)).ok_or_else(invalid),
        Mp::String(s) => {
            let s = utf8(s.into_bytes(), cur)?;
            Number::parse(&s).ok_or_else(invalid)
        }
        other => Err(mismatch(ty, kind(&other), cur)),
    }
}

fn decode_dynamic(mp: Mp, cur: &mut Cursor) -> Result<Value, CodecError> {
    let malformed = |cur: &Cursor, detail: &str| CodecError::MalformedDynamic {
        path: cur.path(),
        detail: detail.into(),
    };
    match mp {
        Mp::Nil => Ok(Value::Null),
        Mp::Ext(..) => Ok(Value::Unknown),
        Mp::Array(parts) if parts.len() == 2 => {
            let mut parts = parts.into_iter();
            let (Some(tj), Some(inner)) = (parts.next(), parts.next()) else {
                return Err(malformed(cur, "expected [type, value]"));
            };
            let tj = match tj {
                Mp::Binary(b) => b,
                Mp::String(s) => s.into_bytes(),
                _ => return Err(malformed(cur, "type must be JSON bytes")),
            };
            let t = Type::from_json(&tj)?;
            let inner = decode(inner, &t, cur)?;
            Ok(match t {
                Type::Dynamic => inner,
                t => Value::Dynamic(t, Box::new(inner)),
            })
        }
        _ => Err(malformed(cur, "expected a 2-element array [type, value]")),
    }
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Unknown => "unknown",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::List(_) => "list",
        Value::Set(_) => "set",
        Value::Map(_) => "map",
        Value::Object(_) => "object",
        Value::Tuple(_) => "tuple",
        Value::Dynamic(..) => "value of another type",
    }
}

pub(crate) fn value_mismatch(ty: &Type, v: &Value, cur: &Cursor) -> CodecError {
    CodecError::Mismatch {
        path: cur.path(),
        expected: ty.to_string(),
        found: value_kind(v),
    }
}

/// The concrete type to write for a value at a dynamic position, or `None` for a typeless null/unknown.
pub(crate) fn dynamic_parts<'a>(
    v: &'a Value,
    cur: &Cursor,
) -> Result<Option<(Type, &'a Value)>, CodecError> {
    match v {
        Value::Null | Value::Unknown => Ok(None),
        Value::Dynamic(Type::Dynamic, inner) => dynamic_parts(inner, cur),
        Value::Dynamic(t, inner) => Ok(Some((t.clone(), inner))),
        other => match other.infer_type() {
            Some(t) => Ok(Some((t, other))),
            None => Err(CodecError::UntypedDynamic { path: cur.path() }),
        },
    }
}

fn encode(v: &Value, ty: &Type, cur: &mut Cursor) -> Result<Mp, CodecError> {
    if let Value::Unknown = v {
        return Ok(Mp::Ext(UNKNOWN_EXT_TYPE, vec![0]));
    }
    if *ty == Type::Dynamic {
        return match dynamic_parts(v, cur)? {
            // A typeless null or unknown.
            None if v.is_known() => Ok(Mp::Nil),
            None => Ok(Mp::Ext(UNKNOWN_EXT_TYPE, vec![0])),
            Some((t, inner)) => Ok(Mp::Array(vec![
                Mp::Binary(t.to_json()),
                encode(inner, &t, cur)?,
            ])),
        };
    }
    match (v, ty) {
        (Value::Null, _) => Ok(Mp::Nil),
        (Value::Dynamic(t, inner), _) if t == ty => encode(inner, ty, cur),
        (Value::Bool(b), Type::Bool) => Ok(Mp::Boolean(*b)),
        (Value::Number(n), Type::Number) => encode_number(n, cur),
        (Value::String(s), Type::String) => Ok(Mp::String(s.clone().into())),
        (Value::List(items), Type::List(elem)) | (Value::Set(items), Type::Set(elem)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| cur.with(PathStep::Index(i as u64), |c| encode(item, elem, c)))
            .collect::<Result<Vec<_>, _>>()
            .map(Mp::Array),
        (Value::Tuple(items), Type::Tuple(elems)) => {
            if items.len() != elems.len() {
                return Err(CodecError::TupleLength {
                    path: cur.path(),
                    expected: elems.len(),
                    found: items.len(),
                });
            }
            items
                .iter()
                .zip(elems)
                .enumerate()
                .map(|(i, (item, et))| cur.with(PathStep::Index(i as u64), |c| encode(item, et, c)))
                .collect::<Result<Vec<_>, _>>()
                .map(Mp::Array)
        }
        (Value::Map(m), Type::Map(elem)) => m
            .iter()
            .map(|(k, item)| {
                let enc = cur.with(PathStep::Key(k.clone()), |c| encode(item, elem, c))?;
                Ok((Mp::String(k.clone().into()), enc))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Mp::Map),
        (Value::Object(m), Type::Object(attrs)) => {
            if let Some(extra) = m.keys().find(|k| !attrs.contains_key(*k)) {
                return Err(CodecError::UnsupportedAttribute {
                    path: cur.path(),
                    name: extra.clone(),
                });
            }
            // Every declared attribute is written (absent ones as nil), in sorted order like cty.
            attrs
                .iter()
                .map(|(k, aty)| {
                    let item = m.get(k).unwrap_or(&Value::Null);
                    let enc = cur.with(PathStep::Attr(k.clone()), |c| encode(item, aty, c))?;
                    Ok((Mp::String(k.clone().into()), enc))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Mp::Map)
        }
        (other, _) => Err(value_mismatch(ty, other, cur)),
    }
}

fn encode_number(n: &Number, cur: &Cursor) -> Result<Mp, CodecError> {
    let invalid = || CodecError::InvalidNumber { path: cur.path() };
    match n {
        Number::Int(i) => Ok(Mp::from(*i)),
        Number::Float(f) => match Number::from_f64(*f).ok_or_else(invalid)? {
            Number::Int(i) => Ok(Mp::from(i)),
            _ => Ok(Mp::F64(*f)),
        },
        Number::Big(s) if is_json_number(s) => match s.parse::<i64>() {
            Ok(i) => Ok(Mp::from(i)),
            Err(_) => Ok(Mp::String(s.clone().into())),
        },
        Number::Big(_) => Err(invalid()),
    }
}
