//! Server-side signature verification for the double: ACS3-HMAC-SHA256 (our snapshot client) and the classic
//! RPC signature, version 1.0 with HMAC-SHA1 (what the official alicloud provider's SDKs send). Written
//! independently of any client signer (different encoder: `form_urlencoded` + the documented `+`/`*`/`%7E`
//! fix-ups), so a canonicalisation bug in one is not silently mirrored by the other.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// A parsed `Authorization: ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    pub access_key_id: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses the Authorization header; `None` when it is not a well-formed ACS3 header.
pub fn parse_authorization(value: &str) -> Option<AuthHeader> {
    let rest = value.strip_prefix("ACS3-HMAC-SHA256 ")?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v.to_string()),
            "SignedHeaders" => signed = Some(v.split(';').map(str::to_string).collect()),
            "Signature" => signature = Some(v.to_string()),
            _ => return None,
        }
    }
    Some(AuthHeader {
        access_key_id: credential.filter(|c| !c.is_empty())?,
        signed_headers: signed?,
        signature: signature.filter(|s| !s.is_empty())?,
    })
}

/// RFC 3986 encoding via `form_urlencoded` (which leaves `*` and writes space as `+`).
fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
        .replace('*', "%2A")
        .replace("%7E", "~")
}

/// Decodes a raw query string into (name, value) pairs.
pub fn decode_pairs(raw: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Canonical query string recomputed from the decoded pairs.
pub fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut enc: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    enc.sort_by(|a, b| {
        let ka = a.split('=').next().unwrap_or("");
        let kb = b.split('=').next().unwrap_or("");
        ka.cmp(kb).then(a.cmp(b))
    });
    enc.join("&")
}

/// The string to sign the server expects for this request.
pub fn string_to_sign(
    method: &str,
    path: &str,
    query_pairs: &[(String, String)],
    signed_headers: &[(String, String)],
    payload_hash: &str,
) -> String {
    let mut canonical = String::new();
    canonical.push_str(method);
    canonical.push('\n');
    canonical.push_str(path);
    canonical.push('\n');
    canonical.push_str(&canonical_query(query_pairs));
    canonical.push('\n');
    for (name, value) in signed_headers {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value.trim());
        canonical.push('\n');
    }
    canonical.push('\n');
    let names: Vec<&str> = signed_headers.iter().map(|(n, _)| n.as_str()).collect();
    canonical.push_str(&names.join(";"));
    canonical.push('\n');
    canonical.push_str(payload_hash);
    format!(
        "ACS3-HMAC-SHA256\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    )
}

/// Constant-time check of `signature_hex` against HMAC-SHA256(secret, string_to_sign).
pub fn verify(secret: &str, string_to_sign: &str, signature_hex: &str) -> bool {
    let Ok(sig) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&sig).is_ok()
}

/// The RPC (signature version 1.0) string to sign: `METHOD&%2F&` + the encoded canonical query of every
/// parameter, query and form body alike, except `Signature`.
pub fn rpc_v1_string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let signed: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .cloned()
        .collect();
    format!(
        "{method}&{}&{}",
        encode("/"),
        encode(&canonical_query(&signed))
    )
}

/// Constant-time check of a base64 `Signature` against HMAC-SHA1(secret + "&", string_to_sign).
pub fn verify_rpc_v1(secret: &str, string_to_sign: &str, signature_b64: &str) -> bool {
    use base64::Engine;
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(signature_b64) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()) else {
        return false;
    };
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Alibaba Cloud's published example of signature version 1.0 (DescribeRegions, secret `testsecret`).
    #[test]
    fn published_rpc_v1_vector_verifies_and_a_changed_parameter_does_not() {
        let mut params = decode_pairs(
            "Timestamp=2016-02-23T12:46:24Z&Format=XML&AccessKeyId=testid&Action=DescribeRegions&\
             SignatureMethod=HMAC-SHA1&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&Version=2014-05-26&\
             SignatureVersion=1.0&Signature=OLeaidS1JvxuMvnyHOwuJ%2BuX5qY%3D",
        );
        let sts = rpc_v1_string_to_sign("GET", &params);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1\
             %26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D\
             2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert!(verify_rpc_v1(
            "testsecret",
            &sts,
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        ));
        assert!(!verify_rpc_v1(
            "othersecret",
            &sts,
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        ));
        params.push(("RegionId".into(), "cn-hangzhou".into()));
        let changed = rpc_v1_string_to_sign("GET", &params);
        assert!(!verify_rpc_v1(
            "testsecret",
            &changed,
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        ));
        assert!(!verify_rpc_v1(
            "testsecret",
            &rpc_v1_string_to_sign("POST", &params),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        ));
    }

    #[test]
    fn published_v3_vector_verifies_with_the_independent_canonicaliser() {
        let pairs = decode_pairs(
            "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai",
        );
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let headers: Vec<(String, String)> = [
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-content-sha256", empty),
            ("x-acs-date", "2023-10-26T09:01:01Z"),
            ("x-acs-signature-nonce", "d410180a5abf7fe235dd9b74aca91fc0"),
            ("x-acs-version", "2014-05-26"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let sts = string_to_sign("POST", "/", &pairs, &headers, empty);
        assert!(verify(
            "YourAccessKeySecret",
            &sts,
            "e521358f7776c97df52e6b2891a8bc73026794a071b50c3323388c4e0df64804"
        ));
        assert!(!verify(
            "WrongSecret",
            &sts,
            "e521358f7776c97df52e6b2891a8bc73026794a071b50c3323388c4e0df64804"
        ));
    }

    #[test]
    fn encoder_matches_documented_rules() {
        assert_eq!(encode("a b*c~d+e/"), "a%20b%2Ac~d%2Be%2F");
    }

    #[test]
    fn authorization_header_parses_and_rejects_garbage() {
        let a = parse_authorization(
            "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-date,Signature=abcd",
        )
        .unwrap();
        assert_eq!(a.access_key_id, "AK");
        assert_eq!(a.signed_headers, vec!["host", "x-acs-date"]);
        assert!(parse_authorization("HMAC-SHA1 Credential=AK").is_none());
        assert!(parse_authorization("ACS3-HMAC-SHA256 Credential=AK,Signature=x").is_none());
    }
}
