//! Terraform numbers. cty numbers are arbitrary-precision decimals; we keep integers exact as `i64`,
//! binary floats as `f64`, and anything else as its decimal text so it is passed back unchanged.

use std::fmt;

/// A Terraform number.
///
/// Canonical forms, as produced by the decoders: `Int` for every integer that fits in `i64`; `Float` for a
/// non-integral finite `f64` received as a msgpack float; `Big` for decimal text that is neither (huge
/// integers, high-precision decimals, and non-integers read from JSON state, which are kept as text so no
/// precision is lost). Equality compares the numbers' decimal text, so `Float(5.0) == Int(5)` and
/// `Float(0.5) == Big("0.5")`.
#[derive(Clone, Debug)]
pub enum Number {
    Int(i64),
    Float(f64),
    /// Decimal text in JSON number syntax (`-12.5e3`).
    Big(String),
}

impl Number {
    /// Parses JSON-number syntax into the canonical form (`Int` when it is an `i64`, else `Big`).
    /// Returns `None` when `text` is not a number.
    pub fn parse(text: &str) -> Option<Number> {
        if !is_json_number(text) {
            return None;
        }
        Some(match text.parse::<i64>() {
            Ok(i) => Number::Int(i),
            Err(_) => Number::Big(text.to_owned()),
        })
    }

    /// Canonical number for a float; `None` for NaN and infinities, which Terraform cannot represent.
    pub fn from_f64(f: f64) -> Option<Number> {
        if !f.is_finite() {
            return None;
        }
        Some(match float_as_i64(f) {
            Some(i) => Number::Int(i),
            None => Number::Float(f),
        })
    }

    /// The value as `i64` when it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Number::Int(i) => Some(*i),
            Number::Float(f) => float_as_i64(*f),
            Number::Big(s) => s.parse().ok(),
        }
    }

    /// The value as `f64` (rounded for `Big`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Number::Int(i) => Some(*i as f64),
            Number::Float(f) => Some(*f),
            Number::Big(s) => s.parse().ok(),
        }
    }

    /// Decimal text of the number in JSON syntax; `None` for a non-finite float or malformed `Big` text.
    pub fn to_decimal(&self) -> Option<String> {
        match self {
            Number::Int(i) => Some(i.to_string()),
            Number::Float(f) if f.is_finite() => Some(match float_as_i64(*f) {
                Some(i) => i.to_string(),
                // Rust's Display for f64 is the shortest text that reads back to the same f64, never
                // in exponent form: valid JSON.
                None => f.to_string(),
            }),
            Number::Float(_) => None,
            Number::Big(s) if is_json_number(s) => Some(s.clone()),
            Number::Big(_) => None,
        }
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            _ => self.to_decimal() == other.to_decimal(),
        }
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Number {
        Number::Int(i)
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_decimal() {
            Some(s) => f.write_str(&s),
            None => f.write_str("(invalid number)"),
        }
    }
}

/// `f` as `i64` when it is integral and in range (−0.0 becomes 0).
fn float_as_i64(f: f64) -> Option<i64> {
    // 2^63 is exactly representable; anything >= it does not fit.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
        Some(f as i64)
    } else {
        None
    }
}

/// JSON number grammar: `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`.
pub(crate) fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(c) if c.is_ascii_digit() => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}
