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
    /// Stack name (one working directory per stack under ~/.cloudcode/).
    #[arg(
        long,
        global = true,
        env = "CLOUDCODE_STACK",
        default_value = "default"
    )]
    pub name: String,
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
    /// Print container logs (all services, or one of caddy, authelia, devbox).
    Logs {
        service: Option<String>,
        /// Lines per service.
        #[arg(long, default_value_t = 200)]
        tail: u32,
    },
    /// Print Authelia's latest one-time code (for passkey/TOTP registration).
    Otc {
        /// Read this notification file instead of the host's.
        #[arg(long)]
        file: Option<PathBuf>,
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
    },
    /// Version, commit and build date.
    Version,
    /// Shell completion script.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// Deploy onto an existing machine: user@host[:port].
    #[arg(long, env = "CLOUDCODE_HOST")]
    pub host: Option<String>,
    /// SSH private key for --host (default: ~/.ssh/id_ed25519, then ~/.ssh/id_rsa).
    #[arg(long, env = "CLOUDCODE_SSH_KEY")]
    pub ssh_key: Option<PathBuf>,
    /// The host's SSH key or SHA256 fingerprint to pin (default: trust on first use).
    #[arg(long, env = "CLOUDCODE_HOST_KEY")]
    pub host_key: Option<String>,
    /// Site domain; empty means <ip>.sslip.io.
    #[arg(long, env = "CLOUDCODE_DOMAIN")]
    pub domain: Option<String>,
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
    /// ECS instance type (cloud mode).
    #[arg(long, env = "CLOUDCODE_INSTANCE_TYPE")]
    pub instance_type: Option<String>,
    /// Do not serve the web terminal.
    #[arg(long)]
    pub no_terminal: bool,
    /// Answer yes to every question; fail instead of prompting.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// `acme` (default) or `internal` (Caddy's own CA, for hosts without public DNS).
    #[arg(long, hide = true, env = "CLOUDCODE_TLS_MODE")]
    pub tls_mode: Option<String>,
    /// Image override, role=reference (caddy, authelia, devbox).
    #[arg(long = "image", hide = true, value_name = "ROLE=IMAGE")]
    pub images: Vec<String>,
    /// `docker save` archive to load on the host before starting (repeatable).
    #[arg(long = "image-archive", hide = true)]
    pub image_archives: Vec<PathBuf>,
}
