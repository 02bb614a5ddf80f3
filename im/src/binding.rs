//! The bind code a box shows as a QR: its short id and an HMAC-SHA256 tag (128 bits, base64url) proving the box's
//! connect secret, small enough for Telegram's 64-character `start` parameter.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The tag's length in bytes (128 bits) and its base64url length.
const TAG_BYTES: usize = 16;
const TAG_CHARS: usize = 22;
/// Telegram's `start` parameter: up to 64 characters of `A-Za-z0-9_-`.
pub const MAX_PAYLOAD: usize = 64;
/// A box id: 1–40 ASCII letters and digits (the stack's id, shortened), so `<id>_<tag>` fits in 64 characters.
pub const MAX_BOX_ID: usize = MAX_PAYLOAD - 1 - TAG_CHARS;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BindError {
    #[error("this is not a cloudcode bind code")]
    Malformed,
    #[error("this bind code is for a box this bot does not serve")]
    UnknownBox,
    #[error("this bind code is forged or was replaced by a newer one (/reset-qr): show the current code with `cloudcode im qr`")]
    BadTag,
}

/// Makes a box id usable in a bind code: keeps ASCII letters and digits, at most [`MAX_BOX_ID`] of them.
pub fn short_box_id(stack_id: &str) -> String {
    stack_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(MAX_BOX_ID)
        .collect()
}

fn mac(secret: &[u8], box_id: &str) -> HmacSha256 {
    // A key of any length is accepted by HMAC; new_from_slice cannot fail for it.
    let mut m = <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(b"cloudcode-im bind v1\0");
    m.update(box_id.as_bytes());
    m
}

/// The payload of a box's bind code: `<box id>_<tag>`.
pub fn payload(box_id: &str, secret: &[u8]) -> String {
    let tag = mac(secret, box_id).finalize().into_bytes();
    format!("{box_id}_{}", URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES]))
}

/// Splits a payload into the box id and the tag, without checking the tag.
pub fn parse(payload: &str) -> Result<(&str, &str), BindError> {
    let payload = payload.trim();
    if payload.len() > MAX_PAYLOAD {
        return Err(BindError::Malformed);
    }
    let (id, tag) = payload.split_once('_').ok_or(BindError::Malformed)?;
    if id.is_empty()
        || id.len() > MAX_BOX_ID
        || !id.chars().all(|c| c.is_ascii_alphanumeric())
        || tag.len() != TAG_CHARS
    {
        return Err(BindError::Malformed);
    }
    Ok((id, tag))
}

/// Checks a tag against the box's current secret in constant time.
pub fn verify(box_id: &str, tag: &str, secret: &[u8]) -> Result<(), BindError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| BindError::Malformed)?;
    if bytes.len() != TAG_BYTES {
        return Err(BindError::Malformed);
    }
    mac(secret, box_id)
        .verify_truncated_left(&bytes)
        .map_err(|_| BindError::BadTag)
}

/// A fresh connect secret (256 bits).
pub fn new_secret() -> Vec<u8> {
    use rand::RngCore;
    let mut s = vec![0u8; 32];
    rand::rng().fill_bytes(&mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_fits_telegrams_start_parameter() {
        let id = short_box_id("cloudcode-2f9c1b7e-8d4a-4c1e-9f00-5d1e2a3b4c5d-extra-long");
        let p = payload(&id, b"secret");
        assert!(p.len() <= 64, "{p}");
        assert!(
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{p}"
        );
    }

    #[test]
    fn the_current_code_verifies_and_a_rotated_secret_refuses_it() {
        let old = payload("box1", b"old secret");
        let (id, tag) = parse(&old).unwrap();
        assert_eq!(id, "box1");
        assert_eq!(verify(id, tag, b"old secret"), Ok(()));
        assert_eq!(verify(id, tag, b"new secret"), Err(BindError::BadTag));
    }

    #[test]
    fn a_forged_tag_or_another_boxs_tag_is_refused() {
        let real = payload("box1", b"s");
        let (_, tag) = parse(&real).unwrap();
        assert_eq!(verify("box2", tag, b"s"), Err(BindError::BadTag));
        let mut forged = tag.to_string();
        forged.replace_range(0..1, if forged.starts_with('A') { "B" } else { "A" });
        assert_eq!(verify("box1", &forged, b"s"), Err(BindError::BadTag));
    }

    #[test]
    fn malformed_codes_are_refused_before_any_hmac() {
        for bad in [
            "",
            "nounderscore",
            "_tag",
            "bad-id_AAAAAAAAAAAAAAAAAAAAAA",
            "box_short",
            &"x".repeat(65),
        ] {
            assert_eq!(parse(bad).err(), Some(BindError::Malformed), "{bad}");
        }
    }
}
