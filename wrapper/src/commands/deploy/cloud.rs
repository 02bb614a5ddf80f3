//! `deploy` without `--host`: a new Alibaba Cloud VM built by modules/cloudcode. Owns the cloud inputs (region,
//! instance type, who may reach SSH), the credential check, the caller's public address detection, and the
//! stack's RSA key pair (Alibaba Cloud key pairs do not accept ed25519).

use std::io::IsTerminal;
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use super::Target;
use crate::cli::DeployArgs;
use crate::commands::input::value;
use crate::engine::cloud_credentials;
use crate::error::{Error, Result};
use crate::i18n::tr;
use crate::stack::{StackConfig, StackDir, MODE_ALIBABA};

/// Alibaba Cloud regions the module supports.
pub const REGIONS: &[&str] = &[
    "cn-hangzhou",
    "cn-shanghai",
    "cn-beijing",
    "cn-shenzhen",
    "cn-qingdao",
    "cn-zhangjiakou",
    "cn-huhehaote",
    "cn-wulanchabu",
    "cn-chengdu",
    "cn-guangzhou",
    "cn-hongkong",
    "ap-southeast-1",
    "ap-southeast-3",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ap-northeast-1",
    "ap-northeast-2",
    "us-west-1",
    "us-east-1",
    "eu-central-1",
    "eu-west-1",
    "me-east-1",
    "me-central-1",
];

const DEFAULT_REGION: &str = "ap-southeast-1";
const DEFAULT_INSTANCE_TYPE: &str = "ecs.e-c1m2.large";
/// Services that answer with the caller's public IPv4 address as plain text (`CLOUDCODE_IP_ECHO_URL` overrides).
const IP_ECHO_URLS: [&str; 2] = ["https://checkip.amazonaws.com", "https://api.ipify.org"];
const DETECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Bits of the generated RSA key.
pub const KEY_BITS: usize = 4096;
/// The generated key in the stack's directory (`id_rsa.pub` beside it).
pub const KEY_FILE: &str = "id_rsa";

/// The module's `name`: resource prefix and the name snapshots are filed under (restore finds them by it).
pub fn cloud_name(stack: &str) -> Result<String> {
    let n = if stack == "default" {
        "cloudcode".to_string()
    } else {
        stack.to_string()
    };
    let ok = n.len() >= 2 && n.starts_with(|c: char| c.is_ascii_lowercase()) && !n.ends_with('-');
    if ok {
        Ok(n)
    } else {
        Err(Error::input(
            format!("stack name \"{n}\" cannot name cloud resources: use 2 to 32 characters starting with a letter and not ending with '-'"),
            format!("栈名 \"{n}\" 不能用于云资源命名：请使用 2 到 32 个字符，以字母开头且不以 '-' 结尾"),
        ))
    }
}

/// `a.b.c.d/n` with n in 0..=32.
pub fn check_cidr(c: &str) -> Result<()> {
    let ok = c.split_once('/').is_some_and(|(ip, bits)| {
        ip.parse::<Ipv4Addr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 32)
    });
    if ok {
        Ok(())
    } else {
        Err(Error::input(
            format!(
                "--ssh-cidr \"{}\" is not an IPv4 CIDR block such as 203.0.113.7/32",
                c.escape_debug()
            ),
            format!(
                "--ssh-cidr \"{}\" 不是 IPv4 CIDR（例如 203.0.113.7/32）",
                c.escape_debug()
            ),
        ))
    }
}

/// The caller's public IPv4 address as seen by an echo service, within a short timeout; `None` when no
/// service answered with an address.
pub fn detect_public_ip() -> Option<Ipv4Addr> {
    let urls: Vec<String> = match std::env::var("CLOUDCODE_IP_ECHO_URL") {
        Ok(u) if !u.is_empty() => vec![u],
        _ => IP_ECHO_URLS.iter().map(|u| u.to_string()).collect(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(DETECT_TIMEOUT)
            .build()
            .ok()?;
        for url in urls {
            let Ok(resp) = client.get(&url).send().await else {
                continue;
            };
            if let Ok(text) = resp.text().await {
                if let Ok(ip) = text.trim().parse::<Ipv4Addr>() {
                    return Some(ip);
                }
            }
        }
        None
    })
}

/// `--ssh-cidr`, else the previous deploy's, else the detected address as /32, else a prompt.
fn ssh_cidrs(a: &DeployArgs, previous: Option<&StackConfig>) -> Result<Vec<String>> {
    let cidrs = if !a.ssh_cidr.is_empty() {
        a.ssh_cidr.clone()
    } else if let Some(p) = previous.filter(|p| !p.ssh_allowed_cidrs.is_empty()) {
        p.ssh_allowed_cidrs.clone()
    } else if let Some(ip) = detect_public_ip() {
        eprintln!(
            "{}",
            tr(
                format!(
                    "SSH will be reachable only from your address {ip} (--ssh-cidr changes it)."
                ),
                format!("SSH 将只允许从你的地址 {ip} 访问（可用 --ssh-cidr 修改）。"),
            )
        );
        vec![format!("{ip}/32")]
    } else if !a.yes && std::io::stdin().is_terminal() {
        let v = value(
            None,
            false,
            (
                "Your public IP could not be detected; allow SSH from (CIDR)",
                "无法检测你的公网 IP；允许 SSH 访问的地址（CIDR）",
            ),
            None,
            "--ssh-cidr",
        )?;
        vec![v]
    } else {
        return Err(Error::input(
            "your public IP address could not be detected: pass --ssh-cidr (for example 203.0.113.7/32)",
            "无法检测你的公网 IP：请使用 --ssh-cidr（例如 203.0.113.7/32）",
        ));
    };
    for c in &cidrs {
        check_cidr(c)?;
        if c.ends_with("/0") {
            eprintln!(
                "{}",
                tr(
                    format!("Warning: --ssh-cidr {c} opens SSH to the whole Internet."),
                    format!("警告：--ssh-cidr {c} 使 SSH 对整个互联网开放。"),
                )
            );
        }
    }
    Ok(cidrs)
}

/// Region, instance type, credentials, SSH access and the key.
pub(super) fn target(
    stack: &str,
    a: &DeployArgs,
    previous: Option<&StackConfig>,
) -> Result<Target> {
    let cloud_name = cloud_name(stack)?;
    let region = value(
        a.region.clone(),
        a.yes,
        ("Alibaba Cloud region", "阿里云地域"),
        Some(
            previous
                .and_then(|p| p.region.as_deref())
                .unwrap_or(DEFAULT_REGION),
        ),
        "--region",
    )?;
    if !REGIONS.contains(&region.as_str()) {
        return Err(Error::input(
            format!(
                "unknown region \"{}\" (for example ap-southeast-1, cn-hangzhou)",
                region.escape_debug()
            ),
            format!(
                "未知地域 \"{}\"（例如 ap-southeast-1、cn-hangzhou）",
                region.escape_debug()
            ),
        ));
    }
    if cloud_credentials().is_none() {
        return Err(Error::input(
            "missing Alibaba Cloud credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (or use --host)",
            "缺少阿里云凭证：请设置 ALIBABA_CLOUD_ACCESS_KEY_ID 和 ALIBABA_CLOUD_ACCESS_KEY_SECRET（或使用 --host）",
        ));
    }
    let instance_type = value(
        a.instance_type.clone(),
        a.yes,
        ("Instance type", "实例规格"),
        Some(
            previous
                .and_then(|p| p.instance_type.as_deref())
                .unwrap_or(DEFAULT_INSTANCE_TYPE),
        ),
        "--instance-type",
    )?;
    let parts: Vec<&str> = instance_type.split('.').collect();
    let type_ok = parts.len() == 3
        && parts[0] == "ecs"
        && parts[1..].iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if !type_ok {
        return Err(Error::input(
            format!(
                "--instance-type \"{}\" is not an ECS instance type such as ecs.e-c1m2.large",
                instance_type.escape_debug()
            ),
            format!(
                "--instance-type \"{}\" 不是 ECS 实例规格（例如 ecs.e-c1m2.large）",
                instance_type.escape_debug()
            ),
        ));
    }
    let ssh_allowed_cidrs = ssh_cidrs(a, previous)?;
    let (private_key_path, ssh_public_key, generate_key) = match &a.ssh_key {
        Some(k) => {
            let k = std::fs::canonicalize(k).map_err(Error::io(k))?;
            let pub_path = std::path::PathBuf::from(format!("{}.pub", k.display()));
            let public = std::fs::read_to_string(&pub_path)
                .map(|s| s.trim().to_string())
                .map_err(Error::io(&pub_path))?;
            if !public.starts_with("ssh-rsa ") {
                return Err(Error::input(
                    format!("{} is not an RSA key: Alibaba Cloud key pairs accept RSA keys only (omit --ssh-key to generate one)", pub_path.display()),
                    format!("{} 不是 RSA 密钥：阿里云密钥对只接受 RSA（省略 --ssh-key 将自动生成）", pub_path.display()),
                ));
            }
            (k.display().to_string(), Some(public), false)
        }
        // The key the stack already has (e.g. an adopted deployment's, from import-legacy): a new one would be
        // a new key pair and a restart.
        None => match previous
            .filter(|p| !p.private_key_path.is_empty() && p.ssh_public_key.is_some())
        {
            Some(p) => (p.private_key_path.clone(), p.ssh_public_key.clone(), false),
            None => (String::new(), None, true),
        },
    };
    Ok(Target {
        cfg: StackConfig {
            mode: MODE_ALIBABA.into(),
            ssh_user: "root".into(),
            private_key_path,
            region: Some(region),
            instance_type: Some(instance_type),
            cloud_name: Some(cloud_name),
            ssh_allowed_cidrs,
            ssh_public_key,
            running: previous.is_none_or(|p| p.running),
            snapshot_on_destroy: previous.is_none_or(|p| p.snapshot_on_destroy),
            // What import-legacy kept from an adopted deployment stays (the module would choose otherwise).
            zone_id: previous.and_then(|p| p.zone_id.clone()),
            key_pair_name: previous.and_then(|p| p.key_pair_name.clone()),
            system_disk_size: previous.and_then(|p| p.system_disk_size),
            ..StackConfig::blank()
        },
        generate_key,
    })
}

/// Uses the stack's `id_rsa` (0600), generating an RSA key pair there the first time.
pub(super) fn ensure_key(stack: &StackDir, cfg: &mut StackConfig) -> Result<()> {
    let private = stack.path.join(KEY_FILE);
    let public = stack.path.join(format!("{KEY_FILE}.pub"));
    if !private.is_file() || !public.is_file() {
        eprintln!(
            "{}",
            tr(
                format!(
                    "Generating an RSA {KEY_BITS} SSH key in {}…",
                    private.display()
                ),
                format!("正在 {} 生成 RSA {KEY_BITS} SSH 密钥…", private.display()),
            )
        );
        let key = cloudcode_ssh::generate_rsa(KEY_BITS, &format!("cloudcode-{}", stack.name))
            .map_err(|e| Error::Ssh(e.to_string()))?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&private)
            .map_err(Error::io(&private))?;
        std::io::Write::write_all(&mut f, key.private_openssh.as_bytes())
            .map_err(Error::io(&private))?;
        std::fs::write(&public, format!("{}\n", key.public_openssh)).map_err(Error::io(&public))?;
    }
    let text = std::fs::read_to_string(&public).map_err(Error::io(&public))?;
    cfg.private_key_path = private.display().to_string();
    cfg.ssh_public_key = Some(text.trim().to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_are_checked() {
        for ok in ["203.0.113.7/32", "0.0.0.0/0", "10.0.0.0/8"] {
            assert!(check_cidr(ok).is_ok(), "{ok}");
        }
        for bad in ["203.0.113.7", "203.0.113.7/33", "::1/128", "x/8", ""] {
            assert!(check_cidr(bad).is_err(), "{bad}");
        }
    }

    /// Regression: the first `deploy` after `import-legacy` rebuilt the settings from blank, dropping the Go tool's
    /// zone, key pair name and disk size and generating a new key (a new key pair, a restart, a new vswitch).
    #[test]
    fn deploy_keeps_what_import_legacy_adopted() {
        #[derive(clap::Parser)]
        struct Cmd {
            #[command(flatten)]
            a: DeployArgs,
        }
        use clap::Parser;
        let a = Cmd::try_parse_from(["deploy", "--yes"]).unwrap().a;
        let previous = StackConfig {
            mode: MODE_ALIBABA.into(),
            private_key_path: "/home/me/.cloudcode/ssh_key".into(),
            ssh_public_key: Some("ssh-rsa AAAAB3Nza legacy".into()),
            region: Some("ap-southeast-1".into()),
            ssh_allowed_cidrs: vec!["203.0.113.7/32".into()],
            zone_id: Some("ap-southeast-1b".into()),
            key_pair_name: Some("cloudcode-ssh-key".into()),
            system_disk_size: Some(60),
            ..StackConfig::blank()
        };
        // Credentials are checked first; the test's own (no other unit test reads these).
        std::env::set_var("ALICLOUD_ACCESS_KEY", "LTAI5tUnitTestOnly");
        std::env::set_var("ALICLOUD_SECRET_KEY", "unit-test-secret");
        let t = target("legacy", &a, Some(&previous)).unwrap();
        assert!(!t.generate_key, "the adopted key is kept");
        assert_eq!(t.cfg.private_key_path, previous.private_key_path);
        assert_eq!(t.cfg.ssh_public_key, previous.ssh_public_key);
        assert_eq!(t.cfg.zone_id.as_deref(), Some("ap-southeast-1b"));
        assert_eq!(t.cfg.key_pair_name.as_deref(), Some("cloudcode-ssh-key"));
        assert_eq!(t.cfg.system_disk_size, Some(60));
    }

    #[test]
    fn the_default_stack_names_its_cloud_resources_cloudcode() {
        assert_eq!(cloud_name("default").unwrap(), "cloudcode");
        assert_eq!(cloud_name("work-box").unwrap(), "work-box");
        assert!(cloud_name("7box").is_err());
        assert!(cloud_name("x").is_err());
    }
}
