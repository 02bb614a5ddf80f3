//! ACS3-HMAC-SHA256 (Alibaba Cloud signature V3): canonical query encoding, canonical request,
//! string to sign, signature and the `Authorization` header value. Pure functions, no I/O.
//!
//! Canonical request (one field per line):
//! `METHOD \n URI \n CanonicalQueryString \n CanonicalHeaders \n SignedHeaders \n HashedPayload`
//! where every canonical header is `lowercase-name:trimmed-value\n` (so the header block ends with
//! an empty line), and the string to sign is `ACS3-HMAC-SHA256 \n hex(sha256(canonical request))`.

use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

/// The algorithm name that opens the `Authorization` header and the string to sign.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// RFC 3986 unreserved characters stay literal; everything else (including space, `*`, `+`, `/`)
/// becomes `%XY` with upper-case hex. Hence space → `%20`, `*` → `%2A`, `~` stays `~`.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one query name or value (UTF-8) the way V3 requires.
pub fn percent_encode(raw: &str) -> String {
    utf8_percent_encode(raw, NOT_UNRESERVED).to_string()
}

/// Builds the canonical query string: every name and value encoded, pairs sorted by encoded name
/// (then value), joined with `&`. An empty value still keeps its `=` (`Key=`).
pub fn canonical_query<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (percent_encode(k.as_ref()), percent_encode(v.as_ref())))
        .collect();
    encoded.sort();
    let pairs: Vec<String> = encoded
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    pairs.join("&")
}

/// Lower-case hex SHA-256 of `bytes` (used for `x-acs-content-sha256` and the string to sign).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Everything that goes into the canonical request.
#[derive(Debug, Clone, Copy)]
pub struct SigningInput<'a> {
    /// Upper-case HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// Path, `/` for RPC-style calls.
    pub path: &'a str,
    /// The already-built canonical query string (see [`canonical_query`]).
    pub canonical_query: &'a str,
    /// Headers to sign: (name, value). Names are lower-cased and sorted here.
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body (the `x-acs-content-sha256` value).
    pub payload_hash: &'a str,
}

/// The canonical request text and the `SignedHeaders` list (`a;b;c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalRequest {
    pub text: String,
    pub signed_headers: String,
}

/// Builds the canonical request for `input`.
pub fn canonical_request(input: &SigningInput<'_>) -> CanonicalRequest {
    let mut headers: Vec<(String, &str)> = input
        .headers
        .iter()
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim()))
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let text = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method,
        input.path,
        input.canonical_query,
        canonical_headers,
        signed_headers,
        input.payload_hash
    );
    CanonicalRequest {
        text,
        signed_headers,
    }
}

/// `ACS3-HMAC-SHA256\n<hex sha256 of the canonical request>`.
pub fn string_to_sign(canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// Hex HMAC-SHA256 of the string to sign, keyed with the AccessKey secret.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here; fall back to an
    // obviously wrong signature instead of panicking if that ever changed.
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(string_to_sign.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// The `Authorization` header value.
pub fn authorization(access_key_id: &str, signed_headers: &str, signature: &str) -> String {
    format!("{ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}")
}

/// Signs `input` end to end and returns (`Authorization` value, signature hex).
pub fn sign(access_key_id: &str, secret: &str, input: &SigningInput<'_>) -> (String, String) {
    let canonical = canonical_request(input);
    let sig = signature(secret, &string_to_sign(&canonical.text));
    (
        authorization(access_key_id, &canonical.signed_headers, &sig),
        sig,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn published_headers() -> Vec<(&'static str, &'static str)> {
        vec![
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-content-sha256", EMPTY_SHA256),
            ("x-acs-date", "2023-10-26T09:01:01Z"),
            ("x-acs-signature-nonce", "d410180a5abf7fe235dd9b74aca91fc0"),
            ("x-acs-version", "2014-05-26"),
        ]
    }

    #[test]
    fn published_v3_vector_run_instances_signature_matches() {
        let query = canonical_query(&[
            ("RegionId", "cn-shanghai"),
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
        ]);
        assert_eq!(
            query,
            "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai"
        );
        assert_eq!(sha256_hex(b""), EMPTY_SHA256);
        let headers = published_headers();
        let input = SigningInput {
            method: "POST",
            path: "/",
            canonical_query: &query,
            headers: &headers,
            payload_hash: EMPTY_SHA256,
        };
        let (auth, sig) = sign("YourAccessKeyId", "YourAccessKeySecret", &input);
        assert_eq!(
            sig,
            "e521358f7776c97df52e6b2891a8bc73026794a071b50c3323388c4e0df64804"
        );
        assert_eq!(
            auth,
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;\
             x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,\
             Signature=e521358f7776c97df52e6b2891a8bc73026794a071b50c3323388c4e0df64804"
        );
    }

    #[test]
    fn header_order_and_case_do_not_change_the_signature() {
        let query =
            "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai";
        let mut shuffled = published_headers();
        shuffled.reverse();
        let shuffled: Vec<(&str, &str)> = shuffled
            .into_iter()
            .map(|(n, v)| (if n == "host" { "Host" } else { n }, v))
            .collect();
        let input = SigningInput {
            method: "POST",
            path: "/",
            canonical_query: query,
            headers: &shuffled,
            payload_hash: EMPTY_SHA256,
        };
        let (_, sig) = sign("YourAccessKeyId", "YourAccessKeySecret", &input);
        assert_eq!(
            sig,
            "e521358f7776c97df52e6b2891a8bc73026794a071b50c3323388c4e0df64804"
        );
    }

    #[test]
    fn canonical_request_layout_ends_header_block_with_blank_line() {
        let headers = [("x-acs-action", "A"), ("host", "h")];
        let c = canonical_request(&SigningInput {
            method: "POST",
            path: "/",
            canonical_query: "",
            headers: &headers,
            payload_hash: "p",
        });
        assert_eq!(
            c.text,
            "POST\n/\n\nhost:h\nx-acs-action:A\n\nhost;x-acs-action\np"
        );
        assert_eq!(c.signed_headers, "host;x-acs-action");
    }

    #[test]
    fn encoding_space_is_percent20_not_plus() {
        assert_eq!(percent_encode("a b"), "a%20b");
    }

    #[test]
    fn encoding_asterisk_is_percent2a() {
        assert_eq!(percent_encode("a*b"), "a%2Ab");
    }

    #[test]
    fn encoding_tilde_and_unreserved_stay_literal() {
        assert_eq!(percent_encode("A-z_0.9~"), "A-z_0.9~");
    }

    #[test]
    fn encoding_reserved_and_utf8_use_uppercase_hex() {
        assert_eq!(percent_encode("+/=&:"), "%2B%2F%3D%26%3A");
        assert_eq!(percent_encode("[\"i-1\"]"), "%5B%22i-1%22%5D");
        assert_eq!(percent_encode("快照"), "%E5%BF%AB%E7%85%A7");
    }

    #[test]
    fn canonical_query_sorts_by_name_and_keeps_empty_values() {
        let q = canonical_query(&[
            ("Tag.1.Value", "my stack"),
            ("Tag.1.Key", "cloudcode:stack"),
            ("Description", ""),
        ]);
        assert_eq!(
            q,
            "Description=&Tag.1.Key=cloudcode%3Astack&Tag.1.Value=my%20stack"
        );
    }

    #[test]
    fn canonical_query_sorts_by_byte_order_upper_before_lower() {
        let q = canonical_query(&[("b", "1"), ("B", "2"), ("a", "3")]);
        assert_eq!(q, "B=2&a=3&b=1");
    }

    #[test]
    fn security_token_header_is_signed_and_changes_signature() {
        let query = "RegionId=cn-shanghai";
        let base = published_headers();
        let mut with_token = base.clone();
        with_token.push(("x-acs-security-token", "TOKEN"));
        let make = |h: &[(&str, &str)]| {
            let c = canonical_request(&SigningInput {
                method: "POST",
                path: "/",
                canonical_query: query,
                headers: h,
                payload_hash: EMPTY_SHA256,
            });
            (
                c.signed_headers.clone(),
                signature("s", &string_to_sign(&c.text)),
            )
        };
        let (sh_a, sig_a) = make(&base);
        let (sh_b, sig_b) = make(&with_token);
        assert!(!sh_a.contains("x-acs-security-token"));
        assert!(sh_b.ends_with("x-acs-security-token;x-acs-signature-nonce;x-acs-version"));
        assert_ne!(sig_a, sig_b);
    }
}
