//! `deploy`'s network inputs: the outbound proxy (the URL read from the environment variable `--proxy-env` names,
//! never from argv: it may carry a password; `--no-proxy`, `--proxy-off`; the version bumped only when the URL
//! differs) and the registry and package mirrors (`--mirrors cn|none` and the per-field flags).

use cloudcode_bundle::validate;

use crate::cli::DeployArgs;
use crate::error::{Error, Result};
use crate::stack::StackConfig;
use cloudcode_bundle::MirrorsInput;

use super::super::input::invalid;
use super::fingerprint::Fingerprints;
use super::im::from_env;

/// Sets `cfg`'s proxy version and `no_proxy` list; returns the proxy URL when one was supplied.
pub fn configure(
    a: &DeployArgs,
    previous: Option<&StackConfig>,
    cfg: &mut StackConfig,
    fingerprints: &mut Fingerprints,
) -> Result<Option<String>> {
    if a.proxy_off && a.proxy_env.is_some() {
        return Err(Error::input(
            "--proxy-off and --proxy-env contradict each other: give one",
            "--proxy-off 与 --proxy-env 互相矛盾：只能给一个",
        ));
    }
    cfg.no_proxy = if a.no_proxy.is_empty() {
        previous.map(|p| p.no_proxy.clone()).unwrap_or_default()
    } else {
        a.no_proxy.clone()
    };
    for entry in &cfg.no_proxy {
        validate::no_proxy_entry(entry).map_err(|e| invalid("--no-proxy", "--no-proxy ", e))?;
    }
    if a.proxy_off {
        cfg.proxy_version = None;
        return Ok(None);
    }
    let proxy = a
        .proxy_env
        .as_deref()
        .map(|var| from_env("--proxy-env", var, validate::proxy_url))
        .transpose()?;
    let before = previous.and_then(|p| p.proxy_version);
    cfg.proxy_version = fingerprints.next_version("stack_proxy", proxy.as_deref(), before);
    Ok(proxy)
}

/// Sets `cfg.mirrors` from the flags (kept from the last deploy when none is given); every field checked.
pub fn configure_mirrors(
    a: &DeployArgs,
    previous: Option<&StackConfig>,
    cfg: &mut StackConfig,
) -> Result<()> {
    let mut m = previous.and_then(|p| p.mirrors.clone()).unwrap_or_default();
    match a.mirrors.as_deref() {
        Some("none") => m = MirrorsInput::default(),
        Some(p) if cloudcode_bundle::mirrors_preset(p).is_some() => m.preset = Some(p.to_string()),
        Some(p) => {
            return Err(Error::input(
                format!(
                    "--mirrors \"{}\" is not a preset: use cn, or none to remove the mirrors",
                    p.escape_debug()
                ),
                format!(
                    "--mirrors \"{}\" 不是预设：请用 cn，或用 none 移除镜像设置",
                    p.escape_debug()
                ),
            ))
        }
        None => {}
    }
    if let Some(r) = &a.image_registry {
        m.image_registry = Some(r.clone());
    }
    if !a.registry_mirrors.is_empty() {
        m.registry_mirrors = Some(a.registry_mirrors.clone());
    }
    if !a.insecure_registries.is_empty() {
        m.insecure_registries = Some(a.insecure_registries.clone());
    }
    if let Some(u) = &a.npm_registry {
        m.npm = Some(u.clone());
    }
    if let Some(u) = &a.pypi_index {
        m.pypi = Some(u.clone());
    }
    if let Some(u) = &a.apt_mirror {
        m.apt = Some(u.clone());
    }
    if let Some((field, e)) = cloudcode_bundle::mirrors::validate(&m.resolve())
        .into_iter()
        .next()
    {
        let flag = match field.as_str() {
            "mirrors.image_registry" => "--image-registry",
            "mirrors.registry_mirrors" => "--registry-mirror",
            "mirrors.insecure_registries" => "--insecure-registry",
            "mirrors.npm" => "--npm-registry",
            "mirrors.apt" => "--apt-mirror",
            _ => "--pypi-index",
        };
        return Err(invalid(flag, &format!("{flag} "), e));
    }
    cfg.mirrors = (m != MirrorsInput::default()).then_some(m);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn configure_with(
        extra: &[&str],
        previous: Option<&StackConfig>,
        fingerprints: &mut Fingerprints,
    ) -> Result<(StackConfig, Option<String>)> {
        let mut argv = vec!["cloudcode", "deploy", "--host", "root@203.0.113.7"];
        argv.extend_from_slice(extra);
        let crate::cli::Command::Deploy(a) = crate::cli::Cli::parse_from(argv).command else {
            unreachable!("deploy parses as deploy")
        };
        let mut cfg = StackConfig::blank();
        let url = configure(&a, previous, &mut cfg, fingerprints)?;
        configure_mirrors(&a, previous, &mut cfg)?;
        Ok((cfg, url))
    }

    #[test]
    fn mirrors_take_a_preset_field_overrides_and_none_and_refuse_a_bad_registry() {
        let mut f = Fingerprints::in_memory();
        let (cn, _) = configure_with(
            &[
                "--mirrors",
                "cn",
                "--npm-registry",
                "https://npm.example.com",
            ],
            None,
            &mut f,
        )
        .unwrap();
        let m = cn.mirrors.clone().unwrap();
        assert_eq!(m.preset.as_deref(), Some("cn"));
        let resolved = m.resolve();
        assert_eq!(
            resolved.image_registry.as_deref(),
            Some(cloudcode_bundle::settings::CN_IMAGE_REGISTRY)
        );
        assert_eq!(resolved.npm.as_deref(), Some("https://npm.example.com"));
        // Kept without flags, removed with none.
        let (kept, _) = configure_with(&[], Some(&cn), &mut f).unwrap();
        assert_eq!(kept.mirrors, cn.mirrors);
        let (none, _) = configure_with(&["--mirrors", "none"], Some(&cn), &mut f).unwrap();
        assert_eq!(none.mirrors, None);
        for (extra, flag) in [
            (&["--mirrors", "eu"][..], "--mirrors \"eu\""),
            (
                &["--image-registry", "https://r.example.com/ns"][..],
                "--image-registry",
            ),
            (
                &["--insecure-registry", "bad host"][..],
                "--insecure-registry",
            ),
        ] {
            let e = configure_with(extra, None, &mut f)
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains(flag), "{extra:?}: {e}");
        }
    }

    #[test]
    fn the_proxy_comes_from_the_named_variable_and_only_a_new_url_bumps_its_version() {
        let mut f = Fingerprints::in_memory();
        std::env::set_var("CC_TEST_STACK_PROXY_A", "http://u:pw-a@10.0.0.9:3128");
        let args = [
            "--proxy-env",
            "CC_TEST_STACK_PROXY_A",
            "--no-proxy",
            ".corp.example.com",
        ];
        let (first, url) = configure_with(&args, None, &mut f).unwrap();
        assert_eq!(first.proxy_version, Some(1));
        assert_eq!(url.as_deref(), Some("http://u:pw-a@10.0.0.9:3128"));
        assert_eq!(first.no_proxy, [".corp.example.com"]);
        assert!(!serde_json::to_string(&first).unwrap().contains("pw-a"));
        let (again, _) = configure_with(&args, Some(&first), &mut f).unwrap();
        assert_eq!(again.proxy_version, Some(1));
        // Nothing given: the proxy and the list stay; a new URL bumps; --proxy-off removes it.
        let (kept, url) = configure_with(&[], Some(&first), &mut f).unwrap();
        assert_eq!(
            (kept.proxy_version, url, kept.no_proxy.len()),
            (Some(1), None, 1)
        );
        std::env::set_var("CC_TEST_STACK_PROXY_B", "http://u:pw-b@10.0.0.9:3128");
        let (bumped, _) = configure_with(
            &["--proxy-env", "CC_TEST_STACK_PROXY_B"],
            Some(&first),
            &mut f,
        )
        .unwrap();
        assert_eq!(bumped.proxy_version, Some(2));
        let (off, url) = configure_with(&["--proxy-off"], Some(&bumped), &mut f).unwrap();
        assert_eq!((off.proxy_version, url), (None, None));
    }

    #[test]
    fn each_bad_proxy_input_is_one_sentence_naming_its_flag_without_the_password() {
        let mut f = Fingerprints::in_memory();
        std::env::set_var("CC_TEST_STACK_PROXY_FTP", "ftp://u:pw-secret-9@proxy:21");
        std::env::set_var("CC_TEST_STACK_PROXY_OK", "http://proxy:3128");
        let cases: [(&[&str], &str); 4] = [
            (
                &["--proxy-env", "CC_TEST_STACK_PROXY_FTP"],
                "--proxy-env CC_TEST_STACK_PROXY_FTP",
            ),
            (
                &["--proxy-env", "CC_TEST_STACK_PROXY_UNSET"],
                "--proxy-env CC_TEST_STACK_PROXY_UNSET",
            ),
            (&["--no-proxy", "bad host!"], "--no-proxy"),
            (
                &["--proxy-off", "--proxy-env", "CC_TEST_STACK_PROXY_OK"],
                "--proxy-off and --proxy-env",
            ),
        ];
        for (extra, flag) in cases {
            let e = configure_with(extra, None, &mut f)
                .err()
                .unwrap_or_else(|| panic!("{extra:?} accepted"))
                .to_string();
            assert!(e.contains(flag), "{extra:?}: {e}");
            assert!(!e.contains("pw-secret-9"), "{e}");
        }
    }
}
