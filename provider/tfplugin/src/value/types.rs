//! The cty type model ([`Type`]) and its JSON form, as used in schemas (`Schema.Attribute.type`), function
//! signatures and the type half of a dynamic value.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value as Json;

use super::error::CodecError;

/// A Terraform (cty) type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    Bool,
    Number,
    String,
    /// cty's `DynamicPseudoType`: "any type", decided per value.
    Dynamic,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
    Tuple(Vec<Type>),
}

impl Type {
    /// `list(elem)`.
    pub fn list(elem: Type) -> Type {
        Type::List(Box::new(elem))
    }

    /// `set(elem)`.
    pub fn set(elem: Type) -> Type {
        Type::Set(Box::new(elem))
    }

    /// `map(elem)`.
    pub fn map(elem: Type) -> Type {
        Type::Map(Box::new(elem))
    }

    /// `object({...})` from attribute name/type pairs.
    pub fn object<K: Into<String>>(attrs: impl IntoIterator<Item = (K, Type)>) -> Type {
        Type::Object(attrs.into_iter().map(|(k, t)| (k.into(), t)).collect())
    }

    /// cty's JSON type description, e.g. `"string"`, `["list","string"]`, `["object",{"a":"bool"}]`.
    /// Object attributes come out sorted, so the output is deterministic.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a serde_json::Value cannot fail.
        serde_json::to_vec(&self.to_json_value()).unwrap_or_default()
    }

    /// Parses cty's JSON type description. The optional-attributes list some type constraints carry as a
    /// third element of `["object", {...}, [...]]` is accepted and ignored.
    pub fn from_json(b: &[u8]) -> Result<Type, CodecError> {
        let json: Json =
            serde_json::from_slice(b).map_err(|e| CodecError::InvalidType(e.to_string()))?;
        Type::from_json_value(&json)
    }

    pub(crate) fn to_json_value(&self) -> Json {
        match self {
            Type::Bool => Json::from("bool"),
            Type::Number => Json::from("number"),
            Type::String => Json::from("string"),
            Type::Dynamic => Json::from("dynamic"),
            Type::List(e) => Json::Array(vec![Json::from("list"), e.to_json_value()]),
            Type::Set(e) => Json::Array(vec![Json::from("set"), e.to_json_value()]),
            Type::Map(e) => Json::Array(vec![Json::from("map"), e.to_json_value()]),
            Type::Object(attrs) => {
                let obj: serde_json::Map<String, Json> = attrs
                    .iter()
                    .map(|(k, t)| (k.clone(), t.to_json_value()))
                    .collect();
                Json::Array(vec![Json::from("object"), Json::Object(obj)])
            }
            Type::Tuple(elems) => Json::Array(vec![
                Json::from("tuple"),
                Json::Array(elems.iter().map(Type::to_json_value).collect()),
            ]),
        }
    }

    pub(crate) fn from_json_value(json: &Json) -> Result<Type, CodecError> {
        let bad = |what: &str| CodecError::InvalidType(format!("{what} in {json}"));
        match json {
            Json::String(s) => match s.as_str() {
                "bool" => Ok(Type::Bool),
                "number" => Ok(Type::Number),
                "string" => Ok(Type::String),
                "dynamic" => Ok(Type::Dynamic),
                _ => Err(bad("unknown primitive type")),
            },
            Json::Array(parts) => {
                let kind = parts
                    .first()
                    .and_then(Json::as_str)
                    .ok_or_else(|| bad("missing type kind"))?;
                let arg = parts.get(1).ok_or_else(|| bad("missing type argument"))?;
                let extra_ok = kind == "object" && parts.len() == 3;
                if parts.len() != 2 && !extra_ok {
                    return Err(bad("wrong number of elements"));
                }
                match kind {
                    "list" => Ok(Type::list(Type::from_json_value(arg)?)),
                    "set" => Ok(Type::set(Type::from_json_value(arg)?)),
                    "map" => Ok(Type::map(Type::from_json_value(arg)?)),
                    "object" => {
                        let attrs = arg
                            .as_object()
                            .ok_or_else(|| bad("object attributes must be a JSON object"))?;
                        let mut out = BTreeMap::new();
                        for (k, v) in attrs {
                            out.insert(k.clone(), Type::from_json_value(v)?);
                        }
                        Ok(Type::Object(out))
                    }
                    "tuple" => {
                        let elems = arg
                            .as_array()
                            .ok_or_else(|| bad("tuple elements must be a JSON array"))?;
                        Ok(Type::Tuple(
                            elems
                                .iter()
                                .map(Type::from_json_value)
                                .collect::<Result<_, _>>()?,
                        ))
                    }
                    _ => Err(bad("unknown type kind")),
                }
            }
            _ => Err(bad("type must be a string or an array")),
        }
    }

    /// Element type of a list, set or map.
    pub fn element(&self) -> Option<&Type> {
        match self {
            Type::List(e) | Type::Set(e) | Type::Map(e) => Some(e),
            _ => None,
        }
    }
}

/// Human-readable name as Terraform prints it in messages: `string`, `list of string`, `object`.
impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Number => f.write_str("number"),
            Type::String => f.write_str("string"),
            Type::Dynamic => f.write_str("any value"),
            Type::List(e) => write!(f, "list of {e}"),
            Type::Set(e) => write!(f, "set of {e}"),
            Type::Map(e) => write!(f, "map of {e}"),
            Type::Object(_) => f.write_str("object"),
            Type::Tuple(_) => f.write_str("tuple"),
        }
    }
}
