//! The HTTP side of the double: `/bot<token>/<method>` routing, parameters from the query string and from JSON,
//! urlencoded or multipart bodies, Telegram's answer envelope, injected failures and holds, and the getUpdates
//! long poll with its 409 Conflict.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::methods;
use super::state::{hold_kind, CallRecord, Failure, World};

pub(crate) struct Inner {
    pub world: Mutex<World>,
    /// Woken whenever an update is queued or a newer getUpdates supersedes a pending one.
    pub updates: Notify,
}

pub(crate) type Shared = Arc<Inner>;

pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, World> {
    shared
        .world
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Closes the connection it belongs to without an answer (for [`Failure::Drop`]).
#[derive(Clone)]
pub(crate) struct ConnAbort(pub Arc<Notify>);

/// Uploads and documents go up to 50 MB at Telegram; the body limit leaves room for the 413 check.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

pub(crate) fn router(shared: Shared) -> axum::Router {
    axum::Router::new()
        .fallback(
            move |uri: Uri,
                  headers: HeaderMap,
                  Extension(abort): Extension<ConnAbort>,
                  body: Bytes| {
                let shared = shared.clone();
                async move { handle(shared, abort, uri, headers, body).await }
            },
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// Accepts connections until `stop` fires; each connection can be cut by its handler.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let abort = Arc::new(Notify::new());
                let app = app.clone().layer(Extension(ConnAbort(abort.clone())));
                tokio::spawn(async move {
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(tcp), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = abort.notified() => {}
                    }
                });
            }
        }
    }
}

/// An error answer in Telegram's envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {description}")]
pub(crate) struct ApiError {
    pub status: u16,
    pub description: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn bad(what: impl std::fmt::Display) -> Self {
        Self {
            status: 400,
            description: format!("Bad Request: {what}"),
            retry_after: None,
        }
    }

    pub fn too_many(retry_after: u64) -> Self {
        Self {
            status: 429,
            description: format!("Too Many Requests: retry after {retry_after}"),
            retry_after: Some(retry_after),
        }
    }

    fn plain(status: u16, description: &str) -> Self {
        Self {
            status,
            description: description.into(),
            retry_after: None,
        }
    }
}

pub(crate) const CONFLICT: &str =
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";

/// A file part of a multipart body.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Json(Value),
    Text(String),
    File(Upload),
}

/// A request's parameters, wherever they came from.
#[derive(Debug, Default)]
pub(crate) struct Params(pub BTreeMap<String, Arg>);

impl Params {
    pub fn has(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }

    pub fn str(&self, k: &str) -> Option<String> {
        match self.0.get(k)? {
            Arg::Json(Value::String(s)) | Arg::Text(s) => Some(s.clone()),
            Arg::Json(Value::Null) => None,
            Arg::Json(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
            _ => None,
        }
    }

    /// An integer parameter; a value that is not one is Telegram's 400.
    pub fn i64(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(k) {
            None | Some(Arg::Json(Value::Null)) => Ok(None),
            Some(Arg::Json(Value::Number(n))) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| ApiError::bad(format!("invalid {k} specified"))),
            Some(_) => match self.str(k).map(|s| s.trim().parse::<i64>()) {
                Some(Ok(v)) => Ok(Some(v)),
                _ => Err(ApiError::bad(format!("invalid {k} specified"))),
            },
        }
    }

    pub fn bool(&self, k: &str) -> bool {
        match self.0.get(k) {
            Some(Arg::Json(Value::Bool(b))) => *b,
            Some(Arg::Json(Value::Number(n))) => n.as_i64().is_some_and(|v| v != 0),
            Some(Arg::Json(Value::String(s))) | Some(Arg::Text(s)) => {
                matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
            }
            _ => false,
        }
    }

    /// A structured parameter: JSON as is, or JSON serialised into a text field (form and multipart bodies).
    pub fn json(&self, k: &str) -> Option<Result<Value, ()>> {
        match self.0.get(k)? {
            Arg::Json(Value::Null) => None,
            Arg::Json(v) => Some(Ok(v.clone())),
            Arg::Text(s) if s.trim().is_empty() => None,
            Arg::Text(s) => Some(serde_json::from_str(s).map_err(|_| ())),
            Arg::File(_) => Some(Err(())),
        }
    }

    pub fn file(&self, k: &str) -> Option<&Upload> {
        match self.0.get(k)? {
            Arg::File(u) => Some(u),
            _ => None,
        }
    }

    /// The parameter is present, but as a text (a file_id or URL) rather than an upload.
    pub fn is_file_ref(&self, k: &str) -> bool {
        self.str(k).is_some_and(|s| !s.is_empty())
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The value of `key=` in a header's `; key=value` parameters (quotes removed).
fn header_param(value: &str, key: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn parse_multipart(body: &[u8], boundary: &str) -> Option<Vec<(String, Arg)>> {
    let delim = format!("--{boundary}").into_bytes();
    let mut next_delim = b"\r\n".to_vec();
    next_delim.extend_from_slice(&delim);
    let mut out = Vec::new();
    let mut pos = find(body, &delim, 0)? + delim.len();
    loop {
        if body[pos..].starts_with(b"--") {
            return Some(out);
        }
        if !body[pos..].starts_with(b"\r\n") {
            return None;
        }
        pos += 2;
        let header_end = find(body, b"\r\n\r\n", pos)?;
        let head = std::str::from_utf8(&body[pos..header_end]).ok()?;
        let content_start = header_end + 4;
        let end = find(body, &next_delim, content_start)?;
        let content = &body[content_start..end];
        pos = end + next_delim.len();
        let (mut name, mut filename, mut content_type) = (None, None, None);
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = header_param(v, "name");
                filename = header_param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_string());
            }
        }
        let name = name?;
        let is_text = |t: &str| t.starts_with("text/") || t.starts_with("application/json");
        // A part is a file when it has a file name or a binary content type; JSON fields stay text.
        let arg = if filename.is_some() || content_type.as_deref().is_some_and(|t| !is_text(t)) {
            Arg::File(Upload {
                filename,
                content_type,
                bytes: content.to_vec(),
            })
        } else {
            Arg::Text(String::from_utf8_lossy(content).into_owned())
        };
        out.push((name, arg));
    }
}

fn parse_params(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Params, ApiError> {
    let mut params = Params::default();
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        params.0.insert(k.into_owned(), Arg::Text(v.into_owned()));
    }
    let content_type = header_str(headers, header::CONTENT_TYPE);
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        _ if body.iter().all(u8::is_ascii_whitespace) => {}
        "application/json" => {
            let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
                return Err(ApiError::bad("can't parse JSON object"));
            };
            for (k, v) in map {
                params.0.insert(k, Arg::Json(v));
            }
        }
        "application/x-www-form-urlencoded" => {
            for (k, v) in url::form_urlencoded::parse(body) {
                params.0.insert(k.into_owned(), Arg::Text(v.into_owned()));
            }
        }
        "multipart/form-data" => {
            let parts = header_param(content_type, "boundary")
                .and_then(|b| parse_multipart(body, &b))
                .ok_or_else(|| ApiError::bad("can't parse multipart/form-data request"))?;
            for (k, v) in parts {
                params.0.insert(k, v);
            }
        }
        _ => {}
    }
    Ok(params)
}

const NGINX_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad \
                         Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n";

fn bad_gateway() -> Response {
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, "text/html")],
        NGINX_502,
    )
        .into_response()
}

fn envelope(result: &Result<Value, ApiError>) -> Response {
    let (status, doc) = match result {
        Ok(v) => (200, json!({"ok": true, "result": v})),
        Err(e) => {
            let mut doc =
                json!({"ok": false, "error_code": e.status, "description": e.description});
            if let Some(r) = e.retry_after {
                doc["parameters"] = json!({"retry_after": r});
            }
            (e.status, doc)
        }
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = Response::new(Body::from(doc.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// The methods the double implements (lower case: Bot API method names are case-insensitive).
const METHODS: [&str; 14] = [
    "getme",
    "deletewebhook",
    "setmycommands",
    "getmycommands",
    "getupdates",
    "sendmessage",
    "editmessagetext",
    "editmessagereplymarkup",
    "sendphoto",
    "senddocument",
    "answercallbackquery",
    "sendchataction",
    "deletemessage",
    "logout",
];

enum Step {
    Answer(Result<Value, ApiError>),
    BadGateway,
    Drop,
    Poll,
}

async fn handle(
    shared: Shared,
    abort: ConnAbort,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (step, mut record, params) = decide(&shared, &uri, &headers, &body);
    match step {
        Step::BadGateway => {
            record.status = 502;
            record.description = Some("502 Bad Gateway".into());
            lock(&shared).record(record);
            bad_gateway()
        }
        Step::Drop => {
            record.description = Some("connection dropped".into());
            lock(&shared).record(record);
            abort.0.notify_one();
            std::future::pending::<()>().await;
            bad_gateway()
        }
        Step::Answer(result) => {
            record.status = result.as_ref().map(|_| 200).unwrap_or_else(|e| e.status);
            record.description = result.as_ref().err().map(|e| e.description.clone());
            lock(&shared).record(record);
            envelope(&result)
        }
        Step::Poll => {
            let result = match params {
                Ok(p) => long_poll(&shared, &p).await,
                Err(e) => Err(e),
            };
            record.status = result.as_ref().map(|_| 200).unwrap_or_else(|e| e.status);
            record.description = result.as_ref().err().map(|e| e.description.clone());
            lock(&shared).record(record);
            envelope(&result)
        }
    }
}

/// Authentication, availability, holds, injected failures and (for all but getUpdates) the method itself,
/// under one lock of the world.
fn decide(
    shared: &Shared,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (Step, CallRecord, Result<Params, ApiError>) {
    let now = Instant::now();
    let path = uri.path();
    let (token, method) = path
        .strip_prefix("/bot")
        .and_then(|rest| rest.split_once('/'))
        .unwrap_or(("", ""));
    let method = method.to_string();
    let method_lc = method.to_ascii_lowercase();
    let params = parse_params(uri, headers, body);
    let chat_id = params
        .as_ref()
        .ok()
        .and_then(|p| p.i64("chat_id").ok().flatten());
    let mut world = lock(shared);
    let mut refused_by_hold = false;
    let step = if world.unavailable_until.is_some_and(|t| now < t) {
        Step::BadGateway
    } else if !token.contains(':') {
        Step::Answer(Err(ApiError::plain(404, "Not Found")))
    } else if token != world.token {
        Step::Answer(Err(ApiError::plain(401, "Unauthorized")))
    } else if !METHODS.contains(&method_lc.as_str()) {
        Step::Answer(Err(ApiError::plain(404, "Not Found")))
    } else {
        let key = (hold_kind(&method_lc), chat_id);
        let held_until = world.holds.get(&key).copied();
        match held_until {
            Some(until) if now < until => {
                refused_by_hold = true;
                let left = until.duration_since(now).as_secs_f64().ceil().max(1.0) as u64;
                Step::Answer(Err(ApiError::too_many(left)))
            }
            _ => match world.faults.get_mut(&method_lc).and_then(|q| q.pop_front()) {
                Some(Failure::TooManyRequests { retry_after_s }) => {
                    let until = now
                        .checked_add(Duration::from_secs(retry_after_s))
                        .unwrap_or(now);
                    world.holds.insert(key, until);
                    Step::Answer(Err(ApiError::too_many(retry_after_s)))
                }
                Some(Failure::BadGateway) => Step::BadGateway,
                Some(Failure::Drop) => Step::Drop,
                None => match &params {
                    Err(e) => Step::Answer(Err(e.clone())),
                    Ok(_) if method_lc == "getupdates" => Step::Poll,
                    Ok(p) => {
                        let result = methods::call(&mut world, &method_lc, p, now);
                        if let Err(ApiError {
                            retry_after: Some(r),
                            ..
                        }) = &result
                        {
                            world.holds.insert(key, now + Duration::from_secs(*r));
                        }
                        Step::Answer(result)
                    }
                },
            },
        }
    };
    let record = CallRecord {
        method,
        chat_id,
        status: 0,
        at: now,
        description: None,
        refused_by_hold,
    };
    (step, record, params)
}

/// Clears the pending mark when a poll ends, however it ends (a client that hangs up drops the future).
struct PollGuard<'a> {
    shared: &'a Shared,
    generation: u64,
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        let mut world = lock(self.shared);
        if world.poll_generation == self.generation {
            world.poll_pending = false;
        }
    }
}

/// getUpdates: confirms by offset, answers at once when updates wait, else holds the request up to `timeout`
/// seconds. A newer getUpdates terminates a pending one with 409, as Telegram does (the older request loses).
async fn long_poll(shared: &Shared, params: &Params) -> Result<Value, ApiError> {
    let offset = params.i64("offset")?;
    let limit = params.i64("limit")?.unwrap_or(100).clamp(1, 100) as usize;
    // Telegram holds a long poll for at most about 50 s; the double allows up to 10 minutes.
    let timeout = params.i64("timeout")?.unwrap_or(0).clamp(0, 600) as u64;
    let allowed = match params.json("allowed_updates") {
        None => None,
        Some(Ok(Value::Array(list))) => Some(
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect::<Vec<_>>(),
        ),
        Some(_) => return Err(ApiError::bad("can't parse allowed_updates JSON array")),
    };
    let generation = {
        let mut world = lock(shared);
        if let Some(a) = allowed {
            world.allowed_updates = Some(a);
        }
        world.poll_generation += 1;
        world.poll_pending = true;
        world.poll_generation
    };
    // Wake the superseded poll, if any, so it answers 409 now.
    shared.updates.notify_waiters();
    let _guard = PollGuard { shared, generation };
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut first = true;
    loop {
        let notified = shared.updates.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut world = lock(shared);
            if world.poll_generation != generation {
                return Err(ApiError::plain(409, CONFLICT));
            }
            // The offset confirms earlier updates once; later rounds only look for new ones.
            let updates = world.take_updates(if first { offset } else { None }, limit);
            first = false;
            if !updates.is_empty() || Instant::now() >= deadline {
                return Ok(Value::Array(updates));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(left, notified).await;
    }
}
