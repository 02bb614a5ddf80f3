//! Alibaba Cloud ECS client: ACS3-HMAC-SHA256 signer, RPC calls, retries, and the snapshot life
//! cycle used by `cloudcode_snapshot_backup` / `cloudcode_snapshot`.
//!
//! The seam for the provider is the [`Ecs`] trait (implemented by [`EcsClient`]) plus
//! [`Lifecycle`], which holds the higher-level snapshot operations.

pub mod client;
pub mod credentials;
pub mod error;
pub mod idle;
pub mod lifecycle;
pub mod metadata;
pub mod model;
pub mod preflight;
pub mod retry;
pub mod signer;

pub use client::{
    resolve_endpoint, resolve_product_endpoint, ClientConfig, EcsClient, Product, API_VERSION,
};
pub use credentials::{Credentials, Secret};
pub use error::Error;
pub use idle::TAG_IDLE_SUSPENDED;
pub use lifecycle::{
    DestroySnapshotOutcome, DestroySnapshotRequest, Lifecycle, PollConfig, Progress, PruneOutcome,
    StackSnapshot, Warning, TAG_STACK, TAG_VERSION,
};
pub use metadata::{InstanceMetadata, RoleCredentials, METADATA_URL};
pub use model::{
    CreateSnapshotRequest, Disk, DiskDeviceMapping, DiskType, Ecs, Image, ImageFilter, Instance,
    Snapshot, SnapshotFilter, StoppedMode, Tag,
};
pub use retry::RetryPolicy;
