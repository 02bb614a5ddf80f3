//! The bridge between protocol values and a resource's typed Rust structs (serde), so resources never touch a
//! raw `DynamicValue`.
//!
//! Reading: unknown values read as null, and null attributes are left out of the object, so `Option` fields
//! become `None` and `#[serde(default)]` fills the rest. Which attributes were unknown is reported separately
//! (see [`unknown_attributes`]). Writing: the struct is serialised and every attribute of the schema that the
//! struct did not produce is null; sets, maps and objects follow the schema type through the JSON codec.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::value::{decode_json, encode_json, Type, Value};

/// A value did not fit the Rust type, or the Rust value did not fit the schema (a provider bug).
#[derive(Debug, thiserror::Error)]
pub enum TypedError {
    #[error("value does not match the schema: {0}")]
    Codec(#[from] crate::value::CodecError),
    #[error("value does not fit the provider's state structure: {0}")]
    Serde(#[from] serde_json::Error),
}

/// Reads a typed struct from a value of type `ty`.
pub fn from_value<T: DeserializeOwned>(v: &Value, ty: &Type) -> Result<T, TypedError> {
    let known = strip_unknown(v);
    let json: serde_json::Value = serde_json::from_slice(&encode_json(&known, ty)?)?;
    Ok(serde_json::from_value(drop_nulls(json))?)
}

/// Writes a typed struct as a value of type `ty`.
pub fn to_value<T: Serialize>(t: &T, ty: &Type) -> Result<Value, TypedError> {
    let mut json = serde_json::to_value(t)?;
    fill_missing(&mut json, ty);
    Ok(decode_json(&serde_json::to_vec(&json)?, ty)?)
}

/// Reads stored state JSON leniently: attributes the schema no longer has are dropped and new ones are null,
/// so removing or adding an attribute needs no schema-version bump.
pub fn value_from_json_lenient(
    mut json: serde_json::Value,
    ty: &Type,
) -> Result<Value, TypedError> {
    prune_unknown_keys(&mut json, ty);
    fill_missing(&mut json, ty);
    Ok(decode_json(&serde_json::to_vec(&json)?, ty)?)
}

fn prune_unknown_keys(v: &mut serde_json::Value, ty: &Type) {
    if let (serde_json::Value::Object(m), Type::Object(attrs)) = (v, ty) {
        m.retain(|k, _| attrs.contains_key(k));
        for (k, x) in m.iter_mut() {
            if let Some(aty) = attrs.get(k) {
                prune_unknown_keys(x, aty);
            }
        }
    }
}

/// The top-level attributes of an object whose value is not wholly known.
pub fn unknown_attributes(v: &Value) -> BTreeSet<String> {
    v.as_entries()
        .map(|attrs| {
            attrs
                .iter()
                .filter(|(_, v)| !v.is_wholly_known())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// A copy of `v` with every unknown replaced by null.
pub fn strip_unknown(v: &Value) -> Value {
    match v {
        Value::Unknown => Value::Null,
        // A collection with an unknown element is null as a whole (a null element would not fit a typed
        // `Vec<String>`, and half a list is no value to check); its attribute is listed as unknown. Elements
        // that are objects (blocks) keep their known fields instead.
        Value::List(items) | Value::Set(items) | Value::Tuple(items)
            if items.contains(&Value::Unknown) =>
        {
            Value::Null
        }
        Value::Map(m) if m.values().any(|i| *i == Value::Unknown) => Value::Null,
        Value::List(items) => Value::List(items.iter().map(strip_unknown).collect()),
        Value::Set(items) => Value::Set(items.iter().map(strip_unknown).collect()),
        Value::Tuple(items) => Value::Tuple(items.iter().map(strip_unknown).collect()),
        Value::Map(m) => Value::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), strip_unknown(v)))
                .collect(),
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), strip_unknown(v)))
                .collect(),
        ),
        Value::Dynamic(t, inner) => Value::Dynamic(t.clone(), Box::new(strip_unknown(inner))),
        other => other.clone(),
    }
}

fn drop_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, drop_nulls(v)))
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(drop_nulls).collect())
        }
        other => other,
    }
}

fn fill_missing(v: &mut serde_json::Value, ty: &Type) {
    match (v, ty) {
        (serde_json::Value::Object(m), Type::Object(attrs)) => {
            for (name, aty) in attrs {
                let slot = m.entry(name.clone()).or_insert(serde_json::Value::Null);
                fill_missing(slot, aty);
            }
        }
        (serde_json::Value::Object(m), Type::Map(ety)) => {
            m.values_mut().for_each(|x| fill_missing(x, ety));
        }
        (serde_json::Value::Array(items), Type::List(ety) | Type::Set(ety)) => {
            items.iter_mut().for_each(|x| fill_missing(x, ety));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct S {
        host: String,
        port: Option<i64>,
        images: BTreeMap<String, String>,
        tags: Vec<String>,
        nested: Option<N>,
    }
    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    struct N {
        host: String,
        port: Option<i64>,
    }

    fn ty() -> Type {
        Type::object([
            ("host", Type::String),
            ("port", Type::Number),
            ("images", Type::map(Type::String)),
            ("tags", Type::set(Type::String)),
            (
                "nested",
                Type::object([("host", Type::String), ("port", Type::Number)]),
            ),
            ("computed_only", Type::String),
        ])
    }

    #[test]
    fn struct_round_trips_and_fills_schema_only_attributes_with_null() {
        let s = S {
            host: "h".into(),
            port: Some(22),
            images: [("a".to_string(), "b".to_string())].into(),
            tags: vec!["x".into()],
            nested: Some(N {
                host: "j".into(),
                port: None,
            }),
        };
        let v = to_value(&s, &ty()).unwrap();
        assert_eq!(v.get_attr("computed_only"), Some(&Value::Null));
        assert!(matches!(v.get_attr("tags"), Some(Value::Set(_))));
        let back: S = from_value(&v, &ty()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn unknown_reads_as_absent_and_is_reported() {
        let v = Value::object([
            ("host", Value::Unknown),
            ("port", Value::int(2222)),
            ("images", Value::Null),
            ("tags", Value::Null),
            ("nested", Value::Null),
            ("computed_only", Value::Unknown),
        ]);
        let s: S = from_value(&v, &ty()).unwrap();
        assert_eq!(s.host, "");
        assert_eq!(s.port, Some(2222));
        let unknown = unknown_attributes(&v);
        assert_eq!(
            unknown,
            ["computed_only".to_string(), "host".to_string()].into()
        );
    }

    #[test]
    fn a_collection_with_an_unknown_element_reads_as_absent_and_is_reported() {
        // A module's `instance_types = [var.instance_type]` while its variable is unknown (validate).
        let v = Value::object([
            ("host", Value::string("h")),
            ("port", Value::Null),
            (
                "images",
                Value::Map([("a".to_string(), Value::Unknown)].into()),
            ),
            ("tags", Value::Set(vec![Value::string("x"), Value::Unknown])),
            ("nested", Value::Null),
            ("computed_only", Value::Null),
        ]);
        let s: S = from_value(&v, &ty()).unwrap();
        assert!(s.tags.is_empty() && s.images.is_empty(), "{s:?}");
        assert_eq!(
            unknown_attributes(&v),
            ["images".to_string(), "tags".to_string()].into()
        );
    }
}
