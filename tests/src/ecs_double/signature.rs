//! Server-side signature verification for the double: ACS3-HMAC-SHA256 (our snapshot client), the classic
//! RPC signature, version 1.0 with HMAC-SHA1 (what the official alicloud provider's SDKs send), and OSS's V1
//! header signature (what its OSS SDKs send by default). Written
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
    verify_hmac_sha1_b64(
        format!("{secret}&").as_bytes(),
        string_to_sign,
        signature_b64,
    )
}

/// Constant-time check of a base64 HMAC-SHA1 signature (the RPC 1.0 and the OSS V1 signatures share it).
fn verify_hmac_sha1_b64(key: &[u8], string_to_sign: &str, signature_b64: &str) -> bool {
    use base64::Engine;
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(signature_b64) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(key) else {
        return false;
    };
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&sig).is_ok()
}

/// The sub-resources OSS signs (V1) when they are in the query: the documented list, those the double serves
/// among them and the `response-*` overrides.
const OSS_SIGNED_SUBRESOURCES: [&str; 32] = [
    "acl",
    "append",
    "bucketInfo",
    "cname",
    "cors",
    "delete",
    "encryption",
    "lifecycle",
    "location",
    "logging",
    "objectMeta",
    "partNumber",
    "policy",
    "position",
    "referer",
    "replication",
    "requestPayment",
    "resourceGroup",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "security-token",
    "stat",
    "tagging",
    "transferAcceleration",
    "uploadId",
    "uploads",
    "versioning",
    "website",
];

/// The parts of an OSS request the V1 signature covers.
pub struct OssRequest<'a> {
    pub method: &'a str,
    pub content_md5: &'a str,
    pub content_type: &'a str,
    pub date: &'a str,
    /// Every `x-oss-*` header (any case) with its value.
    pub oss_headers: Vec<(String, String)>,
    /// The bucket (empty for a service request such as ListBuckets) and the decoded object key.
    pub bucket: &'a str,
    pub key: &'a str,
    /// The decoded query pairs.
    pub query: &'a [(String, String)],
}

/// The OSS V1 string to sign: `VERB\nContent-MD5\nContent-Type\nDate\n` + the `x-oss-` headers (lower case,
/// sorted, `name:value\n`) + the canonicalized resource (`/bucket/key` and the signed sub-resources, sorted).
pub fn oss_v1_string_to_sign(r: &OssRequest<'_>) -> String {
    let mut headers: Vec<(String, &str)> = r
        .oss_headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
        .filter(|(k, _)| k.starts_with("x-oss-"))
        .collect();
    headers.sort();
    let mut out = format!(
        "{}\n{}\n{}\n{}\n",
        r.method, r.content_md5, r.content_type, r.date
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}:{v}\n"));
    }
    out.push('/');
    if !r.bucket.is_empty() {
        out.push_str(&format!("{}/{}", r.bucket, r.key));
    }
    let mut sub: Vec<&(String, String)> = r
        .query
        .iter()
        .filter(|(k, _)| OSS_SIGNED_SUBRESOURCES.contains(&k.as_str()))
        .collect();
    sub.sort();
    for (i, (k, v)) in sub.into_iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        if !v.is_empty() {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

/// Constant-time check of the `<signature>` of `Authorization: OSS <ak>:<signature>` against
/// base64(HMAC-SHA1(secret, string_to_sign)).
pub fn verify_oss_v1(secret: &str, string_to_sign: &str, signature_b64: &str) -> bool {
    verify_hmac_sha1_b64(secret.as_bytes(), string_to_sign, signature_b64)
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

    /// The OSS V1 example of the documentation (PUT of `nelson` into `examplebucket`, secret
    /// `OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV`).
    #[test]
    fn published_oss_v1_vector_verifies_and_a_changed_header_does_not() {
        let query = decode_pairs("");
        let mut r = OssRequest {
            method: "PUT",
            content_md5: "eB5eJF1ptWaXm4bijSPyxw==",
            content_type: "text/html",
            date: "Wed, 28 Dec 2022 10:27:41 GMT",
            oss_headers: vec![
                ("X-OSS-Meta-Author".into(), "alice".into()),
                ("x-oss-magic".into(), "abracadabra".into()),
            ],
            bucket: "examplebucket",
            key: "nelson",
            query: &query,
        };
        let sts = oss_v1_string_to_sign(&r);
        assert_eq!(
            sts,
            "PUT\neB5eJF1ptWaXm4bijSPyxw==\ntext/html\nWed, 28 Dec 2022 10:27:41 GMT\nx-oss-magic:abracadabra\n\
             x-oss-meta-author:alice\n/examplebucket/nelson"
        );
        let secret = "OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV";
        let good = {
            use base64::Engine;
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(sts.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        };
        assert!(verify_oss_v1(secret, &sts, &good));
        r.content_type = "text/plain";
        assert!(!verify_oss_v1(secret, &oss_v1_string_to_sign(&r), &good));
        let acl = decode_pairs("acl&max-keys=10");
        r.query = &acl;
        r.key = "";
        assert!(oss_v1_string_to_sign(&r).ends_with("/examplebucket/?acl"));
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
