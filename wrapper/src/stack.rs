//! One stack's working directory (`~/.cloudcode/<name>/`, 0700, or `$CLOUDCODE_HOME/<name>/`): the generated
//! root module around the module embedded in this binary, the non-secret vars file, the CLI configuration that
//! makes our provider available offline, and the lock that keeps two commands off one stack.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};
use serde::{Deserialize, Serialize};

use crate::engine::choice::{tofu_range, Kind};
use crate::error::{Error, Result};

static MODULE_HOST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../modules/cloudcode-host");
static MODULE_ALIBABA: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../modules/cloudcode");
const ROOT_TEMPLATE: &str = include_str!("../templates/root.tf.j2");
const VERSIONS_TEMPLATE: &str = include_str!("../templates/versions.tf.j2");
/// Module outputs the generated root passes through (the CLI reads them from `terraform output`).
const OUTPUTS_HOST: &[&str] = &[
    "url",
    "auth_url",
    "terminal_url",
    "domain",
    "host_key",
    "app_urls",
];
const OUTPUTS_CLOUD: &[&str] = &[
    "url",
    "auth_url",
    "terminal_url",
    "domain",
    "host_key",
    "app_urls",
    "public_ip",
    "instance_id",
    "instance_status",
    "instance_stopped_mode",
    "host_running",
    "idle_suspended_at",
    "snapshot_on_destroy",
    "stack_id",
    "backup_id",
    "snapshot_id",
];

/// `mode` of a stack on an existing machine (`deploy --host`).
pub const MODE_HOST: &str = "host";
/// `mode` of a stack whose VM the module creates on Alibaba Cloud.
pub const MODE_ALIBABA: &str = "alibaba";

/// The provider's source address without a host: each engine reads it under its own default registry host
/// (`registry.terraform.io` for Terraform, `registry.opentofu.org` for OpenTofu), so the CLI config's
/// patterns use it as it is and the mirror holds the provider under both hosts.
pub const PROVIDER_SOURCE: &str = "cloudcode-dev/cloudcode";
/// The version the root module pins (same release as this CLI).
pub const PROVIDER_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Vars file with every non-secret input (Terraform loads it automatically).
pub const VARS_FILE: &str = "terraform.tfvars.json";

/// Non-secret inputs of a stack; written to [`VARS_FILE`] as `{"stack": {...}}`. Cloud-only fields default so
/// that files written before they existed still read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackConfig {
    /// [`MODE_HOST`] or [`MODE_ALIBABA`].
    pub mode: String,
    /// The machine's address; empty for a cloud stack (its EIP is in the state).
    pub host: String,
    pub ssh_port: u16,
    pub ssh_user: String,
    pub private_key_path: String,
    pub host_key: Option<String>,
    /// Empty: `<ip>.sslip.io` (or `.nip.io`, see `fallback_domain_service`).
    pub domain: String,
    /// `sslip.io` or `nip.io`: the service naming the site when `domain` is empty.
    #[serde(default = "default_fallback_domain_service")]
    pub fallback_domain_service: String,
    pub admin_username: String,
    pub admin_email: String,
    pub admin_password_version: i64,
    pub llm_provider: String,
    pub llm_base_url: Option<String>,
    pub llm_model: Option<String>,
    pub llm_api_key_version: i64,
    pub terminal_enabled: bool,
    /// Advanced (hidden flags): written into an override file of the module copy.
    pub tls_mode: Option<String>,
    pub images: BTreeMap<String, String>,
    pub image_archives: Vec<String>,

    /// Cloud: Alibaba Cloud region.
    #[serde(default)]
    pub region: Option<String>,
    /// Cloud: ECS instance type.
    #[serde(default)]
    pub instance_type: Option<String>,
    /// Cloud: the module's `name` (resource prefix; snapshots are filed under it).
    #[serde(default)]
    pub cloud_name: Option<String>,
    /// Cloud: CIDR blocks allowed to reach SSH.
    #[serde(default)]
    pub ssh_allowed_cidrs: Vec<String>,
    /// Cloud: the RSA public key of `private_key_path` (`ssh-rsa AAAA...`).
    #[serde(default)]
    pub ssh_public_key: Option<String>,
    /// Cloud: the availability zone, when it must not be the module's choice (an adopted deployment's).
    #[serde(default)]
    pub zone_id: Option<String>,
    /// Cloud: the key pair's name, when it is not `<cloud_name>-key` (an adopted deployment's).
    #[serde(default)]
    pub key_pair_name: Option<String>,
    /// Cloud: the system disk's size in GiB, when it is not the module's default (an adopted deployment's).
    #[serde(default)]
    pub system_disk_size: Option<u32>,
    /// Cloud: `false` while suspended (instance stopped, StopCharging).
    #[serde(default = "yes")]
    pub running: bool,
    /// Cloud: keep a snapshot of the system disk when the stack is destroyed.
    #[serde(default = "yes")]
    pub snapshot_on_destroy: bool,
    /// Cloud: check credentials, stock, quota, balance and price before the box is created (the module's
    /// `preflight`).
    #[serde(default = "yes")]
    pub preflight: bool,
    /// Cloud: a spot instance (SpotAsPriceGo).
    #[serde(default)]
    pub spot: bool,
    /// Cloud: idle auto-suspend after this long without use (`2h`); `None`: off.
    #[serde(default)]
    pub idle_suspend_after: Option<String>,

    /// OpenCode's permission policy (tool → ask/allow/deny).
    #[serde(default)]
    pub opencode_permission: BTreeMap<String, String>,
    /// Chat bridge: Telegram is on when set; bumped when a different token is supplied.
    #[serde(default)]
    pub im_telegram_token_version: Option<i64>,
    #[serde(default)]
    pub im_telegram_api_base: Option<String>,
    /// Chat bridge: DingTalk is on when set.
    #[serde(default)]
    pub im_dingtalk_client_id: Option<String>,
    #[serde(default)]
    pub im_dingtalk_client_secret_version: Option<i64>,
    #[serde(default)]
    pub im_dingtalk_robot_code: Option<String>,
    #[serde(default)]
    pub im_proxy_version: Option<i64>,
    /// Outbound proxy: on when set; bumped when a different URL is supplied.
    #[serde(default)]
    pub proxy_version: Option<i64>,
    #[serde(default)]
    pub no_proxy: Vec<String>,
    /// Registry and package mirrors (the module's `mirrors`); `None`: upstream registries.
    #[serde(default)]
    pub mirrors: Option<cloudcode_bundle::MirrorsInput>,
    /// Your own apps by name (`cloudcode app add`), as the module's `apps` takes them; `build` is absolute.
    #[serde(default)]
    pub apps: BTreeMap<String, cloudcode_bundle::apps::App>,
    /// Static sites by name (`cloudcode app add`), as the module's `static_sites` takes them; `dir` is absolute.
    #[serde(default)]
    pub static_sites: BTreeMap<String, cloudcode_bundle::apps::StaticSite>,
    /// The names — never the values — of each app's secret environment variables (`secret_env` of its TOML).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub app_secret_env: BTreeMap<String, Vec<String>>,
    /// Read only from stacks an older CLI wrote: salted fingerprints of the chat bridge secrets (honoured once);
    /// fingerprints now live keyed in `secret-fingerprints.json` (mode 0600), outside the vars file.
    #[serde(default)]
    pub im_fingerprints: BTreeMap<String, String>,
    #[serde(default)]
    pub im_salt: Option<String>,
}

fn yes() -> bool {
    true
}

fn default_fallback_domain_service() -> String {
    cloudcode_bundle::validate::FALLBACK_DOMAIN_SERVICES[0].to_string()
}

impl StackConfig {
    /// Every field empty or at its default; deploy fills it in.
    pub fn blank() -> Self {
        Self {
            mode: String::new(),
            host: String::new(),
            ssh_port: 22,
            ssh_user: "root".into(),
            private_key_path: String::new(),
            host_key: None,
            domain: String::new(),
            fallback_domain_service: default_fallback_domain_service(),
            admin_username: String::new(),
            admin_email: String::new(),
            admin_password_version: 1,
            llm_provider: String::new(),
            llm_base_url: None,
            llm_model: None,
            llm_api_key_version: 1,
            terminal_enabled: true,
            tls_mode: None,
            images: BTreeMap::new(),
            image_archives: Vec::new(),
            region: None,
            instance_type: None,
            cloud_name: None,
            ssh_allowed_cidrs: Vec::new(),
            ssh_public_key: None,
            zone_id: None,
            key_pair_name: None,
            system_disk_size: None,
            running: true,
            snapshot_on_destroy: true,
            opencode_permission: BTreeMap::new(),
            im_telegram_token_version: None,
            im_telegram_api_base: None,
            im_dingtalk_client_id: None,
            im_dingtalk_client_secret_version: None,
            im_dingtalk_robot_code: None,
            im_proxy_version: None,
            proxy_version: None,
            no_proxy: Vec::new(),
            mirrors: None,
            preflight: true,
            spot: false,
            idle_suspend_after: None,
            apps: BTreeMap::new(),
            static_sites: BTreeMap::new(),
            app_secret_env: BTreeMap::new(),
            im_fingerprints: BTreeMap::new(),
            im_salt: None,
        }
    }

    /// Is the chat bridge configured?
    pub fn im_enabled(&self) -> bool {
        self.im_telegram_token_version.is_some() || self.im_dingtalk_client_id.is_some()
    }

    pub fn is_cloud(&self) -> bool {
        self.mode == MODE_ALIBABA
    }

    /// The generated root's module directory for this mode.
    fn module_dir(&self) -> (&'static str, &'static Dir<'static>) {
        if self.is_cloud() {
            ("modules/cloudcode", &MODULE_ALIBABA)
        } else {
            ("modules/cloudcode-host", &MODULE_HOST)
        }
    }
}

#[derive(Serialize, Deserialize)]
struct VarsFile {
    stack: StackConfig,
}

/// The base directory holding every stack.
pub fn home() -> Result<PathBuf> {
    if let Some(h) = std::env::var_os("CLOUDCODE_HOME") {
        return Ok(PathBuf::from(h));
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cloudcode"))
        .ok_or_else(|| Error::input("HOME is not set", "未设置 HOME 环境变量"))
}

/// Checks a stack name: 1-32 lower-case letters, digits and hyphens.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::input(
            format!(
                "stack name \"{}\" is invalid: use 1 to 32 lower-case letters, digits and hyphens",
                name.escape_debug()
            ),
            format!(
                "栈名 \"{}\" 无效：请使用 1 到 32 个小写字母、数字和连字符",
                name.escape_debug()
            ),
        ))
    }
}

/// A stack's working directory.
#[derive(Debug, Clone)]
pub struct StackDir {
    pub name: String,
    pub path: PathBuf,
}

/// Held while a command runs on a stack; released on drop (the OS releases it if the process dies).
#[derive(Debug)]
pub struct StackLock {
    _file: fs::File,
}

impl StackDir {
    pub fn new(name: &str) -> Result<Self> {
        check_name(name)?;
        Ok(Self {
            name: name.to_string(),
            path: home()?.join(name),
        })
    }

    pub fn exists(&self) -> bool {
        self.path.join(VARS_FILE).is_file()
    }

    /// Fails with [`Error::NoStack`] unless the stack was deployed.
    pub fn require(&self) -> Result<()> {
        if self.exists() {
            Ok(())
        } else {
            Err(Error::NoStack(self.name.clone()))
        }
    }

    /// Creates the directory (0700) if needed and takes the stack's lock.
    pub fn lock(&self) -> Result<StackLock> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .map_err(Error::io(&self.path))?;
        fs::set_permissions(&self.path, fs::Permissions::from_mode(0o700))
            .map_err(Error::io(&self.path))?;
        let p = self.path.join(".cloudcode.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&p)
            .map_err(Error::io(&p))?;
        match file.try_lock() {
            Ok(()) => Ok(StackLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(Error::Locked(self.name.clone())),
            Err(fs::TryLockError::Error(e)) => Err(Error::io(p)(e)),
        }
    }

    pub fn read_config(&self) -> Result<StackConfig> {
        let p = self.path.join(VARS_FILE);
        let text = fs::read_to_string(&p).map_err(Error::io(&p))?;
        serde_json::from_str::<VarsFile>(&text)
            .map(|v| v.stack)
            .map_err(|e| Error::Io {
                path: p,
                source: std::io::Error::other(e),
            })
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        fs::write(&p, bytes).map_err(Error::io(&p))
    }

    /// Writes the root module, the module copy (+ override for advanced settings) and the vars file.
    pub fn write_config(&self, cfg: &StackConfig) -> Result<()> {
        let (rel, embedded) = cfg.module_dir();
        for stale in ["modules/cloudcode", "modules/cloudcode-host"] {
            let d = self.path.join(stale);
            if d.exists() {
                fs::remove_dir_all(&d).map_err(Error::io(&d))?;
            }
        }
        let module_dir = self.path.join(rel);
        fs::create_dir_all(&module_dir).map_err(Error::io(&module_dir))?;
        embedded
            .extract(&module_dir)
            .map_err(Error::io(&module_dir))?;
        // The module's own `terraform test` files and mocks are not part of a deployment.
        let tests = module_dir.join("tests");
        if tests.exists() {
            fs::remove_dir_all(&tests).map_err(Error::io(&tests))?;
        }
        if let Some(ov) = override_tf(cfg) {
            self.write(&format!("{rel}/cli_override.tf"), ov.as_bytes())?;
        }
        self.write("main.tf", root_module(cfg)?.as_bytes())?;
        for (file, tofu) in [("versions.tf", false), ("versions.tofu", true)] {
            self.write(file, versions_file(cfg, tofu)?.as_bytes())?;
        }
        let vars = serde_json::to_string_pretty(&VarsFile { stack: cfg.clone() })
            .map_err(|e| Error::io(self.path.join(VARS_FILE))(std::io::Error::other(e)))?;
        self.write(VARS_FILE, format!("{vars}\n").as_bytes())
    }

    /// Lays out a filesystem mirror holding only our provider binary from `provider_bin` (under both registry
    /// hosts), and a CLI config that takes our provider from it and everything else directly from the
    /// registry. Its patterns have no host, so each engine reads them under its own default host. Without a
    /// binary beside the CLI, the mirror is `~/.terraform.d/plugins`, where install.sh puts the provider
    /// and which both engines search. Returns the config's path.
    pub fn write_cli_config(&self, provider_bin: Option<&Path>) -> Result<PathBuf> {
        let mirror = match provider_bin {
            Some(bin) => {
                let mirror = self.path.join("plugins");
                let mut copied: Option<PathBuf> = None;
                for host in [Kind::Terraform, Kind::Tofu].map(Kind::registry_host) {
                    let dir = mirror.join(format!(
                        "{host}/{PROVIDER_SOURCE}/{PROVIDER_VERSION}/{}",
                        platform()
                    ));
                    fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
                    let target =
                        dir.join(format!("terraform-provider-cloudcode_v{PROVIDER_VERSION}"));
                    if !same_file_contents(bin, &target) {
                        // The second host's copy is a hard link to the first where the file system allows.
                        let _ = fs::remove_file(&target);
                        let linked = copied
                            .as_ref()
                            .is_some_and(|first| fs::hard_link(first, &target).is_ok());
                        if !linked {
                            fs::copy(bin, &target).map_err(Error::io(bin))?;
                        }
                    }
                    copied.get_or_insert(target);
                }
                mirror
            }
            None => home_dir().join(".terraform.d/plugins"),
        };
        let config = format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = {}\n    include = [\"{PROVIDER_SOURCE}\"]\n  }}\n  direct {{\n    exclude = [\"{PROVIDER_SOURCE}\"]\n  }}\n}}\n",
            hcl_string(&mirror.display().to_string())
        );
        let p = self.path.join("terraformrc");
        fs::write(&p, config).map_err(Error::io(&p))?;
        Ok(p)
    }
}

/// Whether `copy` already holds `original` (same size, and not older): every command sets up the engine, and
/// the provider binary is large.
fn same_file_contents(original: &Path, copy: &Path) -> bool {
    match (fs::metadata(original), fs::metadata(copy)) {
        (Ok(a), Ok(b)) => {
            a.len() == b.len()
                && matches!((a.modified(), b.modified()), (Ok(ma), Ok(mb)) if mb >= ma)
        }
        _ => false,
    }
}

fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// `linux_amd64` etc., as Terraform names platforms.
pub fn platform() -> String {
    let os = std::env::consts::OS;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    format!("{os}_{arch}")
}

/// A JSON string is a valid HCL string literal for the characters we write (paths, image names);
/// `${`/`%{` are escaped so nothing is interpolated.
pub fn hcl_string(s: &str) -> String {
    serde_json::Value::String(s.to_string())
        .to_string()
        .replace("${", "$${")
        .replace("%{", "%%{")
}

/// The text of a file of an embedded module (`modules/cloudcode` or `modules/cloudcode-host`).
pub fn module_file(module: &str, name: &str) -> Option<&'static str> {
    let dir = match module {
        "modules/cloudcode" => &MODULE_ALIBABA,
        "modules/cloudcode-host" => &MODULE_HOST,
        _ => return None,
    };
    dir.get_file(name)?.contents_utf8()
}

fn render(template_name: &str, template: &str, ctx: minijinja::Value) -> Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    env.render_str(template, ctx).map_err(|e| Error::Io {
        path: PathBuf::from(format!("templates/{template_name}")),
        source: std::io::Error::other(e),
    })
}

/// The generated root module for the stack's mode (`wrapper/templates/root.tf.j2`).
fn root_module(cfg: &StackConfig) -> Result<String> {
    render(
        "root.tf.j2",
        ROOT_TEMPLATE,
        minijinja::context! {
            cloud => cfg.is_cloud(),
            outputs => if cfg.is_cloud() { OUTPUTS_CLOUD } else { OUTPUTS_HOST },
        },
    )
}

/// The root's `versions.tf` (Terraform) or `versions.tofu` (OpenTofu, with the supported OpenTofu range).
fn versions_file(cfg: &StackConfig, tofu: bool) -> Result<String> {
    let required_version = if tofu {
        tofu_range().text().to_string()
    } else {
        format!(">= {}", crate::engine::choice::MIN_TERRAFORM)
    };
    render(
        "versions.tf.j2",
        VERSIONS_TEMPLATE,
        minijinja::context! {
            tofu,
            required_version,
            provider_version => PROVIDER_VERSION,
            cloud => cfg.is_cloud(),
        },
    )
}

/// Terraform override file for settings the module does not expose (internal TLS, preloaded images).
fn override_tf(cfg: &StackConfig) -> Option<String> {
    if cfg.tls_mode.is_none() && cfg.images.is_empty() && cfg.image_archives.is_empty() {
        return None;
    }
    let mut s = String::from(
        "# Generated by the cloudcode CLI from advanced flags (--tls-mode, --image, --image-archive).\nresource \"cloudcode_stack\" \"this\" {\n",
    );
    if let Some(t) = &cfg.tls_mode {
        s.push_str(&format!("  tls_mode = {}\n", hcl_string(t)));
    }
    if !cfg.images.is_empty() {
        s.push_str("  images = {\n");
        for (k, v) in &cfg.images {
            s.push_str(&format!("    {k} = {}\n", hcl_string(v)));
        }
        s.push_str("  }\n");
    }
    if !cfg.image_archives.is_empty() {
        let list: Vec<String> = cfg.image_archives.iter().map(|a| hcl_string(a)).collect();
        s.push_str(&format!("  image_archives = [{}]\n", list.join(", ")));
    }
    s.push_str("}\n");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl_strings_never_interpolate() {
        assert_eq!(hcl_string("a${b}%{c}\"d"), r#""a$${b}%%{c}\"d""#);
    }

    #[test]
    fn stack_names_are_checked() {
        assert!(check_name("default").is_ok());
        assert!(check_name("my-box-2").is_ok());
        for bad in ["", "Upper", "a/b", "-x", &"x".repeat(33)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_second_lock_on_one_stack_is_refused() {
        let home = tempfile::tempdir().unwrap();
        let dir = StackDir {
            name: "s".into(),
            path: home.path().join("s"),
        };
        let first = dir.lock().unwrap();
        assert!(matches!(dir.lock(), Err(Error::Locked(_))));
        drop(first);
        dir.lock().unwrap();
        let mode = fs::metadata(&dir.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
