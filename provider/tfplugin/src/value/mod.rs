//! The Terraform (cty) value model and the `DynamicValue` codecs: msgpack (what Terraform sends and expects
//! on every RPC) and JSON (stored state, `RawState.json`). Decoding and encoding are driven by a [`Type`],
//! exactly as in cty, because the wire formats do not carry types (except for dynamic values).

mod error;
mod json;
mod msgpack;
mod number;
mod path;
mod types;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use error::CodecError;
pub use json::{decode_json, encode_json};
pub use msgpack::{decode_msgpack, encode_msgpack};
pub use number::Number;
pub use path::{Path, PathStep};
pub use types::Type;

/// A Terraform value. It carries no type of its own: the [`Type`] it is decoded or encoded with gives it one.
///
/// `Null` and `Unknown` are typeless and valid at any position. At a position of type [`Type::Dynamic`] a
/// known value needs its concrete type on the wire; the decoder returns it as `Dynamic(type, value)` and the
/// encoder accepts either that or a bare value whose type can be inferred (see [`Value::infer_type`]).
/// A bare `Null`/`Unknown` at a dynamic position means a null/unknown of unknown type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Unknown,
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    /// Elements in wire order; the codec neither sorts nor de-duplicates them.
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
    Tuple(Vec<Value>),
    /// A value at a [`Type::Dynamic`] position together with its concrete type.
    Dynamic(Type, Box<Value>),
}

impl Value {
    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// A boolean value.
    pub fn bool(b: bool) -> Value {
        Value::Bool(b)
    }

    /// An integer value.
    pub fn int(i: i64) -> Value {
        Value::Number(Number::Int(i))
    }

    /// A number from a float; `None` for NaN or infinities.
    pub fn float(f: f64) -> Option<Value> {
        Number::from_f64(f).map(Value::Number)
    }

    /// An object value from attribute name/value pairs.
    pub fn object<K: Into<String>>(attrs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A map value from key/value pairs.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A list value.
    pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
        Value::List(items.into_iter().collect())
    }

    /// A set value.
    pub fn set(items: impl IntoIterator<Item = Value>) -> Value {
        Value::Set(items.into_iter().collect())
    }

    /// A string, or null for `None`.
    pub fn opt_string(s: Option<impl Into<String>>) -> Value {
        s.map_or(Value::Null, Value::string)
    }

    /// Looks through a `Dynamic` wrapper to the value inside.
    pub fn unwrap_dynamic(&self) -> &Value {
        match self {
            Value::Dynamic(_, v) => v.unwrap_dynamic(),
            v => v,
        }
    }

    /// True for null (also a null wrapped as dynamic).
    pub fn is_null(&self) -> bool {
        matches!(self.unwrap_dynamic(), Value::Null)
    }

    /// False only when this value itself is unknown (its parts may still be unknown; see
    /// [`Value::is_wholly_known`]).
    pub fn is_known(&self) -> bool {
        !matches!(self.unwrap_dynamic(), Value::Unknown)
    }

    /// True when neither this value nor anything inside it is unknown.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => true,
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
                v.iter().all(Value::is_wholly_known)
            }
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            Value::Dynamic(_, v) => v.is_wholly_known(),
        }
    }

    /// The string, if this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self.unwrap_dynamic() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is a known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self.unwrap_dynamic() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number, if this is a known number.
    pub fn as_number(&self) -> Option<&Number> {
        match self.unwrap_dynamic() {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The number as `i64`, if this is a known integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    /// Elements of a known list, set or tuple.
    pub fn as_elements(&self) -> Option<&[Value]> {
        match self.unwrap_dynamic() {
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// Entries of a known map or object.
    pub fn as_entries(&self) -> Option<&BTreeMap<String, Value>> {
        match self.unwrap_dynamic() {
            Value::Map(m) | Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// An object attribute (or map entry); `None` when this is not a known object/map or lacks the name.
    pub fn get_attr(&self, name: &str) -> Option<&Value> {
        self.as_entries().and_then(|m| m.get(name))
    }

    /// Mutable access to an object attribute (or map entry).
    pub fn get_attr_mut(&mut self, name: &str) -> Option<&mut Value> {
        match self {
            Value::Map(m) | Value::Object(m) => m.get_mut(name),
            Value::Dynamic(_, v) => v.get_attr_mut(name),
            _ => None,
        }
    }

    /// Sets an object attribute (or map entry); returns false when this is not a known object or map.
    pub fn set_attr(&mut self, name: impl Into<String>, value: Value) -> bool {
        match self {
            Value::Map(m) | Value::Object(m) => {
                m.insert(name.into(), value);
                true
            }
            Value::Dynamic(_, v) => v.set_attr(name, value),
            _ => false,
        }
    }

    /// The concrete type this value would have at a dynamic position, when it can be told from the value:
    /// `List`/`Set`/`Map` take their element type from their non-null known elements (which must agree;
    /// without any such element it is `Dynamic`), and `Null`/`Unknown` object attributes or tuple elements
    /// become `Dynamic`. `None` for a top-level
    /// `Null`/`Unknown` or for disagreeing elements.
    pub fn infer_type(&self) -> Option<Type> {
        fn elem_type<'a>(items: impl Iterator<Item = &'a Value>) -> Option<Type> {
            let mut found: Option<Type> = None;
            // Null and unknown elements fit any element type.
            for item in items.filter(|i| !matches!(i, Value::Null | Value::Unknown)) {
                let t = item.infer_type_inner();
                match &found {
                    None => found = Some(t?),
                    Some(f) if Some(f) == t.as_ref() => {}
                    Some(_) => return None,
                }
            }
            Some(found.unwrap_or(Type::Dynamic))
        }
        match self {
            Value::Null | Value::Unknown => None,
            Value::Bool(_) => Some(Type::Bool),
            Value::Number(_) => Some(Type::Number),
            Value::String(_) => Some(Type::String),
            Value::List(v) => Some(Type::list(elem_type(v.iter())?)),
            Value::Set(v) => Some(Type::set(elem_type(v.iter())?)),
            Value::Map(m) => Some(Type::map(elem_type(m.values())?)),
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| Some((k.clone(), v.infer_type_inner()?)))
                .collect::<Option<BTreeMap<_, _>>>()
                .map(Type::Object),
            Value::Tuple(v) => v
                .iter()
                .map(Value::infer_type_inner)
                .collect::<Option<Vec<_>>>()
                .map(Type::Tuple),
            Value::Dynamic(t, _) => Some(t.clone()),
        }
    }

    fn infer_type_inner(&self) -> Option<Type> {
        match self {
            Value::Null | Value::Unknown => Some(Type::Dynamic),
            // Inside a container a dynamic wrapper marks a dynamic-typed slot.
            Value::Dynamic(..) => Some(Type::Dynamic),
            v => v.infer_type(),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::string(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::int(i)
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Value {
        Value::Number(n)
    }
}
