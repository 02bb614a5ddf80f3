//! Rendering of the bundle: every file the host needs under `remote_dir`, from validated `Settings` and the
//! write-only `Secrets` of this apply, deterministically (same inputs → same bytes), plus `manifest.json`.

use std::collections::BTreeMap;

use minijinja::{context, Environment, UndefinedBehavior, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::password::{ARGON2_KEY_LEN, ARGON2_M, ARGON2_P, ARGON2_SALT_LEN, ARGON2_T};
use crate::settings::{Secrets, Settings};
use crate::validate::{self, Invalid};

/// The cloudcode version recorded in rendered files and the manifest.
pub const CLOUDCODE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Compose service name and port of the forward-auth endpoint (Authelia, or the tests' contract double).
pub const AUTH_SERVICE: &str = "authelia";
/// Port Authelia listens on inside the Compose network.
pub const AUTH_PORT: u16 = 9091;
/// OpenCode's port inside the devbox.
pub const OPENCODE_PORT: u16 = 4096;
/// ttyd's port inside the devbox.
pub const TTYD_PORT: u16 = 7681;
/// Label on each service holding the hash of the configuration it uses.
pub const HASH_LABEL: &str = "dev.cloudcode.config-hash";
/// Where Authelia's filesystem notifier writes one-time codes, inside the `authelia` container.
pub const NOTIFICATION_FILE: &str = "/data/notification.txt";

/// Paths (relative to `remote_dir`) of the files the bundle renders.
pub mod paths {
    pub const COMPOSE: &str = "docker-compose.yml";
    pub const CADDYFILE: &str = "caddy/Caddyfile";
    pub const AUTHELIA_CONFIG: &str = "authelia/configuration.yml";
    pub const USERS_DATABASE: &str = "authelia/users_database.yml";
    pub const ENV: &str = ".env";
    pub const OPENCODE_JSON: &str = "devbox/opencode.json";
    pub const DOCKERFILE: &str = "devbox/Dockerfile";
    pub const ENTRYPOINT: &str = "devbox/entrypoint.sh";
    pub const ENSURE_SECRETS: &str = "bin/ensure-secrets.sh";
    /// The chat bridge's configuration (`./im` is mounted read-only at `/etc/cloudcode-im`).
    pub const IM_CONFIG: &str = "im/config.json";
    /// The devbox's proxy environment (`proxy_wo`), a Compose env-file.
    pub const PROXY_ENV: &str = "secrets/proxy.env";
    /// The proxy URL alone (`proxy_wo`), for a chat bridge without its own proxy.
    pub const PROXY_URL: &str = "secrets/proxy";
    /// The host Docker daemon's settings (`mirrors`), installed as /etc/docker/daemon.json by the deploy.
    pub const DAEMON_JSON: &str = "docker/daemon.json";
    pub const MANIFEST: &str = "manifest.json";
    pub const SECRETS_DIR: &str = "secrets";
}

/// A secret generated once on the host (never in Terraform state), read by Authelia through `<ENV>` = file path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HostSecret {
    /// File name under `secrets/`, also the Compose secret name.
    pub name: &'static str,
    /// Path relative to `remote_dir`.
    pub path: &'static str,
    /// Authelia's `*_FILE` environment variable.
    pub env: &'static str,
    /// Number of random alphanumeric characters.
    pub length: usize,
}

/// Authelia's secrets, created by `bin/ensure-secrets.sh` if absent and never overwritten.
pub const HOST_SECRETS: [HostSecret; 3] = [
    HostSecret {
        name: "authelia_session_secret",
        path: "secrets/authelia_session_secret",
        env: "AUTHELIA_SESSION_SECRET_FILE",
        length: 64,
    },
    HostSecret {
        name: "authelia_storage_encryption_key",
        path: "secrets/authelia_storage_encryption_key",
        env: "AUTHELIA_STORAGE_ENCRYPTION_KEY_FILE",
        length: 64,
    },
    HostSecret {
        name: "authelia_reset_password_jwt_secret",
        path: "secrets/authelia_reset_password_jwt_secret",
        env: "AUTHELIA_IDENTITY_VALIDATION_RESET_PASSWORD_JWT_SECRET_FILE",
        length: 64,
    },
];

/// Caddy's JSON access log with `idle_suspend_after` (volume `caddy_logs`), which the idle agent reads.
pub const IDLE_ACCESS_LOG: &str = "/var/log/caddy/access.log";
/// The idle agent's Compose service name (`idle_suspend_after`).
pub const IDLE_SERVICE: &str = "idle";
/// The chat bridge's Compose service name.
pub const IM_SERVICE: &str = "im";
/// The user id the bridge runs as in its image; its secret files are owned by it on the host.
pub const IM_UID: u32 = 10001;
/// The longest box id the bridge accepts (`cloudcode_im::binding::MAX_BOX_ID`).
pub const IM_BOX_ID_MAX: usize = 41;

/// A chat bridge secret: a file under `secrets/` written from a write-only attribute of the `im` block and
/// mounted by Compose at `/run/secrets/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImSecret {
    /// File name under `secrets/`, also the Compose secret name.
    pub name: &'static str,
    /// Path relative to `remote_dir`.
    pub path: &'static str,
    /// The write-only attribute it comes from.
    pub source: &'static str,
}

/// The bot token, the DingTalk app secret and the proxy URL, in that order.
pub const IM_SECRETS: [ImSecret; 3] = [
    ImSecret {
        name: "im_telegram_token",
        path: "secrets/im_telegram_token",
        source: "im.telegram_token_wo",
    },
    ImSecret {
        name: "im_dingtalk_secret",
        path: "secrets/im_dingtalk_secret",
        source: "im.dingtalk_client_secret_wo",
    },
    ImSecret {
        name: "im_proxy",
        path: "secrets/im_proxy",
        source: "im.proxy_wo",
    },
];

/// The bridge's box id for a stack: the stack resource's id reduced to ASCII letters and digits, at most
/// [`IM_BOX_ID_MAX`] of them (the bridge's `short_box_id` rule), so it is the same on every apply.
pub fn im_box_id(stack_id: &str) -> String {
    stack_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(IM_BOX_ID_MAX)
        .collect()
}

/// The bridge secrets `im` uses: the bot token with Telegram, the app secret with DingTalk, the proxy.
pub fn im_secrets_used(im: &crate::settings::ImSettings) -> Vec<ImSecret> {
    let [telegram, dingtalk, proxy] = IM_SECRETS;
    [
        (im.telegram(), telegram),
        (im.dingtalk(), dingtalk),
        (im.proxy(), proxy),
    ]
    .into_iter()
    .filter_map(|(on, x)| on.then_some(x))
    .collect()
}

/// The value of a bridge secret this render supplies (None: keep the host's file).
fn im_secret_value<'a>(x: &ImSecret, secrets: &'a Secrets) -> Option<&'a str> {
    let [telegram, dingtalk, _proxy] = IM_SECRETS;
    if x.name == telegram.name {
        secrets.im_telegram_token.as_deref()
    } else if x.name == dingtalk.name {
        secrets.im_dingtalk_client_secret.as_deref()
    } else {
        secrets.im_proxy.as_deref()
    }
}

/// How the SSH layer treats a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileKind {
    /// Written whenever its bytes differ from the host's; its sha256 goes into state and drift detection.
    Managed,
    /// Holds a write-only secret (`source` = its Terraform attribute). Only present in a bundle when that secret
    /// was supplied; never compared for drift; its bytes must never be logged.
    Secret { source: &'static str },
}

/// One file of the bundle.
#[derive(Clone, PartialEq, Eq)]
pub struct File {
    pub bytes: Vec<u8>,
    /// Unix permission bits, e.g. 0o644.
    pub mode: u32,
    pub kind: FileKind,
}

impl File {
    /// Hex sha256 of the bytes.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.bytes)
    }
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("File");
        d.field("len", &self.bytes.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .field("kind", &self.kind);
        if self.kind == FileKind::Managed {
            d.field("sha256", &self.sha256());
        }
        d.finish()
    }
}

/// The rendered bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// Path relative to `remote_dir` → file. Includes `manifest.json`.
    pub files: BTreeMap<String, File>,
    /// The parsed manifest (also in `files["manifest.json"]`).
    pub manifest: Manifest,
    /// Optional files these settings do not use and that must not stay on the host (the chat bridge's
    /// configuration and secrets once `im`, or one of its platforms, is removed). Removed after a healthy deploy.
    pub retired: Vec<String>,
    /// The devbox's hash label: a serving devbox with another one is replaced by a new colour.
    pub devbox_hash: String,
}

impl Bundle {
    /// Path → sha256 of the managed files (what goes into state as `files`).
    pub fn managed_hashes(&self) -> BTreeMap<String, String> {
        self.files
            .iter()
            .filter(|(_, f)| f.kind == FileKind::Managed)
            .map(|(p, f)| (p.clone(), f.sha256()))
            .collect()
    }
}

/// Versions of the write-only attributes the host's files correspond to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct WriteOnlyVersions {
    pub admin_password_wo_version: i64,
    pub llm_api_key_wo_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub im_telegram_token_wo_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub im_dingtalk_client_secret_wo_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub im_proxy_wo_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_wo_version: Option<i64>,
}

/// A file that holds a write-only secret and is kept on the host when the secret is not supplied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SecretFile {
    pub path: String,
    /// The write-only Terraform attribute it comes from.
    pub source: String,
}

/// `manifest.json`: enough to read an imported host back into state without a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Manifest {
    pub cloudcode_version: String,
    /// sha256 over the sorted `path sha256` lines of the managed files (manifest excluded).
    pub bundle_hash: String,
    /// Managed file → sha256 (manifest excluded).
    pub files: BTreeMap<String, String>,
    /// Files holding write-only secrets (no hashes).
    pub secret_files: Vec<SecretFile>,
    /// Files generated on the host by `bin/ensure-secrets.sh`.
    pub host_secret_files: Vec<String>,
    pub inputs: Settings,
    pub write_only_versions: WriteOnlyVersions,
}

/// Rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Settings rejected by [`validate::validate`]: (attribute, error) pairs.
    #[error("invalid settings: {}", .0.iter().map(|(f, e)| format!("{f}: {e}")).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<(String, Invalid)>),
    /// A template failed (a bug, or a value no rule caught). Never includes secret values.
    #[error("could not render {file}: {message}")]
    Template { file: &'static str, message: String },
}

struct Template {
    name: &'static str,
    source: &'static str,
}

const TEMPLATES: [Template; 11] = [
    Template {
        name: paths::COMPOSE,
        source: include_str!("../templates/docker-compose.yml.j2"),
    },
    Template {
        name: paths::CADDYFILE,
        source: include_str!("../templates/caddy/Caddyfile.j2"),
    },
    Template {
        name: paths::AUTHELIA_CONFIG,
        source: include_str!("../templates/authelia/configuration.yml.j2"),
    },
    Template {
        name: paths::USERS_DATABASE,
        source: include_str!("../templates/authelia/users_database.yml.j2"),
    },
    Template {
        name: paths::ENV,
        source: include_str!("../templates/env.j2"),
    },
    Template {
        name: paths::PROXY_ENV,
        source: include_str!("../templates/proxy.env.j2"),
    },
    Template {
        name: paths::OPENCODE_JSON,
        source: include_str!("../templates/devbox/opencode.json.j2"),
    },
    Template {
        name: paths::DOCKERFILE,
        source: include_str!("../templates/devbox/Dockerfile.j2"),
    },
    Template {
        name: paths::ENTRYPOINT,
        source: include_str!("../templates/devbox/entrypoint.sh.j2"),
    },
    Template {
        name: paths::ENSURE_SECRETS,
        source: include_str!("../templates/bin/ensure-secrets.sh.j2"),
    },
    Template {
        name: crate::runtime::DEVBOX_CADDY,
        source: include_str!("../templates/caddy/devbox.caddy.j2"),
    },
];

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn build_environment() -> Result<Environment<'static>, (&'static str, String)> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    crate::escape::register(&mut env);
    for t in &TEMPLATES {
        env.add_template(t.name, t.source)
            .map_err(|e| (t.name, e.to_string()))?;
    }
    Ok(env)
}

/// The template environment, parsed once per process.
pub(crate) fn environment() -> Result<&'static Environment<'static>, RenderError> {
    static ENV: std::sync::OnceLock<Result<Environment<'static>, (&'static str, String)>> =
        std::sync::OnceLock::new();
    ENV.get_or_init(build_environment)
        .as_ref()
        .map_err(|(file, message)| RenderError::Template {
            file,
            message: message.clone(),
        })
}

pub(crate) fn render_one(
    env: &Environment<'_>,
    name: &'static str,
    ctx: &Value,
) -> Result<Vec<u8>, RenderError> {
    let t = env.get_template(name).map_err(|e| RenderError::Template {
        file: name,
        message: e.to_string(),
    })?;
    // minijinja errors name the filter and template line, not the secret value: dotenv_quote's message is fixed.
    t.render(ctx)
        .map(String::into_bytes)
        .map_err(|e| RenderError::Template {
            file: name,
            message: e.to_string(),
        })
}

/// The environment variable OpenCode reads the API key from, per provider.
pub fn llm_key_env(provider: &str) -> &'static str {
    match provider {
        "anthropic" => "ANTHROPIC_API_KEY",
        "gemini" => "GOOGLE_GENERATIVE_AI_API_KEY",
        "openai_compatible" => "CLOUDCODE_LLM_API_KEY",
        _ => "OPENAI_API_KEY",
    }
}

/// OpenCode's provider id for our `llm_provider`.
fn opencode_provider_id(provider: &str) -> &'static str {
    match provider {
        "anthropic" => "anthropic",
        "gemini" => "google",
        "openai_compatible" => "cloudcode",
        _ => "openai",
    }
}

/// OpenCode's configuration: the model, and for a base URL / OpenAI-compatible endpoint the provider block.
fn opencode_config(s: &Settings) -> serde_json::Value {
    use serde_json::{json, Map, Value as J};
    let id = opencode_provider_id(&s.llm_provider);
    let mut root = Map::new();
    root.insert("$schema".into(), json!("https://opencode.ai/config.json"));
    root.insert("autoupdate".into(), json!(false));
    if let Some(m) = &s.llm_model {
        root.insert("model".into(), json!(format!("{id}/{m}")));
    }
    let mut provider = Map::new();
    if s.llm_provider == "openai_compatible" {
        let mut models = Map::new();
        if let Some(m) = &s.llm_model {
            models.insert(m.clone(), json!({ "name": m }));
        }
        provider.insert(
            id.into(),
            json!({
                "npm": "@ai-sdk/openai-compatible",
                "name": "OpenAI-compatible (cloudcode)",
                "options": { "baseURL": s.llm_base_url, "apiKey": format!("{{env:{}}}", llm_key_env(&s.llm_provider)) },
                "models": J::Object(models),
            }),
        );
    } else if let Some(u) = &s.llm_base_url {
        provider.insert(id.into(), json!({ "options": { "baseURL": u } }));
    }
    if !provider.is_empty() {
        root.insert("provider".into(), J::Object(provider));
    }
    if !s.opencode_permission.is_empty() {
        root.insert("permission".into(), json!(s.opencode_permission));
    }
    J::Object(root)
}

/// Hash for a service label: its files' hashes plus the write-only versions it depends on.
fn service_hash(
    files: &BTreeMap<String, File>,
    paths: &[&str],
    extra: &[(&str, String)],
) -> String {
    let mut h = Sha256::new();
    for p in paths {
        if let Some(f) = files.get(*p) {
            h.update(format!("{p} {}\n", f.sha256()));
        }
    }
    for (k, v) in extra {
        h.update(format!("{k}={v}\n"));
    }
    hex::encode(h.finalize())
}

/// Caddy's forward-auth request path for a site block served on `port` (None: 443). Authelia builds the
/// portal URL it redirects to from the session cookie's `authelia_url` (port 443) unless the request names one;
/// it checks the name against the cookie domain by host only, so passing the site block's port keeps a login
/// on `https_alt_port` on that port (recorded from Authelia 4.39.20). Query-escaped as Go's `QueryEscape`.
pub fn forward_auth_uri(domain: &str, port: Option<u16>) -> String {
    let portal = match port {
        Some(p) => format!("https://auth.{domain}:{p}/"),
        None => format!("https://auth.{domain}/"),
    };
    let escaped: String = url::form_urlencoded::byte_serialize(portal.as_bytes()).collect();
    format!("/api/authz/forward-auth?authelia_url={escaped}")
}

/// Renders every file for `settings` (validated first; errors name the attribute). Secret-bearing files are
/// included only when their secret is supplied in `secrets`.
pub fn render(settings: &Settings, secrets: &Secrets) -> Result<Bundle, RenderError> {
    check_inputs(settings, secrets)?;
    let env = environment()?;
    let apps = crate::apps::render::render(settings, secrets)?;
    let base = context! { ..base_context(settings), ..apps_context(&apps) };
    let mut files = config_files(env, settings, &base)?;
    files.extend(apps.files);
    files.extend(secret_files(env, secrets, &base)?);
    files.extend(crate::proxy::secret_files(env, settings, secrets, &base)?);
    if let Some(daemon) = crate::mirrors::daemon_json(settings)? {
        files.insert(paths::DAEMON_JSON.to_string(), managed(daemon, 0o644));
    }
    if let Some(im) = &settings.im {
        files.insert(
            paths::IM_CONFIG.to_string(),
            managed(im_config(settings, im)?, 0o644),
        );
        for secret in im_secrets_used(im) {
            if let Some(v) = im_secret_value(&secret, secrets) {
                files.insert(
                    secret.path.to_string(),
                    File {
                        bytes: v.as_bytes().to_vec(),
                        mode: 0o600,
                        kind: FileKind::Secret {
                            source: secret.source,
                        },
                    },
                );
            }
        }
    }
    let devbox_hash = devbox_hash(settings, &files);
    let compose = compose_file(env, settings, &base, &files, &devbox_hash)?;
    files.insert(paths::COMPOSE.to_string(), compose);
    let manifest = manifest(settings, &files);
    files.insert(paths::MANIFEST.to_string(), manifest_file(&manifest)?);
    Ok(Bundle {
        files,
        manifest,
        retired: retired(settings),
        devbox_hash,
    })
}

/// Every settings rule, and the shape of the secrets: all errors at once, each naming its attribute.
fn check_inputs(settings: &Settings, secrets: &Secrets) -> Result<(), RenderError> {
    let mut errors = validate::validate(settings);
    if let Some(h) = &secrets.admin_password_hash {
        if !h.starts_with("$argon2id$v=19$")
            || h.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            errors.push((
                "admin_password_wo".into(),
                Invalid::new("the password hash is not a PHC argon2id hash"),
            ));
        }
    }
    if let Some(k) = &secrets.llm_api_key {
        if let Err(e) = validate::api_key(k) {
            errors.push(("llm_api_key_wo".into(), e));
        }
    }
    for (source, value, rule) in [
        (
            "im.telegram_token_wo",
            &secrets.im_telegram_token,
            validate::im_secret as fn(&str) -> Result<(), Invalid>,
        ),
        (
            "im.dingtalk_client_secret_wo",
            &secrets.im_dingtalk_client_secret,
            validate::im_secret,
        ),
        ("im.proxy_wo", &secrets.im_proxy, validate::proxy_url),
        ("proxy_wo", &secrets.proxy, validate::proxy_url),
    ] {
        if let Some(Err(e)) = value.as_deref().map(rule) {
            errors.push((source.into(), e));
        }
    }
    for (app, env) in &secrets.app_secret_env {
        for (k, v) in env {
            let field = format!("app_secret_env_wo.{app}.{k}");
            for r in [crate::apps::env_name(k), crate::apps::secret_env_value(v)] {
                if let Err(e) = r {
                    errors.push((field.clone(), e));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RenderError::Invalid(errors))
    }
}

/// What every template may use: the settings, the stack's fixed names and ports, and derived values.
fn base_context(s: &Settings) -> Value {
    let domain = s.domain.as_str();
    let auth_domain = format!("auth.{domain}");
    context! {
        version => CLOUDCODE_VERSION,
        domain,
        auth_domain,
        site_url => format!("https://{domain}"),
        auth_url => format!("https://auth.{domain}"),
        forward_auth_uri => forward_auth_uri(domain, None),
        forward_auth_uri_alt => s.https_alt_port.map(|p| forward_auth_uri(domain, Some(p))),
        acme_email => s.acme_email_or_admin(),
        tls_internal => s.tls_mode == "internal",
        alt_port => s.https_alt_port,
        terminal_enabled => s.terminal_enabled,
        auth_service => AUTH_SERVICE,
        auth_upstream => format!("{AUTH_SERVICE}:{AUTH_PORT}"),
        auth_listen => format!("tcp://:{AUTH_PORT}/"),
        devbox_caddy => crate::runtime::DEVBOX_CADDY.trim_start_matches("caddy/"),
        devbox_colours => crate::runtime::DEVBOX_COLOURS,
        opencode_port => OPENCODE_PORT,
        ttyd_port => TTYD_PORT,
        webauthn_display_name => "cloudcode",
        notification_file => NOTIFICATION_FILE,
        argon2_t => ARGON2_T,
        argon2_m => ARGON2_M,
        argon2_p => ARGON2_P,
        argon2_key_len => ARGON2_KEY_LEN,
        argon2_salt_len => ARGON2_SALT_LEN,
        admin_username => s.admin_username,
        admin_email => s.admin_email,
        admin_display_name => s.admin_display_name.as_deref().unwrap_or(&s.admin_username),
        opencode_version => s.opencode_version,
        opencode_config => Value::from_serialize(opencode_config(s)),
        llm_key_env => llm_key_env(&s.llm_provider),
        caddy_image => s.caddy_image(),
        authelia_image => s.authelia_image(),
        devbox_image => s.devbox_image(),
        devbox_build => s.devbox_build,
        timezone => s.timezone,
        remote_dir => s.remote_dir,
        host_secrets => Value::from_serialize(HOST_SECRETS),
        hash_label => HASH_LABEL,
        im => s.im.as_ref().map(|im| context! {
            service => IM_SERVICE,
            image => s.im_image(),
            uid => IM_UID,
            secrets => Value::from_serialize(im_mounts(s, im)),
        }),
        idle => s.idle_suspend.as_ref().map(|idle| context! {
            service => IDLE_SERVICE,
            image => s.agent_image(),
            after => idle.after,
            ecs_endpoint => idle.ecs_endpoint,
            access_log => IDLE_ACCESS_LOG,
        }),
        devbox_mirror_env => Value::from_serialize(crate::mirrors::devbox_env(s)),
        proxy => s.proxy_wo_version.map(|_| context! {
            env_file => paths::PROXY_ENV,
            no_proxy => crate::proxy::no_proxy(s),
            source => crate::proxy::SOURCE,
        }),
    }
}

/// What the templates render the apps and static sites from.
fn apps_context(a: &crate::apps::RenderedApps) -> Value {
    context! {
        apps => Value::from_serialize(&a.compose),
        app_volumes => Value::from_serialize(a.volumes()),
        host_routes => Value::from_serialize(&a.host_routes),
        public_paths => Value::from_serialize(&a.public_paths),
        login_paths => Value::from_serialize(&a.login_paths),
        auth_rules => Value::from_serialize(&a.auth_rules),
        has_sites => a.has_sites,
        sites_dir => crate::apps::SITES_DIR,
        sites_mount => crate::apps::SITES_MOUNT,
    }
}

/// The secrets Compose mounts into the bridge: its platforms' and its proxy (its own, or the stack's).
fn im_mounts(s: &Settings, im: &crate::settings::ImSettings) -> Vec<ImSecret> {
    let [telegram, dingtalk, _] = IM_SECRETS;
    [(im.telegram(), telegram), (im.dingtalk(), dingtalk)]
        .into_iter()
        .filter_map(|(on, x)| on.then_some(x))
        .chain(crate::proxy::bridge_secret(s, im))
        .collect()
}

/// The paths of the chat bridge's files these settings do not use (all of them without `im`).
fn retired(s: &Settings) -> Vec<String> {
    let used: Vec<&str> =
        s.im.as_ref()
            .map(|im| im_secrets_used(im).into_iter().map(|x| x.path).collect())
            .unwrap_or_default();
    let mut out: Vec<String> = IM_SECRETS
        .iter()
        .map(|x| x.path)
        .filter(|p| !used.contains(p))
        .map(str::to_string)
        .collect();
    if s.im.is_none() {
        out.push(paths::IM_CONFIG.to_string());
    }
    out.extend(crate::proxy::retired(s));
    if s.mirrors
        .as_ref()
        .is_none_or(|m| m.registry_mirrors.is_empty() && m.insecure_registries.is_empty())
    {
        out.push(paths::DAEMON_JSON.to_string());
    }
    out
}

/// The bridge's `config.json` (`cloudcode_im::config::FileConfig`): this stack as its one box, the platforms
/// configured, secrets as the files Compose mounts. Keys in a fixed order, so the bytes are deterministic.
fn im_config(s: &Settings, im: &crate::settings::ImSettings) -> Result<Vec<u8>, RenderError> {
    use serde_json::{json, Map};
    let secret_file = |name: &str| format!("/run/secrets/{name}");
    let [telegram, dingtalk, _] = IM_SECRETS;
    let name = s.domain.split('.').next().unwrap_or(&s.domain);
    let mut root = Map::new();
    root.insert("data_dir".into(), json!("/data"));
    root.insert(
        "boxes".into(),
        json!([{
            "id": im.box_id,
            "name": name,
            // The network alias both devbox colours carry.
            "opencode_url": format!("http://devbox:{OPENCODE_PORT}"),
            "web_url": format!("https://{}", s.domain),
        }]),
    );
    if im.telegram() {
        root.insert(
            "telegram".into(),
            json!({ "token_file": secret_file(telegram.name), "api_base": im.telegram_api_base }),
        );
    }
    if let Some(id) = &im.dingtalk_client_id {
        let mut d = Map::new();
        d.insert("client_id".into(), json!(id));
        d.insert(
            "client_secret_file".into(),
            json!(secret_file(dingtalk.name)),
        );
        if let Some(c) = &im.dingtalk_robot_code {
            d.insert("robot_code".into(), json!(c));
        }
        root.insert("dingtalk".into(), serde_json::Value::Object(d));
    }
    if let Some(proxy) = crate::proxy::bridge_secret(s, im) {
        root.insert("proxy_file".into(), json!(secret_file(proxy.name)));
    }
    let mut text = serde_json::to_string_pretty(&root).map_err(|e| RenderError::Template {
        file: paths::IM_CONFIG,
        message: e.to_string(),
    })?;
    text.push('\n');
    Ok(text.into_bytes())
}

fn managed(bytes: Vec<u8>, mode: u32) -> File {
    File {
        bytes,
        mode,
        kind: FileKind::Managed,
    }
}

/// The managed files rendered from the settings alone (the devbox's build files when it is built on the host).
fn config_files(
    env: &Environment<'static>,
    s: &Settings,
    base: &Value,
) -> Result<BTreeMap<String, File>, RenderError> {
    let mut wanted = vec![
        (paths::CADDYFILE, 0o644),
        (paths::AUTHELIA_CONFIG, 0o644),
        (paths::OPENCODE_JSON, 0o644),
        (paths::ENSURE_SECRETS, 0o755),
    ];
    if s.devbox_build {
        wanted.extend([(paths::DOCKERFILE, 0o644), (paths::ENTRYPOINT, 0o755)]);
    }
    wanted
        .into_iter()
        .map(|(path, mode)| {
            Ok((
                path.to_string(),
                managed(render_one(env, path, base)?, mode),
            ))
        })
        .collect()
}

/// The files that carry a write-only secret, each only when its secret is supplied (mode 0600).
fn secret_files(
    env: &Environment<'static>,
    secrets: &Secrets,
    base: &Value,
) -> Result<BTreeMap<String, File>, RenderError> {
    let mut files = BTreeMap::new();
    let mut add =
        |path: &'static str, source: &'static str, ctx: Value| -> Result<(), RenderError> {
            let bytes = render_one(env, path, &ctx)?;
            files.insert(
                path.to_string(),
                File {
                    bytes,
                    mode: 0o600,
                    kind: FileKind::Secret { source },
                },
            );
            Ok(())
        };
    if let Some(hash) = &secrets.admin_password_hash {
        let ctx = context! { ..base.clone(), ..context! { admin_password_hash => hash } };
        add(paths::USERS_DATABASE, "admin_password_wo", ctx)?;
    }
    if let Some(key) = &secrets.llm_api_key {
        let ctx = context! { ..base.clone(), ..context! { llm_api_key => key } };
        add(paths::ENV, "llm_api_key_wo", ctx)?;
    }
    Ok(files)
}

/// docker-compose.yml, whose per-service hash labels name what each service depends on: a change recreates
/// exactly the services it affects.
fn compose_file(
    env: &Environment<'static>,
    s: &Settings,
    base: &Value,
    files: &BTreeMap<String, File>,
    devbox_hash: &str,
) -> Result<File, RenderError> {
    let pw_version = (
        "admin_password_wo_version",
        s.admin_password_wo_version.to_string(),
    );
    let hashes = context! {
        // Not the Caddyfile: a Caddyfile-only change is reloaded in place (no downtime), not recreated.
        caddy => service_hash(files, &[], &[]),
        authelia => service_hash(files, &[paths::AUTHELIA_CONFIG], &[pw_version]),
        devbox => devbox_hash,
        im => s.im.as_ref().map(|im| service_hash(files, &[paths::IM_CONFIG], &im_versions(s, im))),
        idle => s.idle_suspend.as_ref().map(|_| service_hash(files, &[], &[])),
    };
    let ctx = context! { ..base.clone(), ..context! { hashes } };
    Ok(managed(render_one(env, paths::COMPOSE, &ctx)?, 0o644))
}

/// The devbox's label: everything its Compose definition uses, so the provider can tell from the serving colour's
/// label alone whether a new colour must be started (it never lets Compose recreate the serving one in place).
/// The proxy counts only when set, so stacks without one keep the label they had before it existed.
fn devbox_hash(s: &Settings, files: &BTreeMap<String, File>) -> String {
    let mut extra = vec![
        ("llm_api_key_wo_version", version(s.llm_api_key_wo_version)),
        ("image", s.devbox_image()),
        ("build", s.devbox_build.to_string()),
        ("opencode_version", s.opencode_version.clone()),
        ("timezone", s.timezone.clone()),
        ("terminal", s.terminal_enabled.to_string()),
    ];
    // NO_PROXY is rendered only with a proxy, so the list counts only then.
    if s.proxy_wo_version.is_some() {
        extra.push(("proxy_wo_version", version(s.proxy_wo_version)));
        extra.push(("no_proxy", s.no_proxy.join(",")));
    }
    for (k, v) in crate::mirrors::devbox_env(s) {
        extra.push((k, v));
    }
    service_hash(
        files,
        &[paths::OPENCODE_JSON, paths::DOCKERFILE, paths::ENTRYPOINT],
        &extra,
    )
}

/// A write-only version as it goes into a hash label.
fn version(v: Option<i64>) -> String {
    v.map_or("none".into(), |v| v.to_string())
}

/// The write-only versions the bridge's secrets stand for in its hash label (their bytes are never hashed); the
/// stack's proxy counts only when the bridge uses it.
fn im_versions(s: &Settings, im: &crate::settings::ImSettings) -> Vec<(&'static str, String)> {
    let mut out = vec![
        (
            "telegram_token_wo_version",
            version(im.telegram_token_wo_version),
        ),
        (
            "dingtalk_client_secret_wo_version",
            version(im.dingtalk_client_secret_wo_version),
        ),
        ("proxy_wo_version", version(im.proxy_wo_version)),
    ];
    if !im.proxy() && s.proxy_wo_version.is_some() {
        out.push(("stack_proxy_wo_version", version(s.proxy_wo_version)));
    }
    out
}

fn manifest_file(manifest: &Manifest) -> Result<File, RenderError> {
    let mut text = serde_json::to_string_pretty(manifest).map_err(|e| RenderError::Template {
        file: paths::MANIFEST,
        message: e.to_string(),
    })?;
    text.push('\n');
    Ok(managed(text.into_bytes(), 0o644))
}

fn manifest(s: &Settings, files: &BTreeMap<String, File>) -> Manifest {
    let managed: BTreeMap<String, String> = files
        .iter()
        .filter(|(_, f)| f.kind == FileKind::Managed)
        .map(|(p, f)| (p.clone(), f.sha256()))
        .collect();
    let mut h = Sha256::new();
    for (p, sha) in &managed {
        h.update(format!("{p} {sha}\n"));
    }
    Manifest {
        cloudcode_version: CLOUDCODE_VERSION.to_string(),
        bundle_hash: hex::encode(h.finalize()),
        files: managed,
        secret_files: [
            SecretFile {
                path: paths::USERS_DATABASE.into(),
                source: "admin_password_wo".into(),
            },
            SecretFile {
                path: paths::ENV.into(),
                source: "llm_api_key_wo".into(),
            },
        ]
        .into_iter()
        .chain(s.im.iter().flat_map(|im| {
            im_secrets_used(im).into_iter().map(|x| SecretFile {
                path: x.path.into(),
                source: x.source.into(),
            })
        }))
        .chain(
            s.proxy_wo_version
                .iter()
                .flat_map(|_| crate::proxy::FILES)
                .map(|path| SecretFile {
                    path: path.into(),
                    source: crate::proxy::SOURCE.into(),
                }),
        )
        .chain(
            s.apps
                .iter()
                .filter(|(_, a)| a.secret_env_wo_version.is_some())
                .map(|(name, _)| SecretFile {
                    path: crate::apps::secret_env_path(name),
                    source: crate::apps::SECRET_ENV_SOURCE.into(),
                }),
        )
        .collect(),
        host_secret_files: HOST_SECRETS.iter().map(|h| h.path.to_string()).collect(),
        inputs: s.clone(),
        write_only_versions: WriteOnlyVersions {
            admin_password_wo_version: s.admin_password_wo_version,
            llm_api_key_wo_version: s.llm_api_key_wo_version,
            im_telegram_token_wo_version: s.im.as_ref().and_then(|i| i.telegram_token_wo_version),
            im_dingtalk_client_secret_wo_version: s
                .im
                .as_ref()
                .and_then(|i| i.dingtalk_client_secret_wo_version),
            im_proxy_wo_version: s.im.as_ref().and_then(|i| i.proxy_wo_version),
            proxy_wo_version: s.proxy_wo_version,
        },
    }
}
