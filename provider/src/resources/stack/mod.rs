//! `cloudcode_stack`: one cloudcode deployment on one host, reached over SSH.
//!
//! Read top-down: validation and plan here, then create/read/update/delete/import. The schema is in
//! `schema.rs`, the state struct in `state.rs`, and everything done on the host (inspect, deploy, teardown) in
//! `host.rs`, which knows nothing of Terraform.

mod apply;
mod apps;
mod archive;
mod connect;
mod devbox;
mod host;
mod schema;
mod state;

use std::collections::BTreeMap;

use async_trait::async_trait;
use cloudcode_bundle::{paths, Secrets};
use cloudcode_ssh::Remote;
use cloudcode_tfplugin::framework::{
    ApplyRequest, AttrPath, Ctx, DeleteRequest, Diagnostics, PlanRequest, Private, ReadRequest,
    Resource, Schema, Typed,
};

use crate::provider::{ProviderConfig, Shared};
pub use state::{ImBlock, JumpHost, StackState, Timeouts};

pub struct Stack {
    provider: Shared,
}

impl Stack {
    pub fn new(provider: Shared) -> Self {
        Self { provider }
    }

    fn provider_config(&self) -> ProviderConfig {
        self.provider.read().map(|c| c.clone()).unwrap_or_default()
    }
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
    s.images = cloudcode_bundle::Images::from_map(&c.images.clone().unwrap_or_default());
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
    s.opencode_permission = c.opencode_permission.clone().unwrap_or_default();
    s.proxy_wo_version = c.proxy_wo_version;
    s.no_proxy = c.no_proxy.clone().unwrap_or_default();
    s.mirrors = c
        .mirrors
        .as_ref()
        .map(cloudcode_bundle::MirrorsInput::resolve);
    s.idle_suspend = c
        .idle_suspend_after
        .clone()
        .map(|after| cloudcode_bundle::IdleSuspend {
            after,
            ecs_endpoint: c.idle_suspend_endpoint.clone(),
        });
    s.apps = apps::apps(&c.apps);
    s.static_sites = apps::sites(&c.static_sites);
    s.im = c.im().map(|b| {
        let mut im = cloudcode_bundle::ImSettings::new(&stack_id(c));
        im.telegram_token_wo_version = b.telegram_token_wo_version;
        if let Some(base) = &b.telegram_api_base {
            im.telegram_api_base = base.clone();
        }
        im.dingtalk_client_id = b.dingtalk_client_id.clone();
        im.dingtalk_client_secret_wo_version = b.dingtalk_client_secret_wo_version;
        im.dingtalk_robot_code = b.dingtalk_robot_code.clone();
        im.proxy_wo_version = b.proxy_wo_version;
        im
    });
    s
}

/// The `im` block's write-only secrets: (attribute, its version attribute, value, version) of a block.
fn im_write_only(b: &ImBlock) -> [(&'static str, &'static str, Option<&str>, Option<i64>); 3] {
    [
        (
            "telegram_token_wo",
            "telegram_token_wo_version",
            b.telegram_token_wo.as_deref(),
            b.telegram_token_wo_version,
        ),
        (
            "dingtalk_client_secret_wo",
            "dingtalk_client_secret_wo_version",
            b.dingtalk_client_secret_wo.as_deref(),
            b.dingtalk_client_secret_wo_version,
        ),
        (
            "proxy_wo",
            "proxy_wo_version",
            b.proxy_wo.as_deref(),
            b.proxy_wo_version,
        ),
    ]
}

fn im_path(attribute: &str) -> AttrPath {
    AttrPath::attr("im").then_index(0).then_attr(attribute)
}

/// The top-level attribute a bundle field name belongs to, and its path (`images.devbox` → `images["devbox"]`).
fn field_path(field: &str) -> (String, AttrPath) {
    if field == "im" {
        return ("im".into(), AttrPath::attr("im"));
    }
    if let Some(rest) = field.strip_prefix("im.") {
        return ("im".into(), im_path(rest));
    }
    // `apps.api.env.KEY` → apps["api"].env["KEY"]; `app_secret_env_wo.api.KEY` → app_secret_env_wo["api"]["KEY"].
    if let Some((top @ ("apps" | "static_sites" | "app_secret_env_wo"), rest)) =
        field.split_once('.')
    {
        let mut parts = rest.splitn(3, '.');
        let mut path = AttrPath::attr(top).then_key(parts.next().unwrap_or_default());
        if top == "app_secret_env_wo" {
            if let Some(k) = parts.next() {
                path = path.then_key(k);
            }
        } else if let Some(attr) = parts.next() {
            path = path.then_attr(attr);
            if let Some(k) = parts.next() {
                path = path.then_key(k);
            }
        }
        return (top.to_string(), path);
    }
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
        Some(d) if !d.is_empty() && !unknown("domain") => {
            cloudcode_bundle::validate::ascii_domain(d)
        }
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
    if c.proxy_wo.is_some() && c.proxy_wo_version.is_none() && !unknown("proxy_wo_version") {
        diags.error_at(
            AttrPath::attr("proxy_wo_version"),
            "proxy_wo_version is required with proxy_wo",
            "Write-only values are applied when their version changes: set proxy_wo_version = 1, and bump it \
             whenever the proxy changes.",
        );
    }
    if !unknown("apps") && !unknown("app_secret_env_wo") {
        for (app, var, why) in apps::secret_env_problems(&c.apps, &c.app_secret_env_wo) {
            diags.error_at(
                AttrPath::attr("app_secret_env_wo")
                    .then_key(app)
                    .then_key(var),
                "Invalid value for app_secret_env_wo",
                why,
            );
        }
        for name in apps::secret_env_without_version(&c.apps, &c.app_secret_env_wo) {
            diags.error_at(
                AttrPath::attr("app_secret_env_wo").then_key(name.clone()),
                format!("apps.{name}.secret_env_wo_version is required with app_secret_env_wo[\"{name}\"]"),
                format!(
                    "Write-only values are applied when their version changes: give app {name:?} \
                     secret_env_wo_version = 1 in apps, and bump it whenever its secret env changes."
                ),
            );
        }
    }
    if let Some(b) = c.im().filter(|_| !unknown("im")) {
        for (secret, version_attr, value, version) in im_write_only(b) {
            if value.is_some() && version.is_none() {
                diags.error_at(
                    im_path(version_attr),
                    format!("im.{version_attr} is required with im.{secret}"),
                    format!(
                        "Write-only values are applied when their version changes: set im.{version_attr} = 1, and \
                         bump it whenever the value changes."
                    ),
                );
            }
        }
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

/// The domain the site is served on: the configured one in its ASCII form (lower case, `xn--` labels for an
/// internationalised name), else the name of the host's IPv4 address on the fallback service (sslip.io when
/// `service` is None).
fn effective_domain(
    config_domain: Option<&str>,
    host: &str,
    service: Option<&str>,
) -> Result<String, String> {
    let service = service.unwrap_or(cloudcode_bundle::validate::FALLBACK_DOMAIN_SERVICES[0]);
    match config_domain {
        Some(d) if !d.is_empty() => Ok(cloudcode_bundle::validate::ascii_domain(d)),
        _ => cloudcode_bundle::fallback_domain_on(host, service).map_err(|e| {
            format!(
                "domain is empty, so the site would use the {service} name of host, but host {e}. Set domain to \
                 a name that resolves to the host."
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
    // A new or bumped secret env version of an app needs its entry in this apply (else the host would keep the old
    // values, or on create have none and fail there).
    if !cfg.is_unknown("app_secret_env_wo") && !cfg.is_unknown("apps") {
        let given = cfg.value.app_secret_env_wo.as_ref();
        for name in apps::bumped(&p.value.apps, req.prior.as_ref().map(|x| &x.apps)) {
            if given.is_none_or(|g| !g.contains_key(name)) {
                diags.error_at(
                    AttrPath::attr("app_secret_env_wo").then_key(name),
                    format!("app_secret_env_wo[\"{name}\"] is required"),
                    format!(
                        "App {name:?}'s secret env is needed when its secret_env_wo_version is first set or \
                         changed. Pass it from an ephemeral variable."
                    ),
                );
            }
        }
    }
    // A new or bumped proxy version needs the proxy in this apply.
    let proxy_version_new = p.value.proxy_wo_version.is_some()
        && req.prior.as_ref().map(|x| x.proxy_wo_version) != Some(p.value.proxy_wo_version);
    if proxy_version_new && cfg.value.proxy_wo.is_none() && !cfg.is_unknown("proxy_wo") {
        let why = if req.prior.is_none() {
            "creating a stack"
        } else {
            "its version changed"
        };
        diags.error_at(
            AttrPath::attr("proxy_wo"),
            "proxy_wo is required",
            format!(
                "proxy_wo_version is set and proxy_wo is null: the proxy is needed when {why}. Pass it from an \
                 ephemeral variable."
            ),
        );
    }
    // A new or bumped im secret version needs its value in this apply.
    if let Some(b) = cfg.value.im().filter(|_| !cfg.is_unknown("im")) {
        let prior_im = req
            .prior
            .as_ref()
            .and_then(|p| p.im().cloned())
            .unwrap_or_default();
        for ((secret, version_attr, value, version), (_, _, _, before)) in
            im_write_only(b).into_iter().zip(im_write_only(&prior_im))
        {
            if version.is_some() && version != before && value.is_none() {
                let why = if req.prior.is_none() {
                    "creating a stack"
                } else {
                    "its version changed"
                };
                diags.error_at(
                    im_path(secret),
                    format!("im.{secret} is required"),
                    format!(
                        "im.{version_attr} is set and im.{secret} is null: the value is needed when {why}. Pass it \
                         from an ephemeral variable."
                    ),
                );
            }
        }
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
    let domain_known = !cfg.is_unknown("domain")
        && !cfg.is_unknown("host")
        && !cfg.is_unknown("fallback_domain_service");
    let domain = if domain_known {
        match effective_domain(
            cfg.value.domain.as_deref(),
            &p.value.host,
            p.value.fallback_domain_service.as_deref(),
        ) {
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

    // What the host will have: the files the bundle renders (secret-bearing files are not tracked) and every
    // service running. Read puts what the host really has into state, so any drift shows up as a diff here.
    let host_running = !cfg.is_unknown("host_running") && p.value.host_running.unwrap_or(true);
    let outcome = ["files", "services", "deployed_version", "authelia_image"];
    if !cfg.is_unknown("host_running") && !host_running {
        // Suspended: nothing is deployed until the host runs again; keep describing what it has.
        let prior = req.prior.clone().unwrap_or_default();
        p.value.files = prior.files;
        p.value.services = prior.services;
        p.value.deployed_version = prior.deployed_version;
        p.value.authelia_image = prior.authelia_image;
        for a in outcome {
            p.unknown.remove(a);
        }
    } else if host_running
        && cfg
            .unknown
            .iter()
            .all(|a| !RENDER_INPUTS.contains(&a.as_str()))
    {
        if let Some(bundle) = render(&p.value, &Secrets::default(), diags) {
            p.value.files = Some(bundle.managed_hashes());
            p.value.services = Some(desired_services(&p.value));
            p.value.deployed_version = Some(cloudcode_bundle::CLOUDCODE_VERSION.to_string());
            p.value.authelia_image = Some(bundle.manifest.inputs.authelia_image());
            for a in outcome {
                p.unknown.remove(a);
            }
        }
    }
    refuse_authelia_downgrade(req.prior.as_ref(), &p.value, diags);
}

/// The version in an image reference's tag (`…/authelia:4.39.20` → 4.39.20, `v4.39` → 4.39.0); none for a
/// digest or a tag that is not a version.
fn image_version(image: &str) -> Option<(u64, u64, u64)> {
    let (_, tag) = image.rsplit_once(':')?;
    if tag.contains('/') || image.contains('@') {
        return None;
    }
    version_triple(tag)
}

/// `v4.39.20`, `20.10.24+dfsg1`, `23.0` → (major, minor, patch); none for anything that is not a version.
pub(crate) fn version_triple(text: &str) -> Option<(u64, u64, u64)> {
    let core = text.trim_start_matches('v').split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let v = (
        parts.next()??,
        parts.next().unwrap_or(Some(0))?,
        parts.next().unwrap_or(Some(0))?,
    );
    parts.next().is_none().then_some(v)
}

/// An Authelia older than the deployed one would find its database migrated by the newer one and refuse to
/// start ("schema version is greater"): refused at plan unless `allow_authelia_downgrade`.
fn refuse_authelia_downgrade(
    prior: Option<&StackState>,
    planned: &StackState,
    diags: &mut Diagnostics,
) {
    let (Some(deployed), Some(next)) = (
        prior.and_then(|p| p.authelia_image.as_deref()),
        planned.authelia_image.as_deref(),
    ) else {
        return;
    };
    if planned.allow_authelia_downgrade.unwrap_or(false) {
        return;
    }
    if let (Some(old), Some(new)) = (image_version(deployed), image_version(next)) {
        if new < old {
            diags.error_at(
                AttrPath::attr("images"),
                "Authelia downgrade refused",
                format!(
                    "{next} is older than the deployed {deployed}: Authelia's database was migrated by the newer \
                     version and the older one refuses it, so Authelia would not start. Keep images.authelia at \
                     {deployed} or newer, or set allow_authelia_downgrade = true after removing the authelia_data \
                     volume (passkeys and TOTP must then be registered again)."
                ),
            );
        }
    }
}

/// The attributes the rendered files depend on (an unknown one leaves `files` unknown in the plan).
const RENDER_INPUTS: [&str; 29] = [
    "host",
    "domain",
    "fallback_domain_service",
    "proxy_wo_version",
    "no_proxy",
    "mirrors",
    "admin_username",
    "admin_display_name",
    "admin_email",
    "admin_password_wo_version",
    "llm_provider",
    "llm_base_url",
    "llm_model",
    "llm_api_key_wo_version",
    "opencode_version",
    "images",
    "devbox_build",
    "terminal_enabled",
    "https_alt_port",
    "tls_mode",
    "acme_email",
    "timezone",
    "remote_dir",
    "opencode_permission",
    "idle_suspend_after",
    "idle_suspend_endpoint",
    "im",
    "apps",
    "static_sites",
];

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

// ---------------------------------------------------------------------------------------------------------
// Create / Read / Update / Delete / Import
// ---------------------------------------------------------------------------------------------------------

/// The services every healthy stack runs, as `services` shows them.
fn desired_services(s: &StackState) -> BTreeMap<String, String> {
    s.services_run()
        .iter()
        .map(|s| (s.to_string(), "running".to_string()))
        .collect()
}

/// The bundle's settings for a fully known state.
fn bundle_settings(s: &StackState) -> Result<cloudcode_bundle::Settings, String> {
    let domain = effective_domain(
        s.domain.as_deref(),
        &s.host,
        s.fallback_domain_service.as_deref(),
    )?;
    Ok(settings(s, &domain))
}

/// Renders the bundle; a failure here is a bug or a value no plan-time rule caught.
fn render(
    s: &StackState,
    secrets: &Secrets,
    diags: &mut Diagnostics,
) -> Option<cloudcode_bundle::Bundle> {
    let settings = match bundle_settings(s) {
        Ok(x) => x,
        Err(e) => {
            diags.error_at(AttrPath::attr("domain"), "No domain for the site", e);
            return None;
        }
    };
    match cloudcode_bundle::render(&settings, secrets) {
        Ok(b) => Some(b),
        // A directory of an app or site that cannot be used: said at its attribute.
        Err(cloudcode_bundle::RenderError::Invalid(errors)) => {
            for (field, invalid) in errors {
                let (top, path) = field_path(&field);
                diags.error_at(
                    path,
                    format!("Invalid value for {top}"),
                    invalid.to_string(),
                );
            }
            None
        }
        Err(e) => {
            diags.error("Could not render the deployment files", e.to_string());
            None
        }
    }
}

fn host_error(diags: &mut Diagnostics, summary: &str, e: &dyn std::fmt::Display) {
    diags.error(summary, e.to_string());
}

/// The write-only secrets this apply must put on the host (None: the host keeps what it has).
async fn secrets_for(
    r: &dyn Remote,
    req: &ApplyRequest<StackState>,
    diags: &mut Diagnostics,
) -> Option<Secrets> {
    let planned = &req.planned;
    let prior = req.prior.as_ref();
    let pw_bump =
        prior.is_none_or(|p| p.admin_password_wo_version != planned.admin_password_wo_version);
    let key_bump = prior.is_none_or(|p| p.llm_api_key_wo_version != planned.llm_api_key_wo_version);
    let mut secrets = Secrets::default();
    if let Some(pw) = req.config.admin_password_wo.as_deref().filter(|_| pw_bump) {
        match cloudcode_bundle::hash_password(pw) {
            Ok(h) => secrets.admin_password_hash = Some(h),
            Err(e) => {
                diags.error_at(
                    AttrPath::attr("admin_password_wo"),
                    "Could not hash the password",
                    e.to_string(),
                );
                return None;
            }
        }
    } else if let Some(p) = prior {
        // The user's name, e-mail or display name changed without a new password: keep the host's hash.
        let user_changed = p.admin_username != planned.admin_username
            || p.admin_email != planned.admin_email
            || p.admin_display_name != planned.admin_display_name;
        if user_changed {
            let dir = planned.dir();
            let db = r
                .read_file(&format!("{dir}/{}", paths::USERS_DATABASE))
                .await;
            match db
                .ok()
                .flatten()
                .and_then(|y| cloudcode_bundle::existing_password_hash(&y, &p.admin_username))
            {
                Some(h) => secrets.admin_password_hash = Some(h),
                None => {
                    diags.error_at(
                        AttrPath::attr("admin_password_wo"),
                        "admin_password_wo is required",
                        "The admin user changed and the host's user database has no password hash to keep; \
                         supply admin_password_wo with a new admin_password_wo_version.",
                    );
                    return None;
                }
            }
        }
    }
    if let Some(k) = req.config.llm_api_key_wo.as_deref().filter(|_| key_bump) {
        secrets.llm_api_key = Some(k.to_string());
    }
    let proxy_bump = planned.proxy_wo_version.is_some()
        && prior.is_none_or(|p| p.proxy_wo_version != planned.proxy_wo_version);
    if let Some(url) = req.config.proxy_wo.as_deref().filter(|_| proxy_bump) {
        secrets.proxy = Some(url.to_string());
    }
    // The im block's secrets, each when its version is new (the planned versions equal the configuration's).
    if let Some(b) = req.config.im() {
        let before = prior.and_then(|p| p.im().cloned()).unwrap_or_default();
        let [telegram, dingtalk, proxy] = im_write_only(b);
        let [t0, d0, p0] = im_write_only(&before);
        let bumped = |(_, _, value, version): (&str, &str, Option<&str>, Option<i64>),
                      before: Option<i64>| {
            value
                .filter(|_| version.is_some() && version != before)
                .map(str::to_string)
        };
        secrets.im_telegram_token = bumped(telegram, t0.3);
        secrets.im_dingtalk_client_secret = bumped(dingtalk, d0.3);
        secrets.im_proxy = bumped(proxy, p0.3);
    }
    secrets.app_secret_env = apps::secret_env_to_apply(
        &planned.apps,
        prior.map(|p| &p.apps),
        &req.config.app_secret_env_wo,
    );
    Some(secrets)
}

impl Stack {
    async fn apply(
        &self,
        req: &mut ApplyRequest<StackState>,
        diags: &mut Diagnostics,
        creating: bool,
    ) -> Option<StackState> {
        let mut state = req.planned.clone();
        if !state.host_running.unwrap_or(true) {
            // The machine is stopped: record the configuration, change nothing; the next apply with the host
            // running deploys it (files and services keep describing what the host has).
            let prior = req.prior.clone().unwrap_or_default();
            state.files = prior.files;
            state.services = prior.services;
            state.deployed_version = prior.deployed_version;
            state.authelia_image = prior.authelia_image;
            state.host_key = state.host_key.or(prior.host_key);
            return Some(state);
        }
        let provider = self.provider_config();
        let phase = if creating {
            connect::Phase::Create
        } else {
            connect::Phase::Update
        };
        crate::progress::report("connect", "start", &state.host);
        let session = match connect::open(&state, &provider, phase, &req.ctx).await {
            Ok(s) => s,
            Err(e) => {
                host_error(diags, "Could not connect to the host", &e);
                return None;
            }
        };
        crate::progress::report("connect", "done", session.host());
        if state.host_key.is_none() {
            state.host_key = Some(session.host_key().public_key.clone());
        }
        let secrets = secrets_for(&session, req, diags).await?;
        let bundle = render(&state, &secrets, diags)?;
        // The plan promised these files (read from the apps' and sites' directories then): a local edit since would
        // deploy other bytes than planned, which Terraform refuses only after the host changed.
        if let Some(planned) = state.files.as_ref() {
            let now = bundle.managed_hashes();
            let changed: Vec<&String> = now
                .iter()
                .filter(|(p, h)| planned.get(*p) != Some(*h))
                .map(|(p, _)| p)
                .chain(planned.keys().filter(|p| !now.contains_key(*p)))
                .collect();
            if !changed.is_empty() {
                diags.error(
                    "Local files changed since the plan",
                    format!(
                        "{} changed after the plan was made (e.g. {}); nothing was deployed. Plan and apply again.",
                        if changed.len() == 1 { "A file".to_string() } else { format!("{} files", changed.len()) },
                        changed.iter().take(3).map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                );
                session.close().await;
                return None;
            }
        }
        let archives: Vec<std::path::PathBuf> = state
            .image_archives
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect();
        let domain = bundle.manifest.inputs.domain.clone();
        let dir = state.dir();
        let params = host::DeployParams {
            dir: &dir,
            bundle: &bundle,
            domain: &domain,
            install_docker: state.docker_install.as_deref() != Some("skip"),
            image_archives: &archives,
            build_devbox: state.devbox_build.unwrap_or(false),
            services: &state.services_run(),
            health_timeout: connect::phase_timeout(&state, phase),
            cancel: &req.ctx.cancel,
        };
        let outcome = host::deploy(&session, &params).await;
        let stats = session.stats();
        session.close().await;
        match outcome {
            Ok(o) => {
                tracing::info!(
                    connections = stats.connections,
                    commands = stats.commands,
                    uploads = stats.uploads,
                    bytes = o.uploaded_bytes,
                    recreated = ?o.recreated,
                    "cloudcode_stack applied"
                );
                state.files = Some(bundle.managed_hashes());
                state.services = Some(
                    o.services
                        .iter()
                        .map(|(k, v)| (k.clone(), v.status()))
                        .collect(),
                );
                state.deployed_version = Some(cloudcode_bundle::CLOUDCODE_VERSION.to_string());
                state.authelia_image = Some(bundle.manifest.inputs.authelia_image());
                Some(state)
            }
            Err(e) => {
                host_error(diags, "Deploying cloudcode failed", &e);
                // A create that reached the host leaves the object in state (tainted) so the next apply converges;
                // an update keeps the prior state.
                if creating {
                    state.files = Some(BTreeMap::new());
                    state.services = None;
                    Some(state)
                } else {
                    None
                }
            }
        }
    }
}

#[async_trait]
impl Resource for Stack {
    type State = StackState;

    fn type_name(&self) -> &'static str {
        "cloudcode_stack"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    async fn validate(&self, config: &Typed<StackState>, diags: &mut Diagnostics) {
        validate_config(config, diags);
    }

    async fn plan(&self, req: &mut PlanRequest<StackState>, diags: &mut Diagnostics) {
        plan(req, &self.provider_config(), diags);
    }

    async fn create(
        &self,
        req: &mut ApplyRequest<StackState>,
        diags: &mut Diagnostics,
    ) -> Option<StackState> {
        self.apply(req, diags, true).await
    }

    async fn read(
        &self,
        req: &mut ReadRequest<StackState>,
        diags: &mut Diagnostics,
    ) -> Option<StackState> {
        let mut state = req.state.clone();
        // State written before the attribute existed holds null for what was always its default.
        state.fallback_domain_service.get_or_insert_with(|| {
            cloudcode_bundle::validate::FALLBACK_DOMAIN_SERVICES[0].to_string()
        });
        if !state.host_running.unwrap_or(true) {
            return Some(state);
        }
        let session = match connect::open(
            &state,
            &self.provider_config(),
            connect::Phase::Read,
            &req.ctx,
        )
        .await
        {
            Ok(s) => s,
            // A key that was just changed (e.g. a new ssh_public_key that this apply puts on the host) is
            // refused until then: the plan goes on from the recorded state, with a warning.
            Err(e @ cloudcode_ssh::SshError::AuthRejected { .. }) => {
                diags.warning(
                    "Could not check the host for drift: it refused the SSH key",
                    format!(
                        "{e}. The recorded state is used for this plan. If the box's SSH key is being changed in \
                         this apply, that is expected and the next plan checks again; otherwise check \
                         private_key_path."
                    ),
                );
                return Some(state);
            }
            // No answer at all (refused, timed out): the machine is stopped — e.g. it suspended itself for
            // idleness (`idle_suspend_after`), which the configuration learns from the instance's tag — or out of
            // reach. Recorded as not running, so a configuration that says so (the module while the instance
            // is stopped) plans no change, and one that says it runs plans the apply that connects again.
            // Only the host itself (through a jump host, the bastion may be what does not answer).
            Err(e @ cloudcode_ssh::SshError::ConnectTimeout { .. })
                if state.jump_host.is_none() =>
            {
                diags.warning(
                    "The host did not answer: recorded as not running",
                    format!(
                        "{e}. host_running is read as false for this plan (a stopped machine, e.g. one that \
                         suspended itself for idleness). If the host should be running, the apply connects \
                         again and checks it."
                    ),
                );
                state.host_running = Some(false);
                return Some(state);
            }
            Err(e) => {
                host_error(
                    diags,
                    "Could not connect to the host to check for drift",
                    &e,
                );
                return Some(state);
            }
        };
        let facts = host::inspect_checked(&session, &state.dir()).await;
        let stats = session.stats();
        session.close().await;
        tracing::info!(
            connections = stats.connections,
            commands = stats.commands,
            "cloudcode_stack read"
        );
        match facts {
            Ok(f) => {
                // What the host has, for the files this stack manages: a hand edit or a deleted file is drift.
                if let Some(files) = state.files.as_mut() {
                    for (path, sha) in files.iter_mut() {
                        *sha = f
                            .files
                            .get(path)
                            .cloned()
                            .unwrap_or_else(|| "missing".to_string());
                    }
                }
                state.services = Some(
                    state
                        .services_run()
                        .iter()
                        .map(|s| {
                            (
                                s.to_string(),
                                f.services
                                    .get(s.as_str())
                                    .map(|x| x.read_status())
                                    .unwrap_or("missing".into()),
                            )
                        })
                        .collect(),
                );
            }
            Err(e) => host_error(diags, "Could not inspect the host", &e),
        }
        Some(state)
    }

    async fn update(
        &self,
        req: &mut ApplyRequest<StackState>,
        diags: &mut Diagnostics,
    ) -> Option<StackState> {
        self.apply(req, diags, false).await
    }

    async fn delete(&self, req: &mut DeleteRequest<StackState>, diags: &mut Diagnostics) {
        let state = &req.prior;
        if !state.remote_teardown.unwrap_or(true) {
            tracing::info!("forgetting the host without touching it (remote_teardown off)");
            return;
        }
        // A host recorded as not running (suspended, or found not answering by a read) is torn down when it
        // answers after all; when it does not, it is forgotten with a warning (what it has stays on it).
        let stopped = !state.host_running.unwrap_or(true);
        let session = match connect::open(
            state,
            &self.provider_config(),
            connect::Phase::Delete,
            &req.ctx,
        )
        .await
        {
            Ok(s) => s,
            Err(e) if stopped => {
                diags.warning(
                    "The stopped host was not torn down",
                    format!(
                        "{e}\n\nThe stack is forgotten; its containers, files and volumes stay on the machine \
                         (remove them with `docker compose down` in the stack's directory when it runs again)."
                    ),
                );
                return;
            }
            Err(e) => {
                diags.error(
                    "Could not reach the host to tear the stack down",
                    format!(
                        "{e}\n\nIf the machine is gone, set remote_teardown = false and apply, then destroy again."
                    ),
                );
                return;
            }
        };
        let dir = state.dir();
        let manifest = session
            .read_file(&format!("{dir}/{}", paths::MANIFEST))
            .await
            .ok()
            .flatten();
        let mut rendered: Vec<String> = state
            .files
            .clone()
            .unwrap_or_default()
            .into_keys()
            .collect();
        if let Some(m) =
            manifest.and_then(|b| serde_json::from_slice::<cloudcode_bundle::Manifest>(&b).ok())
        {
            rendered.extend(m.files.into_keys());
            rendered.extend(m.secret_files.into_iter().map(|f| f.path));
        }
        rendered.push(paths::MANIFEST.to_string());
        rendered.sort();
        rendered.dedup();
        let result = host::teardown(
            &session,
            &dir,
            &rendered,
            state.destroy_volumes.unwrap_or(false),
        )
        .await;
        session.close().await;
        if let Err(e) = result {
            host_error(diags, "Tearing the stack down failed", &e);
        }
    }

    async fn import(
        &self,
        id: &str,
        ctx: &Ctx,
        diags: &mut Diagnostics,
    ) -> Option<(StackState, Private)> {
        let Some(mut state) = connect::parse_import_id(id) else {
            diags.error(
                "Invalid import id",
                format!("expected user@host:port/remote_dir, e.g. root@47.1.2.3:22/opt/cloudcode; got {id:?}"),
            );
            return None;
        };
        let session = match connect::open(
            &state,
            &self.provider_config(),
            connect::Phase::Read,
            ctx,
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                host_error(
                    diags,
                    "Could not connect to the host to import it (import uses the provider's ssh_private_key or the SSH agent)",
                    &e,
                );
                return None;
            }
        };
        state.host_key = Some(session.host_key().public_key.clone());
        let manifest = session
            .read_file(&format!("{}/{}", state.dir(), paths::MANIFEST))
            .await;
        session.close().await;
        let manifest = match manifest {
            Ok(Some(b)) => serde_json::from_slice::<cloudcode_bundle::Manifest>(&b)
                .ok()
                .map(|m| (m, hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&b)))),
            _ => None,
        };
        let Some((m, sha)) = manifest else {
            diags.error(
                "Nothing to import",
                format!(
                    "{} has no readable {} written by cloudcode.",
                    state.dir(),
                    paths::MANIFEST
                ),
            );
            return None;
        };
        state.adopt_inputs(&m, &sha);
        Some((state, Private::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_versions_come_from_the_tag() {
        assert_eq!(
            image_version("docker.io/authelia/authelia:4.39.20"),
            Some((4, 39, 20))
        );
        assert_eq!(
            image_version("registry.example.com:5000/authelia:v4.39"),
            Some((4, 39, 0))
        );
        assert_eq!(
            image_version("authelia/authelia:4.39.20-alpine"),
            Some((4, 39, 20))
        );
        assert_eq!(image_version("registry.example.com:5000/authelia"), None);
        assert_eq!(image_version("authelia/authelia:latest"), None);
        assert_eq!(image_version("authelia/authelia@sha256:abcd"), None);
    }

    #[test]
    fn an_older_authelia_is_refused_unless_allowed() {
        let state = |image: &str, allow: bool| StackState {
            authelia_image: Some(image.to_string()),
            allow_authelia_downgrade: Some(allow),
            ..StackState::default()
        };
        let check = |prior: &StackState, planned: &StackState| {
            let mut d = Diagnostics::new();
            refuse_authelia_downgrade(Some(prior), planned, &mut d);
            d
        };
        let deployed = state("docker.io/authelia/authelia:4.39.20", false);
        let d = check(
            &deployed,
            &state("docker.io/authelia/authelia:4.39.15", false),
        );
        assert!(d.has_errors());
        let text = format!("{d:?}");
        assert!(
            text.contains("Authelia downgrade refused")
                && text.contains("allow_authelia_downgrade"),
            "{text}"
        );
        // Allowed explicitly, the same version elsewhere, a newer one, or a tag that is no version.
        for (image, allow) in [
            ("docker.io/authelia/authelia:4.39.15", true),
            ("mirror.example.com/authelia:4.39.20", false),
            ("docker.io/authelia/authelia:4.40.0", false),
            ("docker.io/authelia/authelia:latest", false),
        ] {
            assert!(
                !check(&deployed, &state(image, allow)).has_errors(),
                "{image}"
            );
        }
        // Nothing deployed yet.
        let mut d = Diagnostics::new();
        refuse_authelia_downgrade(None, &state("x:1.0.0", false), &mut d);
        assert!(!d.has_errors());
    }

    #[test]
    fn effective_domain_falls_back_to_sslip_for_ipv4() {
        assert_eq!(
            effective_domain(None, "47.1.2.3", None).unwrap(),
            "47-1-2-3.sslip.io"
        );
        assert_eq!(
            effective_domain(Some(""), "47.1.2.3", None).unwrap(),
            "47-1-2-3.sslip.io"
        );
        assert_eq!(
            effective_domain(Some("code.example.com"), "47.1.2.3", None).unwrap(),
            "code.example.com"
        );
        assert!(effective_domain(None, "vm.example.com", None).is_err());
        // Caddy, Authelia and the URLs get the ASCII form of what the user wrote.
        assert_eq!(
            effective_domain(Some("Code.Example.COM"), "47.1.2.3", None).unwrap(),
            "code.example.com"
        );
        assert_eq!(
            effective_domain(Some("例子.中国"), "47.1.2.3", None).unwrap(),
            "xn--fsqu00a.xn--fiqs8s"
        );
        // The chosen fallback service names the host; a domain of the user's own ignores it.
        assert_eq!(
            effective_domain(None, "47.1.2.3", Some("nip.io")).unwrap(),
            "47-1-2-3.nip.io"
        );
        assert_eq!(
            effective_domain(Some("code.example.com"), "47.1.2.3", Some("nip.io")).unwrap(),
            "code.example.com"
        );
    }

    #[test]
    fn tracked_files_do_not_depend_on_the_write_only_secrets() {
        // Plan renders without secrets, apply with them: the tracked hashes must agree, or Terraform would
        // reject the apply result as inconsistent with the plan.
        let s = StackState {
            host: "47.1.2.3".into(),
            admin_username: "admin".into(),
            admin_email: "admin@example.com".into(),
            admin_password_wo_version: Some(2),
            llm_api_key_wo_version: Some(1),
            ..Default::default()
        };
        let mut diags = Diagnostics::new();
        let plain = render(&s, &Secrets::default(), &mut diags).unwrap();
        let secrets = Secrets {
            admin_password_hash: Some(
                cloudcode_bundle::hash_password("correct-horse-battery").unwrap(),
            ),
            llm_api_key: Some("sk-test-0123456789".into()),
            ..Default::default()
        };
        let full = render(&s, &secrets, &mut diags).unwrap();
        assert!(diags.is_empty());
        assert_eq!(plain.managed_hashes(), full.managed_hashes());
        assert!(
            full.files.len() > plain.files.len(),
            "secret files are rendered only with secrets"
        );
    }

    fn im_stack(im: ImBlock) -> StackState {
        StackState {
            host: "47.1.2.3".into(),
            admin_username: "admin".into(),
            admin_email: "admin@example.com".into(),
            admin_password_wo: Some("correct-horse-battery".into()),
            private_key_path: Some("/k".into()),
            im: vec![im],
            ..Default::default()
        }
    }

    fn plan_errors(prior: Option<StackState>, config: StackState) -> String {
        let mut req = PlanRequest {
            config: Typed {
                value: config.clone(),
                unknown: Default::default(),
            },
            prior,
            planned: Typed {
                value: config,
                unknown: Default::default(),
            },
            private: Private::default(),
            requires_replace: Vec::new(),
            ctx: Ctx::default(),
        };
        let mut d = Diagnostics::new();
        plan(
            &mut req,
            &crate::provider::ProviderConfig::default(),
            &mut d,
        );
        format!("{d:?}")
    }

    #[test]
    fn an_im_secret_version_without_its_value_is_refused_on_create_and_on_a_bump_only() {
        let block = ImBlock {
            telegram_token_wo_version: Some(1),
            ..Default::default()
        };
        let text = plan_errors(None, im_stack(block.clone()));
        assert!(
            text.contains("im.telegram_token_wo is required") && text.contains("creating a stack"),
            "{text}"
        );
        // Same version as deployed, value left null: the host keeps its token.
        let prior = im_stack(block.clone());
        assert!(!plan_errors(Some(prior.clone()), im_stack(block.clone())).contains("is required"));
        let bumped = ImBlock {
            telegram_token_wo_version: Some(2),
            ..block.clone()
        };
        let text = plan_errors(Some(prior), im_stack(bumped));
        assert!(
            text.contains("im.telegram_token_wo is required")
                && text.contains("its version changed"),
            "{text}"
        );
        let with_token = ImBlock {
            telegram_token_wo: Some("123:abc".into()),
            ..block
        };
        assert!(!plan_errors(None, im_stack(with_token)).contains("is required"));
    }

    #[test]
    fn a_proxy_version_without_the_proxy_is_refused_on_create_and_on_a_bump_only() {
        let stack = |url: Option<&str>, version: Option<i64>| StackState {
            proxy_wo: url.map(str::to_string),
            proxy_wo_version: version,
            ..im_stack(ImBlock::default())
        };
        let text = plan_errors(None, stack(None, Some(1)));
        assert!(
            text.contains("proxy_wo is required") && text.contains("creating a stack"),
            "{text}"
        );
        // Same version as deployed, proxy left null: the host keeps its proxy files.
        let prior = stack(None, Some(1));
        assert!(!plan_errors(Some(prior.clone()), stack(None, Some(1))).contains("proxy_wo is"));
        let text = plan_errors(Some(prior.clone()), stack(None, Some(2)));
        assert!(
            text.contains("proxy_wo is required") && text.contains("its version changed"),
            "{text}"
        );
        // Removing the proxy needs nothing; a new version with its value neither.
        assert!(!plan_errors(Some(prior), stack(None, None)).contains("proxy_wo is"));
        assert!(!plan_errors(None, stack(Some("http://p:3128"), Some(1))).contains("proxy_wo is"));
        // A proxy without a version is refused at validate, naming the version.
        let mut d = Diagnostics::new();
        validate_config(
            &Typed {
                value: stack(Some("http://p:3128"), None),
                unknown: Default::default(),
            },
            &mut d,
        );
        let text = format!("{d:?}");
        assert!(
            text.contains("proxy_wo_version is required with proxy_wo"),
            "{text}"
        );
    }

    #[test]
    fn an_im_secret_without_its_version_and_bad_im_settings_are_named_by_path() {
        let block = ImBlock {
            proxy_wo: Some("socks5://u:p@h:1080".into()),
            telegram_api_base: Some("ftp://x".into()),
            ..Default::default()
        };
        let mut d = Diagnostics::new();
        validate_config(
            &Typed {
                value: im_stack(block),
                unknown: Default::default(),
            },
            &mut d,
        );
        let text = format!("{d:?}");
        assert!(
            text.contains("im.proxy_wo_version is required with im.proxy_wo"),
            "{text}"
        );
        assert!(
            text.contains("telegram_api_base") && text.contains("no chat platform"),
            "{text}"
        );
        assert!(!text.contains("u:p@"), "{text}");
    }

    #[test]
    fn the_box_id_follows_the_resource_id_and_services_include_im() {
        let s = im_stack(ImBlock {
            telegram_token_wo_version: Some(1),
            ..Default::default()
        });
        let settings = bundle_settings(&s).unwrap();
        assert_eq!(
            settings.im.unwrap().box_id,
            cloudcode_bundle::im_box_id(&stack_id(&s))
        );
        assert!(desired_services(&s).contains_key("im"));
        assert!(!desired_services(&StackState::default()).contains_key("im"));
        let idle = StackState {
            idle_suspend_after: Some("2h".into()),
            ..Default::default()
        };
        assert_eq!(
            desired_services(&idle).keys().collect::<Vec<_>>(),
            ["authelia", "caddy", "devbox", "idle"]
        );
        assert_eq!(
            field_path("im.telegram_api_base").1,
            im_path("telegram_api_base")
        );
        assert_eq!(
            field_path("opencode_permission.bash").1,
            AttrPath::attr("opencode_permission").then_key("bash")
        );
    }

    #[test]
    fn im_secrets_do_not_change_the_tracked_files() {
        let s = im_stack(ImBlock {
            telegram_token_wo_version: Some(1),
            proxy_wo_version: Some(1),
            ..Default::default()
        });
        let mut diags = Diagnostics::new();
        let plain = render(&s, &Secrets::default(), &mut diags).unwrap();
        let secrets = Secrets {
            im_telegram_token: Some("123:abc".into()),
            im_proxy: Some("http://proxy:3128".into()),
            ..Default::default()
        };
        let full = render(&s, &secrets, &mut diags).unwrap();
        assert!(diags.is_empty());
        assert_eq!(plain.managed_hashes(), full.managed_hashes());
        assert!(
            full.files.contains_key("secrets/im_telegram_token")
                && full.files.contains_key("secrets/im_proxy")
        );
    }
}
