//! Object Storage Service as the official provider's OSS clients drive it: the V1 header signature checked
//! (`SignatureDoesNotMatch`, `InvalidAccessKeyId`, `RequestTimeTooSkewed`, `AccessDenied` for anonymous calls), buckets
//! (PutBucket with the naming rules, ListBuckets, GetBucketInfo, the ACL, the policy, the bucket's empty
//! sub-configurations read as OSS answers them, DeleteBucket refusing `BucketNotEmpty`) and objects (PutObject
//! checking Content-MD5 (`InvalidDigest`) and answering the ETag and CRC-64 the SDK checks, HeadObject, GetObject,
//! DeleteObject, ListObjects), in OSS's XML. Buckets are addressed virtual-hosted (`<bucket>.<endpoint>`, what the
//! SDKs send to a named endpoint) or path-style (`/<bucket>/<key>`, to an IP).

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::OffsetDateTime;

use super::signature::{self, OssRequest};
use super::state::{ApiError, RecordedCall, World};

/// The endpoint name the double serves OSS under (a reserved `.test` name: only the double's CONNECT proxy
/// reaches it); buckets are `<bucket>.oss.double.test`.
pub const OSS_ENDPOINT_HOST: &str = "oss.double.test";
/// What GetBucketInfo reports as the bucket's public endpoint (what a CDN origin names).
pub const OSS_EXTRANET_ENDPOINT: &str = "oss-cn-hangzhou.aliyuncs.com";
const OSS_INTRANET_ENDPOINT: &str = "oss-cn-hangzhou-internal.aliyuncs.com";
const LOCATION: &str = "oss-cn-hangzhou";
const ACLS: [&str; 3] = ["private", "public-read", "public-read-write"];

#[derive(Debug, Clone)]
struct Object {
    bytes: Vec<u8>,
    content_type: String,
    /// Upper-case hex MD5, as OSS writes an ETag (quoted on the wire).
    etag: String,
    last_modified: OffsetDateTime,
    encryption: Option<String>,
}

#[derive(Debug, Clone)]
struct Bucket {
    acl: String,
    storage_class: String,
    created: String,
    policy: Option<String>,
    objects: BTreeMap<String, Object>,
}

/// What a test can see of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OssObjectView {
    pub key: String,
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub etag: String,
}

/// What a test can see of a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OssBucketView {
    pub name: String,
    pub acl: String,
    pub policy: Option<String>,
    pub objects: Vec<OssObjectView>,
}

/// The account's buckets.
#[derive(Default)]
pub(crate) struct Oss {
    buckets: BTreeMap<String, Bucket>,
}

impl Oss {
    pub(crate) fn views(&self) -> Vec<OssBucketView> {
        self.buckets
            .iter()
            .map(|(name, b)| OssBucketView {
                name: name.clone(),
                acl: b.acl.clone(),
                policy: b.policy.clone(),
                objects: b
                    .objects
                    .iter()
                    .map(|(k, o)| OssObjectView {
                        key: k.clone(),
                        bytes: o.bytes.clone(),
                        content_type: o.content_type.clone(),
                        etag: o.etag.clone(),
                    })
                    .collect(),
            })
            .collect()
    }
}

/// An OSS answer before it is written: status, headers, body.
struct Answer {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn xml(body: String) -> Self {
        Self {
            status: StatusCode::OK,
            headers: vec![("content-type", "application/xml".into())],
            body: body.into_bytes(),
        }
    }

    fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Whether a request is for OSS: signed the OSS way, or addressed to the OSS endpoint.
pub(crate) fn is_oss(uri: &Uri, headers: &HeaderMap) -> bool {
    let auth = header(headers, "authorization");
    let host = host_of(uri, headers);
    auth.starts_with("OSS ") || auth.starts_with("OSS4-") || host.ends_with(OSS_ENDPOINT_HOST)
}

fn host_of(uri: &Uri, headers: &HeaderMap) -> String {
    let host = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_else(|| header(headers, "host").to_string());
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h.to_ascii_lowercase(),
        _ => host.to_ascii_lowercase(),
    }
}

/// (bucket, key) a request addresses: the host's first label on the OSS endpoint, else the path's first segment.
fn target(uri: &Uri, headers: &HeaderMap) -> (String, String) {
    let path = percent_encoding::percent_decode_str(uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let path = path.strip_prefix('/').unwrap_or(&path);
    let host = host_of(uri, headers);
    match host.strip_suffix(&format!(".{OSS_ENDPOINT_HOST}")) {
        Some(bucket) => (bucket.to_string(), path.to_string()),
        None => match path.split_once('/') {
            Some((b, k)) => (b.to_string(), k.to_string()),
            None => (path.to_string(), String::new()),
        },
    }
}

/// The documented bucket naming rules: 3 to 63 characters of lower-case letters, digits and hyphens, starting
/// and ending with a letter or digit.
pub(crate) fn valid_bucket_name(name: &str) -> bool {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (3..=63).contains(&name.len()) && ok_chars && !name.starts_with('-') && !name.ends_with('-')
}

/// CRC-64/ECMA-182 as OSS computes `x-oss-hash-crc64ecma` (reflected, initial and final value all ones).
pub(crate) fn crc64_ecma(bytes: &[u8]) -> u64 {
    const POLY: u64 = 0xC96C_5795_D787_0F42;
    let mut crc = !0u64;
    for &b in bytes {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn oss_error(status: u16, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message)
}

fn no_such_bucket() -> ApiError {
    oss_error(404, "NoSuchBucket", "The specified bucket does not exist.")
}

fn http_date(t: OffsetDateTime) -> String {
    t.format(&Rfc2822)
        .map(|s| s.replace("+0000", "GMT"))
        .unwrap_or_default()
}

/// Handles one OSS request end to end (authentication, the operation, the call log) and writes OSS's answer.
pub(crate) fn handle(
    world: &mut World,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let request_id = world.request_id();
    let query = signature::decode_pairs(uri.query().unwrap_or(""));
    let (bucket, key) = target(uri, headers);
    let operation = operation_name(method, &bucket, &key, &query);
    let auth = header(headers, "authorization");
    let access_key_id = auth
        .strip_prefix("OSS ")
        .and_then(|a| a.split_once(':'))
        .map(|(ak, _)| ak.to_string())
        .unwrap_or_default();
    let result = authenticate(world, method, headers, &bucket, &key, &query)
        .and_then(|()| run(world, &operation, &bucket, &key, &query, headers, body));
    let mut params = BTreeMap::from([
        ("Bucket".to_string(), bucket.clone()),
        ("Key".to_string(), key.clone()),
    ]);
    if operation == "PutObject" {
        params.insert(
            "Content-Type".into(),
            header(headers, "content-type").into(),
        );
        params.insert("Content-MD5".into(), header(headers, "content-md5").into());
        params.insert("Size".into(), body.len().to_string());
    }
    if operation == "PutBucket" || operation == "PutBucketAcl" {
        params.insert("x-oss-acl".into(), header(headers, "x-oss-acl").into());
    }
    world.calls.push(RecordedCall {
        action: operation,
        params,
        outcome: match &result {
            Ok(_) => "OK".into(),
            Err(e) => e.code.clone(),
        },
        access_key_id,
        security_token: headers.contains_key("x-oss-security-token"),
    });
    let answer = match result {
        Ok(a) => a,
        Err(e) => {
            let host = if bucket.is_empty() {
                OSS_ENDPOINT_HOST.to_string()
            } else {
                format!("{bucket}.{OSS_ENDPOINT_HOST}")
            };
            let mut extra = String::new();
            if e.code == "SignatureDoesNotMatch" {
                if let Some(sts) = e.message.split_once('\u{0}').map(|(_, s)| s) {
                    extra = format!("\n  <StringToSign>{}</StringToSign>", xml_escape(sts));
                }
            }
            let message = e.message.split('\u{0}').next().unwrap_or_default();
            let body = if method == Method::HEAD {
                Vec::new()
            } else {
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>{}</Code>\n  <Message>{}</Message>\n  \
                     <RequestId>{request_id}</RequestId>\n  <HostId>{host}</HostId>{extra}\n</Error>\n",
                    e.code,
                    xml_escape(message)
                )
                .into_bytes()
            };
            Answer {
                status: StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
                headers: vec![("content-type", "application/xml".into())],
                body,
            }
        }
    };
    let mut response = (answer.status, answer.body).into_response();
    let h = response.headers_mut();
    h.insert(
        "x-oss-request-id",
        HeaderValue::from_str(&request_id).unwrap_or(HeaderValue::from_static("0")),
    );
    h.insert("server", HeaderValue::from_static("AliyunOSS"));
    for (name, value) in answer.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    response
}

/// The documented operation name of a request (what the call log records).
fn operation_name(method: &Method, bucket: &str, key: &str, query: &[(String, String)]) -> String {
    let has = |name: &str| query.iter().any(|(k, _)| k == name);
    let sub = [
        "acl",
        "bucketInfo",
        "policy",
        "cors",
        "website",
        "logging",
        "referer",
        "lifecycle",
        "tagging",
        "transferAcceleration",
        "resourceGroup",
        "objectMeta",
    ]
    .into_iter()
    .find(|s| has(s));
    let verb = match *method {
        Method::GET => "Get",
        Method::PUT => "Put",
        Method::DELETE => "Delete",
        Method::HEAD => "Head",
        Method::POST => "Post",
        _ => "Other",
    };
    match (bucket.is_empty(), key.is_empty(), sub) {
        (true, _, _) if verb == "Get" => "ListBuckets".into(),
        (true, _, _) => format!("{verb}Service"),
        (false, true, None) if verb == "Get" => "ListObjects".into(),
        (false, true, None) => format!("{verb}Bucket"),
        (false, true, Some("bucketInfo")) => "GetBucketInfo".into(),
        (false, true, Some(s)) => {
            let mut name = s.to_string();
            name[..1].make_ascii_uppercase();
            let name = match name.as_str() {
                "Cors" => "CORS".to_string(),
                _ => name,
            };
            format!("{verb}Bucket{name}")
        }
        (false, false, Some("objectMeta")) => "GetObjectMeta".into(),
        (false, false, Some("acl")) => format!("{verb}ObjectAcl"),
        (false, false, _) => format!("{verb}Object"),
    }
}

/// The V1 signature, the key, the STS token and the clock, as OSS checks them.
fn authenticate(
    world: &mut World,
    method: &Method,
    headers: &HeaderMap,
    bucket: &str,
    key: &str,
    query: &[(String, String)],
) -> Result<(), ApiError> {
    let auth = header(headers, "authorization");
    if auth.is_empty() {
        return Err(oss_error(
            403,
            "AccessDenied",
            "You have no right to access this object because of bucket acl.",
        ));
    }
    if auth.starts_with("OSS4-HMAC-SHA256") || auth.starts_with("OSS2 ") {
        return Err(oss_error(
            400,
            "InvalidArgument",
            "Authorization header: the double verifies the default (V1) OSS signature only.",
        ));
    }
    let (ak, signature) = auth
        .strip_prefix("OSS ")
        .and_then(|a| a.split_once(':'))
        .ok_or_else(|| oss_error(400, "InvalidArgument", "Authorization header is invalid."))?;
    let access_key = world.keys.get(ak).ok_or_else(|| {
        oss_error(
            403,
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
        )
    })?;
    let oss_headers: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("x-oss-"))
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let request = OssRequest {
        method: method.as_str(),
        content_md5: header(headers, "content-md5"),
        content_type: header(headers, "content-type"),
        date: header(headers, "date"),
        oss_headers,
        bucket,
        key,
        query,
    };
    let string_to_sign = signature::oss_v1_string_to_sign(&request);
    if !signature::verify_oss_v1(&access_key.secret, &string_to_sign, signature) {
        // The message and, after a NUL, the string to sign (the XML answer carries both).
        return Err(oss_error(
            403,
            "SignatureDoesNotMatch",
            format!(
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.\u{0}{string_to_sign}"
            ),
        ));
    }
    let token = header(headers, "x-oss-security-token");
    match access_key.security_token.as_deref() {
        Some(expected) if expected != token => {
            return Err(oss_error(
                403,
                "InvalidAccessKeyId",
                "The security token you provided is invalid.",
            ))
        }
        None if !token.is_empty() => {
            return Err(oss_error(
                403,
                "InvalidAccessKeyId",
                "The security token you provided is invalid.",
            ))
        }
        _ => {}
    }
    let date = header(headers, "date").replace(" GMT", " +0000");
    let skew_ok = OffsetDateTime::parse(&date, &Rfc2822)
        .map(|t| (OffsetDateTime::now_utc() - t).whole_minutes().abs() <= 15)
        .unwrap_or(false);
    if !skew_ok {
        return Err(oss_error(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        ));
    }
    Ok(())
}

fn run(
    world: &mut World,
    operation: &str,
    bucket: &str,
    key: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let q = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if operation == "ListBuckets" {
        return Ok(list_buckets(world, q("prefix"), q("max-keys"), q("marker")));
    }
    if operation == "PutBucket" {
        return put_bucket(world, bucket, headers, body);
    }
    let now = world.clock();
    let oss = &mut world.oss;
    let b = oss.buckets.get_mut(bucket).ok_or_else(no_such_bucket)?;
    let not_found = |code: &str, message: &str| Err(oss_error(404, code, message));
    match operation {
        "GetBucketInfo" => Ok(Answer::xml(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BucketInfo>\n  <Bucket>\n    <AccessMonitor>Disabled</AccessMonitor>\n    \
             <CreationDate>{created}</CreationDate>\n    <ExtranetEndpoint>{OSS_EXTRANET_ENDPOINT}</ExtranetEndpoint>\n    \
             <IntranetEndpoint>{OSS_INTRANET_ENDPOINT}</IntranetEndpoint>\n    <Location>{LOCATION}</Location>\n    \
             <StorageClass>{class}</StorageClass>\n    <DataRedundancyType>LRS</DataRedundancyType>\n    \
             <TransferAcceleration>Disabled</TransferAcceleration>\n    <CrossRegionReplication>Disabled</CrossRegionReplication>\n    \
             <Name>{bucket}</Name>\n    <ResourceGroupId>rg-cloudcodedefault</ResourceGroupId>\n    \
             <Owner>\n      <DisplayName>{owner}</DisplayName>\n      <ID>{owner}</ID>\n    </Owner>\n    \
             <AccessControlList>\n      <Grant>{acl}</Grant>\n    </AccessControlList>\n    \
             <ServerSideEncryptionRule>\n      <SSEAlgorithm>None</SSEAlgorithm>\n    </ServerSideEncryptionRule>\n    \
             <BucketPolicy>\n      <LogBucket></LogBucket>\n      <LogPrefix></LogPrefix>\n    </BucketPolicy>\n  </Bucket>\n</BucketInfo>\n",
            created = b.created,
            class = b.storage_class,
            owner = super::ACCOUNT_ID,
            acl = b.acl,
        ))),
        "GetBucketAcl" => Ok(Answer::xml(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AccessControlPolicy>\n  <Owner>\n    <ID>{owner}</ID>\n    \
             <DisplayName>{owner}</DisplayName>\n  </Owner>\n  <AccessControlList>\n    <Grant>{acl}</Grant>\n  \
             </AccessControlList>\n</AccessControlPolicy>\n",
            owner = super::ACCOUNT_ID,
            acl = b.acl
        ))),
        "PutBucketAcl" => {
            b.acl = acl_header(headers)?.unwrap_or_else(|| b.acl.clone());
            Ok(Answer::empty(StatusCode::OK))
        }
        "GetBucketPolicy" => match &b.policy {
            Some(p) => Ok(Answer {
                status: StatusCode::OK,
                headers: vec![("content-type", "application/json".into())],
                body: p.clone().into_bytes(),
            }),
            None => not_found("NoSuchBucketPolicy", "The bucket policy does not exist."),
        },
        "PutBucketPolicy" => {
            let doc: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
                oss_error(400, "InvalidPolicyDocument", "Invalid policy document.")
            })?;
            if !doc["Statement"].is_array() {
                return Err(oss_error(
                    400,
                    "InvalidPolicyDocument",
                    "Invalid policy document: Statement is missing.",
                ));
            }
            b.policy = Some(String::from_utf8_lossy(body).into_owned());
            Ok(Answer::empty(StatusCode::OK))
        }
        "DeleteBucketPolicy" => {
            b.policy = None;
            Ok(Answer::empty(StatusCode::NO_CONTENT))
        }
        "GetBucketCORS" => not_found(
            "NoSuchCORSConfiguration",
            "The CORS configuration does not exist.",
        ),
        "GetBucketWebsite" => not_found(
            "NoSuchWebsiteConfiguration",
            "The specified bucket does not have a website configuration.",
        ),
        "GetBucketLifecycle" => not_found(
            "NoSuchLifecycle",
            "No Row found in Lifecycle Table.",
        ),
        "GetBucketTransferAcceleration" => not_found(
            "NoSuchTransferAccelerationConfiguration",
            "The bucket you specified does not have transfer acceleration configuration.",
        ),
        "GetBucketLogging" => Ok(Answer::xml(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BucketLoggingStatus>\n</BucketLoggingStatus>\n".into(),
        )),
        "GetBucketReferer" => Ok(Answer::xml(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<RefererConfiguration>\n  <AllowEmptyReferer>true</AllowEmptyReferer>\n  \
             <RefererList />\n</RefererConfiguration>\n"
                .into(),
        )),
        "GetBucketTagging" => Ok(Answer::xml(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Tagging>\n  <TagSet />\n</Tagging>\n".into(),
        )),
        "GetBucketResourceGroup" => Ok(Answer::xml(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BucketResourceGroupConfiguration>\n  \
             <ResourceGroupId>rg-cloudcodedefault</ResourceGroupId>\n</BucketResourceGroupConfiguration>\n"
                .into(),
        )),
        "DeleteBucket" => {
            if !b.objects.is_empty() {
                return Err(oss_error(
                    409,
                    "BucketNotEmpty",
                    "The bucket you tried to delete is not empty.",
                ));
            }
            oss.buckets.remove(bucket);
            Ok(Answer::empty(StatusCode::NO_CONTENT))
        }
        "ListObjects" => {
            let prefix = q("prefix").unwrap_or("");
            let max: usize = q("max-keys").and_then(|m| m.parse().ok()).unwrap_or(100);
            let keys: Vec<(&String, &Object)> = b
                .objects
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .filter(|(k, _)| q("marker").is_none_or(|m| k.as_str() > m))
                .collect();
            let truncated = keys.len() > max;
            let contents: String = keys
                .iter()
                .take(max)
                .map(|(k, o)| {
                    format!(
                        "  <Contents>\n    <Key>{}</Key>\n    <LastModified>{}</LastModified>\n    <ETag>\"{}\"</ETag>\n    \
                         <Type>Normal</Type>\n    <Size>{}</Size>\n    <StorageClass>Standard</StorageClass>\n  </Contents>\n",
                        xml_escape(k),
                        o.last_modified.format(&Rfc3339).unwrap_or_default(),
                        o.etag,
                        o.bytes.len()
                    )
                })
                .collect();
            Ok(Answer::xml(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult>\n  <Name>{bucket}</Name>\n  <Prefix>{}</Prefix>\n  \
                 <Marker></Marker>\n  <MaxKeys>{max}</MaxKeys>\n  <Delimiter></Delimiter>\n  <IsTruncated>{truncated}</IsTruncated>\n{contents}</ListBucketResult>\n",
                xml_escape(prefix)
            )))
        }
        "PutObject" => {
            let md5 = md5::compute(body).0;
            let given = header(headers, "content-md5");
            if !given.is_empty() {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(given)
                    .ok()
                    .filter(|d| d.len() == 16)
                    .ok_or_else(|| {
                        oss_error(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
                    })?;
                if decoded != md5 {
                    return Err(oss_error(
                        400,
                        "InvalidDigest",
                        "The Content-MD5 you specified did not match what we received.",
                    ));
                }
            }
            if let Some(acl) = headers.get("x-oss-object-acl").and_then(|v| v.to_str().ok()) {
                if !ACLS.contains(&acl) && acl != "default" {
                    return Err(oss_error(400, "InvalidArgument", "no such object access control exists"));
                }
            }
            let encryption = headers
                .get("x-oss-server-side-encryption")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if encryption
                .as_deref()
                .is_some_and(|e| !["AES256", "KMS", "SM4"].contains(&e))
            {
                return Err(oss_error(
                    400,
                    "InvalidEncryptionAlgorithmError",
                    "The encryption request you specified is not valid. Supported value: AES256/KMS/SM4",
                ));
            }
            let content_type = match header(headers, "content-type") {
                "" => "application/octet-stream".to_string(),
                t => t.to_string(),
            };
            let etag = hex::encode_upper(md5);
            let crc = crc64_ecma(body);
            b.objects.insert(
                key.to_string(),
                Object {
                    bytes: body.to_vec(),
                    content_type,
                    etag: etag.clone(),
                    last_modified: OffsetDateTime::parse(&now, &Rfc3339)
                        .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    encryption,
                },
            );
            let mut a = Answer::empty(StatusCode::OK);
            a.headers = vec![
                ("etag", format!("\"{etag}\"")),
                ("x-oss-hash-crc64ecma", crc.to_string()),
                (
                    "content-md5",
                    base64::engine::general_purpose::STANDARD.encode(md5),
                ),
            ];
            Ok(a)
        }
        "HeadObject" | "GetObjectMeta" | "GetObject" => {
            let o = b.objects.get(key).ok_or_else(|| {
                oss_error(404, "NoSuchKey", "The specified key does not exist.")
            })?;
            let mut a = Answer::empty(StatusCode::OK);
            a.headers = vec![
                ("etag", format!("\"{}\"", o.etag)),
                ("last-modified", http_date(o.last_modified)),
                ("x-oss-hash-crc64ecma", crc64_ecma(&o.bytes).to_string()),
                ("x-oss-object-type", "Normal".into()),
                ("x-oss-storage-class", "Standard".into()),
            ];
            if operation != "GetObjectMeta" {
                a.headers.push(("content-type", o.content_type.clone()));
                if let Some(e) = &o.encryption {
                    a.headers.push(("x-oss-server-side-encryption", e.clone()));
                }
            }
            if operation == "GetObject" {
                a.body = o.bytes.clone();
            } else {
                a.headers
                    .push(("content-length", o.bytes.len().to_string()));
            }
            Ok(a)
        }
        "DeleteObject" => {
            b.objects.remove(key);
            Ok(Answer::empty(StatusCode::NO_CONTENT))
        }
        other => Err(oss_error(
            501,
            "NotImplemented",
            format!("A header you provided implies functionality that is not implemented ({other})."),
        )),
    }
}

/// The `x-oss-acl` header, checked against the canned ACLs.
fn acl_header(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match header(headers, "x-oss-acl") {
        "" => Ok(None),
        a if ACLS.contains(&a) => Ok(Some(a.to_string())),
        _ => Err(oss_error(
            400,
            "InvalidArgument",
            "no such bucket access control exists",
        )),
    }
}

fn put_bucket(
    world: &mut World,
    bucket: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Answer, ApiError> {
    if !valid_bucket_name(bucket) {
        return Err(oss_error(
            400,
            "InvalidBucketName",
            "The specified bucket is not valid.",
        ));
    }
    if world.oss.buckets.contains_key(bucket) {
        return Err(oss_error(
            409,
            "BucketAlreadyExists",
            "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
        ));
    }
    let acl = acl_header(headers)?.unwrap_or_else(|| "private".into());
    let text = String::from_utf8_lossy(body);
    let storage_class = text
        .split_once("<StorageClass>")
        .and_then(|(_, rest)| rest.split_once("</StorageClass>"))
        .map(|(c, _)| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "Standard".into());
    if ![
        "Standard",
        "IA",
        "Archive",
        "ColdArchive",
        "DeepColdArchive",
    ]
    .contains(&storage_class.as_str())
    {
        return Err(oss_error(400, "InvalidArgument", "Invalid storage class."));
    }
    let created = world.clock();
    world.oss.buckets.insert(
        bucket.to_string(),
        Bucket {
            acl,
            storage_class,
            created,
            policy: None,
            objects: BTreeMap::new(),
        },
    );
    Ok(Answer::empty(StatusCode::OK))
}

fn list_buckets(
    world: &World,
    prefix: Option<&str>,
    max_keys: Option<&str>,
    marker: Option<&str>,
) -> Answer {
    let prefix = prefix.unwrap_or("");
    let max: usize = max_keys.and_then(|m| m.parse().ok()).unwrap_or(100);
    let names: Vec<(&String, &Bucket)> = world
        .oss
        .buckets
        .iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .filter(|(n, _)| marker.is_none_or(|m| n.as_str() > m))
        .collect();
    let truncated = names.len() > max;
    let items: String = names
        .iter()
        .take(max)
        .map(|(n, b)| {
            format!(
                "    <Bucket>\n      <CreationDate>{}</CreationDate>\n      <ExtranetEndpoint>{OSS_EXTRANET_ENDPOINT}</ExtranetEndpoint>\n      \
                 <IntranetEndpoint>{OSS_INTRANET_ENDPOINT}</IntranetEndpoint>\n      <Location>{LOCATION}</Location>\n      \
                 <Name>{n}</Name>\n      <Region>cn-hangzhou</Region>\n      <StorageClass>{}</StorageClass>\n    </Bucket>\n",
                b.created, b.storage_class
            )
        })
        .collect();
    let next = if truncated {
        names
            .get(max - 1)
            .map(|(n, _)| format!("  <NextMarker>{n}</NextMarker>\n"))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Answer::xml(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult>\n  <Prefix>{prefix}</Prefix>\n  <Marker>{}</Marker>\n  \
         <MaxKeys>{max}</MaxKeys>\n  <IsTruncated>{truncated}</IsTruncated>\n{next}  <Owner>\n    <ID>{owner}</ID>\n    \
         <DisplayName>{owner}</DisplayName>\n  </Owner>\n  <Buckets>\n{items}  </Buckets>\n</ListAllMyBucketsResult>\n",
        marker.unwrap_or(""),
        owner = super::ACCOUNT_ID,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_the_ecma_check_value() {
        assert_eq!(crc64_ecma(b"123456789"), 0x995D_C9BB_DF19_39FA);
        assert_eq!(crc64_ecma(b""), 0);
    }

    #[test]
    fn bucket_names_follow_the_documented_rules() {
        for ok in ["abc", "my-site-2024", &"a".repeat(63)] {
            assert!(valid_bucket_name(ok), "{ok}");
        }
        for bad in ["ab", "-abc", "abc-", "Abc", "a_b", "a.b.c", &"a".repeat(64)] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn operations_are_named_as_documented() {
        let q = |s: &str| signature::decode_pairs(s);
        assert_eq!(
            operation_name(&Method::GET, "", "", &q("prefix=a")),
            "ListBuckets"
        );
        assert_eq!(operation_name(&Method::PUT, "b", "", &q("")), "PutBucket");
        assert_eq!(
            operation_name(&Method::GET, "b", "", &q("bucketInfo")),
            "GetBucketInfo"
        );
        assert_eq!(
            operation_name(&Method::GET, "b", "", &q("cors")),
            "GetBucketCORS"
        );
        assert_eq!(
            operation_name(&Method::PUT, "b", "", &q("acl")),
            "PutBucketAcl"
        );
        assert_eq!(
            operation_name(&Method::PUT, "b", "k/x.css", &q("")),
            "PutObject"
        );
        assert_eq!(
            operation_name(&Method::HEAD, "b", "k", &q("objectMeta")),
            "GetObjectMeta"
        );
        assert_eq!(
            operation_name(&Method::DELETE, "b", "", &q("")),
            "DeleteBucket"
        );
    }

    #[test]
    fn virtual_hosted_and_path_style_address_the_same_object() {
        let mut h = HeaderMap::new();
        h.insert(
            "host",
            HeaderValue::from_static("site.oss.double.test:8443"),
        );
        let uri: Uri = "/css/a%20b.css?acl".parse().unwrap();
        assert_eq!(target(&uri, &h), ("site".into(), "css/a b.css".into()));
        h.insert("host", HeaderValue::from_static("127.0.0.1:8443"));
        let uri: Uri = "/site/css/a%20b.css".parse().unwrap();
        assert_eq!(target(&uri, &h), ("site".into(), "css/a b.css".into()));
    }
}
