//! The double's HTTP and WebSocket side: the OpenAPI routes, media upload and the Stream connection loop.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{json, Value};

use super::state::{lock, ApiError, Conn, Pending, Push, Shared, World};

pub(crate) fn router(shared: Shared) -> axum::Router {
    axum::Router::new()
        .route("/v1.0/gateway/connections/open", post(open))
        .route("/connect", get(connect))
        .route("/v1.0/oauth2/accessToken", post(access_token))
        .route("/v1.0/robot/oToMessages/batchSend", post(batch_send))
        .route("/v1.0/robot/groupMessages/send", post(group_send))
        .route("/oapi/media/upload", post(upload))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"code": "notFound", "message": "no such API"})),
            )
        })
        .with_state(shared)
}

fn answer(world: &mut World, api: &str, result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(v) => {
            world.record(api, 200, "OK");
            (StatusCode::OK, axum::Json(v)).into_response()
        }
        Err(e) => {
            world.record(api, e.status, e.code.clone());
            let request_id = world.next_id("req-");
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            (
                status,
                axum::Json(json!({"requestid": request_id, "code": e.code, "message": e.message})),
            )
                .into_response()
        }
    }
}

fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|_| ApiError {
        status: 400,
        code: "invalidParameter".into(),
        message: "请求体不是合法的 JSON".into(),
    })
}

async fn open(State(shared): State<Shared>, body: Bytes) -> Response {
    let mut w = lock(&shared);
    let result = json_body(&body).and_then(|b| w.open_connection(&b));
    answer(&mut w, "connections/open", result)
}

async fn access_token(State(shared): State<Shared>, body: Bytes) -> Response {
    let mut w = lock(&shared);
    let result = json_body(&body).and_then(|b| w.access_token(&b));
    answer(&mut w, "accessToken", result)
}

fn token(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-acs-dingtalk-access-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn batch_send(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut w = lock(&shared);
    let result = json_body(&body).and_then(|b| w.batch_send(token(&headers).as_deref(), &b));
    answer(&mut w, "batchSend", result)
}

async fn group_send(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut w = lock(&shared);
    let result = json_body(&body).and_then(|b| w.group_send(token(&headers).as_deref(), &b));
    answer(&mut w, "groupMessages/send", result)
}

async fn upload(
    State(shared): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let fault = lock(&shared).take_fault("media/upload");
    if let Some(status) = fault {
        let mut w = lock(&shared);
        w.record("media/upload", status, "injected");
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (
            code,
            axum::Json(json!({"errcode": -1, "errmsg": "系统繁忙"})),
        )
            .into_response();
    }
    let mut media = None;
    if let Ok(mut mp) = multipart {
        while let Ok(Some(field)) = mp.next_field().await {
            if field.name() == Some("media") {
                if let Ok(bytes) = field.bytes().await {
                    media = Some(bytes.to_vec());
                }
            }
        }
    }
    let mut w = lock(&shared);
    let doc = w.upload(
        q.get("access_token").map(String::as_str),
        q.get("type").map(String::as_str),
        media,
    );
    let errcode = doc.get("errcode").and_then(Value::as_i64).unwrap_or(-1);
    w.record(
        "media/upload",
        200,
        if errcode == 0 {
            "OK".to_string()
        } else {
            errcode.to_string()
        },
    );
    (StatusCode::OK, axum::Json(doc)).into_response()
}

async fn connect(
    State(shared): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let ticket = q.get("ticket").cloned().unwrap_or_default();
    let (conn, rx) = {
        let mut w = lock(&shared);
        if !w.use_ticket(&ticket) {
            w.record("ws/connect", 401, "bad ticket");
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"code": "invalidTicket", "message": "ticket 无效或已使用"})),
            )
                .into_response();
        }
        let id = w.calls.len() as u64 + 1;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        w.conns.push(Conn { id, tx });
        w.record("ws/connect", 101, "OK");
        (id, rx)
    };
    ws.on_upgrade(move |socket| serve(socket, shared, conn, rx))
}

async fn serve(
    mut socket: WebSocket,
    shared: Shared,
    conn: u64,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Push>,
) {
    let ping_every = lock(&shared).ping_interval;
    let mut ping = tokio::time::interval(ping_every);
    ping.tick().await;
    let mut check = tokio::time::interval(Duration::from_millis(50));
    let why = loop {
        tokio::select! {
            push = rx.recv() => match push {
                Some(Push::Frame(f)) => {
                    if socket.send(Message::Text(f.into())).await.is_err() {
                        break "send failed";
                    }
                }
                Some(Push::Drop) | None => break "dropped by the test",
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(t))) => lock(&shared).take_ack(t.as_str()),
                Some(Ok(Message::Close(_))) => break "client closed",
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break "client went away",
            },
            _ = ping.tick() => {
                let frame = {
                    let mut w = lock(&shared);
                    let (id, frame, data) = w.ping_frame(conn);
                    w.pending.insert(id, Pending { frame: frame.clone(), conn, sent_at: Instant::now(), attempts: 1, ping_data: Some(data) });
                    frame
                };
                if socket.send(Message::Text(frame.into())).await.is_err() {
                    break "send failed";
                }
            }
            _ = check.tick() => {
                let resend = lock(&shared).overdue(conn);
                for f in resend {
                    if socket.send(Message::Text(f.into())).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let mut w = lock(&shared);
    w.conns.retain(|c| c.id != conn);
    w.pending
        .retain(|_, p| p.conn != conn || p.ping_data.is_none());
    w.record("ws/closed", 0, why);
}
