//! Alibaba Cloud ECS API contract double: a local HTTP(S) server that verifies ACS3-HMAC-SHA256 and
//! classic RPC (1.0, HMAC-SHA1) signatures and implements the ECS actions cloudcode and the official
//! provider's scenarios use (and the VPC, EIP and Alidns ones beside them), with injectable faults. One of the
//! two doubles the test standards allow (see docs/engineering/alicloud.md for what it follows).
//!
//! It runs on its own thread and Tokio runtime, so tests may block (e.g. on a terraform child
//! process) without starving it. Dropping the handle stops the server.

mod account;
pub use account::ACCOUNT_ID;
mod alidns;
mod eip;
mod images;
mod instances;
mod keypairs;
mod security;
mod server;
pub mod signature;
mod state;
mod tags;
mod tls;
mod vpc;
mod zones;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub use alidns::{DnsRecordView, ALIDNS_API_VERSION};
pub use eip::EipView;
pub use instances::InstanceView;
pub use server::API_VERSION;
pub use state::{ApiError, Fault, InstanceSeed, RecordedCall, SnapshotView};

use server::{lock, Shared};
use state::{AccessKey, World};

/// A running double. Seed it, point a client at [`EcsDouble::base_url`], inspect it.
pub struct EcsDouble {
    addr: SocketAddr,
    /// The CA of its HTTPS certificate (PEM), when started with [`EcsDouble::start_https`].
    ca_pem: Option<String>,
    shared: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EcsDouble {
    /// Starts the server on 127.0.0.1 with an ephemeral port (plain HTTP).
    pub fn start() -> std::io::Result<Self> {
        Self::start_with(None)
    }

    /// Starts it serving HTTPS with a throwaway CA ([`EcsDouble::ca_pem`]), as the official provider needs.
    pub fn start_https() -> std::io::Result<Self> {
        let tls = tls::test_tls().map_err(std::io::Error::other)?;
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<tls::TestTls>) -> std::io::Result<Self> {
        let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
        let shared: Shared = Arc::new(Mutex::new(World::new()));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("ecs-double")
            .build()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = server::router(shared.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("ecs-double".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    match tls {
                        Some(t) => tls::serve(listener, app, t.server, rx).await,
                        None => {
                            let _ = axum::serve(listener, app)
                                .with_graceful_shutdown(async {
                                    let _ = rx.await;
                                })
                                .await;
                        }
                    }
                });
            })?;
        ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("ecs double thread exited early"))??;
        Ok(Self {
            addr,
            ca_pem,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http(s)://127.0.0.1:<port>` — use as the endpoint override.
    pub fn base_url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The PEM of the CA that signed its HTTPS certificate (None over plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Accepts requests signed with this AccessKey pair.
    pub fn add_access_key(&self, access_key_id: &str, secret: &str) {
        lock(&self.shared).keys.insert(
            access_key_id.to_string(),
            AccessKey {
                secret: secret.to_string(),
                security_token: None,
            },
        );
    }

    /// Accepts requests signed with this STS pair that carry `security_token`.
    pub fn add_sts_access_key(&self, access_key_id: &str, secret: &str, security_token: &str) {
        lock(&self.shared).keys.insert(
            access_key_id.to_string(),
            AccessKey {
                secret: secret.to_string(),
                security_token: Some(security_token.to_string()),
            },
        );
    }

    /// Adds an instance and its system disk.
    pub fn add_instance(&self, seed: InstanceSeed) {
        lock(&self.shared).add_instance(seed);
    }

    /// Creates a custom image from an accomplished snapshot (what `alicloud_image` does for a
    /// restore); the snapshot then cannot be deleted until [`Self::delete_image`] or DeleteImage.
    pub fn create_image_from_snapshot(&self, snapshot_id: &str) -> Result<String, String> {
        lock(&self.shared).create_image_from_snapshot(snapshot_id)
    }

    /// Plays the platform's key handling on the machine standing in for the instances: `f(instance id,
    /// public key)` runs when an instance with a key pair is created, started or rebooted.
    pub fn on_key_pair_boot(&self, f: impl Fn(&str, &str) + Send + 'static) {
        lock(&self.shared).key_pair_boot = Some(Box::new(f));
    }

    /// Publishes a newer public Ubuntu 24.04 x86_64 image (what happens every few months), at most four.
    pub fn publish_system_image(&self, image_id: &'static str) {
        lock(&self.shared).published_images.push(image_id);
    }

    /// The balance BSS QueryAccountBalance reports, as it sends it (e.g. `"12.30"`, `"1,234.56"`, `"-11.19"`).
    pub fn set_balance(&self, available: &str) {
        lock(&self.shared).account.balance = available.to_string();
    }

    /// The account's pay-as-you-go vCPU quota in every region, and how much of it is in use.
    pub fn set_vcpu_quota(&self, max: u32, used: u32) {
        let mut w = lock(&self.shared);
        w.account.max_postpaid_vcpu = max;
        w.account.used_postpaid_vcpu = used;
    }

    /// Fails the next `times` calls of `action` (after authentication) with `fault`.
    pub fn inject(&self, action: &str, fault: Fault, times: u32) {
        lock(&self.shared).inject(action, fault, times);
    }

    /// DescribeSnapshots polls a new snapshot needs to become `accomplished` (default 3).
    pub fn set_snapshot_polls(&self, polls: u32) {
        lock(&self.shared).snapshot_polls = polls.max(1);
    }

    /// DescribeInstances polls Stopping/Starting take to settle (default 2).
    pub fn set_transition_polls(&self, polls: u32) {
        lock(&self.shared).transition_polls = polls.max(1);
    }

    /// Snapshots `disk_id` as CreateSnapshot would, with `tags` (what a backup taken outside Terraform leaves);
    /// returns its id. It is accomplished after the usual DescribeSnapshots polls.
    pub fn snapshot_disk(
        &self,
        disk_id: &str,
        tags: &[(String, String)],
    ) -> Result<String, String> {
        let mut p = std::collections::BTreeMap::from([("DiskId".to_string(), disk_id.to_string())]);
        for (n, (k, v)) in tags.iter().enumerate() {
            p.insert(format!("Tag.{}.Key", n + 1), k.clone());
            p.insert(format!("Tag.{}.Value", n + 1), v.clone());
        }
        let made = lock(&self.shared)
            .handle("CreateSnapshot", &p)
            .map_err(|e| e.message)?;
        Ok(made["SnapshotId"].as_str().unwrap_or_default().to_string())
    }

    pub fn snapshots(&self) -> Vec<SnapshotView> {
        lock(&self.shared).snapshots()
    }

    pub fn image_ids(&self) -> Vec<String> {
        lock(&self.shared).image_ids()
    }

    /// Every instance, with its system disk.
    pub fn instances(&self) -> Vec<InstanceView> {
        lock(&self.shared).instance_views()
    }

    pub fn instance_status(&self, instance_id: &str) -> Option<String> {
        lock(&self.shared).instance_status(instance_id)
    }

    /// Every authenticated-or-rejected call so far, in order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        lock(&self.shared).calls.clone()
    }

    /// (name, public key) of the key pairs that exist.
    pub fn key_pairs(&self) -> Vec<(String, String)> {
        lock(&self.shared).keypairs.list()
    }

    /// The security groups that exist, each with its number of rules.
    pub fn security_groups(&self) -> Vec<(String, usize)> {
        lock(&self.shared).groups.summary()
    }

    /// The vswitches that exist.
    pub fn vswitch_ids(&self) -> Vec<String> {
        lock(&self.shared).vpcs.vswitch_ids()
    }

    /// The VPCs that exist.
    pub fn vpc_ids(&self) -> Vec<String> {
        lock(&self.shared).vpcs.ids()
    }

    /// Gives `zone_id` stock of `instance_type` (offering the type there if it did not), or takes it away. Without
    /// stock DescribeZones no longer lists the type in that zone and DescribeAvailableResource reports it `SoldOut`
    /// (`WithoutStock`), so `data "alicloud_zones"` leaves the zone out for that type.
    ///
    /// # Panics
    /// On a zone the catalog does not have (a mistake in the test).
    pub fn set_zone_stock(&self, zone_id: &str, instance_type: &str, with_stock: bool) {
        let set = lock(&self.shared)
            .zones
            .set_stock(zone_id, instance_type, with_stock);
        if let Err(e) = set {
            panic!("{e}");
        }
    }

    /// AllocateEipAddress hands out these addresses, in order, before addresses of its own
    /// (203.0.113.x, a documentation range).
    pub fn set_eip_addresses(&self, ips: Vec<String>) {
        lock(&self.shared).eips.set_pool(ips);
    }

    /// The EIPs that exist, with the instance each is associated with.
    pub fn eips(&self) -> Vec<EipView> {
        lock(&self.shared).eips.views()
    }

    /// (allocation id, address) of the EIP associated with `instance_id`, if any.
    pub fn eip_of_instance(&self, instance_id: &str) -> Option<(String, String)> {
        lock(&self.shared).eips.eip_of_instance(instance_id)
    }

    /// Adds a DNS domain to the account (what DescribeDomains lists and AddDomainRecord accepts).
    pub fn add_dns_domain(&self, name: &str) {
        lock(&self.shared).add_dns_domain(name);
    }

    /// The DNS records that exist.
    pub fn dns_records(&self) -> Vec<DnsRecordView> {
        lock(&self.shared).dns.views()
    }

    /// The outcomes (`OK` or the error code) of one action's calls, in order.
    pub fn outcomes_of(&self, action: &str) -> Vec<String> {
        self.calls_of(action)
            .into_iter()
            .map(|c| c.outcome)
            .collect()
    }

    /// Calls of one action, in order.
    pub fn calls_of(&self, action: &str) -> Vec<RecordedCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.action == action)
            .collect()
    }
}

impl Drop for EcsDouble {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
