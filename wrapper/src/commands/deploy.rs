//! `cloudcode deploy`: gathers inputs (flags, env, prompts), validates all of them before anything is created,
//! writes the stack's working directory and runs init, plan (confirmation unless `--yes`) and apply.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use cloudcode_bundle::validate;

use crate::cli::DeployArgs;
use crate::engine::{self, Engine, Secrets};
use crate::error::{Error, Result};
use crate::i18n::tr;
use crate::stack::{StackConfig, StackDir};

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

fn invalid(field_en: &str, field_zh: &str, e: validate::Invalid) -> Error {
    Error::Input(tr(
        format!("{field_en} {}", e.message()),
        format!("{field_zh}无效：{}", e.message()),
    ))
}

/// A value from flag/env, else a prompt on the terminal, else the default, else an error naming the flag.
fn value(
    given: Option<String>,
    yes: bool,
    prompt: (&str, &str),
    default: Option<&str>,
    flag: &str,
) -> Result<String> {
    if let Some(v) = given {
        return Ok(v);
    }
    if !yes && std::io::stdin().is_terminal() {
        let mut input = dialoguer::Input::<String>::new().with_prompt(tr(prompt.0, prompt.1));
        if let Some(d) = default {
            input = input.default(d.to_string()).allow_empty(true);
        }
        return input.interact_text().map_err(|_| Error::Cancelled);
    }
    default.map(str::to_string).ok_or_else(|| {
        Error::input(
            format!("{flag} is required"),
            format!("缺少必需参数 {flag}"),
        )
    })
}

fn secret(
    given: Option<String>,
    yes: bool,
    prompt: (&str, &str),
    confirm: bool,
) -> Result<Option<String>> {
    if given.is_some() || yes || !std::io::stdin().is_terminal() {
        return Ok(given);
    }
    let mut p = dialoguer::Password::new().with_prompt(tr(prompt.0, prompt.1));
    if confirm {
        p = p.with_confirmation(
            tr("Repeat it", "再输入一次"),
            tr("the two entries differ", "两次输入不一致"),
        );
    } else {
        p = p.allow_empty_password(true);
    }
    let v = p.interact().map_err(|_| Error::Cancelled)?;
    Ok((!v.is_empty()).then_some(v))
}

/// `user@host[:port]` → (user, host, port).
pub fn parse_host(s: &str) -> Result<(String, String, u16)> {
    let bad = || {
        Error::input(
            format!(
                "--host \"{}\" is not of the form user@host[:port]",
                s.escape_debug()
            ),
            format!("--host \"{}\" 格式应为 user@host[:port]", s.escape_debug()),
        )
    };
    let (user, rest) = s.split_once('@').ok_or_else(bad)?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse::<u16>().map_err(|_| bad())?),
        _ => (rest, 22),
    };
    if user.is_empty() || port == 0 {
        return Err(bad());
    }
    validate::host(host).map_err(|e| invalid("--host", "--host ", e))?;
    Ok((user.to_string(), host.to_string(), port))
}

fn default_key() -> Option<PathBuf> {
    let home = PathBuf::from(std::env::var_os("HOME")?);
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|k| home.join(".ssh").join(k))
        .find(|p| p.is_file())
}

pub fn run(name: &str, a: DeployArgs) -> Result<()> {
    let stack = StackDir::new(name)?;
    let yes = a.yes;
    let Some(host_arg) = a.host.clone() else {
        return cloud_mode(&a);
    };
    let (user, host, port) = parse_host(&host_arg)?;
    let key = a.ssh_key.clone().or_else(default_key).ok_or_else(|| {
        Error::input(
            "no SSH key: pass --ssh-key (none of ~/.ssh/id_ed25519, id_ecdsa, id_rsa exists)",
            "没有 SSH 私钥：请使用 --ssh-key（~/.ssh/id_ed25519、id_ecdsa、id_rsa 都不存在）",
        )
    })?;
    let key = std::fs::canonicalize(&key).map_err(Error::io(&key))?;

    let previous = stack.exists().then(|| stack.read_config()).transpose()?;
    let domain = value(
        a.domain.clone(),
        yes,
        (
            "Domain (empty: <ip>.sslip.io)",
            "域名（留空则使用 <ip>.sslip.io）",
        ),
        Some(""),
        "--domain",
    )?;
    if !domain.is_empty() {
        validate::domain(&domain).map_err(|e| invalid("--domain", "域名", e))?;
    } else {
        validate::fallback_domain(&host).map_err(|e| invalid("--domain", "域名", e))?;
    }
    let admin_user = value(
        a.admin_user.clone(),
        yes,
        ("Admin user", "管理员用户名"),
        Some("admin"),
        "--admin-user",
    )?;
    validate::username(&admin_user).map_err(|e| invalid("--admin-user", "用户名", e))?;
    let admin_email = value(
        a.admin_email.clone(),
        yes,
        ("Admin e-mail", "管理员邮箱"),
        previous.as_ref().map(|p| p.admin_email.as_str()),
        "--admin-email",
    )?;
    validate::email(&admin_email).map_err(|e| invalid("--admin-email", "邮箱", e))?;
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
    let llm_provider = value(
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
    if let Some(t) = &a.tls_mode {
        if t != "acme" && t != "internal" {
            return Err(Error::input(
                "--tls-mode must be acme or internal",
                "--tls-mode 只能是 acme 或 internal",
            ));
        }
    }
    let mut images = BTreeMap::new();
    for i in &a.images {
        let (role, image) = i
            .split_once('=')
            .filter(|(r, _)| ["caddy", "authelia", "devbox"].contains(r))
            .ok_or_else(|| {
                Error::input(
                    format!("--image \"{i}\" must be caddy=, authelia= or devbox=<image>"),
                    format!("--image \"{i}\" 应为 caddy=、authelia= 或 devbox=<镜像>"),
                )
            })?;
        images.insert(role.to_string(), image.to_string());
    }
    let bump = |v: Option<i64>, given: bool| match (v, given) {
        (Some(v), true) => v + 1,
        (Some(v), false) => v,
        (None, _) => 1,
    };
    let cfg = StackConfig {
        mode: "host".into(),
        host,
        ssh_port: port,
        ssh_user: user,
        private_key_path: key.display().to_string(),
        host_key: a.host_key.clone(),
        domain,
        admin_username: admin_user,
        admin_email,
        admin_password_version: bump(
            previous.as_ref().map(|p| p.admin_password_version),
            password.is_some(),
        ),
        llm_provider,
        llm_base_url: a.llm_base_url.clone(),
        llm_model: a.llm_model.clone(),
        llm_api_key_version: bump(
            previous.as_ref().map(|p| p.llm_api_key_version),
            api_key.is_some(),
        ),
        terminal_enabled: !a.no_terminal,
        tls_mode: a.tls_mode.clone(),
        images,
        image_archives: a
            .image_archives
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    };
    // Bundle-level rules (provider/base URL combination etc.) before anything is written.
    let mut settings = crate::commands::render::settings_for(&cfg)?;
    settings.llm_api_key_wo_version = api_key.as_ref().map(|_| 1);
    if let Some((field, e)) = validate::validate(&settings).into_iter().next() {
        return Err(invalid(&field, &format!("{field} "), e));
    }
    engine::find_binary()?;

    let _lock = stack.lock()?;
    stack.write_config(&cfg)?;
    let eng = Engine::new(&stack)?;
    eprintln!("{}", tr("Preparing Terraform…", "正在准备 Terraform…"));
    eng.init()?;
    let secrets = Secrets {
        admin_password: password,
        llm_api_key: api_key,
    };
    let plan = eng.run_json(
        "terraform plan",
        &["plan", "-json", "-input=false", "-out=cloudcode.tfplan"],
        &secrets,
    )?;
    let (add, change, remove) = plan.changes.unwrap_or_default();
    eprintln!(
        "{}",
        tr(
            format!("Plan: {add} to create, {change} to update, {remove} to remove."),
            format!("计划：新建 {add}，更新 {change}，删除 {remove}。"),
        )
    );
    if !yes && !crate::commands::confirm(&tr("Apply these changes?", "执行这些更改？")) {
        let _ = std::fs::remove_file(stack.path.join("cloudcode.tfplan"));
        return Err(if std::io::stdin().is_terminal() {
            Error::Cancelled
        } else {
            Error::Input(tr("confirmation needed", "需要确认") + &crate::commands::need_tty_hint())
        });
    }
    let applied = eng.run_json(
        "terraform apply",
        &["apply", "-json", "-input=false", "cloudcode.tfplan"],
        &secrets,
    );
    let _ = std::fs::remove_file(stack.path.join("cloudcode.tfplan"));
    let applied = applied?;
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
            format!("User: {}", cfg.admin_username),
            format!("用户：{}", cfg.admin_username)
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

/// Alibaba Cloud mode: inputs are checked, but generating the cloud root is not in this build yet.
fn cloud_mode(a: &DeployArgs) -> Result<()> {
    let region = a.region.clone().unwrap_or_else(|| "ap-southeast-1".into());
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
    let has = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
    if !(has("ALIBABA_CLOUD_ACCESS_KEY_ID") && has("ALIBABA_CLOUD_ACCESS_KEY_SECRET")) {
        return Err(Error::input(
            "missing Alibaba Cloud credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (or use --host)",
            "缺少阿里云凭证：请设置 ALIBABA_CLOUD_ACCESS_KEY_ID 和 ALIBABA_CLOUD_ACCESS_KEY_SECRET（或使用 --host）",
        ));
    }
    if let Some(d) = &a.domain {
        if !d.is_empty() {
            validate::domain(d).map_err(|e| invalid("--domain", "域名", e))?;
        }
    }
    if let Some(p) = &a.admin_password {
        validate::password(p).map_err(|e| invalid("the admin password", "管理员密码", e))?;
    }
    Err(Error::input(
        "Alibaba Cloud mode is not available in this version of the CLI yet; use --host, or the Terraform module modules/cloudcode directly",
        "此版本的 CLI 尚不支持阿里云模式；请使用 --host，或直接使用 Terraform 模块 modules/cloudcode",
    ))
}
