//! `cloudcode_stack`: one cloudcode deployment on one host, reached over SSH.
//!
//! Read top-down: schema (every attribute described), validation, plan, then create/read/update/delete and
//! the state struct at the bottom. Applying over SSH lands with the "stack over SSH" work; until then apply
//! stops with a clear diagnostic and nothing is touched.

use std::collections::BTreeMap;

use async_trait::async_trait;
use cloudcode_bundle::validate as rule;
use cloudcode_tfplugin::framework::{
    ApplyRequest, AttrPath, Attribute, Block, DeleteRequest, Diagnostics, PlanRequest, ReadRequest,
    Resource, Schema, Typed,
};
use cloudcode_tfplugin::value::{Type, Value};
use serde::{Deserialize, Serialize};

use crate::provider::Shared;

/// Service names `images` may override.
const IMAGE_KEYS: [&str; 3] = ["caddy", "authelia", "devbox"];

pub struct Stack {
    provider: Shared,
}

impl Stack {
    pub fn new(provider: Shared) -> Self {
        Self { provider }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------------------

fn duration(name: &str, what: &str) -> Attribute {
    Attribute::string(name)
        .optional()
        .description(&format!("Time limit for {what}, e.g. `\"20m\"`."))
        .validate_str(rule_duration)
}

fn rule_duration(v: &str) -> Result<(), String> {
    humantime::parse_duration(v)
        .map(|_| ())
        .map_err(|_| format!("{v:?} is not a duration such as \"30s\", \"10m\" or \"1h30m\""))
}

fn schema() -> Schema {
    let s = Attribute::string;
    let b = Attribute::bool;
    let n = Attribute::number;
    Schema::new(
        0,
        Block::new(
            "A cloudcode deployment on one host: Caddy (HTTPS), Authelia (password + passkey/TOTP) and the \
             OpenCode devbox with a web terminal, run by Docker Compose and deployed over SSH.",
        )
        // --- where and how to connect -------------------------------------------------------------------
        .attribute(s("host").required().validate_str(rule::host).description(
            "IP address or host name of the machine to deploy on. With an empty `domain`, its IPv4 address \
             also gives the fallback domain `<a-b-c-d>.sslip.io`.",
        ))
        .attribute(n("port").default(Value::int(22)).validate_i64(rule::port).description("SSH port. Default `22`."))
        .attribute(s("user").default(Value::string("root")).validate_str(rule::username).description(
            "SSH user; must be root or able to run `sudo` without a password. Default `root`.",
        ))
        .attribute(s("host_key").optional().computed().use_state_for_unknown().validate_str(rule::ssh_host_key).description(
            "The host's SSH public key (`ssh-ed25519 AAAA...`) or fingerprint (`SHA256:...`) to pin. When unset, \
             the key seen on first connection is recorded here and every later connection must present it; a \
             mismatch stops with both fingerprints.",
        ))
        .attribute(s("private_key_path").optional().validate_str(rule_path).description(
            "Path of the SSH private key on the machine running Terraform. A path is no secret, so it may live \
             in state. Alternatives: the provider's `ssh_private_key`, or `ssh_agent = true`.",
        ))
        .attribute(b("ssh_agent").default(Value::bool(false)).description(
            "Authenticate with the keys of the running SSH agent (`SSH_AUTH_SOCK`). Default `false`.",
        ))
        .attribute(Attribute::object(
            "jump_host",
            vec![
                s("host").required().validate_str(rule::host).description("Jump host address."),
                n("port").optional().validate_i64(rule::port).description("Jump host SSH port. Default `22`."),
                s("user").optional().validate_str(rule::username).description("Jump host user. Default: the stack's `user`."),
                s("host_key").optional().validate_str(rule::ssh_host_key).description(
                    "The jump host's public key or `SHA256:` fingerprint to pin.",
                ),
                s("private_key_path").optional().validate_str(rule_path).description(
                    "Key for the jump host. Default: the stack's credentials.",
                ),
            ],
        )
        .optional()
        .description("Reach `host` through this SSH bastion (like `ssh -J`)."))
        .attribute(Attribute::object(
            "timeouts",
            vec![
                duration("create", "the first deploy (Docker install, image pulls, health)"),
                duration("update", "a change"),
                duration("delete", "teardown"),
                duration("connect", "waiting for SSH while the machine boots"),
            ],
        )
        .optional()
        .description("Time limits. Defaults: create `30m`, update `20m`, delete `10m`, connect `5m`."))
        // --- the site ------------------------------------------------------------------------------------
        .attribute(s("domain").optional().computed().description(
            "Domain of the site; `auth.<domain>` serves the login page, so both names must resolve to `host`. \
             Null or empty: `<a-b-c-d>.sslip.io` from the host's IPv4 address (passkeys are bound to the \
             domain, so a new address means registering them again).",
        ))
        .attribute(s("admin_username").required().description("The login name of the single Authelia user."))
        .attribute(s("admin_display_name").optional().description("Display name of that user. Default: `admin_username`."))
        .attribute(s("admin_email").required().description(
            "The user's e-mail (Authelia identity checks; also the ACME account unless `acme_email` is set).",
        ))
        .attribute(s("admin_password_wo").optional().sensitive().write_only().validate_str(rule::password).description(
            "The user's password, at least 12 characters. **Write-only** (Terraform >= 1.11): never stored in plan \
             or state. Needed on create and whenever `admin_password_wo_version` changes; otherwise leave it null \
             and the host keeps its password hash.",
        ))
        .attribute(n("admin_password_wo_version").default(Value::int(1)).description(
            "Bump to apply a new `admin_password_wo`. Default `1`.",
        ))
        // --- the agent -----------------------------------------------------------------------------------
        .attribute(s("llm_provider").default(Value::string("openai")).description(
            "LLM provider for OpenCode: `openai`, `anthropic`, `gemini` or `openai_compatible`. Default `openai`.",
        ))
        .attribute(s("llm_base_url").optional().description(
            "API base URL (https) for `openai_compatible` providers or a proxy.",
        ))
        .attribute(s("llm_model").optional().description("Default model, e.g. `gpt-4.1` or `claude-sonnet-4-5`."))
        .attribute(s("llm_api_key_wo").optional().sensitive().write_only().validate_str(rule::api_key).description(
            "API key of the LLM provider. **Write-only**: never stored; supply it with a new \
             `llm_api_key_wo_version`, otherwise the host keeps its key.",
        ))
        .attribute(n("llm_api_key_wo_version").optional().description(
            "Bump to apply a new `llm_api_key_wo`.",
        ))
        .attribute(s("opencode_version").default(Value::string(cloudcode_bundle::DEFAULT_OPENCODE_VERSION)).description(
            &format!(
                "OpenCode version in the devbox. Default `{}` (pinned; OpenCode 2.x changed its CLI).",
                cloudcode_bundle::DEFAULT_OPENCODE_VERSION
            ),
        ))
        // --- images --------------------------------------------------------------------------------------
        .attribute(Attribute::map_of("images", Type::String).optional().validate(rule_image_keys).description(
            "Image per service, overriding the pinned defaults (private registries, mirrors): keys `caddy`, \
             `authelia`, `devbox`.",
        ))
        .attribute(Attribute::list_of("image_archives", Type::String).optional().validate(rule_archives).description(
            "Local image tarballs (`docker save` output) to upload and `docker load` before starting, for hosts \
             that cannot pull.",
        ))
        .attribute(b("devbox_build").default(Value::bool(false)).description(
            "Build the devbox image on the host from the rendered Dockerfile instead of pulling the prebuilt \
             image (slow on small machines). Default `false`.",
        ))
        // --- behaviour -----------------------------------------------------------------------------------
        .attribute(b("terminal_enabled").default(Value::bool(true)).description(
            "Serve the ttyd web terminal at `/terminal/`. Default `true`.",
        ))
        .attribute(n("https_alt_port").optional().description(
            "Also serve HTTPS on this port (e.g. `8443`) for networks that block 443.",
        ))
        .attribute(s("tls_mode").default(Value::string("acme")).description(
            "`acme`: public certificates from Let's Encrypt / ZeroSSL. `internal`: Caddy's own CA, for private \
             networks and tests. Default `acme`.",
        ))
        .attribute(s("acme_email").optional().description("ACME account e-mail. Default: `admin_email`."))
        .attribute(s("timezone").default(Value::string("UTC")).description("IANA time zone of the containers. Default `UTC`."))
        .attribute(s("remote_dir").default(Value::string(cloudcode_bundle::settings::DEFAULT_REMOTE_DIR)).requires_replace().description(
            "Directory on the host for the rendered files and `secrets/`. Changing it deploys anew. Default \
             `/opt/cloudcode`.",
        ))
        .attribute(s("docker_install").default(Value::string("auto")).validate_str(rule::docker_install).description(
            "`auto`: install Docker and Compose v2 with the distribution's packages when missing. `skip`: never \
             install; fail if absent. Default `auto`.",
        ))
        .attribute(b("host_running").default(Value::bool(true)).description(
            "`false` while the machine is stopped (suspend): neither plan nor apply connects; changes wait for \
             the next apply with the host running. Default `true`.",
        ))
        .attribute(b("remote_teardown").default(Value::bool(true)).description(
            "On destroy, run `docker compose down` and remove the rendered files (never `secrets/` or volumes). \
             Set `false` when the machine itself is destroyed. Default `true`.",
        ))
        .attribute(b("destroy_volumes").default(Value::bool(false)).description(
            "With `remote_teardown`, also delete the volumes (workspace, sessions, passkeys). Default `false`.",
        ))
        // --- results -------------------------------------------------------------------------------------
        .attribute(s("id").computed().use_state_for_unknown().description("`user@host:port/remote_dir`."))
        .attribute(s("url").computed().description("The site: OpenCode's web UI, behind the login."))
        .attribute(s("auth_url").computed().description("The Authelia login portal, `https://auth.<domain>`."))
        .attribute(s("terminal_url").computed().description("The web terminal, or null when `terminal_enabled` is false."))
        .attribute(Attribute::map_of("files", Type::String).computed().description(
            "Deployed files (path relative to `remote_dir` → sha256). A hand edit on the host shows up here as drift.",
        ))
        .attribute(s("deployed_version").computed().description("Version of the provider that last deployed the host.")),
    )
}

fn rule_path(v: &str) -> Result<(), String> {
    if v.trim().is_empty() || v.contains('\0') || v.contains('\n') {
        Err("must be a non-empty file path on a single line".to_string())
    } else {
        Ok(())
    }
}

fn rule_image_keys(v: &Value) -> Result<(), String> {
    let Some(entries) = v.as_entries() else {
        return Ok(());
    };
    match entries.keys().find(|k| !IMAGE_KEYS.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "unknown service {k:?}; images may override: {}",
            IMAGE_KEYS.join(", ")
        )),
        None => Ok(()),
    }
}

fn rule_archives(v: &Value) -> Result<(), String> {
    for (i, item) in v.as_elements().unwrap_or_default().iter().enumerate() {
        if let Some(p) = item.as_str() {
            rule_path(p).map_err(|e| format!("element {i}: {e}"))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Validation: rules of the bundle's settings come from cloudcode_bundle::validate (one module for both).
// ---------------------------------------------------------------------------------------------------------

/// Builds the bundle's settings from a configuration whose unknown attributes are replaced by valid stand-ins;
/// returns them with the effective domain.
fn settings(c: &StackState, domain: &str) -> cloudcode_bundle::Settings {
    let mut s = cloudcode_bundle::Settings::default_for(domain, &c.admin_username, &c.admin_email);
    s.admin_display_name = c.admin_display_name.clone();
    s.admin_password_wo_version = c.admin_password_wo_version.unwrap_or(1);
    if let Some(p) = &c.llm_provider {
        s.llm_provider = p.clone();
    }
    s.llm_base_url = c.llm_base_url.clone();
    s.llm_model = c.llm_model.clone();
    s.llm_api_key_wo_version = c.llm_api_key_wo_version;
    if let Some(v) = &c.opencode_version {
        s.opencode_version = v.clone();
    }
    let images = c.images.clone().unwrap_or_default();
    s.images = cloudcode_bundle::Images {
        caddy: images.get("caddy").cloned(),
        authelia: images.get("authelia").cloned(),
        devbox: images.get("devbox").cloned(),
    };
    s.devbox_build = c.devbox_build.unwrap_or(false);
    s.terminal_enabled = c.terminal_enabled.unwrap_or(true);
    s.https_alt_port = c.https_alt_port.and_then(|p| u16::try_from(p).ok());
    if let Some(m) = &c.tls_mode {
        s.tls_mode = m.clone();
    }
    s.acme_email = c.acme_email.clone();
    if let Some(t) = &c.timezone {
        s.timezone = t.clone();
    }
    if let Some(d) = &c.remote_dir {
        s.remote_dir = d.clone();
    }
    s
}

/// The top-level attribute a bundle field name belongs to, and its path (`images.devbox` → `images["devbox"]`).
fn field_path(field: &str) -> (String, AttrPath) {
    match field.split_once('.') {
        Some((top, key)) => (top.to_string(), AttrPath::attr(top).then_key(key)),
        None => (field.to_string(), AttrPath::attr(field)),
    }
}

fn validate_config(config: &Typed<StackState>, diags: &mut Diagnostics) {
    let c = &config.value;
    let unknown = |a: &str| config.is_unknown(a);
    // Values that are not (yet) known get valid stand-ins, and errors about them are dropped.
    let mut stand_in = c.clone();
    let domain = match c.domain.as_deref() {
        Some(d) if !d.is_empty() && !unknown("domain") => d.to_string(),
        _ => "example.com".to_string(),
    };
    if unknown("admin_username") {
        stand_in.admin_username = "admin".into();
    }
    if unknown("admin_email") {
        stand_in.admin_email = "admin@example.com".into();
    }
    if let Some(p) = c.https_alt_port {
        if u16::try_from(p).is_err() {
            diags.error_at(
                AttrPath::attr("https_alt_port"),
                "Invalid value for https_alt_port",
                format!("must be a TCP port between 1024 and 65535, got {p}"),
            );
            stand_in.https_alt_port = None;
        }
    }
    for (field, invalid) in cloudcode_bundle::validate(&settings(&stand_in, &domain)) {
        let (top, path) = field_path(&field);
        if unknown(&top) || (top == "domain" && domain == "example.com") {
            continue;
        }
        diags.error_at(
            path,
            format!("Invalid value for {top}"),
            invalid.to_string(),
        );
    }
    if let Some(v) = c.admin_password_wo_version {
        if v < 1 && !unknown("admin_password_wo_version") {
            diags.error_at(
                AttrPath::attr("admin_password_wo_version"),
                "Invalid value for admin_password_wo_version",
                format!("must be 1 or more, got {v}"),
            );
        }
    }
    if c.llm_api_key_wo.is_some()
        && c.llm_api_key_wo_version.is_none()
        && !unknown("llm_api_key_wo_version")
    {
        diags.error_at(
            AttrPath::attr("llm_api_key_wo_version"),
            "llm_api_key_wo_version is required with llm_api_key_wo",
            "Write-only values are applied when their version changes: set llm_api_key_wo_version = 1, and bump it \
             whenever the key changes.",
        );
    }
    if let Some(tm) = &c.timeouts {
        if tm.create.is_none() && tm.update.is_none() && tm.delete.is_none() && tm.connect.is_none()
        {
            diags.warning_at(
                AttrPath::attr("timeouts"),
                "Empty timeouts block",
                "The defaults apply.",
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Plan
// ---------------------------------------------------------------------------------------------------------

/// The domain the site is served on: the configured one, else the sslip.io name of the host's IPv4 address.
fn effective_domain(config_domain: Option<&str>, host: &str) -> Result<String, String> {
    match config_domain {
        Some(d) if !d.is_empty() => Ok(d.to_string()),
        _ => cloudcode_bundle::fallback_domain(host).map_err(|e| {
            format!(
                "domain is empty, so the site would use the sslip.io name of host, but host {e}. Set domain to a \
                 name that resolves to the host."
            )
        }),
    }
}

fn plan(
    req: &mut PlanRequest<StackState>,
    provider: &crate::provider::ProviderConfig,
    diags: &mut Diagnostics,
) {
    let cfg = &req.config;
    let p = &mut req.planned;

    // Creating needs the password; a version bump needs the new one.
    let version_changed = match &req.prior {
        None => true,
        Some(prior) => prior.admin_password_wo_version != p.value.admin_password_wo_version,
    };
    if version_changed
        && cfg.value.admin_password_wo.is_none()
        && !cfg.is_unknown("admin_password_wo")
    {
        let why = if req.prior.is_none() {
            "creating a stack"
        } else {
            "admin_password_wo_version changed"
        };
        diags.error_at(
            AttrPath::attr("admin_password_wo"),
            "admin_password_wo is required",
            format!("The admin password is needed when {why}. Pass it from an ephemeral variable."),
        );
    }
    if cfg.value.private_key_path.is_none()
        && !cfg.is_unknown("private_key_path")
        && !p.value.ssh_agent.unwrap_or(false)
        && provider.ssh_private_key.is_none()
    {
        diags.error_at(
            AttrPath::attr("private_key_path"),
            "No SSH credentials",
            "Set private_key_path, or ssh_private_key in the provider block (or CLOUDCODE_SSH_PRIVATE_KEY), or \
             ssh_agent = true.",
        );
    }

    // Domain and URLs follow from host and domain.
    let domain_known = !cfg.is_unknown("domain") && !cfg.is_unknown("host");
    let domain = if domain_known {
        match effective_domain(cfg.value.domain.as_deref(), &p.value.host) {
            Ok(d) => Some(d),
            Err(e) => {
                diags.error_at(AttrPath::attr("domain"), "No domain for the site", e);
                None
            }
        }
    } else {
        None
    };
    let url_attrs = ["url", "auth_url", "terminal_url"];
    match domain {
        Some(d) => {
            if cfg.value.domain.is_none() {
                p.value.domain = Some(d.clone());
                p.unknown.remove("domain");
            }
            p.value.url = Some(format!("https://{d}/"));
            p.value.auth_url = Some(format!("https://auth.{d}/"));
            p.value.terminal_url = p
                .value
                .terminal_enabled
                .unwrap_or(true)
                .then(|| format!("https://{d}/terminal/"));
            for a in url_attrs {
                p.unknown.remove(a);
            }
            if cfg.is_unknown("terminal_enabled") {
                p.unknown.insert("terminal_url".into());
            }
        }
        None => {
            if cfg.value.domain.is_none() {
                p.unknown.insert("domain".into());
            }
            for a in url_attrs {
                p.unknown.insert(a.into());
            }
        }
    }
    if !cfg.is_unknown("host")
        && !cfg.is_unknown("user")
        && !cfg.is_unknown("port")
        && !cfg.is_unknown("remote_dir")
    {
        p.value.id = Some(stack_id(&p.value));
        p.unknown.remove("id");
    }
}

fn stack_id(s: &StackState) -> String {
    format!(
        "{}@{}:{}{}",
        s.user.as_deref().unwrap_or("root"),
        s.host,
        s.port.unwrap_or(22),
        s.remote_dir
            .as_deref()
            .unwrap_or(cloudcode_bundle::settings::DEFAULT_REMOTE_DIR)
    )
}

// ---------------------------------------------------------------------------------------------------------
// Create / Read / Update / Delete
// ---------------------------------------------------------------------------------------------------------

fn not_yet(diags: &mut Diagnostics, what: &str) {
    diags.error(
        format!("cloudcode_stack {what} is not implemented yet"),
        "This provider build validates and plans cloudcode_stack but cannot deploy it over SSH yet (that \
         arrives with the stack-over-SSH release). Nothing was changed on the host.",
    );
}

#[async_trait]
impl Resource for Stack {
    type State = StackState;

    fn type_name(&self) -> &'static str {
        "cloudcode_stack"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, config: &Typed<StackState>, diags: &mut Diagnostics) {
        validate_config(config, diags);
    }

    async fn plan(&self, req: &mut PlanRequest<StackState>, diags: &mut Diagnostics) {
        let provider = self.provider.read().map(|c| c.clone()).unwrap_or_default();
        plan(req, &provider, diags);
    }

    async fn create(
        &self,
        _req: &mut ApplyRequest<StackState>,
        diags: &mut Diagnostics,
    ) -> Option<StackState> {
        not_yet(diags, "apply");
        None
    }

    async fn read(
        &self,
        req: &mut ReadRequest<StackState>,
        _diags: &mut Diagnostics,
    ) -> Option<StackState> {
        Some(req.state.clone())
    }

    async fn update(
        &self,
        _req: &mut ApplyRequest<StackState>,
        diags: &mut Diagnostics,
    ) -> Option<StackState> {
        not_yet(diags, "update");
        None
    }

    async fn delete(&self, _req: &mut DeleteRequest<StackState>, _diags: &mut Diagnostics) {}
}

// ---------------------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------------------

/// `cloudcode_stack` as Rust sees it. Absent means null or unknown (see the framework's typed bridge). No
/// `Debug`: the write-only fields hold secrets while a request is processed (they are never stored).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StackState {
    pub host: String,
    pub port: Option<i64>,
    pub user: Option<String>,
    pub host_key: Option<String>,
    pub private_key_path: Option<String>,
    pub ssh_agent: Option<bool>,
    pub jump_host: Option<JumpHost>,
    pub timeouts: Option<Timeouts>,
    pub domain: Option<String>,
    pub admin_username: String,
    pub admin_display_name: Option<String>,
    pub admin_email: String,
    pub admin_password_wo: Option<String>,
    pub admin_password_wo_version: Option<i64>,
    pub llm_provider: Option<String>,
    pub llm_base_url: Option<String>,
    pub llm_model: Option<String>,
    pub llm_api_key_wo: Option<String>,
    pub llm_api_key_wo_version: Option<i64>,
    pub opencode_version: Option<String>,
    pub images: Option<BTreeMap<String, String>>,
    pub image_archives: Option<Vec<String>>,
    pub devbox_build: Option<bool>,
    pub terminal_enabled: Option<bool>,
    pub https_alt_port: Option<i64>,
    pub tls_mode: Option<String>,
    pub acme_email: Option<String>,
    pub timezone: Option<String>,
    pub remote_dir: Option<String>,
    pub docker_install: Option<String>,
    pub host_running: Option<bool>,
    pub remote_teardown: Option<bool>,
    pub destroy_volumes: Option<bool>,
    pub id: Option<String>,
    pub url: Option<String>,
    pub auth_url: Option<String>,
    pub terminal_url: Option<String>,
    pub files: Option<BTreeMap<String, String>>,
    pub deployed_version: Option<String>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct JumpHost {
    pub host: String,
    pub port: Option<i64>,
    pub user: Option<String>,
    pub host_key: Option<String>,
    pub private_key_path: Option<String>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Timeouts {
    pub create: Option<String>,
    pub update: Option<String>,
    pub delete: Option<String>,
    pub connect: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attribute_is_described() {
        fn check(attrs: &[Attribute]) {
            for a in attrs {
                assert!(
                    !a.description.trim().is_empty(),
                    "{} has no description",
                    a.name
                );
                if let Some(n) = &a.nested {
                    check(n);
                }
            }
        }
        check(&schema().block.attributes);
    }

    #[test]
    fn effective_domain_falls_back_to_sslip_for_ipv4() {
        assert_eq!(
            effective_domain(None, "47.1.2.3").unwrap(),
            "47-1-2-3.sslip.io"
        );
        assert_eq!(
            effective_domain(Some(""), "47.1.2.3").unwrap(),
            "47-1-2-3.sslip.io"
        );
        assert_eq!(
            effective_domain(Some("code.example.com"), "47.1.2.3").unwrap(),
            "code.example.com"
        );
        assert!(effective_domain(None, "vm.example.com").is_err());
    }
}
