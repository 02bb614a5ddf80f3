//! The ECS instance metadata service (`http://100.100.100.200`) of one instance of the API double: its id and
//! region, the RAM role attached to it and that role's STS credentials (issued by the API double, which then accepts
//! them as the role's policies allow), in normal mode and in hardened mode (a session token from
//! `PUT /latest/api/token`, sent back in `X-aliyun-ecs-metadata-token`), with a log of the requests; and the route
//! that makes its documented address reachable from a test VM's network namespace.
//!
//! What it follows (Alibaba Cloud "Instance metadata" and "Access instance metadata in security hardening mode
//! only"): the token's TTL header is required and 1..=21600 seconds, else 400; a token request through a proxy
//! (`X-Forwarded-For`) is refused (403); a token that is unknown or expired is 401; with hardened mode enforced a
//! request without a token is 403 (without it, such a request is served: normal mode); an unknown path or role, or
//! the role list of an instance without a role, is 404. The credentials are served again until half an hour before
//! they expire, then renewed.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::double_server::DoubleServer;
use crate::ecs_double::{EcsDouble, InstanceIdentity, RoleCredentials};
use crate::vm::TestVm;

/// The address the metadata service answers on in every VPC.
pub const METADATA_IP: Ipv4Addr = Ipv4Addr::new(100, 100, 100, 200);
const TOKEN_TTL_HEADER: &str = "x-aliyun-ecs-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aliyun-ecs-metadata-token";
const MAX_TOKEN_TTL_SECONDS: u64 = 21600;
const CREDENTIALS_PATH: &str = "/latest/meta-data/ram/security-credentials/";
/// How long the credentials it hands out live.
const CREDENTIALS_LIFETIME: Duration = Duration::from_secs(6 * 3600);
/// They are renewed when they expire sooner than this.
const RENEW_BEFORE: time::Duration = time::Duration::minutes(30);

/// One request the metadata double answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequest {
    pub method: String,
    pub path: String,
    /// Whether it carried `X-aliyun-ecs-metadata-token`.
    pub token_sent: bool,
    pub status: u16,
}

struct Served {
    credentials: RoleCredentials,
    last_updated: String,
}

struct State {
    identity: InstanceIdentity,
    hardened: bool,
    /// Session tokens and when each expires.
    tokens: HashMap<String, Instant>,
    served: Option<Served>,
    log: Vec<MetadataRequest>,
}

/// A running metadata double. Dropping it stops the server.
pub struct MetadataDouble {
    state: Arc<Mutex<State>>,
    server: DoubleServer,
}

fn lock(state: &Arc<Mutex<State>>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl State {
    /// The status and body of one request.
    fn answer(&mut self, method: &Method, path: &str, headers: &HeaderMap) -> (StatusCode, String) {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if path == "/latest/api/token" {
            if method != Method::PUT {
                return (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed".into());
            }
            if headers.contains_key("x-forwarded-for") {
                return (StatusCode::FORBIDDEN, "Forbidden".into());
            }
            let Some(ttl) = header(TOKEN_TTL_HEADER)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|t| (1..=MAX_TOKEN_TTL_SECONDS).contains(t))
            else {
                return (
                    StatusCode::BAD_REQUEST,
                    "Missing or Invalid Parameters".into(),
                );
            };
            let token =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
            self.tokens
                .insert(token.clone(), Instant::now() + Duration::from_secs(ttl));
            return (StatusCode::OK, token);
        }
        if method != Method::GET {
            return (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed".into());
        }
        match header(TOKEN_HEADER) {
            Some(t)
                if self
                    .tokens
                    .get(t.trim())
                    .is_none_or(|e| *e <= Instant::now()) =>
            {
                return (StatusCode::UNAUTHORIZED, "Unauthorized".into())
            }
            None if self.hardened => return (StatusCode::FORBIDDEN, "Forbidden".into()),
            _ => {}
        }
        let found = match path {
            "/latest/meta-data/instance-id" => Some(self.identity.instance_id().to_string()),
            "/latest/meta-data/region-id" => self.identity.region(),
            p if p == CREDENTIALS_PATH || p == CREDENTIALS_PATH.trim_end_matches('/') => {
                self.identity.role()
            }
            p => p
                .strip_prefix(CREDENTIALS_PATH)
                .and_then(|role| self.credentials(role)),
        };
        match found {
            Some(body) => (StatusCode::OK, body),
            None => (StatusCode::NOT_FOUND, "404 - Not Found".into()),
        }
    }

    /// The credentials document of `role` when it is the instance's role: those served before unless the role
    /// changed or they expire within half an hour.
    fn credentials(&mut self, role: &str) -> Option<String> {
        let attached = self.identity.role()?;
        if !attached.eq_ignore_ascii_case(role) {
            return None;
        }
        let fresh = self.served.as_ref().is_some_and(|s| {
            s.credentials.role_name == attached
                && OffsetDateTime::parse(&s.credentials.expiration, &Rfc3339)
                    .is_ok_and(|e| e - OffsetDateTime::now_utc() > RENEW_BEFORE)
        });
        if !fresh {
            self.served = Some(Served {
                credentials: self.identity.credentials(role, CREDENTIALS_LIFETIME)?,
                last_updated: now_rfc3339(),
            });
        }
        let s = self.served.as_ref()?;
        let doc = serde_json::json!({
            "AccessKeyId": s.credentials.access_key_id,
            "AccessKeySecret": s.credentials.access_key_secret,
            "Expiration": s.credentials.expiration,
            "SecurityToken": s.credentials.security_token,
            "LastUpdated": s.last_updated,
            "Code": "Success",
        });
        serde_json::to_string_pretty(&doc).ok()
    }
}

impl MetadataDouble {
    /// Serves the metadata of `instance_id` (an instance of `ecs`) on `addr`: `100.100.100.200:80` for a test VM
    /// (after [`route_from_vm`] put that address on the host), or `127.0.0.1:0`. Normal mode (tokens optional).
    pub fn start(addr: SocketAddr, ecs: &EcsDouble, instance_id: &str) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State {
            identity: ecs.instance_identity(instance_id),
            hardened: false,
            tokens: HashMap::new(),
            served: None,
            log: Vec::new(),
        }));
        let shared = state.clone();
        let app =
            axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
                let state = shared.clone();
                async move {
                    let mut st = lock(&state);
                    let path = uri.path().to_string();
                    let (status, body) = st.answer(&method, &path, &headers);
                    st.log.push(MetadataRequest {
                        method: method.to_string(),
                        token_sent: headers.contains_key(TOKEN_HEADER),
                        path,
                        status: status.as_u16(),
                    });
                    (status, [(CONTENT_TYPE, "text/plain")], body).into_response()
                }
            });
        let server = DoubleServer::axum("metadata-double", addr, 1, app)?;
        Ok(Self { state, server })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://<address>:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Enforces hardened mode (a request without a session token is refused), or allows normal mode again.
    pub fn set_hardened(&self, hardened: bool) {
        lock(&self.state).hardened = hardened;
    }

    /// Hands out new credentials at the next request for them (what the service does before the old ones expire).
    pub fn renew_credentials(&self) {
        lock(&self.state).served = None;
    }

    /// The credentials served last, if any.
    pub fn served_credentials(&self) -> Option<RoleCredentials> {
        lock(&self.state)
            .served
            .as_ref()
            .map(|s| s.credentials.clone())
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<MetadataRequest> {
        lock(&self.state).log.clone()
    }
}

/// The host side of test VM slot `slot`'s veth pair, as `tests/vm/vm.sh` names it.
pub fn host_veth(slot: u32) -> String {
    format!("cctvm{slot}h")
}

/// [`METADATA_IP`] on the host and a route to it from a VM's network namespace; undone on drop.
#[derive(Debug)]
pub struct MetadataRoute {
    netns: String,
    host_veth: String,
}

fn ip(args: &[&str]) -> std::io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(std::io::Error::other(format!(
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Makes [`METADATA_IP`] reachable from the network namespace `netns` (which has no default route): the address on
/// the host-side veth `host_veth` (so a double can bind `100.100.100.200:80`) and, inside `netns`, a route to it via
/// `host_side_ip`. One metadata double at a time can hold that address and port on the host.
pub fn route_from_vm(
    netns: &str,
    host_side_ip: &str,
    host_veth: &str,
) -> std::io::Result<MetadataRoute> {
    let target = format!("{METADATA_IP}/32");
    ip(&["addr", "replace", &target, "dev", host_veth])?;
    let route = MetadataRoute {
        netns: netns.to_string(),
        host_veth: host_veth.to_string(),
    };
    ip(&[
        "-n",
        netns,
        "route",
        "replace",
        &target,
        "via",
        host_side_ip,
    ])?;
    Ok(route)
}

impl MetadataRoute {
    /// [`route_from_vm`] for a running test VM.
    pub fn for_vm(vm: &TestVm) -> std::io::Result<Self> {
        route_from_vm(&vm.netns, &vm.host_ip, &host_veth(vm.slot))
    }
}

impl Drop for MetadataRoute {
    fn drop(&mut self) {
        let target = format!("{METADATA_IP}/32");
        let _ = ip(&["-n", &self.netns, "route", "del", &target]);
        let _ = ip(&["addr", "del", &target, "dev", &self.host_veth]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs_double::InstanceSeed;

    const BOX: &str = "i-bp1metadatabox01";
    const TRUST: &str = r#"{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":["ecs.aliyuncs.com"]}}],"Version":"1"}"#;

    struct Answer {
        status: u16,
        body: String,
    }

    /// One request with `headers`.
    fn call(method: &str, url: &str, headers: &[(&str, &str)]) -> Answer {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            let mut req = client.request(method.parse().unwrap(), url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let resp = req.send().await.unwrap();
            Answer {
                status: resp.status().as_u16(),
                body: resp.text().await.unwrap(),
            }
        })
    }

    fn double_with_role() -> EcsDouble {
        let ecs = EcsDouble::start().unwrap();
        ecs.add_instance(InstanceSeed::running(BOX, "cn-hangzhou"));
        ecs.ram_call(
            "CreateRole",
            &[
                ("RoleName", "box-idle"),
                ("AssumeRolePolicyDocument", TRUST),
            ],
        )
        .unwrap();
        ecs.attach_instance_ram_role(BOX, "box-idle").unwrap();
        ecs
    }

    fn local(ecs: &EcsDouble) -> MetadataDouble {
        MetadataDouble::start((Ipv4Addr::LOCALHOST, 0).into(), ecs, BOX).unwrap()
    }

    #[test]
    fn normal_mode_serves_the_instance_and_its_role_credentials_without_a_token() {
        let ecs = double_with_role();
        let md = local(&ecs);
        let url = |p: &str| format!("{}{p}", md.base_url());
        assert_eq!(
            call("GET", &url("/latest/meta-data/instance-id"), &[]).body,
            BOX
        );
        assert_eq!(
            call("GET", &url("/latest/meta-data/region-id"), &[]).body,
            "cn-hangzhou"
        );
        assert_eq!(call("GET", &url(CREDENTIALS_PATH), &[]).body, "box-idle");
        let doc = call("GET", &url(&format!("{CREDENTIALS_PATH}box-idle")), &[]);
        assert_eq!(doc.status, 200);
        let doc: serde_json::Value = serde_json::from_str(&doc.body).unwrap();
        assert_eq!(doc["Code"], "Success");
        let served = md.served_credentials().unwrap();
        assert_eq!(doc["AccessKeyId"], served.access_key_id.as_str());
        assert_eq!(doc["SecurityToken"], served.security_token.as_str());
        assert_eq!(doc["Expiration"], served.expiration.as_str());
        let expires = OffsetDateTime::parse(doc["Expiration"].as_str().unwrap(), &Rfc3339).unwrap();
        assert!(expires - OffsetDateTime::now_utc() > time::Duration::hours(5));
        OffsetDateTime::parse(doc["LastUpdated"].as_str().unwrap(), &Rfc3339).unwrap();
        // The same credentials until they are renewed.
        let again = call("GET", &url(&format!("{CREDENTIALS_PATH}box-idle")), &[]).body;
        assert!(again.contains(&served.access_key_id));
        md.renew_credentials();
        let renewed = call("GET", &url(&format!("{CREDENTIALS_PATH}box-idle")), &[]).body;
        assert!(!renewed.contains(&served.access_key_id));

        assert_eq!(
            call("GET", &url(&format!("{CREDENTIALS_PATH}other-role")), &[]).status,
            404
        );
        assert_eq!(
            call("GET", &url("/latest/meta-data/nothing"), &[]).status,
            404
        );
        let log = md.requests();
        assert_eq!(log.len(), 8);
        assert!(log.iter().all(|r| !r.token_sent && r.method == "GET"));
        assert_eq!(log[0].path, "/latest/meta-data/instance-id");
    }

    #[test]
    fn hardened_mode_needs_a_live_session_token() {
        let ecs = double_with_role();
        let md = local(&ecs);
        md.set_hardened(true);
        let url = |p: &str| format!("{}{p}", md.base_url());
        let id = url("/latest/meta-data/instance-id");
        assert_eq!(call("GET", &id, &[]).status, 403);
        let token_url = url("/latest/api/token");
        for bad in [
            vec![],
            vec![(TOKEN_TTL_HEADER, "0")],
            vec![(TOKEN_TTL_HEADER, "21601")],
            vec![(TOKEN_TTL_HEADER, "six hours")],
        ] {
            assert_eq!(call("PUT", &token_url, &bad).status, 400, "{bad:?}");
        }
        let proxied = [(TOKEN_TTL_HEADER, "60"), ("X-Forwarded-For", "203.0.113.9")];
        assert_eq!(call("PUT", &token_url, &proxied).status, 403);
        assert_eq!(call("GET", &token_url, &[]).status, 405);

        let token = call(
            "PUT",
            &token_url,
            &[("X-aliyun-ecs-metadata-token-ttl-seconds", "21600")],
        );
        assert_eq!(token.status, 200);
        let answer = call("GET", &id, &[("X-aliyun-ecs-metadata-token", &token.body)]);
        assert_eq!((answer.status, answer.body.as_str()), (200, BOX));
        let creds = call(
            "GET",
            &url(&format!("{CREDENTIALS_PATH}box-idle")),
            &[(TOKEN_HEADER, &token.body)],
        );
        assert_eq!(creds.status, 200);
        assert_eq!(call("GET", &id, &[(TOKEN_HEADER, "forged")]).status, 401);
        let short = call("PUT", &token_url, &[(TOKEN_TTL_HEADER, "1")]).body;
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(call("GET", &id, &[(TOKEN_HEADER, &short)]).status, 401);

        // Normal mode again: a request without a token is served; a bad token still is not.
        md.set_hardened(false);
        assert_eq!(call("GET", &id, &[]).status, 200);
        assert_eq!(call("GET", &id, &[(TOKEN_HEADER, "forged")]).status, 401);
        let sent: Vec<(bool, u16)> = md
            .requests()
            .iter()
            .filter(|r| r.path == "/latest/meta-data/instance-id")
            .map(|r| (r.token_sent, r.status))
            .collect();
        assert_eq!(
            sent,
            [
                (false, 403),
                (true, 200),
                (true, 401),
                (true, 401),
                (false, 200),
                (true, 401)
            ]
        );
    }

    #[test]
    fn an_instance_without_a_role_has_no_credentials() {
        let ecs = EcsDouble::start().unwrap();
        ecs.add_instance(InstanceSeed::running(BOX, "cn-hangzhou"));
        let md = local(&ecs);
        assert_eq!(
            call("GET", &format!("{}{CREDENTIALS_PATH}", md.base_url()), &[]).status,
            404
        );
        assert!(md.served_credentials().is_none());
        // An instance the API double does not have has no region either.
        let ghost =
            MetadataDouble::start((Ipv4Addr::LOCALHOST, 0).into(), &ecs, "i-ghost").unwrap();
        assert_eq!(
            call(
                "GET",
                &format!("{}/latest/meta-data/region-id", ghost.base_url()),
                &[]
            )
            .status,
            404
        );
        assert_eq!(host_veth(3), "cctvm3h");
    }
}
