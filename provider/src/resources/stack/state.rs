//! The state of `cloudcode_stack` as Rust sees it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    pub fallback_domain_service: Option<String>,
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
    pub allow_authelia_downgrade: Option<bool>,
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
    pub services: Option<BTreeMap<String, String>>,
    pub deployed_version: Option<String>,
    pub authelia_image: Option<String>,
    pub opencode_permission: Option<BTreeMap<String, String>>,
    pub proxy_wo: Option<String>,
    pub proxy_wo_version: Option<i64>,
    pub no_proxy: Option<Vec<String>>,
    pub mirrors: Option<cloudcode_bundle::MirrorsInput>,
    pub idle_suspend_after: Option<String>,
    pub idle_suspend_endpoint: Option<String>,
    /// The `im` block (at most one element; empty: no chat bridge).
    pub im: Vec<ImBlock>,
    pub apps: Option<BTreeMap<String, super::apps::AppState>>,
    pub static_sites: Option<BTreeMap<String, super::apps::SiteState>>,
    pub app_secret_env_wo: Option<BTreeMap<String, BTreeMap<String, String>>>,
}

/// The `im` block.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImBlock {
    pub telegram_token_wo: Option<String>,
    pub telegram_token_wo_version: Option<i64>,
    pub telegram_api_base: Option<String>,
    pub dingtalk_client_id: Option<String>,
    pub dingtalk_client_secret_wo: Option<String>,
    pub dingtalk_client_secret_wo_version: Option<i64>,
    pub dingtalk_robot_code: Option<String>,
    pub proxy_wo: Option<String>,
    pub proxy_wo_version: Option<i64>,
}

impl StackState {
    /// The `im` block, when present.
    pub fn im(&self) -> Option<&ImBlock> {
        self.im.first()
    }

    /// The services this stack runs (`services` shows them): the built-in ones, then each app's.
    pub fn services_run(&self) -> Vec<String> {
        super::host::services(self.im().is_some(), self.idle_suspend_after.is_some())
            .iter()
            .map(|s| s.to_string())
            .chain(
                self.apps
                    .iter()
                    .flatten()
                    .map(|(name, _)| cloudcode_bundle::apps::service(name)),
            )
            .collect()
    }

    /// The directory on the host.
    pub fn dir(&self) -> String {
        self.remote_dir
            .clone()
            .unwrap_or_else(|| cloudcode_bundle::settings::DEFAULT_REMOTE_DIR.to_string())
    }

    /// Takes the non-secret inputs and write-only versions recorded in a host's manifest (import), and the
    /// managed files' hashes (the manifest's own hash given separately).
    pub fn adopt_inputs(&mut self, m: &cloudcode_bundle::Manifest, manifest_sha256: &str) {
        let i = &m.inputs;
        // A domain that is the host's name on a fallback service says which service was chosen.
        let service = cloudcode_bundle::validate::FALLBACK_DOMAIN_SERVICES
            .into_iter()
            .find(|svc| {
                cloudcode_bundle::fallback_domain_on(&self.host, svc)
                    .ok()
                    .as_ref()
                    == Some(&i.domain)
            })
            .unwrap_or(cloudcode_bundle::validate::FALLBACK_DOMAIN_SERVICES[0]);
        self.fallback_domain_service = Some(service.to_string());
        self.domain = Some(i.domain.clone());
        self.admin_username = i.admin_username.clone();
        self.admin_email = i.admin_email.clone();
        self.admin_display_name = i.admin_display_name.clone();
        self.admin_password_wo_version = Some(m.write_only_versions.admin_password_wo_version);
        self.llm_api_key_wo_version = m.write_only_versions.llm_api_key_wo_version;
        self.llm_provider = Some(i.llm_provider.clone());
        self.llm_base_url = i.llm_base_url.clone();
        self.llm_model = i.llm_model.clone();
        self.opencode_version = Some(i.opencode_version.clone());
        let images: BTreeMap<String, String> = [
            ("caddy", &i.images.caddy),
            ("authelia", &i.images.authelia),
            ("devbox", &i.images.devbox),
            ("im", &i.images.im),
            ("agent", &i.images.agent),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.to_string(), v)))
        .collect();
        self.images = (!images.is_empty()).then_some(images);
        self.authelia_image = Some(i.authelia_image());
        self.devbox_build = Some(i.devbox_build);
        self.terminal_enabled = Some(i.terminal_enabled);
        self.https_alt_port = i.https_alt_port.map(i64::from);
        self.tls_mode = Some(i.tls_mode.clone());
        self.acme_email = i.acme_email.clone();
        self.timezone = Some(i.timezone.clone());
        self.remote_dir = Some(i.remote_dir.clone());
        self.opencode_permission =
            (!i.opencode_permission.is_empty()).then(|| i.opencode_permission.clone());
        self.proxy_wo_version = m.write_only_versions.proxy_wo_version;
        self.no_proxy = (!i.no_proxy.is_empty()).then(|| i.no_proxy.clone());
        self.mirrors = i
            .mirrors
            .as_ref()
            .map(cloudcode_bundle::MirrorsInput::spelled_out);
        self.idle_suspend_after = i.idle_suspend.as_ref().map(|x| x.after.clone());
        self.idle_suspend_endpoint = i.idle_suspend.as_ref().and_then(|x| x.ecs_endpoint.clone());
        let v = &m.write_only_versions;
        self.im =
            i.im.iter()
                .map(|im| ImBlock {
                    telegram_token_wo_version: v.im_telegram_token_wo_version,
                    telegram_api_base: (im.telegram_api_base
                        != cloudcode_bundle::settings::DEFAULT_TELEGRAM_API_BASE)
                        .then(|| im.telegram_api_base.clone()),
                    dingtalk_client_id: im.dingtalk_client_id.clone(),
                    dingtalk_client_secret_wo_version: v.im_dingtalk_client_secret_wo_version,
                    dingtalk_robot_code: im.dingtalk_robot_code.clone(),
                    proxy_wo_version: v.im_proxy_wo_version,
                    ..ImBlock::default()
                })
                .collect();
        self.apps = (!i.apps.is_empty()).then(|| {
            i.apps
                .iter()
                .map(|(k, a)| (k.clone(), super::apps::AppState::from_app(a)))
                .collect()
        });
        self.static_sites = (!i.static_sites.is_empty()).then(|| {
            i.static_sites
                .iter()
                .map(|(k, s)| (k.clone(), super::apps::SiteState::from_site(s)))
                .collect()
        });
        let mut files = m.files.clone();
        files.insert(
            cloudcode_bundle::paths::MANIFEST.to_string(),
            manifest_sha256.to_string(),
        );
        self.files = Some(files);
        self.deployed_version = Some(m.cloudcode_version.clone());
    }
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
