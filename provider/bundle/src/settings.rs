//! The non-secret inputs of a bundle (`Settings`, named after the `cloudcode_stack` attributes), their pinned
//! defaults, and the write-only secrets handed to one render (`Secrets`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// OpenCode version installed in the devbox unless `opencode_version` says otherwise (npm `opencode-ai`).
pub const DEFAULT_OPENCODE_VERSION: &str = "1.18.33";
/// Caddy image (2.x).
pub const DEFAULT_CADDY_IMAGE: &str = "docker.io/library/caddy:2.10.2";
/// Authelia image (4.39.x; the configuration is written for 4.39).
pub const DEFAULT_AUTHELIA_IMAGE: &str = "docker.io/authelia/authelia:4.39.20";
/// Prebuilt devbox image repository; the tag is the OpenCode version (built by the release workflow).
pub const DEFAULT_DEVBOX_REPOSITORY: &str = "ghcr.io/cloudcode-dev/devbox";
/// Chat bridge image repository; the tag is the cloudcode version (built by the release workflow).
pub const DEFAULT_IM_REPOSITORY: &str = "ghcr.io/cloudcode-dev/cloudcode-im";
/// The agent image repository (idle auto-suspend); the tag is the cloudcode version (built by the release workflow).
pub const DEFAULT_AGENT_REPOSITORY: &str = "ghcr.io/cloudcode-dev/cloudcode-agent";
/// Telegram Bot API base URL unless `im.telegram_api_base` says otherwise.
pub const DEFAULT_TELEGRAM_API_BASE: &str = "https://api.telegram.org";
/// Default directory on the host.
pub const DEFAULT_REMOTE_DIR: &str = "/opt/cloudcode";
/// Default alternative HTTPS port when `https_alt_port` is enabled.
pub const DEFAULT_HTTPS_ALT_PORT: u16 = 8443;

/// Image overrides per service (`images` attribute); `None` uses the pinned default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Images {
    pub caddy: Option<String>,
    pub authelia: Option<String>,
    pub devbox: Option<String>,
    /// The chat bridge (`im` key); used only with the `im` block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub im: Option<String>,
    /// The agent (`agent` key); used only with `idle_suspend_after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

impl Images {
    /// The `images` attribute's map (`caddy`, `authelia`, `devbox`, `im`, `agent` keys).
    pub fn from_map(m: &BTreeMap<String, String>) -> Self {
        Self {
            caddy: m.get("caddy").cloned(),
            authelia: m.get("authelia").cloned(),
            devbox: m.get("devbox").cloned(),
            im: m.get("im").cloned(),
            agent: m.get("agent").cloned(),
        }
    }
}

/// Where the host and the devbox get images and packages (`mirrors` of `cloudcode_stack`), for networks where
/// Docker Hub, ghcr.io, npm or PyPI are slow or blocked. Every field is optional; a preset fills the unset ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirrors {
    /// Registry (and namespace) the default images are pulled from instead of Docker Hub and ghcr.io:
    /// `docker.io/library/caddy:2.10.2` → `<image_registry>/caddy:2.10.2`. Explicit `images` are kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_registry: Option<String>,
    /// Docker Hub pull-through mirrors for the host's Docker daemon (`registry-mirrors` in daemon.json).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registry_mirrors: Vec<String>,
    /// Registries the host's Docker daemon may reach over plain HTTP (`insecure-registries`), e.g. a mirror
    /// inside a private network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub insecure_registries: Vec<String>,
    /// npm registry inside the devbox (`NPM_CONFIG_REGISTRY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npm: Option<String>,
    /// PyPI index inside the devbox (`PIP_INDEX_URL`, `UV_DEFAULT_INDEX`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pypi: Option<String>,
    /// Debian/Ubuntu archive mirror for the host's apt when the deploy installs Docker: every source's scheme and
    /// host replaced by this base URL, its path kept (`/ubuntu/`, `/debian/`), for that install only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apt: Option<String>,
}

/// `mirrors` as the user writes it (the provider's block, the CLI's vars file): a preset, and fields that take
/// the place of the preset's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MirrorsInput {
    pub preset: Option<String>,
    pub image_registry: Option<String>,
    pub registry_mirrors: Option<Vec<String>>,
    pub insecure_registries: Option<Vec<String>>,
    pub npm: Option<String>,
    pub pypi: Option<String>,
    pub apt: Option<String>,
}

impl MirrorsInput {
    /// The mirrors these settings stand for: the preset's, each field set here in its place.
    pub fn resolve(&self) -> Mirrors {
        let mut m = self
            .preset
            .as_deref()
            .and_then(mirrors_preset)
            .unwrap_or_default();
        m.image_registry = self.image_registry.clone().or(m.image_registry);
        m.registry_mirrors = self.registry_mirrors.clone().unwrap_or(m.registry_mirrors);
        m.insecure_registries = self
            .insecure_registries
            .clone()
            .unwrap_or(m.insecure_registries);
        m.npm = self.npm.clone().or(m.npm);
        m.pypi = self.pypi.clone().or(m.pypi);
        m.apt = self.apt.clone().or(m.apt);
        m
    }

    /// The input that resolves to `m` with every field spelled out (import reads a host's manifest).
    pub fn spelled_out(m: &Mirrors) -> Self {
        let list = |l: &Vec<String>| (!l.is_empty()).then(|| l.clone());
        Self {
            preset: None,
            image_registry: m.image_registry.clone(),
            registry_mirrors: list(&m.registry_mirrors),
            insecure_registries: list(&m.insecure_registries),
            npm: m.npm.clone(),
            pypi: m.pypi.clone(),
            apt: m.apt.clone(),
        }
    }
}

/// The `cn` preset: the release images in Alibaba Cloud Container Registry (Hangzhou, reachable from every
/// mainland region), npmmirror, Alibaba Cloud's PyPI mirror and its public apt mirror (the `cloudcode` module uses
/// the in-VPC one, [`CN_APT_MIRROR_VPC`], on ECS).
pub fn mirrors_preset(name: &str) -> Option<Mirrors> {
    (name == "cn").then(|| Mirrors {
        image_registry: Some(CN_IMAGE_REGISTRY.to_string()),
        registry_mirrors: Vec::new(),
        insecure_registries: Vec::new(),
        npm: Some("https://registry.npmmirror.com".to_string()),
        pypi: Some("https://mirrors.aliyun.com/pypi/simple/".to_string()),
        apt: Some(CN_APT_MIRROR.to_string()),
    })
}

/// Alibaba Cloud's public Debian/Ubuntu mirror.
pub const CN_APT_MIRROR: &str = "https://mirrors.aliyun.com";
/// The same mirror inside Alibaba Cloud's VPCs (no traffic out of the region; what ECS images use).
pub const CN_APT_MIRROR_VPC: &str = "http://mirrors.cloud.aliyuncs.com";

/// Where the release workflow pushes every image the stack runs, besides ghcr.io (see `mirrors_preset`).
pub const CN_IMAGE_REGISTRY: &str = "registry.cn-hangzhou.aliyuncs.com/cloudcode-dev";

/// The chat bridge (`im` block of `cloudcode_stack`): present means the `im` service runs. Telegram is on when
/// `telegram_token_wo_version` is set, DingTalk when `dingtalk_client_id` is, the proxy when `proxy_wo_version` is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImSettings {
    /// The bridge's id for this box: derived from the stack resource's id by [`crate::im_box_id`] (stable across
    /// applies), never set by users.
    pub box_id: String,
    pub telegram_token_wo_version: Option<i64>,
    pub telegram_api_base: String,
    pub dingtalk_client_id: Option<String>,
    pub dingtalk_client_secret_wo_version: Option<i64>,
    pub dingtalk_robot_code: Option<String>,
    pub proxy_wo_version: Option<i64>,
}

impl ImSettings {
    /// The bridge for the stack whose resource id is `stack_id`, no platform configured yet.
    pub fn new(stack_id: &str) -> Self {
        Self {
            box_id: crate::render::im_box_id(stack_id),
            telegram_token_wo_version: None,
            telegram_api_base: DEFAULT_TELEGRAM_API_BASE.to_string(),
            dingtalk_client_id: None,
            dingtalk_client_secret_wo_version: None,
            dingtalk_robot_code: None,
            proxy_wo_version: None,
        }
    }

    pub fn telegram(&self) -> bool {
        self.telegram_token_wo_version.is_some()
    }

    pub fn dingtalk(&self) -> bool {
        self.dingtalk_client_id.is_some()
    }

    pub fn proxy(&self) -> bool {
        self.proxy_wo_version.is_some()
    }
}

/// The non-secret settings of one stack. Field names are the Terraform attribute names of `cloudcode_stack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Already resolved: the caller passes [`crate::fallback_domain`] of the host when the user left it empty.
    pub domain: String,
    pub admin_username: String,
    pub admin_email: String,
    pub admin_display_name: Option<String>,
    /// Version of the write-only `admin_password_wo`; a change means a new password hash is supplied.
    pub admin_password_wo_version: i64,
    pub llm_provider: String,
    pub llm_base_url: Option<String>,
    pub llm_model: Option<String>,
    /// Version of the write-only `llm_api_key_wo`; `None` when no key was ever configured.
    pub llm_api_key_wo_version: Option<i64>,
    pub opencode_version: String,
    pub images: Images,
    /// Build the devbox on the host from the rendered Dockerfile instead of pulling the prebuilt image.
    pub devbox_build: bool,
    pub terminal_enabled: bool,
    /// Also serve HTTPS on this port (e.g. 8443) for networks that block 443.
    pub https_alt_port: Option<u16>,
    /// `acme` or `internal`.
    pub tls_mode: String,
    /// ACME account e-mail; `None` uses `admin_email`.
    pub acme_email: Option<String>,
    pub timezone: String,
    pub remote_dir: String,
    /// OpenCode's permission policy (tool → `ask` | `allow` | `deny`), rendered into `opencode.json`. Left out of
    /// the manifest when empty (as `im` when off), so a stack that uses neither keeps its manifest bytes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub opencode_permission: BTreeMap<String, String>,
    /// The chat bridge; `None`: no `im` service and no im files on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub im: Option<ImSettings>,
    /// Version of the write-only `proxy_wo` (the outbound proxy of the devbox and, without its own, the bridge);
    /// `None`: no proxy. Left out of the manifest when unset, like `im`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_wo_version: Option<i64>,
    /// Extra names, addresses or CIDRs reached directly despite the proxy (the stack's own names always are).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_proxy: Vec<String>,
    /// Registry and package mirrors; `None`: the upstream registries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirrors: Option<Mirrors>,
    /// Idle auto-suspend; `None`: off (no `idle` service). Left out of the manifest when off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_suspend: Option<IdleSuspend>,
    /// The user's own apps by name (`apps`); left out of the manifest when there are none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub apps: BTreeMap<String, crate::apps::App>,
    /// Static sites by name (`static_sites`); left out of the manifest when there are none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub static_sites: BTreeMap<String, crate::apps::StaticSite>,
}

/// Idle auto-suspend (`idle_suspend_after` of `cloudcode_stack`): the agent stops the instance after this long
/// without use, through the ECS API with the instance's RAM role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleSuspend {
    /// A duration such as `2h` (`validate::idle_suspend_after`).
    pub after: String,
    /// ECS endpoint the agent calls instead of `ecs.<region>.aliyuncs.com` (`idle_suspend_endpoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs_endpoint: Option<String>,
}

impl Settings {
    /// Settings with every default filled in: OpenAI, terminal on, ACME, UTC, `/opt/cloudcode`.
    pub fn default_for(domain: &str, admin_username: &str, admin_email: &str) -> Self {
        Self {
            domain: domain.to_string(),
            admin_username: admin_username.to_string(),
            admin_email: admin_email.to_string(),
            admin_display_name: None,
            admin_password_wo_version: 1,
            llm_provider: "openai".to_string(),
            llm_base_url: None,
            llm_model: None,
            llm_api_key_wo_version: None,
            opencode_version: DEFAULT_OPENCODE_VERSION.to_string(),
            images: Images::default(),
            devbox_build: false,
            terminal_enabled: true,
            https_alt_port: None,
            tls_mode: "acme".to_string(),
            acme_email: None,
            timezone: "UTC".to_string(),
            remote_dir: DEFAULT_REMOTE_DIR.to_string(),
            opencode_permission: BTreeMap::new(),
            im: None,
            proxy_wo_version: None,
            no_proxy: Vec::new(),
            mirrors: None,
            idle_suspend: None,
            apps: BTreeMap::new(),
            static_sites: BTreeMap::new(),
        }
    }

    /// A default image as the host pulls it: from `mirrors.image_registry` when set (the last path component
    /// and tag kept), else as published.
    fn mirrored(&self, published: &str) -> String {
        match self
            .mirrors
            .as_ref()
            .and_then(|m| m.image_registry.as_deref())
        {
            Some(registry) => {
                let name = published.rsplit('/').next().unwrap_or(published);
                format!("{}/{name}", registry.trim_end_matches('/'))
            }
            None => published.to_string(),
        }
    }

    /// The image each service runs (override, or the pinned default, mirrored).
    pub fn caddy_image(&self) -> String {
        self.images
            .caddy
            .clone()
            .unwrap_or_else(|| self.mirrored(DEFAULT_CADDY_IMAGE))
    }

    /// The Authelia image (override, or the pinned default, mirrored).
    pub fn authelia_image(&self) -> String {
        self.images
            .authelia
            .clone()
            .unwrap_or_else(|| self.mirrored(DEFAULT_AUTHELIA_IMAGE))
    }

    /// The devbox image (override, or the prebuilt image tagged with the OpenCode version, mirrored; with
    /// `devbox_build` the name the locally built image gets).
    pub fn devbox_image(&self) -> String {
        match &self.images.devbox {
            Some(i) => i.clone(),
            None if self.devbox_build => format!("cloudcode-devbox:{}", self.opencode_version),
            None => self.mirrored(&format!(
                "{DEFAULT_DEVBOX_REPOSITORY}:{}",
                self.opencode_version
            )),
        }
    }

    /// The chat bridge image (override, or the released image of this cloudcode version, mirrored).
    pub fn im_image(&self) -> String {
        match &self.images.im {
            Some(i) => i.clone(),
            None => self.mirrored(&format!(
                "{DEFAULT_IM_REPOSITORY}:{}",
                crate::CLOUDCODE_VERSION
            )),
        }
    }

    /// The agent image (override, or the released image of this cloudcode version, mirrored).
    pub fn agent_image(&self) -> String {
        match &self.images.agent {
            Some(i) => i.clone(),
            None => self.mirrored(&format!(
                "{DEFAULT_AGENT_REPOSITORY}:{}",
                crate::CLOUDCODE_VERSION
            )),
        }
    }

    /// The e-mail Caddy registers with the ACME CAs.
    pub fn acme_email_or_admin(&self) -> &str {
        self.acme_email.as_deref().unwrap_or(&self.admin_email)
    }
}

/// Write-only secrets for one render. `None` means "not supplied in this apply: keep what the host has" — the
/// files that hold it are then left out of the bundle.
#[derive(Clone, Default)]
pub struct Secrets {
    /// The PHC argon2id hash of `admin_password_wo` (see [`crate::hash_password`]), or the hash read back from the
    /// host's users database (see [`crate::existing_password_hash`]) when other user fields change.
    pub admin_password_hash: Option<String>,
    /// `llm_api_key_wo`.
    pub llm_api_key: Option<String>,
    /// `im.telegram_token_wo`.
    pub im_telegram_token: Option<String>,
    /// `im.dingtalk_client_secret_wo`.
    pub im_dingtalk_client_secret: Option<String>,
    /// `im.proxy_wo` (a URL that may carry credentials).
    pub im_proxy: Option<String>,
    /// `proxy_wo`, the stack's outbound proxy (a URL that may carry credentials).
    pub proxy: Option<String>,
    /// `app_secret_env_wo` (by app), for the apps whose secret env this apply supplies.
    pub app_secret_env: BTreeMap<String, BTreeMap<String, String>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = |o: &Option<String>| {
            if o.is_some() {
                "Some(<redacted>)"
            } else {
                "None"
            }
        };
        f.debug_struct("Secrets")
            .field("admin_password_hash", &r(&self.admin_password_hash))
            .field("llm_api_key", &r(&self.llm_api_key))
            .field("im_telegram_token", &r(&self.im_telegram_token))
            .field(
                "im_dingtalk_client_secret",
                &r(&self.im_dingtalk_client_secret),
            )
            .field("im_proxy", &r(&self.im_proxy))
            .field("proxy", &r(&self.proxy))
            .field(
                "app_secret_env",
                &self.app_secret_env.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}
