//! `cloudcode render --out DIR`: every file the host would get, rendered by `cloudcode_bundle` (the provider's
//! own renderer), with secret values replaced by a mask.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cloudcode_bundle::{ImSettings, Images, Secrets, Settings};

use crate::error::{Error, Result};
use crate::i18n::tr;
use crate::stack::{StackConfig, StackDir};

/// What masked secrets look like in rendered files.
pub const MASK: &str = "MASKED-SECRET-NOT-DEPLOYED";

/// The bundle settings a stack's configuration produces (the same mapping the module makes).
pub fn settings_for(cfg: &StackConfig) -> Result<Settings> {
    let domain = if cfg.domain.is_empty() {
        cloudcode_bundle::fallback_domain_on(&cfg.host, &cfg.fallback_domain_service)
            .map_err(|e| Error::Input(e.message().to_string()))?
    } else {
        cfg.domain.clone()
    };
    let mut s = Settings::default_for(&domain, &cfg.admin_username, &cfg.admin_email);
    s.admin_password_wo_version = cfg.admin_password_version;
    s.llm_provider = cfg.llm_provider.clone();
    s.llm_base_url = cfg.llm_base_url.clone();
    s.llm_model = cfg.llm_model.clone();
    s.llm_api_key_wo_version = Some(cfg.llm_api_key_version);
    s.terminal_enabled = cfg.terminal_enabled;
    if let Some(t) = &cfg.tls_mode {
        s.tls_mode = t.clone();
    }
    s.images = Images::from_map(&cfg.images);
    s.opencode_permission = cfg.opencode_permission.clone();
    s.idle_suspend = cfg
        .idle_suspend_after
        .clone()
        .map(|after| cloudcode_bundle::IdleSuspend {
            after,
            ecs_endpoint: None,
        });
    s.proxy_wo_version = cfg.proxy_version;
    s.no_proxy = cfg.no_proxy.clone();
    s.mirrors = cfg
        .mirrors
        .as_ref()
        .map(cloudcode_bundle::MirrorsInput::resolve);
    s.apps = cfg.apps.clone();
    s.static_sites = cfg.static_sites.clone();
    if cfg.im_enabled() {
        // The provider derives the box id from the resource id, `user@host:port/remote_dir`.
        let id = format!(
            "{}@{}:{}{}",
            cfg.ssh_user, cfg.host, cfg.ssh_port, s.remote_dir
        );
        let mut im = ImSettings::new(&id);
        im.telegram_token_wo_version = cfg.im_telegram_token_version;
        if let Some(b) = &cfg.im_telegram_api_base {
            im.telegram_api_base = b.clone();
        }
        im.dingtalk_client_id = cfg.im_dingtalk_client_id.clone();
        im.dingtalk_client_secret_wo_version = cfg.im_dingtalk_client_secret_version;
        im.dingtalk_robot_code = cfg.im_dingtalk_robot_code.clone();
        im.proxy_wo_version = cfg.im_proxy_version;
        s.im = Some(im);
    }
    Ok(s)
}

pub fn run(name: &str, out: &Path) -> Result<()> {
    let stack = StackDir::new(name)?;
    stack.require()?;
    let mut cfg = stack.read_config()?;
    if cfg.domain.is_empty() && cfg.host.is_empty() {
        // A cloud stack's fallback domain comes from its EIP, which only the state knows.
        let eng = crate::engine::Engine::new(&stack)?;
        let values = super::status::stack_values(&eng)?;
        cfg.host = values["host"].as_str().unwrap_or_default().to_string();
        if cfg.host.is_empty() {
            return Err(Error::input(
                "the stack has no address yet and no domain: deploy it first, or deploy with --domain",
                "该栈还没有地址也没有域名：请先部署，或使用 --domain 部署",
            ));
        }
    }
    let settings = settings_for(&cfg)?;
    let secrets = Secrets {
        admin_password_hash: Some(format!("$argon2id$v=19${MASK}")),
        llm_api_key: Some(MASK.to_string()),
        im_telegram_token: Some(MASK.to_string()),
        im_dingtalk_client_secret: Some(MASK.to_string()),
        im_proxy: Some(format!("http://{MASK}.invalid")),
        proxy: Some(format!("http://{MASK}.invalid")),
        // The apps' secret env files are left out (their keys are not in the configuration).
        app_secret_env: Default::default(),
    };
    let bundle =
        cloudcode_bundle::render(&settings, &secrets).map_err(|e| Error::Input(e.to_string()))?;
    for (rel, file) in &bundle.files {
        let p = out.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        std::fs::write(&p, &file.bytes).map_err(Error::io(&p))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(file.mode))
            .map_err(Error::io(&p))?;
    }
    eprintln!(
        "{}",
        tr(
            format!(
                "{} files written to {} (secrets masked)",
                bundle.files.len(),
                out.display()
            ),
            format!(
                "已写入 {} 个文件到 {}（密钥已遮蔽）",
                bundle.files.len(),
                out.display()
            ),
        )
    );
    Ok(())
}
