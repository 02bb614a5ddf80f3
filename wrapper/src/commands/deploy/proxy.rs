//! `deploy`'s outbound proxy: the URL read from the environment variable `--proxy-env` names (never from argv,
//! it may carry a password), `--no-proxy` entries, `--proxy-off`; the version bumped only when the URL differs.

use cloudcode_bundle::validate;

use crate::cli::DeployArgs;
use crate::error::{Error, Result};
use crate::stack::StackConfig;

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
        Ok((cfg, url))
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
