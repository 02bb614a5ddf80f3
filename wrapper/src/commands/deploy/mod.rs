//! `cloudcode deploy`: gathers inputs (flags, env, prompts), validates all of them before anything is created,
//! writes the stack's working directory ([`configure`]) and runs plan (confirmation unless `--yes`) and apply.
//! The target is an existing machine (`--host`, [`host`]) or a new Alibaba Cloud VM ([`cloud`]).

mod cloud;
mod fingerprint;
mod host;
mod im;
mod proxy;

use std::collections::BTreeMap;

use cloudcode_bundle::validate;

use crate::cli::DeployArgs;
use crate::engine::{self, Engine, Secrets};
use crate::error::{Error, Result};
use crate::i18n::tr;
use crate::stack::{StackConfig, StackDir, StackLock};

use super::input::{invalid, secret, value};

pub use cloud::{check_cidr, cloud_name, detect_public_ip, REGIONS};
pub use fingerprint::Fingerprints;
pub use host::parse_host;

/// A stack whose working directory is written and locked, ready for plan and apply.
#[derive(Debug)]
pub struct Configured {
    pub stack: StackDir,
    pub cfg: StackConfig,
    pub secrets: Secrets,
    pub lock: StackLock,
}

/// Where the stack runs, as gathered by [`host`] or [`cloud`]: the fields of [`StackConfig`] they own.
pub(crate) struct Target {
    pub cfg: StackConfig,
    /// Cloud stacks get a key pair in their directory when none was given.
    pub generate_key: bool,
}

/// Validates every input and writes the stack's working directory (generating its SSH key if needed);
/// nothing runs Terraform yet. Fails before creating anything when an input is wrong.
pub fn configure(name: &str, a: &DeployArgs) -> Result<Configured> {
    let stack = StackDir::new(name)?;
    let previous = stack.exists().then(|| stack.read_config()).transpose()?;
    let yes = a.yes;
    let Target {
        mut cfg,
        generate_key,
    } = match &a.host {
        Some(h) => host::target(h, a)?,
        None => cloud::target(name, a, previous.as_ref())?,
    };

    cfg.domain = value(
        a.domain.clone(),
        yes,
        (
            "Domain (empty: <ip>.sslip.io)",
            "域名（留空则使用 <ip>.sslip.io）",
        ),
        Some(previous.as_ref().map_or("", |p| p.domain.as_str())),
        "--domain",
    )?;
    if let Some(svc) = a
        .fallback_domain_service
        .clone()
        .or_else(|| previous.as_ref().map(|p| p.fallback_domain_service.clone()))
    {
        validate::fallback_domain_service(&svc)
            .map_err(|e| invalid("--fallback-domain-service", "备用域名服务", e))?;
        cfg.fallback_domain_service = svc;
    }
    if !cfg.domain.is_empty() {
        validate::domain(&cfg.domain).map_err(|e| invalid("--domain", "域名", e))?;
        // Upper case and internationalised names go on as their ASCII form: DNS records, Caddy and Authelia
        // all need it.
        cfg.domain = validate::ascii_domain(&cfg.domain);
    } else if !cfg.host.is_empty() {
        validate::fallback_domain_on(&cfg.host, &cfg.fallback_domain_service)
            .map_err(|e| invalid("--domain", "域名", e))?;
    }
    cfg.admin_username = value(
        a.admin_user.clone(),
        yes,
        ("Admin user", "管理员用户名"),
        Some(
            previous
                .as_ref()
                .map_or("admin", |p| p.admin_username.as_str()),
        ),
        "--admin-user",
    )?;
    validate::username(&cfg.admin_username).map_err(|e| invalid("--admin-user", "用户名", e))?;
    cfg.admin_email = value(
        a.admin_email.clone(),
        yes,
        ("Admin e-mail", "管理员邮箱"),
        previous.as_ref().map(|p| p.admin_email.as_str()),
        "--admin-email",
    )?;
    validate::email(&cfg.admin_email).map_err(|e| invalid("--admin-email", "邮箱", e))?;
    let password = secret(
        a.admin_password.clone(),
        yes,
        (
            "Admin password (12+ characters)",
            "管理员密码（至少 12 个字符）",
        ),
        true,
    )?;
    match (&password, &previous) {
        (Some(p), _) => validate::password(p).map_err(|e| invalid("the admin password", "管理员密码", e))?,
        (None, None) => {
            return Err(Error::input(
                "the admin password is required for a new stack: set CLOUDCODE_ADMIN_PASSWORD or --admin-password",
                "新栈需要管理员密码：请设置 CLOUDCODE_ADMIN_PASSWORD 或 --admin-password",
            ))
        }
        (None, Some(_)) => {}
    }
    cfg.llm_provider = value(
        a.llm_provider.clone(),
        yes,
        (
            "LLM provider (openai, anthropic, gemini, openai_compatible)",
            "LLM 提供商（openai、anthropic、gemini、openai_compatible）",
        ),
        Some(
            previous
                .as_ref()
                .map_or("openai", |p| p.llm_provider.as_str()),
        ),
        "--llm-provider",
    )?;
    let api_key = secret(
        a.llm_api_key.clone(),
        yes,
        ("LLM API key (empty: none)", "LLM API 密钥（可留空）"),
        false,
    )?;
    if let Some(k) = &api_key {
        validate::api_key(k).map_err(|e| invalid("the LLM API key", "LLM API 密钥", e))?;
    }
    cfg.llm_base_url = a
        .llm_base_url
        .clone()
        .or_else(|| previous.as_ref().and_then(|p| p.llm_base_url.clone()));
    cfg.llm_model = a
        .llm_model
        .clone()
        .or_else(|| previous.as_ref().and_then(|p| p.llm_model.clone()));
    cfg.terminal_enabled = !a.no_terminal;
    if let Some(t) = &a.tls_mode {
        if t != "acme" && t != "internal" {
            return Err(Error::input(
                "--tls-mode must be acme or internal",
                "--tls-mode 只能是 acme 或 internal",
            ));
        }
    }
    cfg.tls_mode = a.tls_mode.clone();
    cfg.images = images(&a.images)?;
    cfg.image_archives = a
        .image_archives
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    // A version is bumped only when its secret differs from the one last supplied (keyed fingerprints in the
    // stack directory): a re-deploy with the same secrets recreates nothing.
    let mut fingerprints = fingerprint::Fingerprints::load(&stack.path)?;
    if let Some(p) = &previous {
        fingerprints.adopt_legacy(p.im_salt.clone(), p.im_fingerprints.clone());
    }
    cfg.admin_password_version = fingerprints
        .next_version(
            "admin_password",
            password.as_deref(),
            previous.as_ref().map(|p| p.admin_password_version),
        )
        .unwrap_or(1);
    cfg.llm_api_key_version = fingerprints
        .next_version(
            "llm_api_key",
            api_key.as_deref(),
            previous.as_ref().map(|p| p.llm_api_key_version),
        )
        .unwrap_or(1);
    // Apps and static sites are `cloudcode app`'s: a deploy keeps them (their secret env stays on the host).
    if let Some(p) = &previous {
        cfg.apps = p.apps.clone();
        cfg.static_sites = p.static_sites.clone();
        cfg.app_secret_env = p.app_secret_env.clone();
    }
    let im_secrets = im::configure(a, previous.as_ref(), &mut cfg, &mut fingerprints)?;
    let proxy = proxy::configure(a, previous.as_ref(), &mut cfg, &mut fingerprints)?;
    proxy::configure_mirrors(a, previous.as_ref(), &mut cfg)?;
    cfg.preflight = !a.no_preflight;
    cfg.spot = (a.spot || previous.as_ref().is_some_and(|p| p.spot)) && !a.no_spot;
    cfg.idle_suspend_after = match (&a.idle_suspend_after, a.no_idle_suspend) {
        (_, true) => None,
        (Some(after), false) => {
            validate::idle_suspend_after(after)
                .map_err(|e| invalid("--idle-suspend-after", "空闲暂停时间", e))?;
            Some(after.trim().to_string())
        }
        (None, false) => previous.as_ref().and_then(|p| p.idle_suspend_after.clone()),
    };
    if cfg.idle_suspend_after.is_some() && !cfg.is_cloud() {
        return Err(Error::input(
            "--idle-suspend-after applies to cloud stacks: a machine you manage (--host) cannot be stopped through the Alibaba Cloud API",
            "--idle-suspend-after 只适用于云上的栈：自己管理的机器（--host）无法通过阿里云 API 停止",
        ));
    }

    // Bundle-level rules (provider/base URL combination etc.) before anything is written. A cloud stack
    // without a domain has no address yet: check with a placeholder address.
    let mut probe = cfg.clone();
    if probe.domain.is_empty() && probe.host.is_empty() {
        probe.host = "192.0.2.1".into();
    }
    let mut settings = crate::commands::render::settings_for(&probe)?;
    settings.llm_api_key_wo_version = api_key.as_ref().map(|_| 1);
    if let Some((field, e)) = validate::validate(&settings).into_iter().next() {
        return Err(invalid(&field, &format!("{field} "), e));
    }
    // The engine this stack will run with, refused now (before anything is written) if it is missing,
    // unsupported, or not the one the stack was created with.
    engine::choice::for_stack(&stack)?;

    let lock = stack.lock()?;
    if generate_key {
        cloud::ensure_key(&stack, &mut cfg)?;
    }
    stack.write_config(&cfg)?;
    fingerprints.save()?;
    Ok(Configured {
        stack,
        cfg,
        secrets: Secrets {
            admin_password: password,
            llm_api_key: api_key,
            im_telegram_token: im_secrets.telegram_token,
            im_dingtalk_client_secret: im_secrets.dingtalk_client_secret,
            im_proxy: im_secrets.proxy,
            proxy,
            app_secret_env: None,
        },
        lock,
    })
}

fn images(given: &[String]) -> Result<BTreeMap<String, String>> {
    let mut images = BTreeMap::new();
    for i in given {
        let (role, image) = i
            .split_once('=')
            .filter(|(r, _)| ["caddy", "authelia", "devbox", "im"].contains(r))
            .ok_or_else(|| {
                Error::input(
                    format!("--image \"{i}\" must be caddy=, authelia=, devbox= or im=<image>"),
                    format!("--image \"{i}\" 应为 caddy=、authelia=、devbox= 或 im=<镜像>"),
                )
            })?;
        images.insert(role.to_string(), image.to_string());
    }
    Ok(images)
}

pub fn run(name: &str, a: DeployArgs) -> Result<()> {
    let c = configure(name, &a)?;
    let eng = Engine::new(&c.stack)?;
    let found = eng.found();
    eprintln!(
        "{}",
        tr(format!("Preparing {found}…"), format!("正在准备 {found}…"))
    );
    eng.init()?;
    if c.cfg.is_cloud() && c.cfg.spot {
        eprintln!(
            "{}",
            tr(
                "Spot instance: about a fifth of the price, but Alibaba Cloud may reclaim it with five minutes' \
                 notice when it needs the capacity (the disk and its data stay; deploy again to start a new one).",
                "抢占式实例：价格约为按量付费的五分之一，但阿里云在需要资源时可能提前五分钟通知后回收它\
                 （磁盘和数据保留；再次部署即可启动新实例）。",
            )
        );
    }
    let question = tr("Apply these changes?", "执行这些更改？");
    let applied = eng.plan_and_apply(&c.secrets, (!a.yes).then_some(question.as_str()), &[])?;
    let url = applied
        .outputs
        .get("url")
        .and_then(|o| o["value"].as_str())
        .unwrap_or("")
        .to_string();
    println!(
        "{}",
        tr(format!("Deployed: {url}"), format!("部署完成：{url}"))
    );
    println!(
        "{}",
        tr(
            format!("User: {}", c.cfg.admin_username),
            format!("用户：{}", c.cfg.admin_username)
        )
    );
    println!(
        "{}",
        tr(
            "Next: sign in and register a passkey (cloudcode otc prints the one-time code).",
            "下一步：登录并注册通行密钥（cloudcode otc 可显示一次性验证码）。",
        )
    );
    Ok(())
}
