//! JSON codec for stored state (`RawState.json`, `DynamicValue.json`), following cty's JSON encoding:
//! objects list every attribute (sorted), a known value at a dynamic position is `{"value":…,"type":…}`,
//! and unknown values cannot be represented. Decoding is lossless for numbers (the decimal text is kept)
//! and, like cty, converts between strings and numbers/bools where the type asks for it.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use super::msgpack::{dynamic_parts, value_mismatch};
use super::path::{Cursor, PathStep};
use super::{CodecError, Number, Type, Value};

/// Nesting limit while reading; serde_json does not bound RawValue nesting for us.
const MAX_DEPTH: usize = 256;

/// Decodes JSON bytes as a value of type `ty`.
pub fn decode_json(b: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let cur = &mut Cursor::default();
    let raw: &RawValue = serde_json::from_slice(b).map_err(|e| malformed(cur, &e))?;
    decode(raw, ty, cur, 0)
}

/// Encodes `v` as JSON for type `ty`.
pub fn encode_json(v: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut out = String::new();
    encode(v, ty, &mut Cursor::default(), &mut out)?;
    Ok(out.into_bytes())
}

fn malformed(cur: &Cursor, e: &serde_json::Error) -> CodecError {
    CodecError::MalformedJson {
        path: cur.path(),
        detail: e.to_string(),
    }
}

/// One JSON node, with containers split only one level deep.
enum Node<'a> {
    Null,
    Bool(bool),
    Number(&'a str),
    String(String),
    Array(Vec<&'a RawValue>),
    Object(BTreeMap<String, &'a RawValue>),
}

impl Node<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "bool",
            Node::Number(_) => "number",
            Node::String(_) => "string",
            Node::Array(_) => "array",
            Node::Object(_) => "object",
        }
    }
}

fn split<'a>(raw: &'a RawValue, cur: &Cursor) -> Result<Node<'a>, CodecError> {
    let text = raw.get().trim();
    let parse_err = |e: serde_json::Error| malformed(cur, &e);
    Ok(match text.as_bytes().first() {
        Some(b'n') => Node::Null,
        Some(b't') => Node::Bool(true),
        Some(b'f') => Node::Bool(false),
        Some(b'"') => Node::String(serde_json::from_str(text).map_err(parse_err)?),
        Some(b'[') => Node::Array(serde_json::from_str(text).map_err(parse_err)?),
        Some(b'{') => Node::Object(serde_json::from_str(text).map_err(parse_err)?),
        // RawValue guarantees well-formed JSON, so anything else is a number.
        _ => Node::Number(text),
    })
}

fn mismatch(ty: &Type, node: &Node<'_>, cur: &Cursor) -> CodecError {
    CodecError::Mismatch {
        path: cur.path(),
        expected: ty.to_string(),
        found: node.kind(),
    }
}

fn decode(raw: &RawValue, ty: &Type, cur: &mut Cursor, depth: usize) -> Result<Value, CodecError> {
    if depth > MAX_DEPTH {
        return Err(CodecError::MalformedJson {
            path: cur.path(),
            detail: "nesting too deep".into(),
        });
    }
    let node = split(raw, cur)?;
    if let Type::Dynamic = ty {
        return decode_dynamic(node, cur, depth);
    }
    if let Node::Null = node {
        return Ok(Value::Null);
    }
    let invalid_number = |cur: &Cursor| CodecError::InvalidNumber { path: cur.path() };
    match (ty, node) {
        (Type::Bool, Node::Bool(b)) => Ok(Value::Bool(b)),
        (Type::Bool, Node::String(s)) if s == "true" || s == "false" => {
            Ok(Value::Bool(s == "true"))
        }
        (Type::Number, Node::Number(text)) => Number::parse(text)
            .map(Value::Number)
            .ok_or_else(|| invalid_number(cur)),
        (Type::Number, Node::String(s)) => Number::parse(&s)
            .map(Value::Number)
            .ok_or_else(|| invalid_number(cur)),
        (Type::String, Node::String(s)) => Ok(Value::String(s)),
        (Type::String, Node::Number(text)) => Ok(Value::string(text)),
        (Type::String, Node::Bool(b)) => Ok(Value::string(if b { "true" } else { "false" })),
        (Type::List(elem) | Type::Set(elem), Node::Array(items)) => {
            let items = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    cur.with(PathStep::Index(i as u64), |c| {
                        decode(item, elem, c, depth + 1)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if matches!(ty, Type::Set(_)) {
                Value::Set(items)
            } else {
                Value::List(items)
            })
        }
        (Type::Tuple(elems), Node::Array(items)) => {
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
                .map(|(i, (item, et))| {
                    cur.with(PathStep::Index(i as u64), |c| {
                        decode(item, et, c, depth + 1)
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Tuple)
        }
        (Type::Map(elem), Node::Object(entries)) => entries
            .into_iter()
            .map(|(k, item)| {
                let v = cur.with(PathStep::Key(k.clone()), |c| {
                    decode(item, elem, c, depth + 1)
                })?;
                Ok((k, v))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(Value::Map),
        (Type::Object(attrs), Node::Object(entries)) => {
            let mut out = BTreeMap::new();
            for (k, item) in entries {
                let Some(aty) = attrs.get(&k) else {
                    return Err(CodecError::UnsupportedAttribute {
                        path: cur.path(),
                        name: k,
                    });
                };
                let v = cur.with(PathStep::Attr(k.clone()), |c| {
                    decode(item, aty, c, depth + 1)
                })?;
                out.insert(k, v);
            }
            // Like cty: an attribute missing from stored state is null.
            for name in attrs.keys() {
                out.entry(name.clone()).or_insert(Value::Null);
            }
            Ok(Value::Object(out))
        }
        (ty, node) => Err(mismatch(ty, &node, cur)),
    }
}

fn decode_dynamic(node: Node<'_>, cur: &mut Cursor, depth: usize) -> Result<Value, CodecError> {
    let malformed = |cur: &Cursor, detail: &str| CodecError::MalformedDynamic {
        path: cur.path(),
        detail: detail.into(),
    };
    match node {
        Node::Null => Ok(Value::Null),
        Node::Object(mut parts) => {
            let (Some(tj), Some(inner), 2) =
                (parts.remove("type"), parts.remove("value"), parts.len() + 2)
            else {
                return Err(malformed(
                    cur,
                    r#"expected exactly the keys "type" and "value""#,
                ));
            };
            let t = Type::from_json(tj.get().as_bytes())?;
            let inner = decode(inner, &t, cur, depth + 1)?;
            Ok(match t {
                Type::Dynamic => inner,
                t => Value::Dynamic(t, Box::new(inner)),
            })
        }
        other => Err(malformed(
            cur,
            &format!(
                "expected an object with type and value, found {}",
                other.kind()
            ),
        )),
    }
}

fn write_str(out: &mut String, s: &str) {
    // Serialising a str cannot fail; fall back to an empty string rather than panic.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

fn encode(v: &Value, ty: &Type, cur: &mut Cursor, out: &mut String) -> Result<(), CodecError> {
    if let Value::Unknown = v {
        return Err(CodecError::UnknownInJson { path: cur.path() });
    }
    if let Type::Dynamic = ty {
        return match dynamic_parts(v, cur)? {
            None if v.is_known() => {
                out.push_str("null");
                Ok(())
            }
            None => Err(CodecError::UnknownInJson { path: cur.path() }),
            Some((t, inner)) => {
                out.push_str(r#"{"value":"#);
                encode(inner, &t, cur, out)?;
                out.push_str(r#","type":"#);
                out.push_str(&String::from_utf8_lossy(&t.to_json()));
                out.push('}');
                Ok(())
            }
        };
    }
    match (v, ty) {
        (Value::Null, _) => out.push_str("null"),
        (Value::Dynamic(t, inner), _) if t == ty => return encode(inner, ty, cur, out),
        (Value::Bool(b), Type::Bool) => out.push_str(if *b { "true" } else { "false" }),
        (Value::Number(n), Type::Number) => out.push_str(
            &n.to_decimal()
                .ok_or_else(|| CodecError::InvalidNumber { path: cur.path() })?,
        ),
        (Value::String(s), Type::String) => write_str(out, s),
        (Value::List(items), Type::List(elem)) | (Value::Set(items), Type::Set(elem)) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                cur.with(PathStep::Index(i as u64), |c| encode(item, elem, c, out))?;
            }
            out.push(']');
        }
        (Value::Tuple(items), Type::Tuple(elems)) => {
            if items.len() != elems.len() {
                return Err(CodecError::TupleLength {
                    path: cur.path(),
                    expected: elems.len(),
                    found: items.len(),
                });
            }
            out.push('[');
            for (i, (item, et)) in items.iter().zip(elems).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                cur.with(PathStep::Index(i as u64), |c| encode(item, et, c, out))?;
            }
            out.push(']');
        }
        (Value::Map(m), Type::Map(elem)) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                cur.with(PathStep::Key(k.clone()), |c| encode(item, elem, c, out))?;
            }
            out.push('}');
        }
        (Value::Object(m), Type::Object(attrs)) => {
            if let Some(extra) = m.keys().find(|k| !attrs.contains_key(*k)) {
                return Err(CodecError::UnsupportedAttribute {
                    path: cur.path(),
                    name: extra.clone(),
                });
            }
            out.push('{');
            for (i, (k, aty)) in attrs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                let item = m.get(k).unwrap_or(&Value::Null);
                cur.with(PathStep::Attr(k.clone()), |c| encode(item, aty, c, out))?;
            }
            out.push('}');
        }
        (other, _) => return Err(value_mismatch(ty, other, cur)),
    }
    Ok(())
}
