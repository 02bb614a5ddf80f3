//! Alibaba Cloud CDN (API 2018-05-10) as `alicloud_cdn_domain_new` and `alicloud_cdn_domain_config` drive it:
//! accelerated domains (AddCdnDomain, `configuring` for a few DescribeCdnDomainDetail polls then `online`,
//! ModifyCdnDomain, ModifyCdnDomainSchdmByProperty, DeleteCdnDomain), their HTTPS certificate
//! (SetCdnDomainSSLCertificate, DescribeDomainCertificateInfo), their functions (BatchSetCdnDomainConfig,
//! DescribeCdnDomainConfigs, DeleteSpecificConfig, with the functions and arguments the double knows checked) and
//! their tags (ListTagResources). Documented errors: `DomainAlreadyExist`, `InvalidDomain.NotFound` (404),
//! `InvalidSources.Malformed`, `ServiceBusy` (403, a domain still configuring), `SSLPub.MissingParameter`,
//! `SSLPri.MissingParameter`, `PrivateKeyError`, `InvalidSSLProtocol.ValueNotSupported`.
//!
//! The certificate comes in one of two forms, as `CertType` says. `upload` (the default): `SSLPub` and `SSLPri`
//! carry the PEMs, both required and checked for their PEM headers. `cas`: a certificate already in Certificate
//! Management Service, by `CertId` (required, an integer as the API types it) in `CertRegion` (`cn-hangzhou`, the
//! default, or `ap-southeast-1`; another is `Abs.CertRegion.ValueNotSupported`); the double knows the ids a test
//! registered (`EcsDouble::add_cas_certificate`) and refuses any other with the CDN's documented
//! `InvalidCertId.NotFound` ("The certId does not exist."); no key is sent or needed, and the domain then reports
//! the CAS certificate's name, PEM, id and region. `free` (a DV certificate the CDN issues once the domain's CNAME
//! points at it) is not modelled: the double refuses it as an invalid `CertType`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::state::{required, ApiError};

/// The CDN API version the double serves.
pub const CDN_API_VERSION: &str = "2018-05-10";

/// DescribeCdnDomainDetail polls a new or modified domain spends `configuring` (then `online`).
const CONFIGURING_POLLS: u32 = 2;

/// An argument of a function and the values it allows (empty: any).
type Arg = (&'static str, &'static [&'static str]);

/// The functions the double knows, with the arguments each takes.
const FUNCTIONS: [(&str, &[Arg]); 3] = [
    (
        "https_force",
        &[
            ("enable", &["on", "off"]),
            ("https_rewrite", &["301", "308"]),
        ],
    ),
    (
        "https_option",
        &[
            ("http2", &["on", "off"]),
            ("http3", &["on", "off"]),
            ("ocsp_stapling", &["on", "off"]),
        ],
    ),
    (
        "l2_oss_key",
        &[
            ("private_oss_auth", &["on", "off"]),
            ("perm_private_oss_tbl", &[]),
        ],
    ),
];

#[derive(Debug, Clone)]
struct Source {
    content: String,
    kind: String,
    port: u64,
    priority: u64,
    weight: u64,
}

#[derive(Debug, Clone)]
struct Cert {
    name: String,
    kind: String,
    public: String,
    /// `cas`: the certificate's id and region in Certificate Management Service.
    cas: Option<(u64, String)>,
}

/// A certificate of the account's Certificate Management Service: its name and PEM.
#[derive(Debug, Clone)]
struct CasCert {
    name: String,
    public: String,
}

/// The regions Certificate Management Service certificates are read from (`CertRegion`).
const CERT_REGIONS: [&str; 2] = ["cn-hangzhou", "ap-southeast-1"];

#[derive(Debug, Clone)]
struct Config {
    id: u64,
    function: String,
    args: Vec<(String, String)>,
    /// DescribeCdnDomainConfigs calls left before it reads `success`.
    pending: u32,
}

#[derive(Debug, Clone)]
struct Domain {
    name: String,
    cdn_type: String,
    scope: String,
    sources: Vec<Source>,
    /// Detail polls left in `configuring`.
    configuring: u32,
    created: String,
    ssl_on: bool,
    cert: Option<Cert>,
    configs: Vec<Config>,
}

impl Domain {
    fn status(&self) -> &'static str {
        if self.configuring > 0 {
            "configuring"
        } else {
            "online"
        }
    }

    fn cname(&self) -> String {
        format!("{}.w.kunlunsl.com", self.name)
    }
}

/// What a test can see of an accelerated domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdnDomainView {
    pub name: String,
    pub cname: String,
    pub status: String,
    pub scope: String,
    /// (type, content, port) of each origin.
    pub sources: Vec<(String, String, u64)>,
    /// Whether HTTPS is on, and the certificate's PEM.
    pub ssl_on: bool,
    pub certificate: Option<String>,
    /// How the certificate was set (`upload` or `cas`; empty without one), and for `cas` its id.
    pub certificate_type: String,
    pub certificate_id: Option<u64>,
    /// function name → its arguments.
    pub functions: BTreeMap<String, BTreeMap<String, String>>,
}

/// The account's accelerated domains.
#[derive(Default)]
pub(crate) struct Cdn {
    domains: BTreeMap<String, Domain>,
    next_config: u64,
    /// The account's Certificate Management Service certificates, by (region, id).
    cas: BTreeMap<(String, u64), CasCert>,
}

fn not_found() -> ApiError {
    ApiError::new(
        404,
        "InvalidDomain.NotFound",
        "The domain provided does not exist in our records.",
    )
}

fn sources_malformed() -> ApiError {
    ApiError::new(
        400,
        "InvalidSources.Malformed",
        "Specified Sources is malformed.",
    )
}

fn functions_malformed(why: &str) -> ApiError {
    ApiError::new(
        400,
        "InvalidFunctions.Malformed",
        format!("Specified Functions is malformed: {why}."),
    )
}

/// The domain name rules `AddCdnDomain` applies (labels of letters, digits and hyphens; a letter TLD).
fn valid_domain(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_lowercase()))
}

/// The `Sources` JSON of AddCdnDomain/ModifyCdnDomain (keys in either case, numbers or strings).
fn sources_of(raw: &str) -> Result<Vec<Source>, ApiError> {
    let list: Vec<Value> = serde_json::from_str(raw).map_err(|_| sources_malformed())?;
    if list.is_empty() {
        return Err(sources_malformed());
    }
    let field = |v: &Value, name: &str| -> Value {
        let cap = format!("{}{}", name[..1].to_ascii_uppercase(), &name[1..]);
        v.get(name)
            .or_else(|| v.get(cap.as_str()))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let number = |v: Value, default: u64| -> Result<u64, ApiError> {
        match v {
            Value::Null => Ok(default),
            Value::Number(n) => n.as_u64().ok_or_else(sources_malformed),
            Value::String(s) => s.parse().map_err(|_| sources_malformed()),
            _ => Err(sources_malformed()),
        }
    };
    list.iter()
        .map(|s| {
            let content = field(s, "content").as_str().unwrap_or("").to_string();
            let kind = field(s, "type").as_str().unwrap_or("").to_string();
            if content.is_empty() || !["ipaddr", "domain", "oss", "common"].contains(&kind.as_str())
            {
                return Err(sources_malformed());
            }
            if kind == "oss" && !content.contains(".oss-") {
                return Err(sources_malformed());
            }
            Ok(Source {
                content,
                kind,
                port: number(field(s, "port"), 80)?,
                priority: number(field(s, "priority"), 20)?,
                weight: number(field(s, "weight"), 10)?,
            })
        })
        .collect()
}

/// The certificate of an `upload` (`SSLPub`), with its key (`SSLPri`) present and both PEM.
fn uploaded(p: &BTreeMap<String, String>) -> Result<String, ApiError> {
    let public = p.get("SSLPub").cloned().unwrap_or_default();
    let private = p.get("SSLPri").cloned().unwrap_or_default();
    if public.is_empty() {
        return Err(ApiError::new(
            400,
            "SSLPub.MissingParameter",
            "The SSLPub parameter is required.",
        ));
    }
    if private.is_empty() {
        return Err(ApiError::new(
            400,
            "SSLPri.MissingParameter",
            "The SSLPri parameter is required.",
        ));
    }
    if !public
        .trim_start()
        .starts_with("-----BEGIN CERTIFICATE-----")
    {
        return Err(ApiError::new(
            400,
            "Certificate.FormatError",
            "The certificate format is invalid.",
        ));
    }
    let key = private.trim_start();
    if !(key.starts_with("-----BEGIN PRIVATE KEY-----")
        || key.starts_with("-----BEGIN RSA PRIVATE KEY-----")
        || key.starts_with("-----BEGIN EC PRIVATE KEY-----"))
    {
        return Err(ApiError::new(
            400,
            "PrivateKeyError",
            "HTTPS_DOMAIN_SSL_KEY_ERROR.",
        ));
    }
    Ok(public)
}

impl Cdn {
    /// Runs one CDN action.
    pub(crate) fn handle(
        &mut self,
        action: &str,
        p: &BTreeMap<String, String>,
        now: &str,
    ) -> Result<Value, ApiError> {
        match action {
            "AddCdnDomain" => self.add(p, now),
            "DescribeCdnDomainDetail" => self.detail(p),
            "DescribeDomainCertificateInfo" => self.cert_info(p),
            "ListTagResources" => Ok(json!({ "TagResources": { "TagResource": [] } })),
            "SetCdnDomainSSLCertificate" => self.set_certificate(p),
            "ModifyCdnDomain" => self.modify(p),
            "ModifyCdnDomainSchdmByProperty" => self.set_scope(p),
            "BatchSetCdnDomainConfig" => self.batch_set(p),
            "DescribeCdnDomainConfigs" => self.describe_configs(p),
            "DeleteSpecificConfig" => self.delete_config(p),
            "DeleteCdnDomain" => {
                let name = required(p, "DomainName")?;
                self.domains
                    .remove(&name)
                    .map(|_| json!({}))
                    .ok_or_else(not_found)
            }
            _ => Err(ApiError::new(
                404,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            )),
        }
    }

    fn find(&mut self, p: &BTreeMap<String, String>, name: &str) -> Result<&mut Domain, ApiError> {
        let domain = required(p, name)?;
        self.domains.get_mut(&domain).ok_or_else(not_found)
    }

    /// The domain, refused with `ServiceBusy` while it is configuring.
    fn settled(
        &mut self,
        p: &BTreeMap<String, String>,
        name: &str,
    ) -> Result<&mut Domain, ApiError> {
        let d = self.find(p, name)?;
        if d.configuring > 0 {
            return Err(ApiError::new(
                403,
                "ServiceBusy",
                "The specified Domain is configuring, please retry later",
            ));
        }
        Ok(d)
    }

    fn add(&mut self, p: &BTreeMap<String, String>, now: &str) -> Result<Value, ApiError> {
        let name = required(p, "DomainName")?;
        if !valid_domain(&name) {
            return Err(ApiError::new(
                400,
                "InvalidDomainName.Malformed",
                "Specified DomainName is malformed.",
            ));
        }
        if self.domains.contains_key(&name) {
            return Err(ApiError::new(
                400,
                "DomainAlreadyExist",
                "This domain name is exist already",
            ));
        }
        let cdn_type = required(p, "CdnType")?;
        if !["web", "download", "video"].contains(&cdn_type.as_str()) {
            return Err(ApiError::invalid("CdnType"));
        }
        let scope = p.get("Scope").cloned().unwrap_or_else(|| "domestic".into());
        if !["domestic", "overseas", "global"].contains(&scope.as_str()) {
            return Err(ApiError::invalid("Scope"));
        }
        let sources = sources_of(&required(p, "Sources")?)?;
        self.domains.insert(
            name.clone(),
            Domain {
                name,
                cdn_type,
                scope,
                sources,
                configuring: CONFIGURING_POLLS,
                created: now.to_string(),
                ssl_on: false,
                cert: None,
                configs: Vec::new(),
            },
        );
        Ok(json!({}))
    }

    fn detail(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let d = self.find(p, "DomainName")?;
        let status = d.status();
        d.configuring = d.configuring.saturating_sub(1);
        let sources: Vec<Value> = d
            .sources
            .iter()
            .map(|s| {
                json!({
                    "Content": s.content, "Type": s.kind, "Port": s.port,
                    "Priority": s.priority.to_string(), "Weight": s.weight.to_string(), "Enabled": "online",
                })
            })
            .collect();
        Ok(json!({
            "GetDomainDetailModel": {
                "DomainName": d.name, "Cname": d.cname(), "CdnType": d.cdn_type, "DomainStatus": status,
                "Scope": d.scope, "ResourceGroupId": "rg-cloudcodedefault", "GmtCreated": d.created,
                "GmtModified": d.created, "Description": "", "SslProtocol": if d.ssl_on { "on" } else { "off" },
                "SourceModels": { "SourceModel": sources },
            }
        }))
    }

    fn cert_info(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let d = self.find(p, "DomainName")?;
        let (name, kind, public) = d
            .cert
            .as_ref()
            .map(|c| (c.name.clone(), c.kind.clone(), c.public.clone()))
            .unwrap_or_default();
        let (cert_id, cert_region) = d
            .cert
            .as_ref()
            .and_then(|c| c.cas.clone())
            .map(|(id, region)| (id.to_string(), region))
            .unwrap_or_default();
        Ok(json!({
            "CertInfos": { "CertInfo": [{
                "DomainName": d.name, "CertName": name, "CertType": kind, "CertId": cert_id,
                "CertRegion": cert_region,
                "ServerCertificate": public,
                "ServerCertificateStatus": if d.ssl_on { "on" } else { "off" },
                "Status": if d.ssl_on { "success" } else { "" },
                "DomainCnameStatus": "online", "CertDomainName": d.name, "CertLife": "", "CertOrg": "",
                "CertExpireTime": "", "CertStartTime": "", "CertUpdateTime": "",
            }]}
        }))
    }

    fn set_certificate(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let protocol = required(p, "SSLProtocol")?;
        if protocol != "on" && protocol != "off" {
            return Err(ApiError::new(
                400,
                "InvalidSSLProtocol.ValueNotSupported",
                "The specified SSLProtocol is invalid.",
            ));
        }
        let current = self.settled(p, "DomainName")?.cert.clone();
        if protocol == "off" {
            self.settled(p, "DomainName")?.ssl_on = false;
            return Ok(json!({}));
        }
        // Without CertType the call keeps the domain's kind of certificate (upload for a first one), and a `cas`
        // one without CertId its id and region (the provider sends each only when it changed).
        let kind = p
            .get("CertType")
            .cloned()
            .or_else(|| current.as_ref().map(|c| c.kind.clone()))
            .unwrap_or_else(|| "upload".into());
        let mut p = p.clone();
        if let Some((id, region)) = current.and_then(|c| c.cas) {
            p.entry("CertId".into()).or_insert_with(|| id.to_string());
            p.entry("CertRegion".into()).or_insert(region);
        }
        let p = &p;
        let cert = match kind.as_str() {
            "upload" => Cert {
                name: p.get("CertName").cloned().unwrap_or_default(),
                kind,
                public: uploaded(p)?,
                cas: None,
            },
            "cas" => {
                let id: u64 = required(p, "CertId")?
                    .parse()
                    .map_err(|_| ApiError::invalid("CertId"))?;
                let region = p
                    .get("CertRegion")
                    .filter(|r| !r.is_empty())
                    .cloned()
                    .unwrap_or_else(|| CERT_REGIONS[0].into());
                if !CERT_REGIONS.contains(&region.as_str()) {
                    return Err(ApiError::new(
                        400,
                        "Abs.CertRegion.ValueNotSupported",
                        "CertRegion is not supported.",
                    ));
                }
                let known = self
                    .cas
                    .get(&(region.clone(), id))
                    .ok_or_else(|| {
                        ApiError::new(400, "InvalidCertId.NotFound", "The certId does not exist.")
                    })?
                    .clone();
                Cert {
                    name: p
                        .get("CertName")
                        .filter(|n| !n.is_empty())
                        .cloned()
                        .unwrap_or(known.name),
                    kind,
                    public: known.public,
                    cas: Some((id, region)),
                }
            }
            _ => return Err(ApiError::invalid("CertType")),
        };
        let d = self.settled(p, "DomainName")?;
        d.ssl_on = true;
        d.cert = Some(cert);
        Ok(json!({}))
    }

    /// Registers a certificate of the account's Certificate Management Service (what `CertType=cas` reads).
    pub(crate) fn add_cas_certificate(&mut self, id: u64, region: &str, name: &str, pem: &str) {
        self.cas.insert(
            (region.to_string(), id),
            CasCert {
                name: name.to_string(),
                public: pem.to_string(),
            },
        );
    }

    fn modify(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let sources = p.get("Sources").map(|s| sources_of(s)).transpose()?;
        let d = self.settled(p, "DomainName")?;
        if let Some(s) = sources {
            d.sources = s;
            d.configuring = CONFIGURING_POLLS;
        }
        Ok(json!({}))
    }

    fn set_scope(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let scope = required(p, "Property")?;
        let scope = serde_json::from_str::<Value>(&scope)
            .ok()
            .and_then(|v| v["coverage"].as_str().map(str::to_string))
            .unwrap_or(scope);
        if !["domestic", "overseas", "global"].contains(&scope.as_str()) {
            return Err(ApiError::invalid("Property"));
        }
        self.settled(p, "DomainName")?.scope = scope;
        Ok(json!({}))
    }

    fn batch_set(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let names = required(p, "DomainNames")?;
        let functions: Vec<Value> = serde_json::from_str(&required(p, "Functions")?)
            .map_err(|_| functions_malformed("not a JSON list"))?;
        let mut parsed = Vec::new();
        for f in &functions {
            let name = f["functionName"].as_str().unwrap_or_default().to_string();
            let known = FUNCTIONS
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| functions_malformed(&format!("unknown function \"{name}\"")))?;
            let mut args = Vec::new();
            for a in f["functionArgs"].as_array().into_iter().flatten() {
                let (arg, value) = (
                    a["argName"].as_str().unwrap_or_default(),
                    a["argValue"].as_str().unwrap_or_default(),
                );
                let allowed = known.1.iter().find(|(n, _)| *n == arg).ok_or_else(|| {
                    functions_malformed(&format!("{name} takes no argument \"{arg}\""))
                })?;
                if !allowed.1.is_empty() && !allowed.1.contains(&value) {
                    return Err(functions_malformed(&format!(
                        "{name}.{arg} cannot be \"{value}\""
                    )));
                }
                args.push((arg.to_string(), value.to_string()));
            }
            if args.is_empty() {
                return Err(functions_malformed(&format!("{name} has no argument")));
            }
            let config_id = f["configId"]
                .as_u64()
                .or_else(|| f["configId"].as_str().and_then(|s| s.parse().ok()));
            parsed.push((name, args, config_id));
        }
        let mut out = Vec::new();
        for domain in names.split(',').map(str::trim) {
            let mut one = p.clone();
            one.insert("DomainName".into(), domain.to_string());
            self.settled(&one, "DomainName")?;
            for (name, args, config_id) in &parsed {
                self.next_config += 1;
                let fresh = 7_000_000 + self.next_config;
                let d = self.settled(&one, "DomainName")?;
                // One config per function: setting it again replaces the arguments and keeps its id.
                let id = match d
                    .configs
                    .iter_mut()
                    .find(|c| &c.function == name || Some(c.id) == *config_id)
                {
                    Some(c) => {
                        c.args = args.clone();
                        c.pending = 1;
                        c.id
                    }
                    None => {
                        d.configs.push(Config {
                            id: fresh,
                            function: name.clone(),
                            args: args.clone(),
                            pending: 1,
                        });
                        fresh
                    }
                };
                out.push(json!({ "DomainName": domain, "FunctionName": name, "ConfigId": id }));
            }
        }
        Ok(json!({ "DomainConfigList": { "DomainConfigModel": out } }))
    }

    fn describe_configs(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let wanted: Vec<String> = p
            .get("FunctionNames")
            .map(|f| f.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default();
        let config_id = p.get("ConfigId").and_then(|c| c.parse::<u64>().ok());
        let d = self.find(p, "DomainName")?;
        let list: Vec<Value> = d
            .configs
            .iter_mut()
            .filter(|c| wanted.is_empty() || wanted.contains(&c.function))
            .filter(|c| config_id.is_none_or(|id| id == c.id))
            .map(|c| {
                let status = if c.pending > 0 { "configuring" } else { "success" };
                c.pending = c.pending.saturating_sub(1);
                let args: Vec<Value> = c
                    .args
                    .iter()
                    .map(|(n, v)| json!({ "ArgName": n, "ArgValue": v }))
                    .collect();
                json!({
                    "FunctionName": c.function, "ConfigId": c.id.to_string(), "Status": status, "ParentId": "",
                    "FunctionArgs": { "FunctionArg": args },
                })
            })
            .collect();
        Ok(json!({ "DomainConfigs": { "DomainConfig": list } }))
    }

    fn delete_config(&mut self, p: &BTreeMap<String, String>) -> Result<Value, ApiError> {
        let id: u64 = required(p, "ConfigId")?
            .parse()
            .map_err(|_| ApiError::invalid("ConfigId"))?;
        let d = self.settled(p, "DomainName")?;
        let before = d.configs.len();
        d.configs.retain(|c| c.id != id);
        if d.configs.len() == before {
            return Err(ApiError::new(
                400,
                "InvalidConfigId.NotFound",
                "The specified ConfigId does not exist.",
            ));
        }
        Ok(json!({}))
    }

    /// Every accelerated domain.
    pub(crate) fn views(&self) -> Vec<CdnDomainView> {
        self.domains
            .values()
            .map(|d| CdnDomainView {
                name: d.name.clone(),
                cname: d.cname(),
                status: d.status().to_string(),
                scope: d.scope.clone(),
                sources: d
                    .sources
                    .iter()
                    .map(|s| (s.kind.clone(), s.content.clone(), s.port))
                    .collect(),
                ssl_on: d.ssl_on,
                certificate: d.cert.as_ref().map(|c| c.public.clone()),
                certificate_type: d.cert.as_ref().map(|c| c.kind.clone()).unwrap_or_default(),
                certificate_id: d
                    .cert
                    .as_ref()
                    .and_then(|c| c.cas.as_ref().map(|(id, _)| *id)),
                functions: d
                    .configs
                    .iter()
                    .map(|c| (c.function.clone(), c.args.iter().cloned().collect()))
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cdn: &mut Cdn, action: &str, pairs: &[(&str, &str)]) -> Result<Value, ApiError> {
        let p = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        cdn.handle(action, &p, "2024-01-01T00:00:00Z")
    }

    fn code(r: Result<Value, ApiError>) -> String {
        r.err().map(|e| e.code).unwrap_or_default()
    }

    const ADD: [(&str, &str); 4] = [
        ("DomainName", "static.example.com"),
        ("CdnType", "web"),
        ("Scope", "domestic"),
        (
            "Sources",
            r#"[{"type":"oss","content":"site.oss-cn-hangzhou.aliyuncs.com","port":443,"priority":20,"Weight":10}]"#,
        ),
    ];

    #[test]
    fn a_new_domain_configures_then_is_online_and_is_unique() {
        let mut cdn = Cdn::default();
        run(&mut cdn, "AddCdnDomain", &ADD).unwrap();
        assert_eq!(
            code(run(&mut cdn, "AddCdnDomain", &ADD)),
            "DomainAlreadyExist"
        );
        let name = [("DomainName", "static.example.com")];
        let status = |cdn: &mut Cdn| {
            run(cdn, "DescribeCdnDomainDetail", &name).unwrap()["GetDomainDetailModel"]
                ["DomainStatus"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let https = [
            ("DomainNames", "static.example.com"),
            (
                "Functions",
                r#"[{"functionName":"https_force","functionArgs":[{"argName":"enable","argValue":"on"}]}]"#,
            ),
        ];
        assert_eq!(
            code(run(&mut cdn, "BatchSetCdnDomainConfig", &https)),
            "ServiceBusy"
        );
        assert_eq!(status(&mut cdn), "configuring");
        assert_eq!(status(&mut cdn), "configuring");
        assert_eq!(status(&mut cdn), "online");
        let set = run(&mut cdn, "BatchSetCdnDomainConfig", &https).unwrap();
        assert_eq!(
            set["DomainConfigList"]["DomainConfigModel"][0]["FunctionName"],
            "https_force"
        );
        let gone = [("DomainName", "gone.example.com")];
        assert_eq!(
            code(run(&mut cdn, "DescribeCdnDomainDetail", &gone)),
            "InvalidDomain.NotFound"
        );
        run(&mut cdn, "DeleteCdnDomain", &name).unwrap();
        assert_eq!(
            code(run(&mut cdn, "DeleteCdnDomain", &name)),
            "InvalidDomain.NotFound"
        );
    }

    #[test]
    fn unknown_functions_bad_sources_and_bad_certificates_are_refused() {
        let mut cdn = Cdn::default();
        let mut bad = ADD;
        bad[3] = ("Sources", r#"[{"type":"ftp","content":"x"}]"#);
        assert_eq!(
            code(run(&mut cdn, "AddCdnDomain", &bad)),
            "InvalidSources.Malformed"
        );
        run(&mut cdn, "AddCdnDomain", &ADD).unwrap();
        for _ in 0..CONFIGURING_POLLS {
            run(
                &mut cdn,
                "DescribeCdnDomainDetail",
                &[("DomainName", "static.example.com")],
            )
            .unwrap();
        }
        let unknown = [
            ("DomainNames", "static.example.com"),
            (
                "Functions",
                r#"[{"functionName":"https_option","functionArgs":[{"argName":"http2","argValue":"yes"}]}]"#,
            ),
        ];
        assert_eq!(
            code(run(&mut cdn, "BatchSetCdnDomainConfig", &unknown)),
            "InvalidFunctions.Malformed"
        );
        let no_key = [
            ("DomainName", "static.example.com"),
            ("SSLProtocol", "on"),
            ("CertType", "upload"),
            (
                "SSLPub",
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            ),
        ];
        assert_eq!(
            code(run(&mut cdn, "SetCdnDomainSSLCertificate", &no_key)),
            "SSLPri.MissingParameter"
        );
    }

    #[test]
    fn a_certificate_management_service_id_sets_the_certificate_without_a_key() {
        let mut cdn = Cdn::default();
        run(&mut cdn, "AddCdnDomain", &ADD).unwrap();
        let name = [("DomainName", "static.example.com")];
        for _ in 0..CONFIGURING_POLLS {
            run(&mut cdn, "DescribeCdnDomainDetail", &name).unwrap();
        }
        let pem = "-----BEGIN CERTIFICATE-----\nMIIBcas\n-----END CERTIFICATE-----\n";
        cdn.add_cas_certificate(8089870, "cn-hangzhou", "static-cas", pem);
        let cas = |id: &'static str, region: Option<&'static str>| {
            let mut p = vec![
                ("DomainName", "static.example.com"),
                ("SSLProtocol", "on"),
                ("CertType", "cas"),
                ("CertId", id),
            ];
            p.extend(region.map(|r| ("CertRegion", r)));
            p
        };
        // An id CAS does not hold, one in another region, a region CAS has not, an id that is no number.
        for (params, refused) in [
            (cas("1234", None), "InvalidCertId.NotFound"),
            (
                cas("8089870", Some("ap-southeast-1")),
                "InvalidCertId.NotFound",
            ),
            (
                cas("8089870", Some("eu-central-1")),
                "Abs.CertRegion.ValueNotSupported",
            ),
            (cas("cas-1", None), "InvalidParameter"),
            (cas("", None), "MissingParameter"),
        ] {
            let got = code(run(&mut cdn, "SetCdnDomainSSLCertificate", &params));
            assert_eq!(got, refused, "{params:?}");
        }
        assert!(cdn.views()[0].certificate.is_none());
        run(
            &mut cdn,
            "SetCdnDomainSSLCertificate",
            &cas("8089870", None),
        )
        .unwrap();
        let view = cdn.views().remove(0);
        assert_eq!(
            (
                view.ssl_on,
                view.certificate.as_deref(),
                view.certificate_type.as_str(),
                view.certificate_id
            ),
            (true, Some(pem), "cas", Some(8089870))
        );
        let info = run(&mut cdn, "DescribeDomainCertificateInfo", &name).unwrap();
        let info = &info["CertInfos"]["CertInfo"][0];
        assert_eq!(
            (
                &info["CertType"],
                &info["CertId"],
                &info["CertRegion"],
                &info["CertName"]
            ),
            (
                &json!("cas"),
                &json!("8089870"),
                &json!("cn-hangzhou"),
                &json!("static-cas")
            )
        );
        let free = [
            ("DomainName", "static.example.com"),
            ("SSLProtocol", "on"),
            ("CertType", "free"),
        ];
        assert_eq!(
            code(run(&mut cdn, "SetCdnDomainSSLCertificate", &free)),
            "InvalidParameter"
        );
    }
}
