//! Validation rules and deterministic rendering of the deployment bundle: every file a cloudcode host needs
//! (Compose file, Caddyfile, Authelia configuration and users database, devbox build files, env file, the
//! host-secret bootstrap script and `manifest.json`), used by the provider and the CLI without gRPC.

pub mod apps;
pub mod escape;
pub mod mirrors;
pub mod password;
pub mod proxy;
pub mod render;
pub mod runtime;
pub mod settings;
pub mod tree;
pub mod validate;

pub use password::{existing_password_hash, hash_password, HashError};
pub use render::{
    im_box_id, paths, render, Bundle, File, FileKind, HostSecret, ImSecret, Manifest, RenderError,
    SecretFile, WriteOnlyVersions, AUTH_PORT, AUTH_SERVICE, CLOUDCODE_VERSION, HASH_LABEL,
    HOST_SECRETS, IDLE_SERVICE, IM_BOX_ID_MAX, IM_SECRETS, IM_SERVICE, IM_UID, NOTIFICATION_FILE,
    OPENCODE_PORT, TTYD_PORT,
};
pub use settings::{
    mirrors_preset, IdleSuspend, ImSettings, Images, Mirrors, MirrorsInput, Secrets, Settings,
    DEFAULT_OPENCODE_VERSION,
};
pub use validate::{fallback_domain, fallback_domain_on, validate, Invalid};
