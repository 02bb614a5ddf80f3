//! The HTTP side of the double: authenticates every request as the ECS gateway does (an ACS3 signature, or
//! the classic RPC signature 1.0 with HMAC-SHA1 over query and form parameters; access key, STS token and its
//! expiry, nonce replay, clock skew, body hash), authorizes a RAM role's temporary key against the role's
//! policies, then dispatches to the world by API version (ECS, VPC, Alidns, RAM, STS, BSS, CDN); OSS requests
//! (signed the OSS way or addressed to its endpoint) go to the OSS handler, which checks its own signature.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::account::{BSS_API_VERSION, STS_API_VERSION};
use super::alidns::ALIDNS_API_VERSION;
use super::cdn::CDN_API_VERSION;
use super::ram::RAM_API_VERSION;
use super::signature;
use super::state::{ApiError, Caller, RecordedCall, World};
use super::vpc::VPC_API_VERSION;

/// The API version the double serves.
pub const API_VERSION: &str = "2014-05-26";

pub(crate) type Shared = Arc<Mutex<World>>;

pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, World> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn router(shared: Shared) -> axum::Router {
    axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let shared = shared.clone();
            async move { handle(&shared, &method, &uri, &headers, &body) }
        },
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn handle(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if super::oss::is_oss(uri, headers) {
        return super::oss::handle(&mut lock(shared), method, uri, headers, body);
    }
    let query_pairs = signature::decode_pairs(uri.query().unwrap_or(""));
    let mut params: BTreeMap<String, String> = query_pairs.iter().cloned().collect();
    let form = header(headers, "content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form {
        params.extend(signature::decode_pairs(&String::from_utf8_lossy(body)));
    }
    let version = params
        .get("Version")
        .cloned()
        .or_else(|| header(headers, "x-acs-version").map(str::to_string))
        .unwrap_or_default();
    let (product, endpoint) = product_of(&version);
    let host_id = match params.get("RegionId") {
        Some(r) if !matches!(product, "Alidns" | "Ram" | "Cdn") => {
            format!("{endpoint}.{r}.aliyuncs.com")
        }
        _ => format!("{endpoint}.aliyuncs.com"),
    };
    let mut world = lock(shared);
    world.caller = None;
    let request_id = world.request_id();
    let rpc = params.contains_key("SignatureMethod");
    let (action, access_key_id, security_token) = if rpc {
        (
            params.get("Action").cloned().unwrap_or_default(),
            params.get("AccessKeyId").cloned().unwrap_or_default(),
            params.contains_key("SecurityToken"),
        )
    } else {
        (
            header(headers, "x-acs-action").unwrap_or("").to_string(),
            header(headers, "authorization")
                .and_then(signature::parse_authorization)
                .map(|a| a.access_key_id)
                .unwrap_or_default(),
            headers.contains_key("x-acs-security-token"),
        )
    };
    let authenticated = if rpc {
        let mut pairs = query_pairs.clone();
        if form {
            pairs.extend(signature::decode_pairs(&String::from_utf8_lossy(body)));
        }
        authenticate_rpc(&mut world, method, &pairs)
    } else {
        authenticate(&mut world, method, uri, headers, body, &query_pairs)
    };
    let result = authenticated
        .and_then(|()| world.authorize(permission_product(&version), &action, &params))
        .and_then(|()| match world.take_fault(&action) {
            Some(fault) => Err(fault),
            None if version == VPC_API_VERSION => world.handle_vpc(&action, &params),
            None if version == ALIDNS_API_VERSION => world.dns.handle(&action, &params),
            None if version == RAM_API_VERSION => world.handle_ram(&action, &params),
            None if version == STS_API_VERSION => {
                let caller = world.caller.clone().unwrap_or_default();
                let role_id = caller.role.as_deref().and_then(|r| world.ram.role_id(r));
                world
                    .account
                    .handle_sts(&action, &caller, role_id.as_deref())
            }
            None if version == BSS_API_VERSION => world.account.handle_bss(&action),
            None if version == CDN_API_VERSION => {
                let now = world.clock();
                world.cdn.handle(&action, &params, &now)
            }
            None => world.handle(&action, &params),
        });
    let outcome = match &result {
        Ok(_) => "OK".to_string(),
        Err(e) => e.code.clone(),
    };
    // A certificate's private key is handled but never kept in the log.
    if let Some(key) = params.get_mut("SSLPri") {
        *key = format!("<redacted, {} bytes>", key.len());
    }
    world.calls.push(RecordedCall {
        action,
        params,
        outcome,
        access_key_id,
        security_token,
    });
    drop(world);
    match result {
        Ok(mut value) => {
            if let Value::Object(map) = &mut value {
                map.insert("RequestId".into(), json!(request_id));
            }
            (StatusCode::OK, axum::Json(value)).into_response()
        }
        Err(err) => {
            let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
            let doc = json!({
                "RequestId": request_id,
                "HostId": host_id,
                "Code": err.code,
                "Message": err.message,
                "Recommend": format!(
                    "https://api.aliyun.com/troubleshoot?q={}&product={product}&requestId={request_id}",
                    err.code
                ),
            });
            (status, axum::Json(doc)).into_response()
        }
    }
}

/// The product an RPC API version belongs to, and its endpoint prefix.
fn product_of(version: &str) -> (&'static str, &'static str) {
    match version {
        VPC_API_VERSION => ("Vpc", "vpc"),
        ALIDNS_API_VERSION => ("Alidns", "alidns"),
        STS_API_VERSION => ("Sts", "sts"),
        BSS_API_VERSION => ("BssOpenApi", "business"),
        RAM_API_VERSION => ("Ram", "ram"),
        CDN_API_VERSION => ("Cdn", "cdn"),
        _ => ("Ecs", "ecs"),
    }
}

/// The product code a RAM policy names an API version's actions with (`ecs:StopInstance`); None for STS, whose
/// GetCallerIdentity needs no permission.
fn permission_product(version: &str) -> Option<&'static str> {
    match version {
        VPC_API_VERSION => Some("vpc"),
        ALIDNS_API_VERSION => Some("alidns"),
        STS_API_VERSION => None,
        BSS_API_VERSION => Some("bss"),
        RAM_API_VERSION => Some("ram"),
        CDN_API_VERSION => Some("cdn"),
        _ => Some("ecs"),
    }
}

const REQUIRED_SIGNED: [&str; 6] = [
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
];

fn authenticate(
    world: &mut World,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    query_pairs: &[(String, String)],
) -> Result<(), ApiError> {
    let incomplete = |what: &str| {
        ApiError::new(
            400,
            "IncompleteSignature",
            format!("The request signature does not conform to Aliyun standards. {what}"),
        )
    };
    let auth = header(headers, "authorization")
        .and_then(signature::parse_authorization)
        .ok_or_else(|| incomplete("Authorization header is missing or malformed."))?;
    for required in REQUIRED_SIGNED {
        if header(headers, required).is_none() {
            return Err(ApiError::new(
                400,
                "MissingParameter",
                format!("The input parameter \"{required}\" that is mandatory for processing this request is not supplied."),
            ));
        }
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(incomplete(&format!("Header {required} must be signed.")));
        }
    }
    let token = header(headers, "x-acs-security-token");
    if token.is_some()
        && !auth
            .signed_headers
            .iter()
            .any(|h| h == "x-acs-security-token")
    {
        return Err(incomplete("Header x-acs-security-token must be signed."));
    }
    let version = header(headers, "x-acs-version").unwrap_or("");
    if ![
        API_VERSION,
        STS_API_VERSION,
        BSS_API_VERSION,
        RAM_API_VERSION,
    ]
    .contains(&version)
    {
        return Err(ApiError::new(
            400,
            "InvalidVersion",
            format!("Specified parameter Version is not valid: {version}"),
        ));
    }
    let key = access_key(world, &auth.access_key_id)?;
    let caller = Caller {
        access_key_id: auth.access_key_id.clone(),
        sts: key.security_token.is_some(),
        role: key.role.clone(),
    };
    let payload_hash = header(headers, "x-acs-content-sha256").unwrap_or("");
    if !payload_hash.eq_ignore_ascii_case(&hex::encode(Sha256::digest(body))) {
        return Err(ApiError::new(
            400,
            "ContentSHA256NotMatched",
            "The x-acs-content-sha256 header does not match the request body.",
        ));
    }
    let mut signed: Vec<(String, String)> = Vec::new();
    for name in &auth.signed_headers {
        let value = header(headers, name).ok_or_else(|| {
            incomplete(&format!(
                "Signed header {name} is not present in the request."
            ))
        })?;
        signed.push((name.to_ascii_lowercase(), value.to_string()));
    }
    let string_to_sign = signature::string_to_sign(
        method.as_str(),
        uri.path(),
        query_pairs,
        &signed,
        payload_hash,
    );
    if !signature::verify(&key.secret, &string_to_sign, &auth.signature) {
        return Err(ApiError::new(
            400,
            "SignatureDoesNotMatch",
            format!(
                "Specified signature does not match our calculation. The server string to sign is: {}",
                string_to_sign.replace('\n', "\\n")
            ),
        ));
    }
    let (key_token, expires) = (key.security_token.clone(), key.expires);
    let date = header(headers, "x-acs-date").unwrap_or("").to_string();
    let nonce = header(headers, "x-acs-signature-nonce")
        .unwrap_or("")
        .to_string();
    check_token_time_nonce(world, (key_token.as_deref(), expires), token, &date, nonce)?;
    world.caller = Some(caller);
    Ok(())
}

fn access_key<'w>(world: &'w World, id: &str) -> Result<&'w super::state::AccessKey, ApiError> {
    world.keys.get(id).ok_or_else(|| {
        ApiError::new(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        )
    })
}

/// The checks both signature kinds share once the signature matched: the STS token belongs to the key and has
/// not expired, the time stamp is within 15 minutes, the nonce is new.
fn check_token_time_nonce(
    world: &mut World,
    (expected_token, expires): (Option<&str>, Option<OffsetDateTime>),
    token: Option<&str>,
    date: &str,
    nonce: String,
) -> Result<(), ApiError> {
    match (expected_token, token) {
        (Some(expected), Some(got)) if expected == got => {}
        (None, None) => {}
        (Some(_), None) => {
            return Err(ApiError::new(
                400,
                "MissingSecurityToken",
                "SecurityToken is mandatory for this action.",
            ))
        }
        _ => {
            return Err(ApiError::new(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "Specified SecurityToken mismatch with the AccessKey.",
            ))
        }
    }
    if expires.is_some_and(|e| e <= OffsetDateTime::now_utc()) {
        return Err(ApiError::new(
            400,
            "InvalidSecurityToken.Expired",
            "Specified SecurityToken is expired.",
        ));
    }
    let skew_ok = OffsetDateTime::parse(date, &Rfc3339)
        .map(|t| (OffsetDateTime::now_utc() - t).whole_minutes().abs() <= 15)
        .unwrap_or(false);
    if !skew_ok {
        return Err(ApiError::new(
            400,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    if !world.nonces.insert(nonce) {
        return Err(ApiError::new(
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ));
    }
    Ok(())
}

/// The classic RPC signature (version 1.0, HMAC-SHA1) over every query and form parameter.
fn authenticate_rpc(
    world: &mut World,
    method: &Method,
    pairs: &[(String, String)],
) -> Result<(), ApiError> {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    for required in [
        "AccessKeyId",
        "Action",
        "Signature",
        "SignatureMethod",
        "SignatureNonce",
        "SignatureVersion",
        "Timestamp",
        "Version",
    ] {
        if get(required).is_none() {
            return Err(ApiError::new(
                400,
                "MissingParameter",
                format!("The input parameter \"{required}\" that is mandatory for processing this request is not supplied."),
            ));
        }
    }
    if get("SignatureMethod") != Some("HMAC-SHA1") || get("SignatureVersion") != Some("1.0") {
        return Err(ApiError::new(
            400,
            "IncompleteSignature",
            "The request signature does not conform to Aliyun standards. SignatureMethod HMAC-SHA1 with SignatureVersion 1.0 expected.",
        ));
    }
    let version = get("Version").unwrap_or("");
    if ![
        API_VERSION,
        VPC_API_VERSION,
        ALIDNS_API_VERSION,
        RAM_API_VERSION,
        CDN_API_VERSION,
    ]
    .contains(&version)
    {
        return Err(ApiError::new(
            400,
            "InvalidVersion",
            format!("Specified parameter Version is not valid: {version}"),
        ));
    }
    let key = access_key(world, get("AccessKeyId").unwrap_or(""))?;
    let caller = Caller {
        access_key_id: get("AccessKeyId").unwrap_or("").to_string(),
        sts: key.security_token.is_some(),
        role: key.role.clone(),
    };
    let string_to_sign = signature::rpc_v1_string_to_sign(method.as_str(), pairs);
    if !signature::verify_rpc_v1(&key.secret, &string_to_sign, get("Signature").unwrap_or("")) {
        return Err(ApiError::new(
            400,
            "SignatureDoesNotMatch",
            format!("Specified signature does not match our calculation. The server string to sign is: {string_to_sign}"),
        ));
    }
    let (expected, expires) = (key.security_token.clone(), key.expires);
    check_token_time_nonce(
        world,
        (expected.as_deref(), expires),
        get("SecurityToken"),
        get("Timestamp").unwrap_or(""),
        get("SignatureNonce").unwrap_or("").to_string(),
    )?;
    world.caller = Some(caller);
    Ok(())
}
