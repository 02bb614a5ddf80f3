//! Works around the key decoder (the `ssh-key` crate under russh) refusing an OpenSSH ECDSA private key whose
//! secret scalar has a leading zero byte — about one key in 256 that `ssh-keygen -t ecdsa` makes: OpenSSH writes
//! the scalar as a minimal mpint (31 bytes for P-256), the decoder wants the curve's full size. The scalar is
//! padded back to that size; the key is the same number. Only unencrypted keys can be rewritten.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";
const MAGIC: &[u8] = b"openssh-key-v1\0";

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let b = self.buf.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        let b = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(b)
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// The scalar size of an OpenSSH ECDSA curve name.
fn scalar_size(curve: &[u8]) -> Option<usize> {
    match curve {
        b"nistp256" => Some(32),
        b"nistp384" => Some(48),
        b"nistp521" => Some(66),
        _ => None,
    }
}

/// The same key with its ECDSA scalar padded to the curve's size, when `text` is an unencrypted OpenSSH ECDSA
/// key whose scalar is shorter; `None` for anything else (nothing to fix, or not this format).
pub fn pad_short_ecdsa_scalar(text: &str) -> Option<String> {
    let inner = text.trim().strip_prefix(BEGIN)?.strip_suffix(END)?;
    let blob = STANDARD
        .decode(inner.split_whitespace().collect::<String>())
        .ok()?;
    let rest = blob.strip_prefix(MAGIC)?;
    let mut r = Reader { buf: rest, pos: 0 };
    let cipher = r.string()?;
    r.string()?; // kdf name
    r.string()?; // kdf options
    if cipher != b"none" || r.u32()? != 1 {
        return None;
    }
    r.string()?; // public key
    let head = r.pos; // the private section's length field starts here
    let private = r.string()?;
    let mut p = Reader {
        buf: private,
        pos: 8,
    }; // after the two check integers
    let key_type = p.string()?;
    if !key_type.starts_with(b"ecdsa-sha2-") {
        return None;
    }
    let curve = p.string()?;
    let point = p.string()?;
    let scalar = p.string()?;
    let comment = p.string()?;
    let size = scalar_size(curve)?;
    if scalar.len() >= size {
        return None;
    }
    let mut section = private.get(..8)?.to_vec();
    put_string(&mut section, key_type);
    put_string(&mut section, curve);
    put_string(&mut section, point);
    let mut padded = vec![0u8; size - scalar.len()];
    padded.extend_from_slice(scalar);
    put_string(&mut section, &padded);
    put_string(&mut section, comment);
    let mut pad = 1u8;
    while section.len() % 8 != 0 {
        section.push(pad);
        pad += 1;
    }
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(rest.get(..head)?);
    put_string(&mut out, &section);
    let encoded = STANDARD.encode(out);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(70)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect();
    Some(format!("{BEGIN}\n{}\n{END}\n", lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway test key made by `ssh-keygen -t ecdsa -b 256` whose scalar starts with a zero byte.
    const SHORT: &str = include_str!("../tests/fixtures/ecdsa-p256-short-scalar");

    #[test]
    fn an_ecdsa_key_whose_scalar_has_a_leading_zero_byte_decodes_once_padded() {
        assert!(
            russh::keys::decode_secret_key(SHORT, None).is_err(),
            "the decoder was fixed: drop this module"
        );
        let fixed = pad_short_ecdsa_scalar(SHORT).expect("a short scalar to pad");
        russh::keys::decode_secret_key(&fixed, None).expect("the padded key decodes");
        assert_eq!(pad_short_ecdsa_scalar(&fixed), None, "nothing left to pad");
    }

    #[test]
    fn other_keys_are_left_alone() {
        assert_eq!(pad_short_ecdsa_scalar("not a key"), None);
        let ed25519 = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACDx8Nv3KXz8PZ5S6dCqz0R6m9a4N1m4Jf1d7g3x4l0x2AAAAJDd1m1T3dZt\nUwAAAAtzc2gtZWQyNTUxOQAAACDx8Nv3KXz8PZ5S6dCqz0R6m9a4N1m4Jf1d7g3x4l0x2A\nAAAEA=\n-----END OPENSSH PRIVATE KEY-----\n";
        assert_eq!(pad_short_ecdsa_scalar(ed25519), None);
    }
}
