//! The signed HTTP client for ECS RPC calls (API version 2014-05-26): endpoint resolution,
//! request signing per attempt, retries, error decoding, paging, and the [`Ecs`] implementation.

use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use url::Url;

use crate::credentials::Credentials;
use crate::error::{self, Error};
use crate::model::{
    CreateSnapshotRequest, Disk, DiskType, Ecs, Image, ImageFilter, Instance, Snapshot,
    SnapshotFilter, StoppedMode,
};
use crate::retry::{is_retryable, RetryPolicy};
use crate::signer::{self, SigningInput};

/// ECS API version for every action here.
pub const API_VERSION: &str = "2014-05-26";

/// The Alibaba Cloud products a client can call: each its API version and default endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// ECS (2014-05-26), `ecs.<region>.aliyuncs.com`.
    Ecs,
    /// STS (2015-04-01), `sts.aliyuncs.com`: who the credentials belong to.
    Sts,
    /// BSS OpenAPI (2017-12-14), `business.aliyuncs.com` (China site) or `business.ap-southeast-1.aliyuncs.com`
    /// (international site): the account's balance.
    Bss { international: bool },
}

impl Product {
    pub fn version(self) -> &'static str {
        match self {
            Product::Ecs => API_VERSION,
            Product::Sts => "2015-04-01",
            Product::Bss { .. } => "2017-12-14",
        }
    }

    /// The default host for `region`.
    fn host(self, region: &str) -> String {
        match self {
            Product::Ecs => format!("ecs.{region}.aliyuncs.com"),
            Product::Sts => "sts.aliyuncs.com".to_string(),
            Product::Bss {
                international: false,
            } => "business.aliyuncs.com".to_string(),
            Product::Bss {
                international: true,
            } => "business.ap-southeast-1.aliyuncs.com".to_string(),
        }
    }
}
/// Page size used for Describe* calls (documented maximum is 100).
const PAGE_SIZE: usize = 100;

/// Client settings. `endpoint` overrides `ecs.<region>.aliyuncs.com`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub region: String,
    pub credentials: Credentials,
    /// ECS: host name (`ecs-vpc.cn-hangzhou.aliyuncs.com`) or full URL (`http://127.0.0.1:8080`).
    pub endpoint: Option<String>,
    /// STS, the same way (default `sts.aliyuncs.com`); the ECS override never applies to it.
    pub sts_endpoint: Option<String>,
    /// BSS OpenAPI, the same way (default `business.aliyuncs.com` / `business.ap-southeast-1.aliyuncs.com`).
    pub bss_endpoint: Option<String>,
    pub retry: RetryPolicy,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl ClientConfig {
    pub fn new(region: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            region: region.into(),
            credentials,
            endpoint: None,
            sts_endpoint: None,
            bss_endpoint: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Resolves the base URL: the override (host name → `https://host/`, or a full http(s) URL), else
/// `https://ecs.<region>.aliyuncs.com/`.
pub fn resolve_endpoint(region: &str, endpoint: Option<&str>) -> Result<Url, Error> {
    resolve_product_endpoint(Product::Ecs, region, endpoint)
}

/// [`resolve_endpoint`] for any product (its own default host).
pub fn resolve_product_endpoint(
    product: Product,
    region: &str,
    endpoint: Option<&str>,
) -> Result<Url, Error> {
    let raw = match endpoint.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) if e.contains("://") => e.to_string(),
        Some(host) => format!("https://{}/", host.trim_end_matches('/')),
        None => {
            let region = region.trim();
            if region.is_empty()
                || !region
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(Error::Config(format!(
                    "region {region:?} is not a valid Alibaba Cloud region id"
                )));
            }
            format!("https://{}/", product.host(region))
        }
    };
    let url = Url::parse(&raw)
        .map_err(|e| Error::Config(format!("endpoint {raw:?} is not a valid URL: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(Error::Config(format!(
            "endpoint {raw:?} must use http or https"
        )));
    }
    if url.host_str().is_none() {
        return Err(Error::Config(format!("endpoint {raw:?} has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "endpoint {raw:?} must not carry a query or fragment"
        )));
    }
    Ok(url)
}

/// Signed ECS client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EcsClient {
    http: reqwest::Client,
    base: Url,
    host: String,
    region: String,
    credentials: Credentials,
    retry: RetryPolicy,
    version: &'static str,
}

impl EcsClient {
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        Self::for_product(config, Product::Ecs)
    }

    /// A client of another product, at its own override (`sts_endpoint`, `bss_endpoint`) or default host.
    pub fn for_product(config: ClientConfig, product: Product) -> Result<Self, Error> {
        let endpoint = match product {
            Product::Ecs => config.endpoint.as_deref(),
            Product::Sts => config.sts_endpoint.as_deref(),
            Product::Bss { .. } => config.bss_endpoint.as_deref(),
        };
        let base = resolve_product_endpoint(product, &config.region, endpoint)?;
        let host = match (base.host_str(), base.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(Error::Config("endpoint has no host".into())),
        };
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("cloudcode-alicloud/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            host,
            region: config.region,
            credentials: config.credentials,
            retry: config.retry,
            version: product.version(),
        })
    }

    /// The base URL requests go to.
    pub fn endpoint(&self) -> &Url {
        &self.base
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Calls `action` with `params` (sent in the query string of a POST with an empty body),
    /// retrying transient failures, and decodes the JSON answer into `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        action: &str,
        params: &[(String, String)],
    ) -> Result<T, Error> {
        let mut attempt = 1u32;
        loop {
            match self.call_once(action, params).await {
                Ok(body) => {
                    return serde_json::from_slice(&body).map_err(|e| Error::Decode {
                        action: action.to_string(),
                        message: e.to_string(),
                    })
                }
                Err(err) if attempt < self.retry.max_attempts && is_retryable(&err) => {
                    let delay = self.retry.delay(attempt);
                    tracing::debug!(
                        action,
                        attempt,
                        code = err.code().unwrap_or(""),
                        request_id = err.request_id().unwrap_or(""),
                        delay_ms = delay.as_millis() as u64,
                        "ECS call failed transiently; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// One signed request (fresh date and nonce), returning the 2xx body.
    async fn call_once(&self, action: &str, params: &[(String, String)]) -> Result<Vec<u8>, Error> {
        let query = signer::canonical_query(params);
        let date = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc())
            .format(&Rfc3339)
            .map_err(|e| Error::Config(format!("cannot format date: {e}")))?;
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let payload_hash = signer::sha256_hex(b"");
        let mut headers: Vec<(&str, &str)> = vec![
            ("host", &self.host),
            ("x-acs-action", action),
            ("x-acs-version", self.version),
            ("x-acs-date", &date),
            ("x-acs-signature-nonce", &nonce),
            ("x-acs-content-sha256", &payload_hash),
        ];
        if let Some(token) = self.credentials.security_token() {
            headers.push(("x-acs-security-token", token.expose()));
        }
        let path = self.base.path().to_string();
        let (authorization, _) = signer::sign(
            self.credentials.access_key_id(),
            self.credentials.access_key_secret().expose(),
            &SigningInput {
                method: "POST",
                path: &path,
                canonical_query: &query,
                headers: &headers,
                payload_hash: &payload_hash,
            },
        );
        let mut url = self.base.clone();
        url.set_query(if query.is_empty() { None } else { Some(&query) });
        let mut request = self.http.post(url);
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let response = request
            .header("authorization", authorization)
            .send()
            .await
            .map_err(|source| Error::Transport {
                action: action.to_string(),
                source: source.without_url(),
            })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|source| Error::Transport {
            action: action.to_string(),
            source: source.without_url(),
        })?;
        if (200..300).contains(&status) {
            Ok(body.to_vec())
        } else {
            Err(error::from_response(action, status, &body))
        }
    }

    pub(crate) fn region_param(&self) -> (String, String) {
        ("RegionId".to_string(), self.region.clone())
    }
}

pub(crate) fn p(key: &str, value: impl Into<String>) -> (String, String) {
    (key.to_string(), value.into())
}

/// JSON array parameter (`InstanceIds`, `SnapshotIds`), as the API documents.
fn json_list(ids: &[String]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}

fn push_tags(params: &mut Vec<(String, String)>, tags: &[(String, String)]) {
    for (i, (k, v)) in tags.iter().enumerate() {
        params.push(p(&format!("Tag.{}.Key", i + 1), k.clone()));
        params.push(p(&format!("Tag.{}.Value", i + 1), v.clone()));
    }
}

/// Paging fields of a Describe* answer; the items sit at `<Outer>.<Inner>[]`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Page {
    #[serde(default)]
    total_count: usize,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

impl Page {
    /// Takes `<outer>.<inner>` (absent or null → empty) and decodes it as a list of `T`.
    fn items<T: DeserializeOwned>(
        mut self,
        action: &str,
        outer: &str,
        inner: &str,
    ) -> Result<Vec<T>, Error> {
        let list = match self.rest.remove(outer) {
            Some(serde_json::Value::Object(mut wrapper)) => wrapper.remove(inner),
            _ => None,
        };
        match list {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(value) => serde_json::from_value(value).map_err(|e| Error::Decode {
                action: action.to_string(),
                message: format!("{outer}.{inner}: {e}"),
            }),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateSnapshotResponse {
    snapshot_id: String,
}

/// Any success answer (only `RequestId` is documented).
#[derive(Deserialize)]
pub(crate) struct Ack {}

impl EcsClient {
    /// Fetches every page of a PageNumber/PageSize listing.
    async fn all_pages<T: DeserializeOwned>(
        &self,
        action: &str,
        (outer, inner): (&str, &str),
        params: Vec<(String, String)>,
    ) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        for page_number in 1usize.. {
            let mut page_params = params.clone();
            page_params.push(p("PageNumber", page_number.to_string()));
            page_params.push(p("PageSize", PAGE_SIZE.to_string()));
            let page: Page = self.call(action, &page_params).await?;
            let total = page.total_count;
            let items: Vec<T> = page.items(action, outer, inner)?;
            let got = items.len();
            out.extend(items);
            if got == 0 || out.len() >= total || got < PAGE_SIZE {
                break;
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Ecs for EcsClient {
    async fn describe_instance(&self, instance_id: &str) -> Result<Option<Instance>, Error> {
        let params = vec![
            self.region_param(),
            p("InstanceIds", json_list(&[instance_id.to_string()])),
        ];
        let list: Vec<Instance> = self
            .all_pages("DescribeInstances", ("Instances", "Instance"), params)
            .await?;
        Ok(list.into_iter().find(|i| i.instance_id == instance_id))
    }

    async fn stop_instance(&self, instance_id: &str, mode: StoppedMode) -> Result<(), Error> {
        let params = vec![
            p("InstanceId", instance_id),
            p("StoppedMode", mode.as_str()),
        ];
        self.call::<Ack>("StopInstance", &params).await.map(|_| ())
    }

    async fn start_instance(&self, instance_id: &str) -> Result<(), Error> {
        let params = vec![p("InstanceId", instance_id)];
        self.call::<Ack>("StartInstance", &params).await.map(|_| ())
    }

    async fn describe_disks(
        &self,
        instance_id: &str,
        disk_type: DiskType,
    ) -> Result<Vec<Disk>, Error> {
        let params = vec![
            self.region_param(),
            p("InstanceId", instance_id),
            p("DiskType", disk_type.as_str()),
        ];
        self.all_pages("DescribeDisks", ("Disks", "Disk"), params)
            .await
    }

    async fn create_snapshot(&self, request: &CreateSnapshotRequest) -> Result<String, Error> {
        let mut params = vec![p("DiskId", request.disk_id.clone())];
        if let Some(name) = &request.snapshot_name {
            params.push(p("SnapshotName", name.clone()));
        }
        if let Some(desc) = &request.description {
            params.push(p("Description", desc.clone()));
        }
        let token = request
            .client_token
            .clone()
            .unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>()));
        params.push(p("ClientToken", token));
        push_tags(&mut params, &request.tags);
        let resp: CreateSnapshotResponse = self.call("CreateSnapshot", &params).await?;
        Ok(resp.snapshot_id)
    }

    async fn describe_snapshots(&self, filter: &SnapshotFilter) -> Result<Vec<Snapshot>, Error> {
        let mut params = vec![self.region_param()];
        if !filter.snapshot_ids.is_empty() {
            params.push(p("SnapshotIds", json_list(&filter.snapshot_ids)));
        }
        if let Some(disk) = &filter.disk_id {
            params.push(p("DiskId", disk.clone()));
        }
        if let Some(status) = &filter.status {
            params.push(p("Status", status.clone()));
        }
        push_tags(&mut params, &filter.tags);
        self.all_pages("DescribeSnapshots", ("Snapshots", "Snapshot"), params)
            .await
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), Error> {
        let params = vec![p("SnapshotId", snapshot_id)];
        self.call::<Ack>("DeleteSnapshot", &params)
            .await
            .map(|_| ())
    }

    async fn describe_images(&self, filter: &ImageFilter) -> Result<Vec<Image>, Error> {
        let mut params = vec![self.region_param()];
        if let Some(id) = &filter.image_id {
            params.push(p("ImageId", id.clone()));
        }
        if let Some(snap) = &filter.snapshot_id {
            params.push(p("SnapshotId", snap.clone()));
        }
        if let Some(owner) = &filter.image_owner_alias {
            params.push(p("ImageOwnerAlias", owner.clone()));
        }
        self.all_pages("DescribeImages", ("Images", "Image"), params)
            .await
    }

    async fn delete_image(&self, image_id: &str) -> Result<(), Error> {
        let params = vec![self.region_param(), p("ImageId", image_id)];
        self.call::<Ack>("DeleteImage", &params).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_endpoint_is_ecs_region_aliyuncs() {
        let u = resolve_endpoint("cn-shanghai", None).unwrap();
        assert_eq!(u.as_str(), "https://ecs.cn-shanghai.aliyuncs.com/");
    }

    #[test]
    fn endpoint_override_host_name_becomes_https_url() {
        let u = resolve_endpoint("cn-shanghai", Some("ecs-vpc.cn-shanghai.aliyuncs.com")).unwrap();
        assert_eq!(u.as_str(), "https://ecs-vpc.cn-shanghai.aliyuncs.com/");
    }

    #[test]
    fn endpoint_override_full_url_keeps_scheme_and_port() {
        let u = resolve_endpoint("x", Some("http://127.0.0.1:8080")).unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:8080/");
        let c = EcsClient::new(ClientConfig {
            endpoint: Some("http://127.0.0.1:8080".into()),
            ..ClientConfig::new("cn-hangzhou", Credentials::new("a", "b"))
        })
        .unwrap();
        assert_eq!(c.host, "127.0.0.1:8080");
    }

    #[test]
    fn bad_endpoints_and_regions_are_config_errors() {
        assert!(matches!(
            resolve_endpoint("x", Some("ftp://h")),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            resolve_endpoint("x", Some("http://")),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            resolve_endpoint("cn hz/", None),
            Err(Error::Config(_))
        ));
        assert!(matches!(resolve_endpoint("", None), Err(Error::Config(_))));
    }

    #[test]
    fn tags_become_numbered_tag_parameters() {
        let mut params = Vec::new();
        push_tags(
            &mut params,
            &[("a".into(), "1".into()), ("b".into(), "2".into())],
        );
        assert_eq!(
            params,
            vec![
                p("Tag.1.Key", "a"),
                p("Tag.1.Value", "1"),
                p("Tag.2.Key", "b"),
                p("Tag.2.Value", "2")
            ]
        );
        assert_eq!(json_list(&["i-1".into()]), r#"["i-1"]"#);
    }

    #[test]
    fn client_debug_does_not_leak_secret() {
        let c = EcsClient::new(ClientConfig::new(
            "cn-hangzhou",
            Credentials::new("AKID", "topsecret").with_security_token("tok123"),
        ))
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("topsecret") && !dbg.contains("tok123"),
            "{dbg}"
        );
    }
}
