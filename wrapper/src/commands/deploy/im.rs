//! `deploy`'s chat bridge and permission inputs: secrets read from the environment variables the flags name
//! (never from argv), checked with the bundle's rules, versions bumped only when a value differs from the last one.

use std::collections::BTreeMap;

use cloudcode_bundle::validate;

use crate::cli::DeployArgs;
use crate::error::{Error, Result};
use crate::stack::StackConfig;

use super::super::input::invalid;
use super::fingerprint::Fingerprints;

/// The chat bridge secrets of one deploy (None: not supplied, the host keeps its file).
#[derive(Default)]
pub struct ImSecrets {
    pub telegram_token: Option<String>,
    pub dingtalk_client_secret: Option<String>,
    pub proxy: Option<String>,
}

/// A secret from the environment variable a `--*-env` flag names; refused with one sentence naming the flag.
pub(super) fn from_env(
    flag: &str,
    var: &str,
    rule: fn(&str) -> std::result::Result<(), validate::Invalid>,
) -> Result<String> {
    let value = std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::input(
                format!("{flag} {var}: the environment variable {var} is not set or empty"),
                format!("{flag} {var}：环境变量 {var} 未设置或为空"),
            )
        })?;
    rule(&value).map_err(|e| invalid(&format!("{flag} {var}:"), &format!("{flag} {var} "), e))?;
    Ok(value)
}

/// `--opencode-permission tool=value` (repeatable) as a map; every entry checked.
pub fn permissions(given: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in given {
        let (tool, value) = p.split_once('=').ok_or_else(|| {
            Error::input(
                format!(
                    "--opencode-permission \"{}\" must be tool=ask, tool=allow or tool=deny",
                    p.escape_debug()
                ),
                format!(
                    "--opencode-permission \"{}\" 应为 tool=ask、tool=allow 或 tool=deny",
                    p.escape_debug()
                ),
            )
        })?;
        validate::permission_tool(tool)
            .map_err(|e| invalid("--opencode-permission", "--opencode-permission ", e))?;
        validate::permission_value(value)
            .map_err(|e| invalid("--opencode-permission", "--opencode-permission ", e))?;
        out.insert(tool.to_string(), value.to_string());
    }
    Ok(out)
}

/// Fills the chat bridge and permission fields of `cfg` (kept from `previous` unless a flag changes them) and
/// returns the secrets to send. Checks everything before anything is written.
pub fn configure(
    a: &DeployArgs,
    previous: Option<&StackConfig>,
    cfg: &mut StackConfig,
    fingerprints: &mut Fingerprints,
) -> Result<ImSecrets> {
    if let Some(p) = previous {
        cfg.opencode_permission = p.opencode_permission.clone();
        cfg.im_telegram_token_version = p.im_telegram_token_version;
        cfg.im_telegram_api_base = p.im_telegram_api_base.clone();
        cfg.im_dingtalk_client_id = p.im_dingtalk_client_id.clone();
        cfg.im_dingtalk_client_secret_version = p.im_dingtalk_client_secret_version;
        cfg.im_dingtalk_robot_code = p.im_dingtalk_robot_code.clone();
        cfg.im_proxy_version = p.im_proxy_version;
    }
    if !a.opencode_permission.is_empty() {
        cfg.opencode_permission = permissions(&a.opencode_permission)?;
    }
    let telegram = a
        .telegram_token_env
        .as_deref()
        .map(|var| from_env("--telegram-token-env", var, validate::im_secret))
        .transpose()?;
    if let Some(base) = &a.telegram_api_base {
        validate::http_url(base)
            .map_err(|e| invalid("--telegram-api-base", "--telegram-api-base ", e))?;
        cfg.im_telegram_api_base = Some(base.clone());
    }
    if let Some(id) = &a.dingtalk_client_id {
        validate::dingtalk_id(id)
            .map_err(|e| invalid("--dingtalk-client-id", "--dingtalk-client-id ", e))?;
        cfg.im_dingtalk_client_id = Some(id.clone());
    }
    let dingtalk = a
        .dingtalk_secret_env
        .as_deref()
        .map(|var| from_env("--dingtalk-secret-env", var, validate::im_secret))
        .transpose()?;
    if dingtalk.is_some() && cfg.im_dingtalk_client_id.is_none() {
        return Err(Error::input(
            "--dingtalk-secret-env needs --dingtalk-client-id",
            "--dingtalk-secret-env 需要同时指定 --dingtalk-client-id",
        ));
    }
    if cfg.im_dingtalk_client_id.is_some()
        && dingtalk.is_none()
        && cfg.im_dingtalk_client_secret_version.is_none()
    {
        return Err(Error::input(
            "--dingtalk-client-id needs --dingtalk-secret-env VAR (the environment variable holding the app secret)",
            "--dingtalk-client-id 需要 --dingtalk-secret-env VAR（存放应用密钥的环境变量）",
        ));
    }
    let proxy = a
        .im_proxy_env
        .as_deref()
        .map(|var| from_env("--im-proxy-env", var, validate::proxy_url))
        .transpose()?;
    cfg.im_telegram_token_version = fingerprints.next_version(
        "telegram_token",
        telegram.as_deref(),
        cfg.im_telegram_token_version,
    );
    cfg.im_dingtalk_client_secret_version = fingerprints.next_version(
        "dingtalk_client_secret",
        dingtalk.as_deref(),
        cfg.im_dingtalk_client_secret_version,
    );
    cfg.im_proxy_version =
        fingerprints.next_version("proxy", proxy.as_deref(), cfg.im_proxy_version);
    if cfg.im_proxy_version.is_some() && !cfg.im_enabled() {
        return Err(Error::input(
            "--im-proxy-env needs --telegram-token-env or --dingtalk-client-id (the chat bridge is off)",
            "--im-proxy-env 需要 --telegram-token-env 或 --dingtalk-client-id（聊天桥未启用）",
        ));
    }
    Ok(ImSecrets {
        telegram_token: telegram,
        dingtalk_client_secret: dingtalk,
        proxy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> DeployArgs {
        let mut argv = vec!["cloudcode", "deploy", "--host", "root@203.0.113.7"];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::parse_from(argv).command {
            crate::cli::Command::Deploy(a) => a,
            _ => unreachable!("deploy parses as deploy"),
        }
    }

    thread_local! {
        /// One stack's fingerprints across the calls of a test.
        static FINGERPRINTS: std::cell::RefCell<Fingerprints> = std::cell::RefCell::new(Fingerprints::in_memory());
    }

    fn configure_with(
        extra: &[&str],
        previous: Option<&StackConfig>,
    ) -> Result<(StackConfig, ImSecrets)> {
        let mut cfg = StackConfig::blank();
        let s = FINGERPRINTS
            .with(|f| configure(&args(extra), previous, &mut cfg, &mut f.borrow_mut()))?;
        Ok((cfg, s))
    }

    #[test]
    fn a_token_comes_from_the_named_variable_and_the_same_token_keeps_its_version() {
        std::env::set_var("CC_TEST_TG_TOKEN_A", "123456:first-token");
        let (first, s) =
            configure_with(&["--telegram-token-env", "CC_TEST_TG_TOKEN_A"], None).unwrap();
        assert_eq!(first.im_telegram_token_version, Some(1));
        assert_eq!(s.telegram_token.as_deref(), Some("123456:first-token"));
        let stored = serde_json::to_string(&first).unwrap();
        assert!(!stored.contains("first-token"), "{stored}");
        // Same value again: same version. Nothing given: same version, bridge stays on. New value: bumped.
        let (again, _) = configure_with(
            &["--telegram-token-env", "CC_TEST_TG_TOKEN_A"],
            Some(&first),
        )
        .unwrap();
        assert_eq!(again.im_telegram_token_version, Some(1));
        let (kept, s) = configure_with(&[], Some(&first)).unwrap();
        assert_eq!(
            (kept.im_telegram_token_version, s.telegram_token),
            (Some(1), None)
        );
        std::env::set_var("CC_TEST_TG_TOKEN_B", "123456:second-token");
        let (bumped, _) = configure_with(
            &["--telegram-token-env", "CC_TEST_TG_TOKEN_B"],
            Some(&first),
        )
        .unwrap();
        assert_eq!(bumped.im_telegram_token_version, Some(2));
    }

    #[test]
    fn each_bad_input_is_one_sentence_naming_its_flag() {
        std::env::set_var("CC_TEST_PROXY_FTP", "ftp://user:pw-secret@proxy:21");
        std::env::set_var("CC_TEST_TG_OK", "123456:token");
        std::env::set_var("CC_TEST_DT_SECRET", "app-secret");
        let cases: [(&[&str], &str); 7] = [
            (
                &["--telegram-token-env", "CC_TEST_UNSET_VARIABLE"],
                "--telegram-token-env CC_TEST_UNSET_VARIABLE",
            ),
            (
                &[
                    "--telegram-token-env",
                    "CC_TEST_TG_OK",
                    "--telegram-api-base",
                    "ftp://x",
                ],
                "--telegram-api-base",
            ),
            (
                &[
                    "--telegram-token-env",
                    "CC_TEST_TG_OK",
                    "--im-proxy-env",
                    "CC_TEST_PROXY_FTP",
                ],
                "--im-proxy-env",
            ),
            (
                &["--dingtalk-client-id", "ding123"],
                "--dingtalk-client-id needs --dingtalk-secret-env",
            ),
            (
                &["--dingtalk-secret-env", "CC_TEST_DT_SECRET"],
                "--dingtalk-secret-env needs --dingtalk-client-id",
            ),
            (
                &["--opencode-permission", "bash=maybe"],
                "--opencode-permission",
            ),
            (
                &["--opencode-permission", "Bash=ask"],
                "--opencode-permission",
            ),
        ];
        for (extra, flag) in cases {
            let e = configure_with(extra, None)
                .err()
                .unwrap_or_else(|| panic!("{extra:?} accepted"))
                .to_string();
            assert!(e.contains(flag), "{extra:?}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
            assert!(!e.contains("pw-secret"), "{e}");
        }
    }

    #[test]
    fn permissions_and_dingtalk_are_recorded() {
        std::env::set_var("CC_TEST_DT_SECRET2", "app-secret");
        let (cfg, s) = configure_with(
            &[
                "--dingtalk-client-id",
                "ding123",
                "--dingtalk-secret-env",
                "CC_TEST_DT_SECRET2",
                "--opencode-permission",
                "bash=ask",
                "--opencode-permission",
                "edit=allow",
            ],
            None,
        )
        .unwrap();
        assert_eq!(cfg.im_dingtalk_client_secret_version, Some(1));
        assert_eq!(s.dingtalk_client_secret.as_deref(), Some("app-secret"));
        assert_eq!(
            cfg.opencode_permission.get("bash").map(String::as_str),
            Some("ask")
        );
        assert_eq!(cfg.opencode_permission.len(), 2);
    }
}
