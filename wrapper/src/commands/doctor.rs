//! `cloudcode doctor`: checks what a deploy needs, one line each — the stack's engine (tofu/terraform) found and
//! supported, our provider found, Alibaba Cloud credentials present and accepted, the region's ECS endpoint
//! reachable (a real signed `DescribeSnapshots` for this stack, which also shows the snapshot a deploy would
//! restore), then the stock-aware preflight (whose key, stock, quota, balance, price). Exits non-zero when a check
//! fails.

use cloudcode_alicloud::{ClientConfig, Credentials, EcsClient, Lifecycle, PollConfig};

use crate::engine::{self, cloud_credentials};
use crate::error::{Error, Result};
use crate::i18n::tr;
use crate::stack::StackDir;

fn line(ok: bool, en: String, zh: String) -> bool {
    println!("{} {}", if ok { "ok  " } else { "FAIL" }, tr(en, zh));
    ok
}

pub fn run(name: &str, region: Option<&str>) -> Result<()> {
    let mut all_ok = true;
    let stack = StackDir::new(name)?;
    // The engine this stack runs with (recorded, or what a new stack would get), as every command picks it.
    match engine::choice::for_stack(&stack) {
        Ok(found) => {
            let recorded = engine::choice::read_record(&stack).ok().flatten().is_some();
            let (why_en, why_zh) = if recorded {
                (
                    "the engine this stack was created with",
                    "此栈创建时使用的引擎",
                )
            } else {
                ("the engine a new stack gets", "新栈将使用的引擎")
            };
            all_ok &= line(
                true,
                format!(
                    "engine: {found} at {} ({why_en}; supported: {})",
                    found.bin.display(),
                    engine::choice::supported_sentence()
                ),
                format!(
                    "引擎：{found}，位于 {}（{why_zh}；支持：{}）",
                    found.bin.display(),
                    engine::choice::supported_sentence()
                ),
            );
        }
        Err(e) => all_ok &= line(false, e.to_string(), e.to_string()),
    }
    let provider = engine::find_provider();
    line(
        true,
        match &provider {
            Some(p) => format!("provider: {}", p.display()),
            None => "provider: not beside the CLI; the engines' plugin directory ~/.terraform.d/plugins is used".into(),
        },
        match &provider {
            Some(p) => format!("provider：{}", p.display()),
            None => "provider：不在 CLI 旁边；将使用引擎的插件目录 ~/.terraform.d/plugins".into(),
        },
    );

    let cfg = stack.exists().then(|| stack.read_config()).transpose()?;
    let region = region
        .map(str::to_string)
        .or_else(|| cfg.as_ref().and_then(|c| c.region.clone()))
        .unwrap_or_else(|| "ap-southeast-1".into());
    if cfg.as_ref().is_some_and(|c| !c.is_cloud()) {
        line(
            true,
            format!("stack \"{name}\" runs on its own host: no cloud credentials needed"),
            format!("栈 \"{name}\" 运行在自有主机上：不需要云凭证"),
        );
    } else {
        all_ok &= check_cloud(name, &region, cfg.as_ref());
    }
    if all_ok {
        Ok(())
    } else {
        Err(Error::input("some checks failed", "部分检查未通过"))
    }
}

/// Credentials present, accepted, and the region reachable: one signed call.
fn check_cloud(name: &str, region: &str, cfg: Option<&crate::stack::StackConfig>) -> bool {
    let Some((id, secret)) = cloud_credentials() else {
        return line(
            false,
            "credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET"
                .into(),
            "凭证：请设置 ALIBABA_CLOUD_ACCESS_KEY_ID 和 ALIBABA_CLOUD_ACCESS_KEY_SECRET".into(),
        );
    };
    let mut creds = Credentials::new(id.clone(), secret);
    if let Some(t) = ["ALIBABA_CLOUD_SECURITY_TOKEN", "ALICLOUD_SECURITY_TOKEN"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    {
        creds = creds.with_security_token(t);
    }
    let masked = format!("{}…", id.chars().take(4).collect::<String>());
    line(
        true,
        format!("credentials: access key {masked} from the environment"),
        format!("凭证：环境变量中的访问密钥 {masked}"),
    );
    let mut config = ClientConfig::new(region, creds);
    config.endpoint = std::env::var("CLOUDCODE_ECS_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty());
    let env = |k: &str| std::env::var(k).ok().filter(|e| !e.is_empty());
    config.sts_endpoint = env("CLOUDCODE_STS_ENDPOINT");
    config.bss_endpoint = env("CLOUDCODE_BSS_ENDPOINT");
    config.timeout = std::time::Duration::from_secs(10);
    let cloud_name = crate::commands::deploy::cloud_name(name).unwrap_or_else(|_| name.to_string());
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(async {
                let client = EcsClient::new(config.clone()).map_err(|e| e.to_string())?;
                Lifecycle::new(&client, PollConfig::default())
                    .newest_snapshot(&cloud_name)
                    .await
                    .map_err(|e| e.to_string())
            })
        });
    let reachable = match result {
        Ok(snapshot) => {
            line(
                true,
                format!("region {region}: reachable, credentials accepted"),
                format!("地域 {region}：可访问，凭证有效"),
            );
            line(
                true,
                match &snapshot {
                    Some(s) => format!(
                        "snapshot: {} ({}) — the next deploy of \"{name}\" restores it",
                        s.snapshot_id, s.created_at
                    ),
                    None => {
                        format!("snapshot: none for \"{name}\" — the next deploy installs fresh")
                    }
                },
                match &snapshot {
                    Some(s) => format!(
                        "快照：{}（{}）— 下次部署 \"{name}\" 将从它恢复",
                        s.snapshot_id, s.created_at
                    ),
                    None => format!("快照：\"{name}\" 没有快照 — 下次部署将全新安装"),
                },
            )
        }
        Err(e) => line(
            false,
            format!("region {region}: {e}"),
            format!("地域 {region}：{e}"),
        ),
    };
    let req = super::preflight::request(
        region,
        cfg.and_then(|c| c.instance_type.as_deref()),
        cfg.and_then(|c| c.zone_id.as_deref()),
        cfg.is_some_and(|c| c.spot),
    );
    let preflight_ok = reachable
        && match super::preflight::run(&config, &req) {
            Ok(report) => super::preflight::print(&report),
            Err(e) => line(false, format!("preflight: {e}"), format!("预检：{e}")),
        };
    preflight_ok
}
