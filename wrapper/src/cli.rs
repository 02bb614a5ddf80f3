//! Command-line arguments (clap). Every deploy prompt is also a flag and an environment variable; advanced
//! flags for special hosts (internal TLS, preloaded images) are hidden from `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cloudcode",
    version,
    about = "Deploy OpenCode behind a login onto a cloud VM or your own machine"
)]
pub struct Cli {
    /// Stack name (one working directory per stack under ~/.cloudcode/); `--stack` is the same.
    #[arg(
        long,
        alias = "stack",
        global = true,
        env = "CLOUDCODE_STACK",
        default_value = "default"
    )]
    pub name: String,
    /// Engine for a new stack: tofu or terraform (default: tofu if installed, else terraform). A stack keeps
    /// the engine it was created with; asking for the other one is refused (see migrate-engine).
    #[arg(long, global = true, env = "CLOUDCODE_ENGINE", value_enum)]
    pub engine: Option<crate::engine::Kind>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Create or update a stack.
    Deploy(DeployArgs),
    /// Show the stack's URLs and containers.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Stop the cloud VM (StopCharging: CPU and memory are not billed; disk and address stay).
    Suspend,
    /// Start a suspended cloud VM again.
    Resume,
    /// Print container logs (all services, or one of caddy, authelia, devbox, im).
    Logs {
        service: Option<String>,
        /// Lines per service.
        #[arg(long, default_value_t = 200)]
        tail: u32,
        /// Keep printing new lines until Ctrl-C.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Interactive shell on the host, or inside a service's container (caddy, authelia, devbox, im).
    Ssh { service: Option<String> },
    /// Run a command on the host (or in a service's container with --service) and print its output.
    Exec {
        /// Run inside this service's container instead of on the host.
        #[arg(long)]
        service: Option<String>,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Check the environment: tofu/terraform and its version, cloud credentials, region reachable.
    Doctor {
        /// Region to check (default: the stack's, else ap-southeast-1).
        #[arg(long)]
        region: Option<String>,
    },
    /// Adopt a deployment made by the Go cloudcode tool (~/.cloudcode/state.json) with Terraform import blocks.
    ImportLegacy {
        /// The Go tool's state file.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Login e-mail (the Go tool's state does not record it).
        #[arg(long, env = "CLOUDCODE_ADMIN_EMAIL")]
        admin_email: String,
        /// CIDR blocks allowed to reach SSH (default: your detected address).
        #[arg(long, env = "CLOUDCODE_SSH_CIDR", value_delimiter = ',')]
        ssh_cidr: Vec<String>,
    },
    /// Print Authelia's latest one-time code (for passkey/TOTP registration).
    Otc {
        /// Read this notification file instead of the host's.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Set a new login password (the portal cannot change it): only Authelia is restarted.
    Passwd {
        /// The new password, at least 12 characters (prefer the environment variable, or the prompt).
        #[arg(long, env = "CLOUDCODE_ADMIN_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Fail instead of prompting.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Write every file that would be deployed into a directory, secrets masked.
    Render {
        #[arg(long)]
        out: PathBuf,
    },
    /// Remove the stack.
    Destroy {
        /// Do not ask for confirmation.
        #[arg(long)]
        force: bool,
        /// Only show what would be destroyed.
        #[arg(long)]
        dry_run: bool,
        /// Cloud stacks: snapshot the disk first, so the next deploy restores everything (the default).
        #[arg(long, overrides_with = "no_snapshot")]
        keep_snapshot: bool,
        /// Cloud stacks: destroy without keeping a snapshot.
        #[arg(long, overrides_with = "keep_snapshot")]
        no_snapshot: bool,
    },
    /// Move a stack to the other engine on purpose: backs up its state, rewrites provider addresses to the
    /// new engine's registry host, locks the providers for both engines, and keeps the move only if the new
    /// engine's plan is empty.
    MigrateEngine {
        /// The engine to move to.
        #[arg(long, value_enum)]
        to: crate::engine::Kind,
    },
    /// The chat bridge (Telegram/DingTalk ↔ OpenCode) of a stack deployed with --telegram-token-env or
    /// --dingtalk-client-id.
    #[command(subcommand)]
    Im(ImCommand),
    /// Your own apps and static sites on the stack, each described by a cloudcode-app.toml: served over HTTPS
    /// behind the same login (or public), on its own name or a path of the site.
    #[command(subcommand)]
    App(AppCommand),
    /// Version, commit and build date.
    Version,
    /// Shell completion script.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
pub enum ImCommand {
    /// Show the bind code as a QR code in the terminal (the Telegram deep link, or the raw code) and write a PNG.
    Qr {
        /// Where to write the PNG.
        #[arg(long, default_value = "cloudcode-im-qr.png")]
        png: PathBuf,
        /// The bridge's box (default: this stack's).
        #[arg(long = "box")]
        box_id: Option<String>,
    },
    /// Platforms, bound users per box and messages waiting to be sent.
    Status {
        /// Print the bridge's JSON.
        #[arg(long)]
        json: bool,
    },
    /// The chat users bound to this box.
    Users {
        /// Print the bridge's JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Add an app or static site from its TOML file (or update the one of that name), then apply.
    Add {
        /// The app's cloudcode-app.toml; `build` and `dir` in it are relative to its directory.
        file: PathBuf,
        /// Only write the stack's configuration; the next `cloudcode deploy` or `app add` applies it (secret env
        /// values are not read).
        #[arg(long)]
        no_apply: bool,
        /// Fail instead of prompting for secret env values missing from the environment.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// The stack's apps and static sites: URL, login, image or directory, and the container's state.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print an app's container logs.
    Logs {
        /// The app's name.
        #[arg(value_name = "NAME")]
        app: String,
        /// Lines to print.
        #[arg(long, default_value_t = 200)]
        tail: u32,
        /// Keep printing new lines until Ctrl-C.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Remove an app or static site, then apply (an app's volumes are kept).
    Remove {
        /// The app's or static site's name.
        #[arg(value_name = "NAME")]
        app: String,
        /// Only write the stack's configuration; the next `cloudcode deploy` or `app add` applies it.
        #[arg(long)]
        no_apply: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// Deploy onto an existing machine: user@host[:port].
    #[arg(long, env = "CLOUDCODE_HOST")]
    pub host: Option<String>,
    /// SSH private key (--host default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa; cloud: an RSA key, generated
    /// in the stack's directory when omitted).
    #[arg(long, env = "CLOUDCODE_SSH_KEY")]
    pub ssh_key: Option<PathBuf>,
    /// The host's SSH key or SHA256 fingerprint to pin (default: trust on first use).
    #[arg(long, env = "CLOUDCODE_HOST_KEY")]
    pub host_key: Option<String>,
    /// Site domain; empty means <ip>.sslip.io (or <ip>.nip.io with --fallback-domain-service nip.io).
    #[arg(long, env = "CLOUDCODE_DOMAIN")]
    pub domain: Option<String>,
    /// The wildcard-DNS service naming the site without a domain: sslip.io (default) or nip.io.
    #[arg(long, env = "CLOUDCODE_FALLBACK_DOMAIN_SERVICE")]
    pub fallback_domain_service: Option<String>,
    /// Login name.
    #[arg(long, env = "CLOUDCODE_ADMIN_USER")]
    pub admin_user: Option<String>,
    /// Login e-mail (also the ACME account).
    #[arg(long, env = "CLOUDCODE_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// Login password, at least 12 characters (prefer the environment variable).
    #[arg(long, env = "CLOUDCODE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// openai, anthropic, gemini or openai_compatible.
    #[arg(long, env = "CLOUDCODE_LLM_PROVIDER")]
    pub llm_provider: Option<String>,
    /// LLM API key (prefer the environment variable).
    #[arg(long, env = "CLOUDCODE_LLM_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<String>,
    /// API base URL for openai_compatible.
    #[arg(long, env = "CLOUDCODE_LLM_BASE_URL")]
    pub llm_base_url: Option<String>,
    /// Default model.
    #[arg(long, env = "CLOUDCODE_LLM_MODEL")]
    pub llm_model: Option<String>,
    /// Alibaba Cloud region (cloud mode).
    #[arg(long, env = "CLOUDCODE_REGION")]
    pub region: Option<String>,
    /// CIDR blocks allowed to reach SSH (cloud mode; default: your detected public address /32).
    #[arg(long, env = "CLOUDCODE_SSH_CIDR", value_delimiter = ',')]
    pub ssh_cidr: Vec<String>,
    /// ECS instance type (cloud mode).
    #[arg(long, env = "CLOUDCODE_INSTANCE_TYPE")]
    pub instance_type: Option<String>,
    /// Do not serve the web terminal.
    #[arg(long)]
    pub no_terminal: bool,
    /// Run the chat bridge with Telegram: the NAME of the environment variable holding the bot token (the
    /// token itself is never a flag).
    #[arg(long, value_name = "VAR")]
    pub telegram_token_env: Option<String>,
    /// Telegram Bot API base URL (default https://api.telegram.org).
    #[arg(long, value_name = "URL")]
    pub telegram_api_base: Option<String>,
    /// Run the chat bridge with DingTalk: the app's Client ID (with --dingtalk-secret-env).
    #[arg(long, value_name = "ID")]
    pub dingtalk_client_id: Option<String>,
    /// The NAME of the environment variable holding the DingTalk app's Client Secret.
    #[arg(long, value_name = "VAR")]
    pub dingtalk_secret_env: Option<String>,
    /// The NAME of the environment variable holding the bridge's proxy URL (http://, https:// or socks5://).
    #[arg(long, value_name = "VAR")]
    pub im_proxy_env: Option<String>,
    /// The NAME of the environment variable holding the outbound proxy URL (http://, https:// or socks5://, may
    /// carry credentials) for the devbox's LLM traffic, git, npm and pip, and the bridge without its own.
    #[arg(long, value_name = "VAR")]
    pub proxy_env: Option<String>,
    /// Reach this host, .domain suffix, IP or CIDR directly despite the proxy (repeatable; replaces the last list).
    #[arg(long = "no-proxy", value_name = "HOST")]
    pub no_proxy: Vec<String>,
    /// Remove the outbound proxy.
    #[arg(long)]
    pub proxy_off: bool,
    /// Cloud: skip the check of credentials, stock, quota, balance and price before the box is created.
    #[arg(long)]
    pub no_preflight: bool,
    /// Cloud: run the box as a spot instance (about a fifth of the price; Alibaba Cloud may reclaim it with five
    /// minutes' notice). --no-spot goes back to pay-as-you-go. Either replaces the instance.
    #[arg(long, conflicts_with = "no_spot")]
    pub spot: bool,
    #[arg(long)]
    pub no_spot: bool,
    /// Cloud: stop the box (StopCharging) once nobody has used it for this long, e.g. 2h or 90m (at least 1m);
    /// `cloudcode resume` starts it again. --no-idle-suspend turns it off.
    #[arg(long, value_name = "DURATION", conflicts_with = "no_idle_suspend")]
    pub idle_suspend_after: Option<String>,
    #[arg(long)]
    pub no_idle_suspend: bool,
    /// Registry and package mirrors preset: cn (mainland China), or none to remove every mirror setting.
    #[arg(long, value_name = "PRESET")]
    pub mirrors: Option<String>,
    /// Pull the default images from this registry/namespace instead of Docker Hub and ghcr.io.
    #[arg(long, value_name = "HOST/NAMESPACE")]
    pub image_registry: Option<String>,
    /// A Docker Hub pull-through mirror for the host's Docker daemon (repeatable).
    #[arg(long = "registry-mirror", value_name = "URL")]
    pub registry_mirrors: Vec<String>,
    /// A registry the host's Docker daemon may reach over plain HTTP (repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
    /// npm registry inside the devbox.
    #[arg(long, value_name = "URL")]
    pub npm_registry: Option<String>,
    /// PyPI index inside the devbox.
    #[arg(long, value_name = "URL")]
    pub pypi_index: Option<String>,
    /// Debian/Ubuntu archive mirror (base URL) for the host's apt when the deploy installs Docker.
    #[arg(long, value_name = "URL")]
    pub apt_mirror: Option<String>,
    /// OpenCode permission, tool=ask|allow|deny (repeatable), e.g. --opencode-permission bash=ask.
    #[arg(long = "opencode-permission", value_name = "TOOL=ask|allow|deny")]
    pub opencode_permission: Vec<String>,
    /// Answer yes to every question; fail instead of prompting.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// `acme` (default) or `internal` (Caddy's own CA, for hosts without public DNS).
    #[arg(long, hide = true, env = "CLOUDCODE_TLS_MODE")]
    pub tls_mode: Option<String>,
    /// Image override, role=reference (caddy, authelia, devbox, im).
    #[arg(long = "image", hide = true, value_name = "ROLE=IMAGE")]
    pub images: Vec<String>,
    /// `docker save` archive to load on the host before starting (repeatable).
    #[arg(long = "image-archive", hide = true)]
    pub image_archives: Vec<PathBuf>,
}
