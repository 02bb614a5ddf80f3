//! The codec's error type. Messages say what went wrong and where (a [`Path`]), and never include the
//! offending value itself: configuration values may be secrets.

use super::path::Path;

/// Why a value or type could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not well-formed msgpack.
    #[error("malformed msgpack: {0}")]
    MalformedMsgpack(String),
    /// The bytes are not well-formed JSON.
    #[error("malformed JSON at {path}: {detail}")]
    MalformedJson { path: Path, detail: String },
    /// Input continues after one complete value.
    #[error("{0} trailing byte(s) after the value")]
    TrailingBytes(usize),
    /// The wire value has a different kind than the type requires.
    #[error("at {path}: expected {expected}, found {found}")]
    Mismatch {
        path: Path,
        expected: String,
        found: &'static str,
    },
    /// An object carries an attribute its type does not declare.
    #[error("at {path}: unsupported attribute {name:?}")]
    UnsupportedAttribute { path: Path, name: String },
    /// A tuple has the wrong number of elements.
    #[error("at {path}: tuple needs {expected} element(s), found {found}")]
    TupleLength {
        path: Path,
        expected: usize,
        found: usize,
    },
    /// A number is not finite or not in a form Terraform understands.
    #[error("at {path}: invalid number")]
    InvalidNumber { path: Path },
    /// Map or object keys must be strings.
    #[error("at {path}: map key is not a string")]
    NonStringKey { path: Path },
    /// Strings must be UTF-8.
    #[error("at {path}: string is not valid UTF-8")]
    InvalidUtf8 { path: Path },
    /// JSON (state) cannot represent unknown values.
    #[error("at {path}: unknown values cannot be encoded as JSON")]
    UnknownInJson { path: Path },
    /// A value of dynamic type whose concrete type cannot be determined.
    #[error(
        "at {path}: cannot determine the type of this dynamic value; wrap it in Value::Dynamic"
    )]
    UntypedDynamic { path: Path },
    /// A `{type, value}` wrapper for a dynamic value is malformed.
    #[error("at {path}: malformed dynamic value: {detail}")]
    MalformedDynamic { path: Path, detail: String },
    /// A cty type description (JSON) is malformed.
    #[error("invalid type description: {0}")]
    InvalidType(String),
}

impl CodecError {
    /// Where in the value the problem is, when the error is about one part of it.
    pub fn path(&self) -> Option<&Path> {
        match self {
            CodecError::MalformedJson { path, .. }
            | CodecError::Mismatch { path, .. }
            | CodecError::UnsupportedAttribute { path, .. }
            | CodecError::TupleLength { path, .. }
            | CodecError::InvalidNumber { path }
            | CodecError::NonStringKey { path }
            | CodecError::InvalidUtf8 { path }
            | CodecError::UnknownInJson { path }
            | CodecError::UntypedDynamic { path }
            | CodecError::MalformedDynamic { path, .. } => Some(path),
            CodecError::MalformedMsgpack(_)
            | CodecError::TrailingBytes(_)
            | CodecError::InvalidType(_) => None,
        }
    }
}
