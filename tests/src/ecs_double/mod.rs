//! Alibaba Cloud ECS API contract double: a local HTTP(S) server that verifies ACS3-HMAC-SHA256 and
//! classic RPC (1.0, HMAC-SHA1) signatures and implements the ECS actions cloudcode and the official
//! provider's scenarios use (and the VPC, EIP, Alidns, RAM and CDN ones beside them, and OSS with its own V1
//! signature, reached over HTTPS through the double's CONNECT proxy), with injectable faults, and the
//! STS credentials of an instance's RAM role, allowed only what the role's policies say. One of the two doubles
//! the test standards allow (see docs/engineering/alicloud.md for what it follows).
//!
//! It runs on its own thread and Tokio runtime, so tests may block (e.g. on a terraform child
//! process) without starving it. Dropping the handle stops the server.

mod account;
pub use account::ACCOUNT_ID;
mod alidns;
mod cdn;
mod connect_proxy;
mod eip;
mod images;
mod instances;
mod keypairs;
mod oss;
mod policy;
mod ram;
mod role_credentials;
mod security;
mod server;
pub mod signature;
mod state;
mod tags;
mod tls;
mod vpc;
mod zones;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use alidns::{DnsRecordView, ALIDNS_API_VERSION};
pub use cdn::{CdnDomainView, CDN_API_VERSION};
pub use eip::EipView;
pub use instances::InstanceView;
pub use oss::{OssBucketView, OssObjectView, OSS_ENDPOINT_HOST, OSS_EXTRANET_ENDPOINT};
pub use ram::{RamPolicyView, RamRoleView, RAM_API_VERSION};
pub use role_credentials::RoleCredentials;
pub use server::API_VERSION;
pub use state::{ApiError, Fault, InstanceSeed, RecordedCall, SnapshotView};

use server::{lock, Shared};
use state::{AccessKey, World};

/// A running double. Seed it, point a client at [`EcsDouble::base_url`], inspect it.
pub struct EcsDouble {
    addr: SocketAddr,
    /// The CA of its HTTPS certificate (PEM), when started with [`EcsDouble::start_https`].
    ca_pem: Option<String>,
    /// Its CONNECT proxy (HTTPS only).
    proxy: Option<SocketAddr>,
    shared: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EcsDouble {
    /// Starts the server on 127.0.0.1 with an ephemeral port (plain HTTP).
    pub fn start() -> std::io::Result<Self> {
        Self::start_with(None, (Ipv4Addr::LOCALHOST, 0).into())
    }

    /// Starts it serving plain HTTP on `addr` (port 0: an ephemeral one), e.g. the host side of a test VM's
    /// network (`10.231.N.1:0`) so that programs inside the VM can call it.
    pub fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        Self::start_with(None, addr)
    }

    /// Starts it serving HTTPS with a throwaway CA ([`EcsDouble::ca_pem`]), as the official provider needs.
    pub fn start_https() -> std::io::Result<Self> {
        let tls = tls::test_tls().map_err(std::io::Error::other)?;
        Self::start_with(Some(tls), (Ipv4Addr::LOCALHOST, 0).into())
    }

    fn start_with(tls: Option<tls::TestTls>, bind: SocketAddr) -> std::io::Result<Self> {
        let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
        let shared: Shared = Arc::new(Mutex::new(World::new()));
        let std_listener = std::net::TcpListener::bind(bind)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("ecs-double")
            .build()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = server::router(shared.clone());
        let proxy_listener = match &tls {
            Some(_) => {
                let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
                l.set_nonblocking(true)?;
                Some(l)
            }
            None => None,
        };
        let proxy = proxy_listener
            .as_ref()
            .map(|l| l.local_addr())
            .transpose()?;
        let proxy_shared = shared.clone();
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
                    if let Some(l) = proxy_listener {
                        match tokio::net::TcpListener::from_std(l) {
                            Ok(l) => {
                                tokio::spawn(connect_proxy::serve(l, addr, proxy_shared));
                            }
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        }
                    }
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
            proxy,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http(s)://<address>:<port>` — use as the endpoint override.
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

    /// `http://127.0.0.1:<port>` of its CONNECT proxy (HTTPS only), for `HTTPS_PROXY`: it tunnels every host to the
    /// double, so that OSS's virtual-hosted names (`<bucket>.oss.double.test`) reach it.
    pub fn proxy_url(&self) -> Option<String> {
        self.proxy.map(|p| format!("http://{p}"))
    }

    /// The `host:port` of every CONNECT its proxy tunnelled, in order.
    pub fn proxied(&self) -> Vec<String> {
        lock(&self.shared).proxied.clone()
    }

    /// The account's OSS buckets with their objects.
    pub fn oss_buckets(&self) -> Vec<OssBucketView> {
        lock(&self.shared).oss.views()
    }

    /// The account's CDN domains.
    pub fn cdn_domains(&self) -> Vec<CdnDomainView> {
        lock(&self.shared).cdn.views()
    }

    /// Registers a certificate in the account's Certificate Management Service: `id` in `region` (`cn-hangzhou`
    /// or `ap-southeast-1`), with its name and PEM, so SetCdnDomainSSLCertificate accepts `CertType=cas` with that
    /// `CertId` (any other id is `InvalidCertId.NotFound`). The key stays out of the double, as it stays in CAS.
    pub fn add_cas_certificate(&self, id: u64, region: &str, name: &str, pem: &str) {
        lock(&self.shared)
            .cdn
            .add_cas_certificate(id, region, name, pem);
    }

    /// Accepts requests signed with this AccessKey pair.
    pub fn add_access_key(&self, access_key_id: &str, secret: &str) {
        lock(&self.shared)
            .keys
            .insert(access_key_id.to_string(), AccessKey::new(secret, None));
    }

    /// Accepts requests signed with this STS pair that carry `security_token`.
    pub fn add_sts_access_key(&self, access_key_id: &str, secret: &str, security_token: &str) {
        lock(&self.shared).keys.insert(
            access_key_id.to_string(),
            AccessKey::new(secret, Some(security_token)),
        );
    }

    /// New STS credentials of the RAM role `role_name` (as the metadata service hands an instance with that role),
    /// valid for six hours. Calls signed with them are allowed only what the role's attached policies allow.
    ///
    /// # Panics
    /// When the account has no such role (a mistake in the test).
    pub fn issue_role_credentials(&self, role_name: &str) -> RoleCredentials {
        self.issue_role_credentials_for(role_name, role_credentials::ROLE_CREDENTIALS_LIFETIME)
    }

    /// [`Self::issue_role_credentials`], valid for `valid_for` (refused with `InvalidSecurityToken.Expired` after).
    ///
    /// # Panics
    /// When the account has no such role.
    pub fn issue_role_credentials_for(
        &self,
        role_name: &str,
        valid_for: Duration,
    ) -> RoleCredentials {
        lock(&self.shared)
            .issue_role_credentials(role_name, valid_for)
            .unwrap_or_else(|e| panic!("role credentials for {role_name}: {}", e.message))
    }

    /// Runs a RAM action as the account (e.g. `CreateRole`, `CreatePolicy`, `AttachPolicyToRole`), unrecorded, to seed
    /// roles and policies without the provider.
    pub fn ram_call(
        &self,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<serde_json::Value, ApiError> {
        lock(&self.shared).handle_ram(action, &owned(params))
    }

    /// Runs an ECS action as the account (e.g. `TagResources`, `StopInstance`), unrecorded: what something
    /// outside the configuration does to a box (its own agent, the console).
    pub fn ecs_call(
        &self,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<serde_json::Value, ApiError> {
        lock(&self.shared).handle(action, &owned(params))
    }

    /// Attaches the RAM role `role_name` to an instance, as AttachInstanceRamRole does (the role must exist and trust
    /// ECS).
    pub fn attach_instance_ram_role(
        &self,
        instance_id: &str,
        role_name: &str,
    ) -> Result<(), ApiError> {
        let mut w = lock(&self.shared);
        let region = w
            .instances
            .get(instance_id)
            .map(|i| i.region.clone())
            .unwrap_or_default();
        let ids = serde_json::json!([instance_id]).to_string();
        let p = owned(&[
            ("RegionId", region.as_str()),
            ("RamRoleName", role_name),
            ("InstanceIds", ids.as_str()),
        ]);
        let answer = w.handle("AttachInstanceRamRole", &p)?;
        let item = &answer["AttachInstanceRamRoleResults"]["AttachInstanceRamRoleResult"][0];
        if item["Success"] == true {
            return Ok(());
        }
        let field = |name: &str| item[name].as_str().unwrap_or_default().to_string();
        Err(ApiError::new(403, &field("Code"), field("Message")))
    }

    /// The account's RAM roles.
    pub fn ram_roles(&self) -> Vec<RamRoleView> {
        lock(&self.shared).ram.role_views()
    }

    /// The account's custom RAM policies.
    pub fn ram_policies(&self) -> Vec<RamPolicyView> {
        lock(&self.shared).ram.policy_views()
    }

    /// What the instance metadata double of `instance_id` reads from the API double.
    pub(crate) fn instance_identity(&self, instance_id: &str) -> InstanceIdentity {
        InstanceIdentity {
            shared: self.shared.clone(),
            instance_id: instance_id.to_string(),
        }
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

/// One instance as the metadata service sees it: its region, its RAM role and that role's credentials, read from
/// the API double's state at each request (a role attached or detached later shows at once).
#[derive(Clone)]
pub(crate) struct InstanceIdentity {
    shared: Shared,
    instance_id: String,
}

impl InstanceIdentity {
    pub(crate) fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The instance's region; None when the double has no such instance.
    pub(crate) fn region(&self) -> Option<String> {
        lock(&self.shared)
            .instances
            .get(&self.instance_id)
            .map(|i| i.region.clone())
    }

    /// The RAM role attached to the instance, if any.
    pub(crate) fn role(&self) -> Option<String> {
        lock(&self.shared)
            .instances
            .get(&self.instance_id)
            .map(|i| i.ram_role.clone())
            .filter(|r| !r.is_empty())
    }

    /// New credentials of the instance's role when it is `role` (any case); None otherwise.
    pub(crate) fn credentials(&self, role: &str, valid_for: Duration) -> Option<RoleCredentials> {
        let attached = self.role()?;
        if !attached.eq_ignore_ascii_case(role) {
            return None;
        }
        lock(&self.shared)
            .issue_role_credentials(&attached, valid_for)
            .ok()
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

/// Request parameters as the handlers take them.
fn owned(params: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
