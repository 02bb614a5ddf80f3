//! The `cloudcode` provider block: SSH credentials every operation can reach without a secret in state, and the
//! registry of resources, data sources and functions.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use cloudcode_tfplugin::framework::{
    resource, AnyResource, Attribute, Block, Diagnostics, Function, Provider, Schema, Typed,
};
use serde::Deserialize;

use crate::functions::fallback_domain::FallbackDomain;
use crate::resources::stack::Stack;

/// The provider's registry name, as in `provider::cloudcode::fallback_domain`.
pub const NAME: &str = "cloudcode";

/// The provider block as written by the user. Provider configuration is never stored in state, which is why
/// the SSH private key lives here: Read (drift detection) can use it on every plan.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProviderConfig {
    pub ssh_private_key: Option<String>,
    pub ssh_private_key_passphrase: Option<String>,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field(
                "ssh_private_key",
                &self.ssh_private_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "ssh_private_key_passphrase",
                &self
                    .ssh_private_key_passphrase
                    .as_ref()
                    .map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Configuration shared with every resource after `ConfigureProvider`.
pub type Shared = Arc<RwLock<ProviderConfig>>;

/// The cloudcode provider.
#[derive(Default)]
pub struct Cloudcode {
    config: Shared,
}

impl Cloudcode {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Provider for Cloudcode {
    type Config = ProviderConfig;

    fn name(&self) -> &'static str {
        NAME
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new("Deploys the cloudcode stack (Caddy, Authelia, OpenCode devbox) onto a host over SSH.")
                .attribute(
                    Attribute::string("ssh_private_key")
                        .optional()
                        .sensitive()
                        .description(
                            "PEM/OpenSSH private key used by every `cloudcode_stack` that has no `private_key_path`. \
                             Provider configuration is never written to state, so this is the place for key material \
                             (e.g. from a CI secret). Falls back to the `CLOUDCODE_SSH_PRIVATE_KEY` environment variable.",
                        ),
                )
                .attribute(
                    Attribute::string("ssh_private_key_passphrase")
                        .optional()
                        .sensitive()
                        .description(
                            "Passphrase of `ssh_private_key` or of the key at a stack's `private_key_path`, if it is \
                             encrypted. Falls back to `CLOUDCODE_SSH_PRIVATE_KEY_PASSPHRASE`.",
                        ),
                ),
        )
    }

    async fn configure(&self, config: Typed<ProviderConfig>, _diags: &mut Diagnostics) {
        let mut c = config.value;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        c.ssh_private_key = c
            .ssh_private_key
            .or_else(|| env("CLOUDCODE_SSH_PRIVATE_KEY"));
        c.ssh_private_key_passphrase = c
            .ssh_private_key_passphrase
            .or_else(|| env("CLOUDCODE_SSH_PRIVATE_KEY_PASSPHRASE"));
        if let Ok(mut shared) = self.config.write() {
            *shared = c;
        }
    }

    fn resources(&self) -> Vec<Arc<dyn AnyResource>> {
        vec![resource(Stack::new(self.config.clone()))]
    }

    fn functions(&self) -> Vec<Arc<dyn Function>> {
        vec![Arc::new(FallbackDomain)]
    }
}
