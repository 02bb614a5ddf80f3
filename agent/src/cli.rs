//! The `cloudcode-agent` command line: `idle`'s flags and environment, validated, then the idle agent run.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::IdleConfig;
use crate::idle::IdleAgent;

#[derive(Parser)]
#[command(
    name = "cloudcode-agent",
    version,
    about = "cloudcode's agent on the box"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stops this instance (StopCharging) once nobody has used the box for `--after`.
    Idle(IdleArgs),
}

#[derive(clap::Args)]
struct IdleArgs {
    /// Idle this long → suspend (`2h`, `90m`; at least one minute).
    #[arg(long, env = "CLOUDCODE_IDLE_AFTER")]
    after: String,
    #[arg(
        long,
        env = "CLOUDCODE_IDLE_CADDY_LOG",
        default_value = "/var/log/caddy/access.log"
    )]
    caddy_log: PathBuf,
    #[arg(
        long,
        env = "CLOUDCODE_IDLE_OPENCODE_URL",
        default_value = "http://devbox:4096"
    )]
    opencode_url: String,
    #[arg(long, env = "CLOUDCODE_IDLE_UTMP", default_value = "/host/run/utmp")]
    utmp: PathBuf,
    /// The chat bridge's data directory (when the bridge is deployed).
    #[arg(long, env = "CLOUDCODE_IDLE_IM_DATA")]
    im_data: Option<PathBuf>,
    #[arg(long, env = "CLOUDCODE_IDLE_METADATA_URL", default_value = cloudcode_alicloud::METADATA_URL)]
    metadata_url: String,
    /// ECS endpoint (host name or URL); default `ecs.<region>.aliyuncs.com`.
    #[arg(long, env = "CLOUDCODE_IDLE_ECS_ENDPOINT")]
    ecs_endpoint: Option<String>,
}

impl IdleArgs {
    fn validate(self) -> anyhow::Result<IdleConfig> {
        let after = cloudcode_bundle::validate::idle_suspend_after(&self.after)
            .map_err(|e| anyhow::anyhow!("CLOUDCODE_IDLE_AFTER: {e}"))?;
        Ok(IdleConfig {
            after,
            every: IdleConfig::every_for(after),
            caddy_log: self.caddy_log,
            opencode_url: self.opencode_url,
            utmp: self.utmp,
            im_data: self.im_data,
            metadata_url: self.metadata_url,
            ecs_endpoint: self.ecs_endpoint.filter(|e| !e.trim().is_empty()),
        })
    }
}

pub fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Idle(args) => {
            let cfg = args.validate()?;
            let agent = IdleAgent::new(cfg)?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(agent.run());
            Ok(())
        }
    }
}
